//! The `verity` harness: the CLI commands, the simulator runtime, the run store and reports.

pub mod check_cmd;
pub mod cli;
pub mod client_model;
pub mod convert_cmd;
pub mod exit;
pub mod invariants;
pub mod list_cmd;
pub mod real;
pub mod recorder;
pub mod report;
pub mod run_store;
pub mod serve;
pub mod shrink;
pub mod sim;
pub mod sweep;
pub mod test_run;
