//! `verity test ... --seeds RANGE`: regression hunting over many seeds.

mod support;

use checkers::Validity;
use harness::cli::TestArgs;
use harness::{sweep, test_run};

fn args(extra: &[&str]) -> TestArgs {
    support::test_args(&[&["raft", "--time-limit", "10"], extra].concat())
}

#[test]
fn a_sweep_finds_the_failing_seeds_and_stores_exactly_those_runs() {
    let dir = std::env::temp_dir().join(format!("verity-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = args(
        &[
            &support::FIGURE_8[..],
            &["--results", dir.to_str().unwrap()],
        ]
        .concat(),
    );
    let mut reported = Vec::new();
    let found = sweep::run(&a, 1..=6, |r| reported.push(r.seed)).unwrap();
    assert_eq!(found.validity(), Validity::Invalid);
    let seeds: Vec<u64> = found.results.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, (1..=6).collect::<Vec<_>>(), "every seed, in order");
    let failing: Vec<u64> = found.failures().map(|r| r.seed).collect();
    assert!(!failing.is_empty());
    reported.sort();
    assert_eq!(
        reported, failing,
        "each failure was reported as it was found"
    );
    // Each verdict is the one a single run of that seed gives (runs on threads are the same
    // deterministic runs), and the stored runs are the failing seeds.
    for r in &found.results {
        let mut one = a.clone();
        one.seed = Some(r.seed);
        one.no_store = true;
        assert_eq!(
            test_run::run(&one).unwrap().validity(),
            r.validity,
            "seed {}",
            r.seed
        );
    }
    let stored: Vec<u64> = found.stored.iter().map(|(s, _)| *s).collect();
    assert_eq!(stored, failing);
    for (seed, run_dir) in &found.stored {
        let repro = std::fs::read_to_string(run_dir.join("repro.sh")).unwrap();
        assert!(repro.contains(&format!("--seed {seed}")), "{repro}");
        assert!(run_dir.join("history.jsonl").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_correct_system_sweeps_valid_and_stores_nothing() {
    let found = sweep::run(&args(&["--no-store"]), 3..=6, |_| {}).unwrap();
    assert_eq!(found.validity(), Validity::Valid);
    assert_eq!(found.results.len(), 4);
    assert!(found.stored.is_empty());
    assert!(found.results.iter().all(|r| r.operations > 100));
}

#[test]
fn sweeps_refuse_real_mode_a_fixed_seed_and_bad_options() {
    let verity = env!("CARGO_BIN_EXE_verity");
    for extra in [
        vec!["--seeds", "4..2"],
        vec!["--seeds", "2", "--mode", "real"],
        vec!["--seeds", "2", "--nemesis", "bogus"],
        vec!["--seeds", "2", "--seed", "1"],
    ] {
        let out = std::process::Command::new(verity)
            .args(["test", "raft", "--no-store"])
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(254), "{extra:?}");
        assert!(!out.stderr.is_empty(), "{extra:?}: the error says why");
    }
}
