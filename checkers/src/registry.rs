//! Every checker by name, with one result shape, for `verity check --checker NAME`.

use crate::error::InputError;
use crate::history::History;
use crate::verdict::Validity;
use crate::{bank, elle, external_consistency, linearizability, stats, version_vectors};
use serde_json::Value;

/// The checkers `--checker` accepts, with a line on each.
pub const CHECKERS: &[(&str, &str)] = &[
    (
        "linearizability",
        "Wing–Gong/Lowe search against --model (the default)",
    ),
    (
        "list-append",
        "Elle-style: dependency cycles and non-cycle anomalies of list-append txns",
    ),
    (
        "rw-register",
        "Elle-style: dependency cycles of read/write register txns",
    ),
    (
        "external-consistency",
        "commit timestamps against real time, and reads in timestamp order",
    ),
    (
        "bank",
        "every read's total is the same and no balance is negative",
    ),
    (
        "version-vectors",
        "no lost writes, siblings exactly the concurrent writes, no resurrection",
    ),
    (
        "stats",
        "counts per function; invalid when a function never succeeded",
    ),
    (
        "log-agreement",
        "reads a run's node-logs/ (not a history): no log index applied with two terms",
    ),
];

/// A checker and its options.
#[derive(Debug, Clone)]
pub enum Checker {
    Linearizability(linearizability::Options),
    ListAppend(elle::Options),
    RwRegister(elle::Options),
    ExternalConsistency,
    Bank(bank::BankOptions),
    VersionVectors,
    Stats,
}

impl Checker {
    pub fn name(&self) -> &'static str {
        match self {
            Checker::Linearizability(_) => "linearizability",
            Checker::ListAppend(_) => "list-append",
            Checker::RwRegister(_) => "rw-register",
            Checker::ExternalConsistency => "external-consistency",
            Checker::Bank(_) => "bank",
            Checker::VersionVectors => "version-vectors",
            Checker::Stats => "stats",
        }
    }
}

/// One checker's verdict: the result document (`{"valid": ..., ...}`) and a readable
/// explanation (empty when valid).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub validity: Validity,
    pub result: Value,
    pub explanation: String,
}

impl Outcome {
    fn new(validity: Validity, result: Value, explain: impl FnOnce() -> String) -> Outcome {
        let explanation = if validity == Validity::Valid {
            String::new()
        } else {
            explain()
        };
        Outcome {
            validity,
            result,
            explanation,
        }
    }
}

/// Runs a checker on a history.
pub fn run(checker: &Checker, history: &History) -> Result<Outcome, InputError> {
    Ok(match checker {
        Checker::Linearizability(opts) => {
            let r = linearizability::check(history, opts)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::ListAppend(opts) => {
            let r = elle::check_list_append(history, opts)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::RwRegister(opts) => {
            let r = elle::check_rw_register(history, opts)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::ExternalConsistency => {
            let r = external_consistency::check(history)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::Bank(opts) => {
            let r = bank::check(history, opts)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::VersionVectors => {
            let r = version_vectors::check(history)?;
            Outcome::new(r.validity, r.to_json(), || r.explain())
        }
        Checker::Stats => {
            let (validity, result) = stats::stats(history);
            let never = result["never_ok"].to_string();
            Outcome::new(validity, result, || {
                format!("some functions never succeeded: {never}")
            })
        }
    })
}
