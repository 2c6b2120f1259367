//! System invariants the nodes report themselves (trace events in their logs), checked after a
//! run next to the workload's checkers.

use crate::real::RealReport;
use crate::sim::SimOutcome;
use checkers::Validity;
use checkers::log_agreement::{self, AppliedRun};
use serde_json::json;
use workloads::CheckerResult;

/// The log-agreement check, when the system reports applied log entries (`log-applied`); `None`
/// for systems that do not.
pub fn log_agreement(outcome: &SimOutcome, real: Option<&RealReport>) -> Option<CheckerResult> {
    let runs = match real {
        // The process runtime's nodes wrote their logs to files.
        Some(report) => log_agreement::read_node_logs(&report.work_dir.join("node-logs")),
        None => in_memory_runs(outcome),
    };
    let runs = match runs {
        Ok(runs) if runs.is_empty() => return None,
        Ok(runs) => runs,
        Err(e) => {
            return Some(CheckerResult {
                name: "log-agreement".into(),
                validity: Validity::Unknown,
                result: json!({"valid": "unknown", "error": e.to_string()}),
                explanation: format!("the node logs could not be read: {e}"),
            });
        }
    };
    let result = log_agreement::check(&runs);
    Some(CheckerResult {
        name: "log-agreement".into(),
        validity: result.validity,
        explanation: result
            .disagreements
            .first()
            .map(|d| {
                format!(
                    "{} ({} disagreeing indices)",
                    d.explanation(),
                    result.disagreement_count
                )
            })
            .unwrap_or_default(),
        result: result.to_json(),
    })
}

fn in_memory_runs(outcome: &SimOutcome) -> Result<Vec<AppliedRun>, checkers::InputError> {
    let mut runs = Vec::new();
    for (node, lines) in &outcome.node_logs {
        for (n, line) in lines.iter().enumerate() {
            let parsed = log_agreement::parse_line(node, line).map_err(|why| {
                checkers::InputError::new(format!("node-logs/{node}.log"), Some(n + 1), why)
            })?;
            runs.extend(parsed);
        }
    }
    Ok(runs)
}
