//! Dynamo in the simulator under the vv-kv workload: determinism, validity under every fault
//! (with siblings appearing and being resolved), and every bug caught by the version-vector
//! checker with the nemesis that exposes it.

mod support;

use checkers::Validity;
use harness::cli::TestArgs;
use harness::test_run::TestRun;
use serde_json::Value;
use support::{checker, history_bytes, run_test};

/// Simulated seconds of load per run: enough for a few partitions, cheap enough for 50 seeds.
const TIME_LIMIT: &str = "20";

fn args(extra: &[&str]) -> TestArgs {
    support::test_args(&[&["dynamo", "--workload", "vv-kv"], extra].concat())
}

fn run(extra: &[&str]) -> TestRun {
    run_test(&args(extra))
}

/// The version-vector checker's result document.
fn vv_result(run: &TestRun) -> &Value {
    &checker(run, "version-vectors").result
}

#[test]
fn the_same_seed_gives_byte_identical_histories() {
    let base = ["--time-limit", TIME_LIMIT, "--nemesis", "all", "--no-store"];
    let with_seed = |seed: &'static str| {
        let mut a = vec!["--seed", seed];
        a.extend_from_slice(&base);
        run(&a)
    };
    let a = with_seed("7");
    let b = with_seed("7");
    let c = with_seed("8");
    assert!(a.history.ops.len() > 2000, "the run did real work");
    assert_eq!(history_bytes(&a), history_bytes(&b));
    assert_ne!(history_bytes(&a), history_bytes(&c));
}

#[test]
fn correct_dynamo_is_valid_on_50_seeds_with_every_fault() {
    let mut max_siblings = 0;
    let base = [
        "dynamo",
        "--workload",
        "vv-kv",
        "--time-limit",
        TIME_LIMIT,
        "--nemesis",
        "all",
        "--no-store",
    ];
    let faults_seen = support::assert_valid_on_seeds(&base, 1..=50, |seed, r| {
        let vv = vv_result(r);
        assert_eq!(vv["final_reads"], 25, "seed {seed}: 5 keys × 5 nodes");
        for (key, fin) in vv["final"].as_object().unwrap() {
            assert_eq!(
                fin["converged"], true,
                "seed {seed}: the final reads of key {key} disagree"
            );
        }
        max_siblings = max_siblings.max(vv["max_siblings"].as_u64().unwrap());
    });
    assert!(max_siblings >= 2, "concurrent writes never became siblings");
    for f in support::ALL_FAULT_OPS {
        assert!(faults_seen.contains(f), "no {f} in 50 runs");
    }
}

/// Runs seeds 1..=20 with the bug and its nemesis; returns the first seed caught, with the
/// version-vector result of that run.
fn first_catching_seed(bug: &str) -> Option<(u64, Value)> {
    let nemesis = support::exposing_nemesis("dynamo", bug);
    for seed in 1..=20u64 {
        let seed_s = seed.to_string();
        let r = run(&[
            "--seed",
            &seed_s,
            "--time-limit",
            TIME_LIMIT,
            "--nemesis",
            nemesis,
            "--bug",
            bug,
            "--no-store",
        ]);
        if r.validity() == Validity::Invalid {
            println!("bug {bug} caught by seed {seed} with --nemesis {nemesis}");
            return Some((seed, vv_result(&r).clone()));
        }
    }
    None
}

#[test]
fn lww_bug_loses_concurrent_writes() {
    let (_, vv) = first_catching_seed("lww").expect("lww not caught in 20 seeds");
    assert!(vv["lost_count"].as_u64().unwrap() > 0, "{vv}");
    assert_eq!(
        vv["max_siblings"], 1,
        "last-writer-wins never returns siblings"
    );
}

#[test]
fn client_ids_bug_loses_writes_to_reused_dots() {
    let (_, vv) = first_catching_seed("client-ids").expect("client-ids not caught in 20 seeds");
    assert!(vv["lost_count"].as_u64().unwrap() > 0, "{vv}");
}

#[test]
fn drop_context_bug_returns_dominated_siblings() {
    let (_, vv) = first_catching_seed("drop-context").expect("drop-context not caught");
    assert!(vv["dominated_count"].as_u64().unwrap() > 0, "{vv}");
}

#[test]
fn no_handoff_bug_loses_writes_taken_by_fallbacks() {
    let (_, vv) = first_catching_seed("no-handoff").expect("no-handoff not caught in 20 seeds");
    assert!(vv["lost_count"].as_u64().unwrap() > 0, "{vv}");
}

#[test]
fn a_stored_run_has_the_version_vector_results() {
    let dir = std::env::temp_dir().join(format!("verity-dynamo-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.display().to_string();
    let r = run(&["--seed", "3", "--time-limit", "10", "--results", &dir_s]);
    let run_dir = r.run_dir.clone().unwrap();
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["valid"], true);
    assert_eq!(results["version-vectors"]["valid"], true);
    assert!(results["version-vectors"]["sibling_counts"].is_object());
    // The stored history checks the same from the file.
    let stored = checkers::History::read(&run_dir.join("history.jsonl"), None).unwrap();
    let again = checkers::version_vectors::check(&stored).unwrap();
    assert_eq!(again.validity, Validity::Valid);
    let _ = std::fs::remove_dir_all(&dir);
}
