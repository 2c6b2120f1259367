//! From a history of events to transactions: each client `txn` invocation paired with its
//! completion, its micro-operations parsed, its keys interned.
//!
//! Shared by the Elle-style checkers and the external-consistency checker.

use crate::error::InputError;
use crate::history::{History, OpType, Process};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The source named in input errors (the history handed to the checker).
pub(crate) const SOURCE: &str = "<history>";

pub(crate) fn input_error(message: String) -> InputError {
    InputError::new(SOURCE, None, message)
}

/// A small, fast hasher for interned ids and integers (the std SipHash is several times slower
/// on the millions of look-ups a 100k-transaction history needs; no untrusted-key DoS concern
/// here).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        // FxHash's step, followed by a final mix so low bits are usable as bucket indices.
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(BuildHasherDefault::default())
}

/// A JSON value in a hashable form, borrowing strings from the history: integers and strings
/// (the usual keys and elements) cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Atom<'h> {
    Int(i64),
    Str(&'h str),
    /// Anything else, by its JSON text.
    Other(String),
}

impl<'h> Atom<'h> {
    pub(crate) fn of(value: &'h Value) -> Atom<'h> {
        match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Atom::Int(i),
                None => Atom::Other(value.to_string()),
            },
            Value::String(s) => Atom::Str(s),
            other => Atom::Other(other.to_string()),
        }
    }
}

/// A key, interned: an index into [`Txns::keys`].
pub type KeyId = u32;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Ok,
    /// May or may not have committed (an `info` completion, or no completion at all).
    Info,
    /// Certainly did not commit.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MopKind {
    Read,
    Write,
    Append,
}

impl MopKind {
    /// The short name Elle writes: `r`, `w`, `append`.
    pub fn as_str(self) -> &'static str {
        match self {
            MopKind::Read => "r",
            MopKind::Write => "w",
            MopKind::Append => "append",
        }
    }
}

/// One micro-operation `[f, key, value]`.
#[derive(Debug, Clone, Copy)]
pub struct Mop<'h> {
    pub kind: MopKind,
    pub key: KeyId,
    /// For a read: the value read (null when unknown); for a write or append: the argument.
    pub value: &'h Value,
}

/// One transaction: an invocation and its completion.
#[derive(Debug, Clone)]
pub struct Txn<'h> {
    /// Position of the invocation in `History::ops`.
    pub invoke: usize,
    /// Position of the completion; `None` when the invocation never completed.
    pub complete: Option<usize>,
    pub outcome: Outcome,
    pub process: u64,
    /// From the completion for `ok` (and `fail`) transactions, else from the invocation (an
    /// `info` completion does not know what was read).
    pub mops: Vec<Mop<'h>>,
}

impl Txn<'_> {
    /// The event that represents the transaction in reports: its completion, else its invocation.
    pub fn event(&self) -> usize {
        self.complete.unwrap_or(self.invoke)
    }

    pub fn is_read_only(&self) -> bool {
        self.mops.iter().all(|m| m.kind == MopKind::Read)
    }
}

/// Every client transaction of a history, in invocation order, with interned keys.
pub struct Txns<'h> {
    pub history: &'h History,
    pub txns: Vec<Txn<'h>>,
    /// Interned keys, by [`KeyId`].
    pub keys: Vec<&'h Value>,
}

impl<'h> Txns<'h> {
    /// The `index` of the event at history position `pos`.
    pub fn op_index(&self, pos: usize) -> u64 {
        self.history.ops[pos].index
    }

    /// The `index` a transaction is reported by (its completion, else its invocation).
    pub fn txn_index(&self, txn: usize) -> u64 {
        self.op_index(self.txns[txn].event())
    }

    pub fn key(&self, key: KeyId) -> &'h Value {
        self.keys[key as usize]
    }
}

