//! Spanner in the simulator: external consistency while clocks stay within ε (under every
//! fault), determinism, commit wait measured, and the violations caught — clocks driven
//! beyond ε, and each bug — by the external-consistency checker within the first 20 seeds.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod support;

use checkers::{OpType, Validity};
use harness::cli::TestArgs;
use harness::test_run::{self, TestRun};
use serde_json::Value;
use support::{checker, history_bytes, run_test};

/// Simulated seconds of load per run.
const TIME_LIMIT: &str = "20";
/// Clock faults every ~2 s, each node's skew at most ε = 7 ms (the default `--epsilon-ms`):
/// TrueTime's assumption holds, so the system must stay externally consistent.
const WITHIN_EPSILON: [&str; 4] = ["--clock-max-ms", "7", "--nemesis-interval", "2"];

fn args(extra: &[&str]) -> TestArgs {
    let base = ["spanner", "--time-limit", TIME_LIMIT];
    support::test_args(&[&base[..], extra, &["--no-store"]].concat())
}

fn run(extra: &[&str]) -> TestRun {
    run_test(&args(extra))
}

fn run_seed(workload: &str, seed: u64, extra: &[&str]) -> TestRun {
    let seed = seed.to_string();
    let mut all = vec!["--workload", workload, "--seed", &seed];
    all.extend_from_slice(extra);
    run(&all)
}

/// Commit waits over every node: (count, mean ms from timestamp choice to release, mean ms
/// after the commit record was logged).
fn commit_waits(run: &TestRun) -> (u64, f64, f64) {
    let (mut n, mut total, mut after_log) = (0u64, 0u64, 0u64);
    for state in run.outcome.final_states.values() {
        let stats = &state["stats"];
        n += stats["commits_coordinated"].as_u64().unwrap_or(0);
        total += stats["commit_wait_total_ns"].as_u64().unwrap_or(0);
        after_log += stats["commit_wait_after_log_ns"].as_u64().unwrap_or(0);
    }
    let mean = |x: u64| x as f64 / n.max(1) as f64 / 1e6;
    (n, mean(total), mean(after_log))
}

#[test]
fn the_same_seed_gives_byte_identical_histories() {
    for workload in ["list-append", "bank"] {
        let a = run_seed(workload, 7, &["--nemesis", "all"]);
        let b = run_seed(workload, 7, &["--nemesis", "all"]);
        let c = run_seed(workload, 8, &["--nemesis", "all"]);
        assert!(
            a.history.ops.len() > 500,
            "{workload}: the run did real work"
        );
        assert_eq!(history_bytes(&a), history_bytes(&b), "{workload}");
        assert_ne!(history_bytes(&a), history_bytes(&c), "{workload}");
    }
}

/// Runs seeds 1..=50 under every fault with clocks within ε; all must be valid.
fn valid_on_50_seeds(workload: &str) {
    let (mut ok, mut invoked, mut waits, mut wait_total, mut wait_after_log) = (0, 0, 0, 0.0, 0.0);
    let mut sim_seconds = 0.0;
    let mut wall_seconds = 0.0;
    let base = [
        &[
            "spanner",
            "--workload",
            workload,
            "--time-limit",
            TIME_LIMIT,
        ],
        &["--nemesis", "all", "--no-store"][..],
        &WITHIN_EPSILON,
    ]
    .concat();
    let faults_seen = support::assert_valid_on_seeds(&base, 1..=50, |seed, r| {
        for op in r.history.ops.iter().filter(|o| o.is_client()) {
            invoked += usize::from(op.kind == OpType::Invoke);
            ok += usize::from(op.kind == OpType::Ok);
        }
        let final_ok = r
            .history
            .ops
            .iter()
            .rev()
            .take_while(|o| o.is_client())
            .any(|o| o.kind == OpType::Ok && o.extra.contains_key("commit_ts"));
        assert!(
            final_ok,
            "{workload} seed {seed}: the final reads all failed"
        );
        let (n, total, after_log) = commit_waits(r);
        waits += n;
        wait_total += total * n as f64;
        wait_after_log += after_log * n as f64;
        sim_seconds += r.outcome.end_ns as f64 / 1e9;
        wall_seconds += r.sim_time.as_secs_f64();
    });
    for f in [
        "start-partition",
        "kill",
        "restart",
        "pause",
        "clock-bump",
        "clock-strobe",
        "clock-drift",
        "start-loss",
    ] {
        assert!(faults_seen.contains(f), "{workload}: no {f} in 50 runs");
    }
    let mean_total = wait_total / waits.max(1) as f64;
    let mean_after_log = wait_after_log / waits.max(1) as f64;
    println!(
        "{workload}: 50 seeds valid; {ok} of {invoked} operations ok; {waits} commits, commit \
         wait {mean_total:.2} ms on average from timestamp to release ({mean_after_log:.2} ms \
         after the commit record was logged); simulated {sim_seconds:.0} s in {wall_seconds:.1} \
         s ({:.0}x real time)",
        sim_seconds / wall_seconds.max(1e-9)
    );
    // Commit wait lasts until TT.after(ts): about 2ε from the timestamp's choice.
    assert!((7.0..=21.0).contains(&mean_total), "{mean_total} ms");
    assert!(mean_after_log > 0.5 && mean_after_log < mean_total);
}

#[test]
fn list_append_is_valid_on_50_seeds_with_every_fault_and_clocks_within_epsilon() {
    valid_on_50_seeds("list-append");
}

