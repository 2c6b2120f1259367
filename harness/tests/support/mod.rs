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
