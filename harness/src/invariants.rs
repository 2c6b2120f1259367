//! System invariants the nodes report themselves (trace events in their logs), checked after a
//! run next to the workload's checkers.

use crate::real::RealReport;
use crate::sim::SimOutcome;
use checkers::Validity;
use checkers::log_agreement::{self, NodeLogReports};
use serde_json::json;
use workloads::CheckerResult;

/// How many malformed report lines are quoted in the result (all are counted).
const MALFORMED_QUOTED: usize = 3;

/// The log-agreement check, when the system reports applied log entries (`log-applied`); `None`
/// for systems that do not.
pub fn log_agreement(outcome: &SimOutcome, real: Option<&RealReport>) -> Option<CheckerResult> {
    let reports = match real {
        // The process runtime's nodes wrote their logs to files (read into memory already when
        // the run's directory was temporary).
        Some(report) if outcome.node_logs.is_empty() => {
            log_agreement::read_node_logs(&report.work_dir.join("node-logs"))
        }
        _ => Ok(in_memory_reports(outcome)),
    };
    let reports = match reports {
        Ok(r) if r.runs.is_empty() && r.malformed.is_empty() => return None,
        Ok(r) => r,
        Err(e) => {
            return Some(CheckerResult {
                name: "log-agreement".into(),
                validity: Validity::Unknown,
                result: json!({"valid": "unknown", "error": e.to_string()}),
                explanation: format!("the node logs could not be read: {e}"),
            });
        }
    };
    let result = log_agreement::check(&reports.runs);
    let mut document = result.to_json();
    if !reports.malformed.is_empty() {
        // Torn lines of killed processes: the check stands on the whole reports.
        document["malformed_reports"] = json!(reports.malformed.len());
        document["malformed_examples"] = json!(
            reports
                .malformed
                .iter()
                .take(MALFORMED_QUOTED)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
    }
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
        result: document,
    })
}

fn in_memory_reports(outcome: &SimOutcome) -> NodeLogReports {
    let mut reports = NodeLogReports::default();
    for (node, lines) in &outcome.node_logs {
        for (n, line) in lines.iter().enumerate() {
            match log_agreement::parse_line(node, line) {
                Ok(Some(run)) => reports.runs.push(run),
                Ok(None) => {}
                Err(why) => reports.malformed.push(checkers::InputError::new(
                    format!("node-logs/{node}.log"),
                    Some(n + 1),
                    why,
                )),
            }
        }
    }
    reports
}
