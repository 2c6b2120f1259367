//! Read-write registers (Elle's rw-register): micro-operations `r` and `w`, every value written
//! at most once per key.
//!
//! Unlike lists, a register's reads do not reveal its version order; what is known:
//!
//! - a read of `v` follows the write of `v` (wr);
//! - the initial state (`null`) precedes every written version;
//! - with `wfr` (writes follow reads, an assumption of read-committed and stronger systems), a
//!   transaction that read `v1` and then wrote `v2` to the same key orders `v1` before `v2`.
//!
//! Each known version pair `v1 < v2` gives a ww edge from `v1`'s writer to `v2`'s, and an rw edge
//! from every reader of `v1` to `v2`'s writer (when `v2` does not immediately follow `v1`, the true
//! anti-dependency runs to an intermediate writer, which the ww edges then lead to `v2`'s writer:
//! a cycle through these edges is still a cycle of real dependencies). Only a transaction's
//! external reads (before it writes the key) and final writes take part; reading another
//! transaction's non-final write is G1b.

use super::anomalies::{Sink, op_json};
use super::explain::{DataExplainer, Reason, fields};
use super::graph::{EdgeBuf, RW, WR, WW};
use super::history::{Atom, FastMap, KeyId, MopKind, Outcome, Txns, fast_map, input_error, show};
use crate::error::InputError;
use serde_json::{Value, json};

/// A write: who, and whether the same transaction wrote the key again later.
#[derive(Debug, Clone, Copy)]
struct Write {
    txn: u32,
    intermediate: bool,
}

/// Why `from` precedes `to` in a key's version order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Because {
    /// `from` is the initial state.
    Initial,
    /// This transaction read `from` and then wrote `to`.
    ReadThenWrote(u32),
}

/// One key's versions (by value; `None` is the initial state).
#[derive(Default)]
struct KeyVersions<'h> {
    /// Ordered pairs of versions known so far.
    order: Vec<(Option<&'h Value>, &'h Value, Because)>,
    /// Per version read: the value, and the transactions whose first micro-operation on the
    /// key read it.
    readers: FastMap<Option<Atom<'h>>, (Option<&'h Value>, Vec<u32>)>,
    /// Final writes of the key by transactions that may have committed.
    final_writes: Vec<(&'h Value, u32)>,
}

/// The register index: writers of every value and each key's known version order.
pub struct RegisterIndex<'h> {
    writers: FastMap<(KeyId, Atom<'h>), Write>,
    keys: Vec<KeyVersions<'h>>,
}

