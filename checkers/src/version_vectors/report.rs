//! The version-vector checker's result: counts, the first examples of each violation, and a
//! readable explanation naming the values and the operations involved.

use super::WriteOutcome;
use crate::verdict::Validity;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// An acknowledged (or observed) write that a final read neither returns nor knows superseded.
#[derive(Debug, Clone, PartialEq)]
pub struct LostWrite {
    /// The key, as canonical JSON text.
    pub key: String,
    pub value: Value,
    /// The write's completion (or invocation, if it never completed).
    pub write: u64,
    pub outcome: WriteOutcome,
    /// Whether some read returned the value (so it happened even if not acknowledged).
    pub observed: bool,
    /// The first final read that lacks it.
    pub final_read: u64,
    pub final_node: Option<String>,
    pub final_siblings: Vec<Value>,
    /// How many of the key's final reads lack it.
    pub missing_from: usize,
    pub final_reads: usize,
}

/// A value returned together with a value whose write superseded it.
#[derive(Debug, Clone, PartialEq)]
pub struct DominatedSibling {
    pub key: String,
    pub read: u64,
    pub process: u64,
    pub node: Option<String>,
    pub siblings: Vec<Value>,
    pub dominated: Value,
    pub by: Value,
    /// The superseding write's invocation.
    pub by_write: u64,
    /// The read its context came from.
    pub by_write_basis: Option<u64>,
}

/// A value returned after a read had seen it superseded.
#[derive(Debug, Clone, PartialEq)]
pub struct Resurrection {
    pub key: String,
    pub value: Value,
    /// A sibling of the earlier read that supersedes the value.
    pub superseded_by: Value,
    pub seen_superseded_at: u64,
    pub seen_by_process: u64,
    pub returned_at: u64,
    pub returned_to_process: u64,
    pub node: Option<String>,
    /// `process` (within one session) or `final` (in a final read).
    pub scope: &'static str,
}

/// A read that knows less than an earlier read of the same process.
#[derive(Debug, Clone, PartialEq)]
pub struct Backwards {
    pub key: String,
    pub process: u64,
    /// The earlier read that knew the first missing value.
    pub earlier_read: u64,
    pub read: u64,
    pub node: Option<String>,
    /// The first few values the earlier reads knew and this one does not.
    pub missing: Vec<Value>,
    pub missing_count: usize,
}

/// A value no correct store could have returned.
#[derive(Debug, Clone, PartialEq)]
pub struct UnexpectedValue {
    pub key: String,
    pub value: Value,
    pub read: u64,
    pub process: u64,
    pub node: Option<String>,
    pub reason: String,
}

/// What the final reads of one key returned.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalKey {
    pub reads: usize,
    /// The last final read's siblings.
    pub siblings: Vec<Value>,
    /// Whether every final read returned the same siblings.
    pub converged: bool,
}

/// The version-vector checker's verdict and evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct VvResult {
    pub validity: Validity,
    pub keys: usize,
    pub writes_ok: usize,
    pub writes_info: usize,
    pub writes_fail: usize,
    /// `ok` reads.
    pub reads: usize,
    pub final_reads: usize,
    /// Number of siblings → number of `ok` reads that returned that many.
    pub sibling_counts: BTreeMap<usize, u64>,
    /// Writes whose context matched no earlier read (they supersede nothing).
    pub unmatched_contexts: usize,
    pub lost: Vec<LostWrite>,
    pub lost_count: usize,
    pub resurrected: Vec<Resurrection>,
    pub resurrected_count: usize,
    pub dominated: Vec<DominatedSibling>,
    pub dominated_count: usize,
    pub backwards: Vec<Backwards>,
    pub backwards_count: usize,
    pub unexpected: Vec<UnexpectedValue>,
    pub unexpected_count: usize,
    /// Per key (canonical JSON): the final reads.
    pub finals: BTreeMap<String, FinalKey>,
    /// Why the verdict is unknown, if it is.
    pub unknown: Vec<String>,
}

