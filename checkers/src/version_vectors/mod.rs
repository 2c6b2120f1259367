//! The version-vector checker: for leaderless stores that keep concurrent writes as siblings
//! (Dynamo, Riak, Voldemort).
//!
//! History convention: a write's value is `[key, {"value": v, "context": C or null}]`; a read's
//! completion is `[key, {"siblings": [v, ...], "context": C}]`; `C` is the store's causal
//! context, opaque to the checker (compared as canonical JSON). Written values are unique per key.
//!
//! The checker rebuilds causality from the clients' point of view. A write whose context `C`
//! came from a read (the latest read of the key that returned exactly `C` before the write was
//! invoked, preferring the same process) *supersedes* every sibling that read returned, and
//! transitively everything those siblings superseded. A read *knows* its siblings and everything
//! they supersede. Then:
//!
//! - **lost write**: an acknowledged write (or one whose value was read, so it happened) that a
//!   final read neither returns nor knows as superseded;
//! - **dominated sibling**: a read returns a value together with a value that supersedes it
//!   (siblings must be exactly the concurrent writes);
//! - **resurrected value**: a value comes back after a read saw it superseded, in the same
//!   process (a session) or in a final read (after the heal and the quiet period);
//! - **contexts going backwards**: a process's read knows less than its earlier reads of the key;
//! - **unexpected value**: a read returns a value never written, a value whose write failed, or
//!   a value whose write started only after the read completed.
//!
//! Final reads are the reads of a key invoked after the last nemesis operation and after every
//! write of that key ended. A key with acknowledged writes but no final read makes the verdict
//! unknown (lost writes cannot be judged).

mod report;

pub use report::{
    Backwards, DominatedSibling, FinalKey, LostWrite, Resurrection, UnexpectedValue, VvResult,
};

use crate::error::InputError;
use crate::history::{History, OpType, Process};
use crate::verdict::Validity;
use fixedbitset::FixedBitSet;
use serde_json::Value;
use std::collections::BTreeMap;

const SOURCE: &str = "<history>";

/// How many examples of each violation kind the result keeps (all are counted).
pub const MAX_EXAMPLES: usize = 10;

/// Causality is kept as one bit set per write over the key's writes (`n² / 8` bytes): beyond
/// this many writes to one key the key is not judged (the verdict becomes unknown).
pub const MAX_WRITES_PER_KEY: usize = 40_000;

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Ok,
    /// `info`, or no completion at all: it may or may not have happened.
    Info,
    Fail,
}

impl WriteOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Ok => "ok",
            WriteOutcome::Info => "info",
            WriteOutcome::Fail => "fail",
        }
    }
}

/// A write, by the positions of its events in `History::ops`.
#[derive(Debug, Clone)]
struct Write {
    key: String,
    value: Value,
    value_text: String,
    /// Canonical JSON of the context, `None` for a blind write.
    context: Option<String>,
    process: u64,
    invoke: usize,
    complete: Option<usize>,
    outcome: WriteOutcome,
}

/// An `ok` read.
#[derive(Debug, Clone)]
struct Read {
    key: String,
    process: u64,
    invoke: usize,
    complete: usize,
    siblings: Vec<Value>,
    context: String,
    node: Option<String>,
}

/// JSON text with object keys sorted, so equal contexts compare equal whatever their key order.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(k.as_str()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn input_error(index: u64, message: impl std::fmt::Display) -> InputError {
    InputError::new(SOURCE, None, format!("op {index}: {message}"))
}

/// `[key, {field: ..., ...}]` → (key, the object).
fn split_value<'v>(
    value: &'v Value,
    index: u64,
    expected: &str,
) -> Result<(&'v Value, &'v serde_json::Map<String, Value>), InputError> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, Value::Object(body)]) => Ok((key, body)),
        _ => Err(input_error(
            index,
            format!("expected a value of the form {expected}, got {value}"),
        )),
    }
}

