//! What the simulated-run test files share: building `verity test` arguments, running them, and
//! reading a run's results.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use clap::Parser;
use harness::cli::{Cli, Command, TestArgs};
use harness::test_run::{self, TestRun};

/// Raft's figure-8 bug with the nemesis that exposes it (as `verity list` names it).
pub const FIGURE_8: [&str; 6] = [
    "--bug",
    "commit-old-term",
    "--nemesis",
    "leader-churn",
    "--nemesis-interval",
    "0.3",
];

/// `verity test <argv...>` parsed as the command line would be.
pub fn test_args(argv: &[&str]) -> TestArgs {
    let mut full = vec!["verity", "test"];
    full.extend_from_slice(argv);
    match Cli::parse_from(full).command {
        Command::Test(a) => a,
        _ => unreachable!("`verity test` parses as a test"),
    }
}

/// Runs a test; a run that fails to start (bad arguments, I/O) fails the calling test.
pub fn run_test(args: &TestArgs) -> TestRun {
    test_run::run(args).unwrap_or_else(|f| panic!("run failed: {}", f.message))
}

/// The named checker's result in a run's report.
pub fn checker<'a>(run: &'a TestRun, name: &str) -> &'a workloads::CheckerResult {
    run.report
        .checkers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} checker in the report"))
}

/// The history as `history.jsonl` bytes, for determinism checks.
pub fn history_bytes(run: &TestRun) -> Vec<u8> {
    let mut out = Vec::new();
    checkers::history::jsonl::write(&run.history, &mut out).unwrap();
    out
}

/// The fault operations `--nemesis all` must have produced over a batch of runs (clock faults
/// other than bumps and link faults other than loss are drawn too, but not always).
pub const ALL_FAULT_OPS: [&str; 7] = [
    "start-partition",
    "kill",
    "restart",
    "pause",
    "resume",
    "clock-bump",
    "start-loss",
];

/// Runs `verity test <base...> --seed N` for every seed; each run must be valid. Each run is
/// handed to `check`; returns the fault operations (`f`) seen across all of them.
pub fn assert_valid_on_seeds(
    base: &[&str],
    seeds: std::ops::RangeInclusive<u64>,
    mut check: impl FnMut(u64, &TestRun),
) -> std::collections::BTreeSet<String> {
    let mut faults_seen = std::collections::BTreeSet::new();
    for seed in seeds {
        let seed_s = seed.to_string();
        let r = run_test(&test_args(&[base, &["--seed", &seed_s]].concat()));
        assert_eq!(
            r.validity(),
            checkers::Validity::Valid,
            "seed {seed} is not valid:\n{}",
            test_run::summary(&r)
        );
        faults_seen.extend(
            r.history
                .ops
                .iter()
                .filter(|o| !o.is_client())
                .map(|o| o.f.clone()),
        );
        check(seed, &r);
    }
    faults_seen
}

/// The nemesis (and its pacing) `verity list` names as exposing a system's bug.
pub fn exposing_nemesis(system: &str, bug: &str) -> &'static str {
    let info = systems::systems()
        .iter()
        .find(|s| s.name == system)
        .expect("a bundled system");
    info.bugs
        .iter()
        .find(|b| b.name == bug)
        .expect("one of its bugs")
        .exposed_by
}
