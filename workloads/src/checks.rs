//! How workloads turn checker results into a [`CheckReport`] entry, and the checkers every
//! workload ends with.

use crate::CheckerResult;
use checkers::{History, Validity};
use serde_json::{Value, json};

/// A checker's result, or `unknown` when the history could not be checked.
pub(crate) fn checker_result<R>(
    name: &str,
    result: Result<R, checkers::InputError>,
    summarize: impl FnOnce(&R) -> (Validity, Value, String),
) -> CheckerResult {
    match result {
        Ok(r) => {
            let (validity, result, explanation) = summarize(&r);
            CheckerResult {
                name: name.into(),
                validity,
                explanation: if validity == Validity::Valid {
                    String::new()
                } else {
                    explanation
                },
                result,
            }
        }
        Err(e) => CheckerResult {
            name: name.into(),
            validity: Validity::Unknown,
            result: json!({"valid": "unknown", "error": e.to_string()}),
            explanation: format!("the history could not be checked: {e}"),
        },
    }
}

/// The stats and availability checkers every workload ends with.
pub(crate) fn stats_checkers(history: &History) -> Vec<CheckerResult> {
    let (validity, result) = checkers::stats::stats(history);
    let stats = CheckerResult {
        name: "stats".into(),
        validity,
        explanation: if validity == Validity::Valid {
            String::new()
        } else {
            format!("some functions never succeeded: {}", result["never_ok"])
        },
        result,
    };
    let (validity, result) = checkers::stats::availability(history, None);
    let availability = CheckerResult {
        name: "availability".into(),
        validity,
        explanation: String::new(),
        result,
    };
    vec![stats, availability]
}