const WRITE_SHAPE: &str = "[key, {\"value\": v, \"context\": C or null}]";
const READ_SHAPE: &str = "[key, {\"siblings\": [v, ...], \"context\": C}]";

/// Pairs invocations with completions and extracts writes (every outcome) and `ok` reads.
fn extract(history: &History) -> Result<(Vec<Write>, Vec<Read>), InputError> {
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    // Writes whose completion has not been seen yet: position of the invoke → index in `writes`.
    let mut open_writes: BTreeMap<usize, usize> = BTreeMap::new();
    for (pos, op) in history.ops.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.kind == OpType::Invoke {
            if let Some(&earlier) = open.get(&process) {
                return Err(input_error(
                    op.index,
                    format!(
                        "process {process} invokes `{}` while its invocation at op {} has not \
                         completed (a process runs one operation at a time)",
                        op.f, history.ops[earlier].index
                    ),
                ));
            }
            open.insert(process, pos);
            if op.f == "write" {
                let (key, body) = split_value(&op.value, op.index, WRITE_SHAPE)?;
                let value = body.get("value").cloned().ok_or_else(|| {
                    input_error(op.index, format!("a write's value must be {WRITE_SHAPE}"))
                })?;
                let context = match body.get("context") {
                    None | Some(Value::Null) => None,
                    Some(c) => Some(canonical_json(c)),
                };
                open_writes.insert(pos, writes.len());
                writes.push(Write {
                    key: canonical_json(key),
                    value_text: canonical_json(&value),
                    value,
                    context,
                    process,
                    invoke: pos,
                    complete: None,
                    outcome: WriteOutcome::Info,
                });
            }
            continue;
        }
        let Some(invoke_pos) = open.remove(&process) else {
            return Err(input_error(
                op.index,
                format!(
                    "process {process} completes `{}` ({}) without an open invocation",
                    op.f,
                    op.kind.as_str()
                ),
            ));
        };
        let invocation = &history.ops[invoke_pos];
        if invocation.f != op.f {
            return Err(input_error(
                op.index,
                format!(
                    "process {process} completes `{}` but invoked `{}` at op {}",
                    op.f, invocation.f, invocation.index
                ),
            ));
        }
        match op.f.as_str() {
            "write" => {
                if let Some(w) = open_writes.remove(&invoke_pos) {
                    writes[w].complete = Some(pos);
                    writes[w].outcome = match op.kind {
                        OpType::Ok => WriteOutcome::Ok,
                        OpType::Fail => WriteOutcome::Fail,
                        _ => WriteOutcome::Info,
                    };
                }
            }
            "read" if op.kind == OpType::Ok => {
                let (key, body) = split_value(&op.value, op.index, READ_SHAPE)?;
                let siblings = match body.get("siblings") {
                    Some(Value::Array(s)) => s.clone(),
                    _ => {
                        return Err(input_error(
                            op.index,
                            format!("a read's completion value must be {READ_SHAPE}"),
                        ));
                    }
                };
                let context = body.get("context").cloned().unwrap_or(Value::Null);
                reads.push(Read {
                    key: canonical_json(key),
                    process,
                    invoke: invoke_pos,
                    complete: pos,
                    siblings,
                    context: canonical_json(&context),
                    node: op.node.clone().or_else(|| invocation.node.clone()),
                });
            }
            _ => {}
        }
    }
    Ok((writes, reads))
}

/// Why a returned value is not a value the read could have returned.
enum Resolution {
    Write(usize),
    NeverWritten,
    Failed(usize),
    Later(usize),
}

/// Everything derived about one key.
struct KeyAnalysis<'h> {
    key: String,
    /// Writes that did not fail, in invocation order.
    writes: Vec<&'h Write>,
    /// `ok` reads in completion order.
    reads: Vec<&'h Read>,
    /// Per write: the values its context covered, transitively (bit = index in `writes`).
    past: Vec<FixedBitSet>,
    /// Per write: the read its context came from.
    basis: Vec<Option<usize>>,
    /// Per read: the siblings it returned that are legitimate values.
    live: Vec<FixedBitSet>,
    /// Per read: its siblings and everything they supersede.
    known: Vec<FixedBitSet>,
    unmatched_contexts: usize,
}

