//! Explicit fault schedules (`--schedule FILE`) and shrinking a failing run's schedule.

mod support;

use checkers::Validity;
use harness::cli::TestArgs;
use harness::{shrink, test_run};
use support::{history_bytes, run_test};

fn figure_8(seed: &str) -> TestArgs {
    let base = ["raft", "--time-limit", "30", "--seed", seed, "--no-store"];
    support::test_args(&[&base[..], &support::FIGURE_8].concat())
}

#[test]
fn a_stored_schedule_replays_to_the_same_history() {
    let dir = std::env::temp_dir().join(format!("verity-schedule-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.display().to_string();
    const BASE: [&str; 9] = [
        "raft",
        "--time-limit",
        "10",
        "--nemesis",
        "all",
        "--nemesis-interval",
        "1",
        "--seed",
        "4",
    ];
    let stored = run_test(&support::test_args(
        &[&BASE[..], &["--results", &dir_s]].concat(),
    ));
    let schedule = stored.run_dir.as_ref().unwrap().join("schedule.json");
    let path = schedule.display().to_string();
    let replayed = run_test(&support::test_args(
        &[&BASE[..], &["--no-store", "--schedule", &path]].concat(),
    ));
    assert!(stored.history.ops.iter().any(|o| !o.is_client()));
    assert_eq!(history_bytes(&replayed), history_bytes(&stored));
    assert!(replayed.repro.ends_with(&format!("--schedule {path}")));
    // A schedule that is not one is refused, naming the file.
    std::fs::write(
        &schedule,
        "{\"faults\": [{\"at_ns\": 1, \"fault\": {\"f\": \"nope\"}}]}",
    )
    .unwrap();
    let mut bad = replayed_args(&path);
    bad.no_store = true;
    let err = test_run::run(&bad)
        .err()
        .expect("a bad schedule is an error");
    assert_eq!(err.code, harness::exit::BAD_ARGUMENTS);
    assert!(err.message.contains(&path), "{}", err.message);
    let _ = std::fs::remove_dir_all(&dir);
}

fn replayed_args(path: &str) -> TestArgs {
    support::test_args(&["raft", "--seed", "4", "--schedule", path])
}

#[test]
fn shrinking_figure_8_leaves_a_few_leader_isolations_that_still_fail() {
    let args = figure_8("1");
    let shrunk = shrink::shrink(&args).unwrap().expect("seed 1 fails");
    assert!(shrunk.original_faults > 50, "{}", shrunk.original_faults);
    assert!(
        (1..=8).contains(&shrunk.minimal_faults),
        "{} faults left",
        shrunk.minimal_faults
    );
    assert!(!shrunk.budget_exhausted);
    // Every fault left cuts a leader off; the heal is still at the end.
    let kept = &shrunk.schedule.faults[..shrunk.minimal_faults];
    assert!(kept.iter().all(|f| f.fault.name() == "start-partition"));
    assert_eq!(
        shrunk.schedule.faults.last().unwrap().fault.name(),
        "clock-reset"
    );
    // The shrunk schedule fails on its own, and shrinking is deterministic.
    let replay = test_run::run_with_schedule(&args, Some(shrunk.schedule.clone())).unwrap();
    assert!(!shrink::safety_failures(&replay).is_empty());
    let again = shrink::shrink(&args).unwrap().unwrap();
    assert_eq!(again.schedule, shrunk.schedule);
}

#[test]
fn a_valid_run_has_nothing_to_shrink() {
    let args = support::test_args(&["raft", "--time-limit", "10", "--seed", "2", "--no-store"]);
    assert_eq!(run_test(&args).validity(), Validity::Valid);
    assert!(shrink::shrink(&args).unwrap().is_none());
}
