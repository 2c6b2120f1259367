//! The result of a check: verdict, counterexample or cause, statistics; as JSON and as prose.

use super::ModelKind;
use super::prepare::{Outcome, Paired};
use super::scheduler::{KeyOutcome, KeyVerdict};
use super::search::{PathReport, SearchReport};
use super::split::KeyOps;
use crate::history::{History, OpType, Process};
use crate::verdict::Validity;
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::time::Duration;

/// Why a check could not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCause {
    /// The time limit passed.
    Time,
    /// The search would have exceeded the memory limit.
    Memory,
}

impl UnknownCause {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownCause::Time => "time",
            UnknownCause::Memory => "memory",
        }
    }
}

/// One operation as the history recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpView {
    /// The completion's index; the invocation's for an operation that never completed.
    pub index: u64,
    pub invoke_index: u64,
    pub process: Process,
    /// `Ok` or `Info`; `None` if it never completed.
    pub completion: Option<OpType>,
    pub f: String,
    pub invoke_value: Value,
    /// The completion's value (null if it never completed).
    pub value: Value,
}

impl OpView {
    fn new(history: &History, p: &Paired) -> Self {
        let invoke = &history.ops[p.invoke];
        let complete = p.complete.map(|c| &history.ops[c]);
        OpView {
            index: complete.map_or(invoke.index, |c| c.index),
            invoke_index: invoke.index,
            process: invoke.process,
            completion: complete.map(|c| c.kind),
            f: invoke.f.clone(),
            invoke_value: invoke.value.clone(),
            value: complete.map_or(Value::Null, |c| c.value.clone()),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "index": self.index,
            "invoke_index": self.invoke_index,
            "process": self.process.to_json(),
            "type": self.completion.map_or("pending", OpType::as_str),
            "f": self.f,
            "invoke_value": self.invoke_value,
            "value": self.value,
        })
    }

    /// `op 14: process 21 read → 2 (invoked at op 13)`.
    pub fn describe(&self) -> String {
        let mut s = format!("op {}: process {} {}", self.index, self.process, self.f);
        match self.completion {
            Some(OpType::Ok) => {
                // `write 2`, `read → 2`, `cas [1,2]`, `acquire`: the result only when it says more.
                if self.value == self.invoke_value {
                    if !self.value.is_null() {
                        let _ = write!(s, " {}", self.value);
                    }
                } else if self.invoke_value.is_null() {
                    let _ = write!(s, " → {}", self.value);
                } else {
                    let _ = write!(s, " {} → {}", self.invoke_value, self.value);
                }
            }
            Some(_) => {
                let _ = write!(
                    s,
                    " {} (info: may or may not have happened)",
                    self.invoke_value
                );
            }
            None => {
                let _ = write!(s, " {} (never completed)", self.invoke_value);
            }
        }
        if self.completion.is_some() {
            let _ = write!(s, ", invoked at op {}", self.invoke_index);
        }
        s
    }
}

/// A partial linearization that cannot be extended, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalPath {
    /// The state before the first shown operation.
    pub start_state: Value,
    /// Operations linearized before the shown ones.
    pub omitted: usize,
    /// The last operations of the linearization, each with the state after it.
    pub ops: Vec<(OpView, Value)>,
    /// The operation that had to come next.
    pub failing_op: OpView,
    pub failure: String,
}

impl FinalPath {
    pub fn to_json(&self) -> Value {
        json!({
            "start_state": self.start_state,
            "omitted": self.omitted,
            "ops": self.ops.iter().map(|(op, _)| op.to_json()).collect::<Vec<_>>(),
            "states": self.ops.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(),
            "failing_op": self.failing_op.to_json(),
            "failure": self.failure,
        })
    }
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterexample {
    /// The refuted key, for keyed models.
    pub key: Option<Value>,
    /// The first `ok` operation that cannot be linearized: the history up to its completion has
    /// no linearization.
    pub op: OpView,
    /// The last `ok` operation (of the same key) completed before it.
    pub previous_ok: Option<OpView>,
    /// Up to 10 of the longest partial linearizations.
    pub final_paths: Vec<FinalPath>,
}

/// A key left undecided.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownKey {
    pub key: Option<Value>,
    pub cause: UnknownCause,
    /// The furthest operation whose completion the search reached.
    pub furthest: Option<OpView>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Operations checked (after dropping failed ones and ones without effect or information).
    pub operations: usize,
    pub keys: usize,
    pub keys_valid: usize,
    pub keys_invalid: usize,
    pub keys_unknown: usize,
    /// Keys not finished because another key was refuted first.
    pub keys_stopped: usize,
    /// Configurations (linearized set, state) explored.
    pub configurations: u64,
    /// Distinct model states met (for models whose states are interned).
    pub states: u64,
    pub steps: u64,
    /// The largest estimated memory of one key's search.
    pub peak_search_bytes: u64,
    pub elapsed: Duration,
    pub threads: usize,
}