/// Pairs the history's client events into transactions. Every client operation must be a
/// `txn`; nemesis events are skipped. Errors name the op index: a non-`txn` operation, a
/// malformed micro-operation, a process invoking twice, a completion without an invocation.
pub fn transactions(history: &History) -> Result<Txns<'_>, InputError> {
    let mut txns: Vec<Txn<'_>> = Vec::new();
    let mut open: FastMap<u64, usize> = fast_map();
    let mut key_ids: FastMap<Atom<'_>, KeyId> = fast_map();
    let mut keys: Vec<&Value> = Vec::new();
    for (pos, op) in history.ops.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.f != "txn" {
            return Err(input_error(format!(
                "op {}: expected a transaction (`f` = \"txn\"), got `f` = \"{}\"",
                op.index, op.f
            )));
        }
        match op.kind {
            OpType::Invoke => {
                if let Some(&earlier) = open.get(&process) {
                    return Err(input_error(format!(
                        "op {}: process {process} invokes a txn while its invocation at op {} \
                         has not completed (a process runs one operation at a time)",
                        op.index, history.ops[txns[earlier].invoke].index
                    )));
                }
                open.insert(process, txns.len());
                txns.push(Txn {
                    invoke: pos,
                    complete: None,
                    outcome: Outcome::Info,
                    process,
                    mops: Vec::new(),
                });
            }
            OpType::Ok | OpType::Fail | OpType::Info => {
                let Some(slot) = open.remove(&process) else {
                    return Err(input_error(format!(
                        "op {}: process {process} completes a txn ({}) without an open invocation",
                        op.index,
                        op.kind.as_str()
                    )));
                };
                let txn = &mut txns[slot];
                txn.complete = Some(pos);
                txn.outcome = match op.kind {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
            }
        }
    }
    for txn in &mut txns {
        let source = match (txn.outcome, txn.complete) {
            (Outcome::Ok, Some(c)) => c,
            (Outcome::Fail, Some(c)) if !history.ops[c].value.is_null() => c,
            _ => txn.invoke,
        };
        txn.mops = parse_mops(history, source, &mut key_ids, &mut keys)?;
        if txn.outcome == Outcome::Ok {
            check_same_shape(history, txn)?;
        }
    }
    Ok(Txns {
        history,
        txns,
        keys,
    })
}

/// An `ok` completion must echo its invocation: as many micro-operations. (Only the count is
/// compared: walking both values' micro-operations again costs a cache miss each.)
fn check_same_shape(history: &History, txn: &Txn<'_>) -> Result<(), InputError> {
    let invoked = &history.ops[txn.invoke];
    let completed = &history.ops[txn.event()];
    let Some(invoked_mops) = invoked.value.as_array() else {
        return Err(input_error(format!(
            "op {}: a txn value must be a list of micro-operations [f, key, value], got {}",
            invoked.index, invoked.value
        )));
    };
    if invoked_mops.len() != txn.mops.len() {
        return Err(input_error(format!(
            "op {}: the completion has {} micro-operations but its invocation (op {}) has {}",
            completed.index,
            txn.mops.len(),
            invoked.index,
            invoked_mops.len()
        )));
    }
    Ok(())
}

fn mop_kind(f: &str) -> Option<MopKind> {
    match f {
        "r" | "read" => Some(MopKind::Read),
        "w" | "write" => Some(MopKind::Write),
        "append" => Some(MopKind::Append),
        _ => None,
    }
}

fn parse_mops<'h>(
    history: &'h History,
    pos: usize,
    key_ids: &mut FastMap<Atom<'h>, KeyId>,
    keys: &mut Vec<&'h Value>,
) -> Result<Vec<Mop<'h>>, InputError> {
    let op = &history.ops[pos];
    let Some(list) = op.value.as_array() else {
        return Err(input_error(format!(
            "op {}: a txn value must be a list of micro-operations [f, key, value], got {}",
            op.index, op.value
        )));
    };
    let mut mops = Vec::with_capacity(list.len());
    for (i, mop) in list.iter().enumerate() {
        let parts = mop.as_array().filter(|p| p.len() == 3);
        let Some((kind, parts)) = parts.and_then(|p| Some((mop_kind(p[0].as_str()?)?, p))) else {
            return Err(input_error(format!(
                "op {}: micro-operation {i} must be [f, key, value] with f one of r, w, append; \
                 got {mop}",
                op.index
            )));
        };
        let next_id = keys.len() as KeyId;
        let key = *key_ids.entry(Atom::of(&parts[1])).or_insert_with(|| {
            keys.push(&parts[1]);
            next_id
        });
        mops.push(Mop {
            kind,
            key,
            value: &parts[2],
        });
    }
    Ok(mops)
}

/// Short text for a JSON value in explanations: `[1 2 3]` for lists (Elle's style), `x` for
/// strings, the JSON text otherwise.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(show_inner).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

fn show_inner(value: &Value) -> String {
    match value {
        Value::String(_) => value.to_string(),
        other => show(other),
    }
}
