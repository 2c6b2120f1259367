//! Client operation generators, request/response mapping, and which checkers apply.
//!
//! A workload is runtime-agnostic: it says what the next operation is, what request body a node
//! receives for it, how a reply (or a timeout) becomes a history completion, which final reads
//! end a run, and which checkers judge the history.

pub mod bank;
pub(crate) mod checks;
pub mod lin_kv;
pub mod list_append;
pub mod outcome;
pub mod vv_kv;

pub use outcome::{Completion, Invocation, Outcome};

use checkers::{History, Validity};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::time::Duration;

/// Options every workload understands.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Number of keys.
    pub keys: usize,
    /// Number of nodes (`n1`..`nN`), for workloads that read through every node at the end.
    pub nodes: usize,
    /// Checker time budget.
    pub check_time_limit: Option<Duration>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            keys: 5,
            nodes: 5,
            check_time_limit: Some(Duration::from_secs(120)),
        }
    }
}

/// One checker's verdict and its result document.
#[derive(Debug, Clone)]
pub struct CheckerResult {
    pub name: String,
    pub validity: Validity,
    pub result: Value,
    /// A readable explanation when not valid.
    pub explanation: String,
}

/// Every checker's verdict on a history.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub checkers: Vec<CheckerResult>,
}

impl CheckReport {
    /// Invalid beats unknown beats valid.
    pub fn validity(&self) -> Validity {
        self.checkers
            .iter()
            .fold(Validity::Valid, |v, c| v.combine(c.validity))
    }

    /// `{"valid": ..., "<checker>": {...}, ...}` — the shape of `results.json`.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("valid".into(), self.validity().to_json());
        for c in &self.checkers {
            m.insert(c.name.clone(), c.result.clone());
        }
        Value::Object(m)
    }
}

/// A client workload.
pub trait Workload {
    fn name(&self) -> &'static str;

    /// The next operation a free process invokes.
    fn next_invocation(&mut self, rng: &mut ChaCha8Rng) -> Invocation;

    /// The next operation of a given process. Workloads with per-process (session) state
    /// override this; the simulator calls it rather than `next_invocation`.
    fn next_invocation_for(&mut self, _process: u64, rng: &mut ChaCha8Rng) -> Invocation {
        self.next_invocation(rng)
    }

    /// Sees every completion as it is recorded (e.g. to remember what a process has read).
    fn observe(&mut self, _process: u64, _invocation: &Invocation, _completion: &Completion) {}

    /// The request body a node receives for an invocation.
    fn request_body(&self, invocation: &Invocation) -> Value;

    /// The history completion for a reply or a timeout.
    fn complete(&self, invocation: &Invocation, outcome: &Outcome) -> Completion;

    /// Operations performed after the heal and the quiet period (e.g. a read of every key).
    fn final_invocations(&self) -> Vec<Invocation>;

    /// Runs this workload's checkers.
    fn check(&self, history: &History) -> CheckReport;
}

/// The workloads by name.
pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "lin-kv",
        "read / write / cas on a few keys; linearizability with the kv model",
    ),
    (
        "vv-kv",
        "read siblings and a causal context, write with it (or blind); version vectors",
    ),
    (
        "list-append",
        "Elle-style transactions of appends and reads, with commit timestamps; Elle's \
         list-append checker and external consistency",
    ),
    (
        "bank",
        "transfers between accounts and read-only reads of every balance, with commit \
         timestamps; bank totals and external consistency",
    ),
];

/// Builds a workload by name.
pub fn build(name: &str, opts: &WorkloadOptions) -> Result<Box<dyn Workload>, String> {
    match name {
        "lin-kv" => Ok(Box::new(lin_kv::LinKv::new(opts.clone()))),
        "vv-kv" => Ok(Box::new(vv_kv::VvKv::new(opts.clone()))),
        "list-append" => Ok(Box::new(list_append::ListAppend::new(opts.clone()))),
        "bank" => Ok(Box::new(bank::Bank::new(opts.clone()))),
        _ => {
            let names: Vec<_> = WORKLOADS.iter().map(|(n, _)| *n).collect();
            Err(format!(
                "unknown workload {name:?}; known: {}",
                names.join(", ")
            ))
        }
    }
}