impl<'h> KeyAnalysis<'h> {
    fn superseded(&self, read: usize) -> FixedBitSet {
        let mut s = self.known[read].clone();
        s.difference_with(&self.live[read]);
        s
    }

    /// A sibling of `read` whose write supersedes value `v` (for explanations).
    fn superseder_in(&self, read: usize, v: usize) -> Option<usize> {
        self.live[read].ones().find(|&t| self.past[t].contains(v))
    }

    fn value(&self, w: usize) -> &'h Value {
        &self.writes[w].value
    }
}

/// Checks a history of a version-vector store.
pub fn check(history: &History) -> Result<VvResult, InputError> {
    let (all_writes, all_reads) = extract(history)?;
    let last_nemesis = history
        .ops
        .iter()
        .rposition(|o| o.process == Process::Nemesis);
    let op_index = |pos: usize| history.ops[pos].index;
    let mut result = VvResult::default();
    for w in &all_writes {
        match w.outcome {
            WriteOutcome::Ok => result.writes_ok += 1,
            WriteOutcome::Info => result.writes_info += 1,
            WriteOutcome::Fail => result.writes_fail += 1,
        }
    }
    result.reads = all_reads.len();
    for r in &all_reads {
        *result.sibling_counts.entry(r.siblings.len()).or_default() += 1;
    }

    let mut keys: BTreeMap<&str, (Vec<&Write>, Vec<&Read>)> = BTreeMap::new();
    for w in &all_writes {
        keys.entry(&w.key).or_default().0.push(w);
    }
    for r in &all_reads {
        keys.entry(&r.key).or_default().1.push(r);
    }
    result.keys = keys.len();

    for (key, (writes, reads)) in keys {
        let mut by_value: BTreeMap<&str, &Write> = BTreeMap::new();
        for w in &writes {
            if let Some(first) = by_value.insert(&w.value_text, w) {
                return Err(input_error(
                    op_index(w.invoke),
                    format!(
                        "value {} of key {key} was already written at op {}: written values \
                         must be unique per key",
                        w.value_text,
                        op_index(first.invoke)
                    ),
                ));
            }
        }
        if writes.len() > MAX_WRITES_PER_KEY {
            result.unknown.push(format!(
                "key {key}: {} writes is more than the {MAX_WRITES_PER_KEY} per key this \
                 checker keeps causality for in memory; the key was not judged",
                writes.len()
            ));
            continue;
        }
        let analysis = analyse(key, &writes, reads, &mut result, &op_index);
        let last_write_event = writes
            .iter()
            .map(|w| w.complete.unwrap_or(w.invoke).max(w.invoke))
            .max();
        let quiescent = match (last_nemesis, last_write_event) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let finals: Vec<usize> = (0..analysis.reads.len())
            .filter(|&r| quiescent.is_none_or(|q| analysis.reads[r].invoke > q))
            .collect();
        result.final_reads += finals.len();
        result.unmatched_contexts += analysis.unmatched_contexts;
        check_dominated(&analysis, &mut result, &op_index);
        check_lost(&analysis, &finals, &mut result, &op_index);
        check_sessions(&analysis, &mut result, &op_index);
        check_final_resurrections(&analysis, &finals, &mut result, &op_index);
        if !finals.is_empty() {
            let sets: Vec<Vec<&Value>> = finals
                .iter()
                .map(|&f| {
                    let mut s: Vec<&Value> = analysis.reads[f].siblings.iter().collect();
                    s.sort_by_key(|v| canonical_json(v));
                    s
                })
                .collect();
            let converged = sets.windows(2).all(|w| w[0] == w[1]);
            let last = &analysis.reads[*finals.last().unwrap_or(&0)];
            result.finals.insert(
                key.to_string(),
                FinalKey {
                    reads: finals.len(),
                    siblings: last.siblings.clone(),
                    converged,
                },
            );
        }
    }
    result.validity = if result.violations() > 0 {
        Validity::Invalid
    } else if !result.unknown.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    Ok(result)
}