impl Stats {
    pub fn to_json(&self) -> Value {
        json!({
            "operations": self.operations,
            "keys": self.keys,
            "keys_valid": self.keys_valid,
            "keys_invalid": self.keys_invalid,
            "keys_unknown": self.keys_unknown,
            "keys_stopped": self.keys_stopped,
            "configurations": self.configurations,
            "states": self.states,
            "steps": self.steps,
            "peak_search_bytes": self.peak_search_bytes,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
            "threads": self.threads,
        })
    }
}

/// The result of a linearizability check.
#[derive(Debug, Clone, PartialEq)]
pub struct LinResult {
    pub validity: Validity,
    pub model: ModelKind,
    /// Set when `validity` is unknown.
    pub cause: Option<UnknownCause>,
    /// Set when `validity` is invalid.
    pub counterexample: Option<Counterexample>,
    /// Keys left undecided (at most 10 listed).
    pub unknown_keys: Vec<UnknownKey>,
    pub stats: Stats,
}

const MAX_UNKNOWN_KEYS: usize = 10;

pub(crate) fn build(
    history: &History,
    model: ModelKind,
    keys: &[KeyOps],
    outcomes: Vec<KeyOutcome>,
    elapsed: Duration,
    threads: usize,
) -> LinResult {
    let mut stats = Stats {
        operations: keys.iter().map(|k| k.ops.len()).sum(),
        keys: keys.len(),
        elapsed,
        threads,
        ..Stats::default()
    };
    let key_of = |k: &KeyOps| model.is_keyed().then(|| k.key.clone());
    let mut refutations: Vec<(usize, &SearchReport)> = Vec::new();
    let mut unknown_keys = Vec::new();
    let mut cause = None;
    for (i, outcome) in outcomes.iter().enumerate() {
        let r = &outcome.report;
        stats.configurations += r.configurations as u64;
        stats.states += r.states as u64;
        stats.steps += r.steps;
        stats.peak_search_bytes = stats.peak_search_bytes.max(r.peak_bytes);
        let unknown = match outcome.verdict {
            KeyVerdict::Valid => {
                stats.keys_valid += 1;
                continue;
            }
            KeyVerdict::Invalid => {
                stats.keys_invalid += 1;
                refutations.push((i, r));
                continue;
            }
            KeyVerdict::Stopped => {
                stats.keys_stopped += 1;
                continue;
            }
            KeyVerdict::OutOfTime => UnknownCause::Time,
            KeyVerdict::OutOfMemory => UnknownCause::Memory,
        };
        stats.keys_unknown += 1;
        // More time would not help a search that ran out of memory, so memory is the cause.
        if cause != Some(UnknownCause::Memory) {
            cause = Some(unknown);
        }
        if unknown_keys.len() < MAX_UNKNOWN_KEYS {
            unknown_keys.push(UnknownKey {
                key: key_of(&keys[i]),
                cause: unknown,
                furthest: r
                    .furthest_op
                    .map(|op| OpView::new(history, &keys[i].ops[op as usize])),
            });
        }
    }
    // Of several refuted keys, report the one refuted earliest in the history.
    let first_refuted = refutations.into_iter().min_by_key(|&(i, r)| {
        r.furthest_op
            .map(|op| keys[i].ops[op as usize].complete)
            .unwrap_or_default()
    });
    let counterexample =
        first_refuted.map(|(i, r)| counterexample(history, &keys[i], key_of(&keys[i]), r));
    let validity = if counterexample.is_some() {
        Validity::Invalid
    } else if cause.is_some() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    LinResult {
        validity,
        model,
        cause: if validity == Validity::Unknown {
            cause
        } else {
            None
        },
        counterexample,
        unknown_keys: if validity == Validity::Unknown {
            unknown_keys
        } else {
            Vec::new()
        },
        stats,
    }
}