impl<'h> RegisterIndex<'h> {
    /// Builds the index. Errors: an `append`, or the same value written twice to a key.
    pub fn build(txns: &Txns<'h>, writes_follow_reads: bool) -> Result<Self, InputError> {
        let mut writers: FastMap<(KeyId, Atom<'h>), Write> = fast_map();
        let mut keys: Vec<KeyVersions<'h>> = (0..txns.keys.len())
            .map(|_| KeyVersions::default())
            .collect();
        for (t, txn) in txns.txns.iter().enumerate() {
            // Per key touched: the external read (when the first access was a read by a
            // committed transaction) and the final write.
            let mut touched: Vec<(KeyId, Option<&'h Value>, Option<&'h Value>)> = Vec::new();
            for (m, mop) in txn.mops.iter().enumerate() {
                let slot = touched.iter().position(|(k, _, _)| *k == mop.key);
                match mop.kind {
                    MopKind::Append => {
                        return Err(input_error(format!(
                            "op {}: micro-operation {m} is an `append`; the rw-register checker \
                             expects only `r` and `w` (use list-append for lists)",
                            txns.txn_index(t)
                        )));
                    }
                    MopKind::Write => {
                        if mop.value.is_null() {
                            return Err(input_error(format!(
                                "op {}: writes null to key {}; null is the initial state",
                                txns.txn_index(t),
                                show(txns.key(mop.key))
                            )));
                        }
                        let write = Write {
                            txn: t as u32,
                            intermediate: false,
                        };
                        if let Some(earlier) = writers.insert((mop.key, Atom::of(mop.value)), write)
                            && earlier.txn != t as u32
                        {
                            return Err(input_error(format!(
                                "op {}: writes {} to key {}, which op {} also wrote; rw-register \
                                 checking needs every written value to be unique per key",
                                txns.txn_index(t),
                                show(mop.value),
                                show(txns.key(mop.key)),
                                txns.txn_index(earlier.txn as usize)
                            )));
                        }
                        match slot {
                            Some(i) => {
                                if let Some(previous) = touched[i].2
                                    && previous != mop.value
                                    && let Some(w) = writers.get_mut(&(mop.key, Atom::of(previous)))
                                {
                                    w.intermediate = true;
                                }
                                touched[i].2 = Some(mop.value);
                            }
                            None => touched.push((mop.key, None, Some(mop.value))),
                        }
                    }
                    MopKind::Read => {
                        if slot.is_none() {
                            let read = (txn.outcome == Outcome::Ok).then_some(mop.value);
                            touched.push((mop.key, read, None));
                        }
                    }
                }
            }
            if txn.outcome == Outcome::Fail {
                continue;
            }
            for (k, read, write) in touched {
                let key = &mut keys[k as usize];
                if let Some(v) = read {
                    let value = (!v.is_null()).then_some(v);
                    let entry = key.readers.entry(value.map(Atom::of)).or_default();
                    entry.0 = value;
                    entry.1.push(t as u32);
                }
                if let Some(w) = write {
                    key.final_writes.push((w, t as u32));
                    if writes_follow_reads
                        && let Some(r) = read
                        && !r.is_null()
                        && r != w
                    {
                        key.order
                            .push((Some(r), w, Because::ReadThenWrote(t as u32)));
                    }
                }
            }
        }
        // The initial state precedes every version read or written.
        for key in &mut keys {
            let versions: Vec<&Value> = key.final_writes.iter().map(|(v, _)| *v).collect();
            for v in versions {
                key.order.push((None, v, Because::Initial));
            }
        }
        Ok(RegisterIndex { writers, keys })
    }

    fn writer(&self, key: KeyId, value: &Value) -> Option<Write> {
        self.writers.get(&(key, Atom::of(value))).copied()
    }

    /// Data edges: wr from each version's writer to its readers; ww and rw along the known
    /// version order.
    pub fn add_edges(&self, txns: &Txns<'h>, edges: &mut EdgeBuf) {
        let committed_writer = |k: KeyId, v: &Value| -> Option<u32> {
            self.writer(k, v)
                .filter(|w| !w.intermediate && txns.txns[w.txn as usize].outcome != Outcome::Fail)
                .map(|w| w.txn)
        };
        for (k, key) in self.keys.iter().enumerate() {
            let k = k as KeyId;
            for (value, readers) in key.readers.values() {
                let Some(w) = value.and_then(|v| committed_writer(k, v)) else {
                    continue;
                };
                for &r in readers {
                    edges.add(w, r, WR);
                }
            }
            for &(from, to, _) in &key.order {
                let Some(to_writer) = committed_writer(k, to) else {
                    continue;
                };
                if let Some(from) = from
                    && let Some(from_writer) = committed_writer(k, from)
                {
                    edges.add(from_writer, to_writer, WW);
                }
                let version = from.map(Atom::of);
                for &r in key
                    .readers
                    .get(&version)
                    .map_or(&[][..], |(_, r)| r.as_slice())
                {
                    edges.add(r, to_writer, RW);
                }
            }
        }
    }

    /// G1a, G1b, garbage reads and internal inconsistency.
    pub fn anomalies(&self, txns: &Txns<'h>, sink: &mut Sink) {
        for (t, txn) in txns.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let t = t as u32;
            let mut state: Vec<(KeyId, &Value, bool)> = Vec::new();
            for mop in &txn.mops {
                let slot = state.iter().position(|(k, _, _)| *k == mop.key);
                if mop.kind == MopKind::Write {
                    match slot {
                        Some(i) => state[i] = (mop.key, mop.value, true),
                        None => state.push((mop.key, mop.value, true)),
                    }
                    continue;
                }
                let key = txns.key(mop.key);
                let mop_json = json!(["r", key, mop.value]);
                if let Some(i) = slot {
                    let (_, expected, _) = state[i];
                    if expected != mop.value {
                        sink.push("internal", || {
                            json!({
                                "op": op_json(txns, t),
                                "mop": mop_json,
                                "expected": expected,
                                "explanation": format!(
                                    "op {} read {} = {}, but its own earlier read or write in \
                                     the same transaction says {}",
                                    txns.txn_index(t as usize), show(key), show(mop.value),
                                    show(expected)
                                ),
                            })
                        });
                    }
                    state[i].1 = mop.value;
                    continue;
                }
                state.push((mop.key, mop.value, false));
                if mop.value.is_null() {
                    continue;
                }
                match self.writer(mop.key, mop.value) {
                    None => sink.push("garbage-read", || {
                        json!({
                            "op": op_json(txns, t),
                            "mop": mop_json,
                            "explanation": format!(
                                "op {} read {} = {}, but no transaction ever wrote {} to {}",
                                txns.txn_index(t as usize), show(key), show(mop.value),
                                show(mop.value), show(key)
                            ),
                        })
                    }),
                    Some(w) if w.txn == t => {}
                    Some(w) if txns.txns[w.txn as usize].outcome == Outcome::Fail => {
                        sink.push("G1a", || {
                            json!({
                                "op": op_json(txns, t),
                                "mop": mop_json,
                                "writer": op_json(txns, w.txn),
                                "explanation": format!(
                                    "op {} read {} = {}, written by op {}, which failed: an \
                                     aborted read",
                                    txns.txn_index(t as usize), show(key), show(mop.value),
                                    txns.txn_index(w.txn as usize)
                                ),
                            })
                        })
                    }
                    Some(w) if w.intermediate => sink.push("G1b", || {
                        json!({
                            "op": op_json(txns, t),
                            "mop": mop_json,
                            "writer": op_json(txns, w.txn),
                            "explanation": format!(
                                "op {} read {} = {}, which op {} overwrote later in the same \
                                 transaction: an intermediate read",
                                txns.txn_index(t as usize), show(key), show(mop.value),
                                txns.txn_index(w.txn as usize)
                            ),
                        })
                    }),
                    Some(_) => {}
                }
            }
        }
    }
}