/// Resolves siblings, matches write contexts to reads, and computes `past` and `known`.
fn analyse<'h>(
    key: &str,
    writes: &[&'h Write],
    reads: Vec<&'h Read>,
    result: &mut VvResult,
    op_index: &impl Fn(usize) -> u64,
) -> KeyAnalysis<'h> {
    let mut live_writes: Vec<&Write> = writes
        .iter()
        .copied()
        .filter(|w| w.outcome != WriteOutcome::Fail)
        .collect();
    live_writes.sort_by_key(|w| w.invoke);
    let index_of: BTreeMap<&str, usize> = live_writes
        .iter()
        .enumerate()
        .map(|(i, w)| (w.value_text.as_str(), i))
        .collect();
    let failed: BTreeMap<&str, &Write> = writes
        .iter()
        .filter(|w| w.outcome == WriteOutcome::Fail)
        .map(|w| (w.value_text.as_str(), *w))
        .collect();
    let mut reads = reads;
    reads.sort_by_key(|r| r.complete);
    let n = live_writes.len();

    // Resolve each read's siblings to writes.
    let mut live = Vec::with_capacity(reads.len());
    for r in &reads {
        let mut set = FixedBitSet::with_capacity(n);
        for v in &r.siblings {
            let text = canonical_json(v);
            let resolution = match index_of.get(text.as_str()) {
                Some(&w) if live_writes[w].invoke < r.complete => Resolution::Write(w),
                Some(&w) => Resolution::Later(live_writes[w].invoke),
                None => match failed.get(text.as_str()) {
                    Some(f) => Resolution::Failed(f.complete.unwrap_or(f.invoke)),
                    None => Resolution::NeverWritten,
                },
            };
            let reason = match resolution {
                Resolution::Write(w) if set.contains(w) => "returned twice in one read".to_string(),
                Resolution::Write(w) => {
                    set.insert(w);
                    continue;
                }
                Resolution::NeverWritten => "never written".to_string(),
                Resolution::Failed(pos) => format!("its write failed (op {})", op_index(pos)),
                Resolution::Later(pos) => format!(
                    "its write was invoked only after the read completed (op {})",
                    op_index(pos)
                ),
            };
            result.unexpected_count += 1;
            if result.unexpected.len() < MAX_EXAMPLES {
                result.unexpected.push(UnexpectedValue {
                    key: key.to_string(),
                    value: v.clone(),
                    read: op_index(r.complete),
                    process: r.process,
                    node: r.node.clone(),
                    reason,
                });
            }
        }
        live.push(set);
    }

    // Reads by context, in completion order, to find the read each write's context came from.
    let mut by_context: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in reads.iter().enumerate() {
        by_context.entry(r.context.as_str()).or_default().push(i);
    }
    let mut past = vec![FixedBitSet::with_capacity(n); n];
    let mut basis = vec![None; n];
    let mut unmatched_contexts = 0;
    for w in 0..n {
        let Some(context) = &live_writes[w].context else {
            continue;
        };
        let candidates: Vec<usize> = by_context
            .get(context.as_str())
            .map(|c| {
                c.iter()
                    .copied()
                    .filter(|&r| reads[r].complete < live_writes[w].invoke)
                    .collect()
            })
            .unwrap_or_default();
        let chosen = candidates
            .iter()
            .rev()
            .find(|&&r| reads[r].process == live_writes[w].process)
            .or(candidates.last())
            .copied();
        let Some(r) = chosen else {
            unmatched_contexts += 1;
            continue;
        };
        basis[w] = Some(r);
        let mut covered = FixedBitSet::with_capacity(n);
        for s in live[r].ones() {
            // s was invoked before r completed, hence before w: its past is final.
            covered.insert(s);
            covered.union_with(&past[s]);
        }
        past[w] = covered;
    }
    let known = live
        .iter()
        .map(|set| {
            let mut k = set.clone();
            for s in set.ones() {
                k.union_with(&past[s]);
            }
            k
        })
        .collect();
    KeyAnalysis {
        key: key.to_string(),
        writes: live_writes,
        reads,
        past,
        basis,
        live,
        known,
        unmatched_contexts,
    }
}