fn counterexample(
    history: &History,
    key: &KeyOps,
    key_value: Option<Value>,
    report: &SearchReport,
) -> Counterexample {
    let view = |op: u32| OpView::new(history, &key.ops[op as usize]);
    // A refuted search always reached a return event: the one it could not get past.
    let failing = report
        .furthest_op
        .expect("a refutation reaches a return event");
    let failing_at = key.ops[failing as usize].complete;
    let previous_ok = key
        .ops
        .iter()
        .filter(|p| p.outcome == Outcome::Ok && p.complete < failing_at)
        .max_by_key(|p| p.complete)
        .map(|p| OpView::new(history, p));
    let final_paths = report
        .paths
        .iter()
        .map(|path: &PathReport| FinalPath {
            start_state: path.start_state.clone(),
            omitted: path.omitted,
            ops: path
                .ops
                .iter()
                .map(|(op, state)| (view(*op), state.clone()))
                .collect(),
            failing_op: view(path.failing_op),
            failure: path.failure.clone(),
        })
        .collect();
    Counterexample {
        key: key_value,
        op: view(failing),
        previous_ok,
        final_paths,
    }
}

impl LinResult {
    /// `{"valid": true|false|"unknown", "model": ..., ...}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("valid".into(), self.validity.to_json());
        m.insert("model".into(), Value::from(self.model.name()));
        if let Some(cause) = self.cause {
            m.insert("cause".into(), Value::from(cause.as_str()));
            let keys = self
                .unknown_keys
                .iter()
                .map(|k| {
                    json!({
                        "key": k.key,
                        "cause": k.cause.as_str(),
                        "furthest_op": k.furthest.as_ref().map(OpView::to_json),
                    })
                })
                .collect();
            m.insert("unknown_keys".into(), Value::Array(keys));
        }
        if let Some(c) = &self.counterexample {
            if let Some(key) = &c.key {
                m.insert("key".into(), key.clone());
            }
            m.insert("op".into(), c.op.to_json());
            m.insert(
                "previous_ok".into(),
                c.previous_ok.as_ref().map_or(Value::Null, OpView::to_json),
            );
            m.insert(
                "final_paths".into(),
                Value::Array(c.final_paths.iter().map(FinalPath::to_json).collect()),
            );
        }
        m.insert("stats".into(), self.stats.to_json());
        Value::Object(m)
    }

    /// A readable explanation: the counterexample, or why the check could not decide.
    pub fn explain(&self) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let scope = format!(
            "model {}, {} operation{} in {} key{}",
            self.model,
            s.operations,
            plural(s.operations),
            s.keys,
            plural(s.keys)
        );
        match self.validity {
            Validity::Valid => {
                let _ = writeln!(
                    out,
                    "Linearizable ({scope}; {} configurations explored in {:.1} ms).",
                    s.configurations,
                    s.elapsed.as_secs_f64() * 1000.0
                );
            }
            Validity::Unknown => {
                let why = match self.cause {
                    Some(UnknownCause::Memory) => "the search would have exceeded its memory limit",
                    _ => "the time limit passed",
                };
                let _ = writeln!(
                    out,
                    "Unknown ({scope}): {why} with {} key{} undecided ({} configurations explored in {:.1} ms).",
                    s.keys_unknown,
                    plural(s.keys_unknown),
                    s.configurations,
                    s.elapsed.as_secs_f64() * 1000.0
                );
                for k in &self.unknown_keys {
                    let key = k
                        .key
                        .as_ref()
                        .map_or(String::new(), |k| format!("key {k}: "));
                    let reached = k
                        .furthest
                        .as_ref()
                        .map_or("no completion yet".into(), OpView::describe);
                    let _ = writeln!(
                        out,
                        "  {key}out of {}; got as far as {reached}",
                        k.cause.as_str()
                    );
                }
            }
            Validity::Invalid => {
                let c = self
                    .counterexample
                    .as_ref()
                    .expect("invalid results carry a counterexample");
                let key = c
                    .key
                    .as_ref()
                    .map_or(String::new(), |k| format!(", key {k}"));
                let _ = writeln!(out, "Not linearizable ({scope}{key}).");
                let _ = writeln!(
                    out,
                    "The history up to this operation's completion has no linearization:\n  {}",
                    c.op.describe()
                );
                if let Some(prev) = &c.previous_ok {
                    let _ = writeln!(out, "The previous ok operation:\n  {}", prev.describe());
                }
                if !c.final_paths.is_empty() {
                    let _ = writeln!(
                        out,
                        "The longest partial linearizations ({}), and why the next operation cannot follow:",
                        c.final_paths.len()
                    );
                }
                for (n, path) in c.final_paths.iter().enumerate() {
                    let earlier = if path.omitted > 0 {
                        format!(" (after {} earlier operations)", path.omitted)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "  {}. from state {}{earlier}:",
                        n + 1,
                        path.start_state
                    );
                    for (op, state) in &path.ops {
                        let _ = writeln!(out, "       {}  ⇒ {}", op.describe(), state);
                    }
                    let _ = writeln!(
                        out,
                        "     then {}\n       fails: {}",
                        path.failing_op.describe(),
                        path.failure
                    );
                }
            }
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