impl DataExplainer for RegisterIndex<'_> {
    fn explain(
        &self,
        txns: &Txns<'_>,
        a: u32,
        b: u32,
        rel: u8,
        (na, nb): (&str, &str),
    ) -> Option<Reason> {
        let final_writer = |k: KeyId, v: &Value| self.writer(k, v).map(|w| w.txn);
        match rel {
            WR => txns.txns[b as usize].mops.iter().find_map(|mop| {
                (mop.kind == MopKind::Read
                    && !mop.value.is_null()
                    && final_writer(mop.key, mop.value) == Some(a))
                .then(|| {
                    let k = txns.key(mop.key);
                    Reason {
                        fields: fields(&[("key", k.clone()), ("value", mop.value.clone())]),
                        clause: format!("{nb} read {} = {}, which {na} wrote", show(k), show(mop.value)),
                    }
                })
            }),
            WW | RW => self.keys.iter().enumerate().find_map(|(k, key)| {
                let k = k as KeyId;
                key.order.iter().find_map(|&(from, to, because)| {
                    if final_writer(k, to) != Some(b) {
                        return None;
                    }
                    let why = match because {
                        Because::Initial => String::new(),
                        Because::ReadThenWrote(t) => format!(
                            " (op {} read {} = {} and then wrote {})",
                            txns.txn_index(t as usize),
                            show(txns.key(k)),
                            show(from.unwrap_or(&Value::Null)),
                            show(to)
                        ),
                    };
                    let key = txns.key(k);
                    if rel == WW {
                        let from = from?;
                        (final_writer(k, from) == Some(a)).then(|| Reason {
                            fields: fields(&[("key", key.clone()), ("value", from.clone()), ("value'", to.clone())]),
                            clause: format!(
                                "{nb} wrote {} = {} after {na}'s write of {}{why}",
                                show(key), show(to), show(from)
                            ),
                        })
                    } else {
                        let version = from.map(Atom::of);
                        key_readers(key_versions(self, k), &version, a).then(|| Reason {
                            fields: fields(&[("key", key.clone()), ("value", from.cloned().unwrap_or(Value::Null)), ("value'", to.clone())]),
                            clause: match from {
                                None => format!(
                                    "{na} read the initial (null) state of {}, which {nb} overwrote with {}",
                                    show(key), show(to)
                                ),
                                Some(v) => format!(
                                    "{na} read {} = {}, which {nb} overwrote with {}{why}",
                                    show(key), show(v), show(to)
                                ),
                            },
                        })
                    }
                })
            }),
            _ => None,
        }
    }
}

fn key_versions<'a, 'h>(index: &'a RegisterIndex<'h>, k: KeyId) -> &'a KeyVersions<'h> {
    &index.keys[k as usize]
}

fn key_readers(key: &KeyVersions<'_>, version: &Option<Atom<'_>>, txn: u32) -> bool {
    key.readers
        .get(version)
        .is_some_and(|(_, r)| r.contains(&txn))
}