fn check_dominated(a: &KeyAnalysis, result: &mut VvResult, op_index: &impl Fn(usize) -> u64) {
    for (r, read) in a.reads.iter().enumerate() {
        for t in a.live[r].ones() {
            let mut dominated = a.past[t].clone();
            dominated.intersect_with(&a.live[r]);
            for v in dominated.ones() {
                result.dominated_count += 1;
                if result.dominated.len() >= MAX_EXAMPLES {
                    continue;
                }
                let by_write = a.writes[t];
                result.dominated.push(DominatedSibling {
                    key: a.key.clone(),
                    read: op_index(read.complete),
                    process: read.process,
                    node: read.node.clone(),
                    siblings: read.siblings.clone(),
                    dominated: a.value(v).clone(),
                    by: a.value(t).clone(),
                    by_write: op_index(by_write.invoke),
                    by_write_basis: a.basis[t].map(|b| op_index(a.reads[b].complete)),
                });
            }
        }
    }
}

fn check_lost(
    a: &KeyAnalysis,
    finals: &[usize],
    result: &mut VvResult,
    op_index: &impl Fn(usize) -> u64,
) {
    let n = a.writes.len();
    let mut observed = FixedBitSet::with_capacity(n);
    for set in &a.live {
        observed.union_with(set);
    }
    let mut must_survive = FixedBitSet::with_capacity(n);
    for (i, w) in a.writes.iter().enumerate() {
        if w.outcome == WriteOutcome::Ok || observed.contains(i) {
            must_survive.insert(i);
        }
    }
    if must_survive.is_clear() {
        return;
    }
    if finals.is_empty() {
        result.unknown.push(format!(
            "key {}: {} writes must survive but no read of the key came after the last fault \
             and the last write, so lost writes cannot be judged",
            a.key,
            must_survive.count_ones(..)
        ));
        return;
    }
    // Per lost value: the first final read that lacks it, and how many do.
    let mut lost: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for &f in finals {
        let mut missing = must_survive.clone();
        missing.difference_with(&a.known[f]);
        for v in missing.ones() {
            lost.entry(v).or_insert((f, 0)).1 += 1;
        }
    }
    for (v, (f, missing_from)) in lost {
        result.lost_count += 1;
        if result.lost.len() >= MAX_EXAMPLES {
            continue;
        }
        let w = a.writes[v];
        let read = a.reads[f];
        result.lost.push(LostWrite {
            key: a.key.clone(),
            value: w.value.clone(),
            write: op_index(w.complete.unwrap_or(w.invoke)),
            outcome: w.outcome,
            observed: observed.contains(v),
            final_read: op_index(read.complete),
            final_node: read.node.clone(),
            final_siblings: read.siblings.clone(),
            missing_from,
            final_reads: finals.len(),
        });
    }
}

fn push_resurrection(result: &mut VvResult, r: Resurrection) {
    result.resurrected_count += 1;
    if result.resurrected.len() < MAX_EXAMPLES {
        result.resurrected.push(r);
    }
}

