//! Linearizability checking: a Wing–Gong search with Lowe's memo, split per key.
//!
//! The history is paired into operations (`prepare`), each operation is given its meaning in the
//! chosen model (`models`), every key is searched independently (P-compositionality) by a
//! resumable depth-first search (`search`) and the keys share the machine's cores fairly
//! (`scheduler`), so that one intractable key cannot hide a cheap violation in another.
//!
//! Semantics (Knossos's): `fail` operations did not happen and are dropped; `info` completions and
//! invocations that never completed may take effect at any point after their invocation, or never
//! (their invocation's value is used); such operations without an effect (reads) are dropped;
//! an `ok` read of `null` carries no information and matches any state. Nemesis operations are
//! ignored. Real-time order is the order of events in the history.

mod budget;
mod machine;
mod memo;
mod models;
mod prepare;
mod report;
mod scheduler;
mod search;
mod split;

pub use budget::default_memory_limit;
pub use report::{Counterexample, FinalPath, LinResult, OpView, Stats, UnknownCause, UnknownKey};

use crate::error::InputError;
use crate::history::History;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The sequential specification the history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `read` / `write`; initial value default null.
    Register,
    /// `read` / `write` / `cas` with `[old, new]`; initial value default null.
    CasRegister,
    /// A cas-register per key: values `[key, v]`, `[key, [old, new]]`.
    Kv,
    /// A string per key: `get`, `put`, `append` with `[key, s]`; initial value "".
    KvString,
    /// `txn` over micro-operations `[read|r|write|w, key, v]`; initial value a map or a scalar.
    MultiRegister,
    /// `acquire` / `release`; initial value "unlocked" (false) or "locked" (true).
    Mutex,
    /// `add` v, `read` → the whole set as a list.
    Set,
    /// `enqueue` v, `dequeue` → any element present (null: the queue was empty).
    UnorderedQueue,
    /// `enqueue` v, `dequeue` → the head (null: the queue was empty).
    FifoQueue,
}

const ALL_MODELS: [ModelKind; 9] = [
    ModelKind::Register,
    ModelKind::CasRegister,
    ModelKind::Kv,
    ModelKind::KvString,
    ModelKind::MultiRegister,
    ModelKind::Mutex,
    ModelKind::Set,
    ModelKind::UnorderedQueue,
    ModelKind::FifoQueue,
];

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::KvString => "kv-string",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::FifoQueue => "fifo-queue",
        }
    }

    pub fn all() -> &'static [ModelKind] {
        &ALL_MODELS
    }

    /// Whether the model is split per key (P-compositionality).
    pub fn is_keyed(self) -> bool {
        matches!(self, ModelKind::Kv | ModelKind::KvString)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::all()
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::all().iter().map(|m| m.name()).collect();
                format!(
                    "unknown model `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// How to check: the model, its initial state, and the budgets.
#[derive(Debug, Clone)]
pub struct Options {
    pub model: ModelKind,
    /// The model's initial state as JSON; `None` means the model's default.
    pub init: Option<serde_json::Value>,
    /// Give up with an `unknown` verdict (cause "time") after this long.
    pub time_limit: Option<Duration>,
    /// Give up with an `unknown` verdict (cause "memory") before the search's estimated memory
    /// exceeds this many bytes; `None` means [`default_memory_limit`].
    pub memory_limit: Option<u64>,
    /// Worker threads; `None` means one per core.
    pub threads: Option<usize>,
}

impl Options {
    pub fn new(model: ModelKind) -> Self {
        Options {
            model,
            init: None,
            time_limit: None,
            memory_limit: None,
            threads: None,
        }
    }
}

/// Checks that `history` is linearizable with respect to `opts.model`.
///
/// Malformed operation values (or a process with two open invocations) are an [`InputError`]
/// with source `<history>` naming the operation's index; a malformed initial state has source
/// `<init>`.
pub fn check(history: &History, opts: &Options) -> Result<LinResult, InputError> {
    let started = Instant::now();
    let deadline = opts.time_limit.map(|limit| started + limit);
    let paired = prepare::pair(history)?;
    let budget = budget::MemoryBudget::new(opts.memory_limit.unwrap_or_else(default_memory_limit));
    let prepared = split::prepare(history, &paired, opts.model, opts.init.as_ref(), &budget)?;
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let outcomes = scheduler::Run { threads, deadline }.run(prepared.searches);
    Ok(report::build(
        history,
        opts.model,
        &prepared.keys,
        outcomes,
        started.elapsed(),
        threads,
    ))
}

#[cfg(test)]
mod tests;