#[test]
fn bank_is_valid_on_50_seeds_with_every_fault_and_clocks_within_epsilon() {
    valid_on_50_seeds("bank");
}

/// Runs seeds 1..=20; returns the first one whose history is invalid, with its run.
fn first_invalid(workload: &str, extra: &[&str]) -> Option<(u64, TestRun)> {
    (1..=20u64).find_map(|seed| {
        let r = run_seed(workload, seed, extra);
        (r.validity() == Validity::Invalid).then_some((seed, r))
    })
}

/// The external-consistency checker (not only the bank or Elle checker) flagged the run, with
/// a violation that names both transactions' real times and timestamps.
fn assert_external_consistency_caught(r: &TestRun, what: &str) {
    let ext = checker(r, "external-consistency");
    assert_eq!(
        ext.validity,
        Validity::Invalid,
        "{what}: {}",
        ext.explanation
    );
    let violations = &ext.result["violations"];
    let example = violations["realtime"]
        .get(0)
        .or_else(|| violations["read"].get(0))
        .unwrap_or_else(|| panic!("{what}: no realtime or read violation: {violations}"));
    assert!(
        example["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("timestamp")),
        "{example}"
    );
    if let Some(v) = violations["realtime"].get(0) {
        for field in [
            "before_ts",
            "after_ts",
            "before_completed_time",
            "after_invoked_time",
        ] {
            assert!(
                v[field] != Value::Null,
                "{what}: realtime violation lacks {field}"
            );
        }
    }
}

#[test]
fn clocks_beyond_epsilon_are_caught_by_external_consistency() {
    for workload in ["list-append", "bank"] {
        let extra = [
            "--nemesis",
            "clock-beyond-epsilon",
            "--nemesis-interval",
            "2",
        ];
        let (seed, r) = first_invalid(workload, &extra)
            .unwrap_or_else(|| panic!("{workload}: clock-beyond-epsilon not caught in 20 seeds"));
        assert_external_consistency_caught(&r, workload);
        let ext = checker(&r, "external-consistency");
        println!(
            "clock-beyond-epsilon caught on {workload} by seed {seed}: {:?}",
            ext.result["violation_counts"]
        );
    }
}

/// Runs the bug with the nemesis (and pacing) its `exposed_by` names, on both workloads.
fn bug_caught(bug: &str) {
    let info = systems::systems()
        .iter()
        .find(|s| s.name == "spanner")
        .unwrap();
    let nemesis = info.bugs.iter().find(|b| b.name == bug).unwrap().exposed_by;
    for workload in ["list-append", "bank"] {
        let mut extra = vec!["--bug", bug, "--nemesis"];
        extra.extend(nemesis.split_whitespace());
        let (seed, r) = first_invalid(workload, &extra)
            .unwrap_or_else(|| panic!("bug {bug} not caught on {workload} in 20 seeds"));
        assert_external_consistency_caught(&r, bug);
        let ext = checker(&r, "external-consistency");
        println!(
            "bug {bug} caught on {workload} by seed {seed} with --nemesis {nemesis}: {:?}",
            ext.result["violation_counts"]
        );
    }
}

#[test]
fn no_commit_wait_bug_is_caught() {
    bug_caught("no-commit-wait");
}

#[test]
fn no_prepare_max_bug_is_caught() {
    bug_caught("no-prepare-max");
}

#[test]
fn completions_carry_commit_timestamps_and_read_only_transactions_take_no_locks() {
    let r = run_seed("list-append", 3, &["--nemesis", "none"]);
    assert_eq!(r.validity(), Validity::Valid, "{}", test_run::summary(&r));
    let oks: Vec<_> = r
        .history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind == OpType::Ok)
        .collect();
    assert!(oks.len() > 500);
    assert!(oks.iter().all(|o| o.extra["commit_ts"].is_i64()));
    let elle = checker(&r, "list-append");
    assert_eq!(elle.result["valid"], true);
    // Every node coordinated commits, and the snapshot reads were served.
    let states = &r.outcome.final_states;
    let snapshot_reads: u64 = states
        .values()
        .map(|s| s["stats"]["snapshot_reads"].as_u64().unwrap_or(0))
        .sum();
    assert!(snapshot_reads > 100, "{snapshot_reads}");
    for state in states.values() {
        assert_eq!(state["shards"].as_array().map(Vec::len), Some(3));
    }
}

/// Spanner is correct only while clocks stay within ε, so that is the `clock` nemesis's default
/// bound for it (a plain `--nemesis all` run of the correct system must pass); other systems get
/// 200 ms, and an explicit `--clock-max-ms` always wins.
#[test]
fn the_clock_nemesis_defaults_to_epsilon_for_spanner_only() {
    let bound = |a: &TestArgs| test_run::sim_config(a, 1).unwrap().nemesis.clock_max_ms;
    assert_eq!(bound(&args(&[])), 7);
    assert_eq!(bound(&args(&["--epsilon-ms", "12"])), 12);
    assert_eq!(bound(&args(&["--clock-max-ms", "50"])), 50);
    let raft = support::test_args(&["raft"]);
    assert_eq!(bound(&raft), 200);
    assert!(test_run::repro_command(&args(&[]), 1).contains("--clock-max-ms 7"));
    let r = run(&[
        "--workload",
        "list-append",
        "--nemesis",
        "all",
        "--seed",
        "7",
    ]);
    assert_eq!(r.validity(), Validity::Valid, "{}", test_run::summary(&r));
}