impl Default for VvResult {
    fn default() -> Self {
        VvResult {
            validity: Validity::Valid,
            keys: 0,
            writes_ok: 0,
            writes_info: 0,
            writes_fail: 0,
            reads: 0,
            final_reads: 0,
            sibling_counts: BTreeMap::new(),
            unmatched_contexts: 0,
            lost: Vec::new(),
            lost_count: 0,
            resurrected: Vec::new(),
            resurrected_count: 0,
            dominated: Vec::new(),
            dominated_count: 0,
            backwards: Vec::new(),
            backwards_count: 0,
            unexpected: Vec::new(),
            unexpected_count: 0,
            finals: BTreeMap::new(),
            unknown: Vec::new(),
        }
    }
}

fn values(vs: &[Value]) -> String {
    let items: Vec<String> = vs.iter().map(Value::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn on(node: &Option<String>) -> String {
    node.as_ref()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default()
}

impl VvResult {
    /// Every violation found, of every kind.
    pub fn violations(&self) -> usize {
        self.lost_count
            + self.resurrected_count
            + self.dominated_count
            + self.backwards_count
            + self.unexpected_count
    }

    /// The largest number of siblings any read returned.
    pub fn max_siblings(&self) -> usize {
        self.sibling_counts.keys().next_back().copied().unwrap_or(0)
    }

    /// Reads that returned more than one sibling.
    pub fn reads_with_siblings(&self) -> u64 {
        self.sibling_counts
            .iter()
            .filter(|(n, _)| **n > 1)
            .map(|(_, c)| c)
            .sum()
    }

    pub fn to_json(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .sibling_counts
            .iter()
            .map(|(n, c)| (n.to_string(), Value::from(*c)))
            .collect();
        let finals: serde_json::Map<String, Value> = self
            .finals
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    json!({"reads": f.reads, "siblings": f.siblings, "converged": f.converged}),
                )
            })
            .collect();
        let lost: Vec<Value> = self
            .lost
            .iter()
            .map(|l| {
                json!({"key": l.key, "value": l.value, "write": l.write,
                       "outcome": l.outcome.as_str(), "observed": l.observed,
                       "final_read": l.final_read, "final_node": l.final_node,
                       "final_siblings": l.final_siblings, "missing_from": l.missing_from,
                       "final_reads": l.final_reads})
            })
            .collect();
        let dominated: Vec<Value> = self
            .dominated
            .iter()
            .map(|d| {
                json!({"key": d.key, "read": d.read, "process": d.process, "node": d.node,
                       "siblings": d.siblings, "dominated": d.dominated, "by": d.by,
                       "by_write": d.by_write, "by_write_basis": d.by_write_basis})
            })
            .collect();
        let resurrected: Vec<Value> = self
            .resurrected
            .iter()
            .map(|r| {
                json!({"key": r.key, "value": r.value, "superseded_by": r.superseded_by,
                       "seen_superseded_at": r.seen_superseded_at,
                       "seen_by_process": r.seen_by_process, "returned_at": r.returned_at,
                       "returned_to_process": r.returned_to_process, "node": r.node,
                       "scope": r.scope})
            })
            .collect();
        let backwards: Vec<Value> = self
            .backwards
            .iter()
            .map(|b| {
                json!({"key": b.key, "process": b.process, "earlier_read": b.earlier_read,
                       "read": b.read, "node": b.node, "missing": b.missing,
                       "missing_count": b.missing_count})
            })
            .collect();
        let unexpected: Vec<Value> = self
            .unexpected
            .iter()
            .map(|u| {
                json!({"key": u.key, "value": u.value, "read": u.read, "process": u.process,
                       "node": u.node, "reason": u.reason})
            })
            .collect();
        json!({
            "valid": self.validity.to_json(),
            "keys": self.keys,
            "writes": {"ok": self.writes_ok, "info": self.writes_info, "fail": self.writes_fail},
            "reads": self.reads,
            "final_reads": self.final_reads,
            "sibling_counts": counts,
            "max_siblings": self.max_siblings(),
            "reads_with_siblings": self.reads_with_siblings(),
            "unmatched_contexts": self.unmatched_contexts,
            "lost_count": self.lost_count,
            "lost": lost,
            "resurrected_count": self.resurrected_count,
            "resurrected": resurrected,
            "dominated_count": self.dominated_count,
            "dominated": dominated,
            "backwards_count": self.backwards_count,
            "backwards": backwards,
            "unexpected_count": self.unexpected_count,
            "unexpected": unexpected,
            "final": finals,
            "unknown": self.unknown,
        })
    }

    /// A readable account of every violation kind found (the first examples of each).
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if self.lost_count > 0 {
            let _ = writeln!(
                out,
                "{} lost write(s): acknowledged or observed, then neither among the final \
                 siblings nor superseded by a write whose context covered them",
                self.lost_count
            );
            for l in &self.lost {
                let _ = writeln!(
                    out,
                    "  key {}: value {} (write op {}, {}{}) is missing from final read op {}{}, \
                     which returned {} ({} of {} final reads lack it)",
                    l.key,
                    l.value,
                    l.write,
                    l.outcome.as_str(),
                    if l.observed { ", read by others" } else { "" },
                    l.final_read,
                    on(&l.final_node),
                    values(&l.final_siblings),
                    l.missing_from,
                    l.final_reads
                );
            }
        }
        if self.dominated_count > 0 {
            let _ = writeln!(
                out,
                "{} dominated sibling(s): a read returned a value together with a value that \
                 supersedes it",
                self.dominated_count
            );
            for d in &self.dominated {
                let basis = d
                    .by_write_basis
                    .map(|b| format!(", whose context came from read op {b}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  key {}: read op {} (process {}{}) returned {} with {} superseded by {} \
                     (write op {}{basis})",
                    d.key,
                    d.read,
                    d.process,
                    on(&d.node),
                    values(&d.siblings),
                    d.dominated,
                    d.by,
                    d.by_write
                );
            }
        }
        if self.resurrected_count > 0 {
            let _ = writeln!(
                out,
                "{} resurrected value(s): a value came back after a read had seen it superseded",
                self.resurrected_count
            );
            for r in &self.resurrected {
                let scope = if r.scope == "final" {
                    "final read"
                } else {
                    "read"
                };
                let _ = writeln!(
                    out,
                    "  key {}: value {} came back in {scope} op {} (process {}{}) after read op {} \
                     (process {}) had seen it superseded by {}",
                    r.key,
                    r.value,
                    r.returned_at,
                    r.returned_to_process,
                    on(&r.node),
                    r.seen_superseded_at,
                    r.seen_by_process,
                    r.superseded_by
                );
            }
        }
        if self.backwards_count > 0 {
            let _ = writeln!(
                out,
                "{} read(s) whose context went backwards: a process read less than it had \
                 already read",
                self.backwards_count
            );
            for b in &self.backwards {
                let more = if b.missing_count > b.missing.len() {
                    format!(" and {} more", b.missing_count - b.missing.len())
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "  key {}, process {}: read op {}{} does not know {}{more}, which its \
                     earlier read op {} knew",
                    b.key,
                    b.process,
                    b.read,
                    on(&b.node),
                    values(&b.missing),
                    b.earlier_read
                );
            }
        }
        if self.unexpected_count > 0 {
            let _ = writeln!(
                out,
                "{} unexpected value(s) returned by reads",
                self.unexpected_count
            );
            for u in &self.unexpected {
                let _ = writeln!(
                    out,
                    "  key {}: read op {} (process {}{}) returned {}: {}",
                    u.key,
                    u.read,
                    u.process,
                    on(&u.node),
                    u.value,
                    u.reason
                );
            }
        }
        for note in &self.unknown {
            let _ = writeln!(out, "unknown: {note}");
        }
        let _ = writeln!(
            out,
            "{} keys, {} ok reads ({} with siblings, at most {}), {} final reads",
            self.keys,
            self.reads,
            self.reads_with_siblings(),
            self.max_siblings(),
            self.final_reads
        );
        out
    }
}