/// Per process: no value comes back after the process saw it superseded, and a read never
/// knows less than the process's earlier reads of the key.
fn check_sessions(a: &KeyAnalysis, result: &mut VvResult, op_index: &impl Fn(usize) -> u64) {
    let n = a.writes.len();
    let mut by_process: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (r, read) in a.reads.iter().enumerate() {
        by_process.entry(read.process).or_default().push(r);
    }
    for (process, mut reads) in by_process {
        reads.sort_by_key(|&r| a.reads[r].invoke);
        let mut floor = FixedBitSet::with_capacity(n);
        let mut first_known_at: BTreeMap<usize, usize> = BTreeMap::new();
        let mut superseded = FixedBitSet::with_capacity(n);
        let mut first_superseded_at: BTreeMap<usize, usize> = BTreeMap::new();
        for r in reads {
            let mut back = floor.clone();
            back.difference_with(&a.known[r]);
            if !back.is_clear() {
                result.backwards_count += 1;
                if result.backwards.len() < MAX_EXAMPLES {
                    let first_missing = back.ones().next().unwrap_or(0);
                    let earlier = first_known_at.get(&first_missing).copied().unwrap_or(r);
                    result.backwards.push(Backwards {
                        key: a.key.clone(),
                        process,
                        earlier_read: op_index(a.reads[earlier].complete),
                        read: op_index(a.reads[r].complete),
                        node: a.reads[r].node.clone(),
                        missing: back.ones().take(5).map(|v| a.value(v).clone()).collect(),
                        missing_count: back.count_ones(..),
                    });
                }
            }
            let mut back_again = a.live[r].clone();
            back_again.intersect_with(&superseded);
            for v in back_again.ones() {
                let seen_at = first_superseded_at.get(&v).copied().unwrap_or(r);
                push_resurrection(
                    result,
                    Resurrection {
                        key: a.key.clone(),
                        value: a.value(v).clone(),
                        superseded_by: a
                            .superseder_in(seen_at, v)
                            .map(|t| a.value(t).clone())
                            .unwrap_or(Value::Null),
                        seen_superseded_at: op_index(a.reads[seen_at].complete),
                        seen_by_process: a.reads[seen_at].process,
                        returned_at: op_index(a.reads[r].complete),
                        returned_to_process: process,
                        node: a.reads[r].node.clone(),
                        scope: "process",
                    },
                );
            }
            for v in a.known[r].ones() {
                first_known_at.entry(v).or_insert(r);
            }
            floor.union_with(&a.known[r]);
            let s = a.superseded(r);
            for v in s.ones() {
                first_superseded_at.entry(v).or_insert(r);
            }
            superseded.union_with(&s);
        }
    }
}

/// After the heal and the quiet period, nothing any read saw superseded may be a sibling again.
fn check_final_resurrections(
    a: &KeyAnalysis,
    finals: &[usize],
    result: &mut VvResult,
    op_index: &impl Fn(usize) -> u64,
) {
    for &f in finals {
        let final_read = a.reads[f];
        for v in a.live[f].ones() {
            // The reads, completed before this final read began, that saw v superseded.
            let mut seen = (0..a.reads.len()).filter(|&r| {
                a.reads[r].complete < final_read.invoke
                    && a.known[r].contains(v)
                    && !a.live[r].contains(v)
            });
            let earliest = seen.next();
            let same_process = earliest
                .into_iter()
                .chain(seen)
                .any(|r| a.reads[r].process == final_read.process);
            // Within one process the session check has reported it already.
            if let (Some(r), false) = (earliest, same_process) {
                push_resurrection(
                    result,
                    Resurrection {
                        key: a.key.clone(),
                        value: a.value(v).clone(),
                        superseded_by: a
                            .superseder_in(r, v)
                            .map(|t| a.value(t).clone())
                            .unwrap_or(Value::Null),
                        seen_superseded_at: op_index(a.reads[r].complete),
                        seen_by_process: a.reads[r].process,
                        returned_at: op_index(final_read.complete),
                        returned_to_process: final_read.process,
                        node: final_read.node.clone(),
                        scope: "final",
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
