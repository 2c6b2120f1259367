//! Anomalies that need no cycle: aborted reads (G1a), intermediate reads (G1b), reads of values
//! nobody wrote, duplicated elements, incompatible orders, internal inconsistency, future reads
//! and lost updates — for list-append histories.

use super::history::{Atom, FastMap, KeyId, MopKind, Outcome, Txns, fast_map, show};
use super::version_order::{KeyOrder, ListIndex, Observed, ReadRef};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Collects anomalies by type, keeping the first `cap` of each and counting all.
pub struct Sink {
    pub cap: usize,
    pub found: BTreeMap<String, (usize, Vec<Value>)>,
}

impl Sink {
    pub fn new(cap: usize) -> Sink {
        Sink {
            cap,
            found: BTreeMap::new(),
        }
    }

    /// Records one anomaly; `describe` is only called while fewer than `cap` are kept.
    pub fn push(&mut self, kind: &str, describe: impl FnOnce() -> Value) {
        let entry = self.found.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if entry.1.len() < self.cap {
            entry.1.push(describe());
        }
    }
}

/// The completion (else invocation) event of a transaction, as JSON.
pub fn op_json(txns: &Txns<'_>, txn: u32) -> Value {
    Value::Object(txns.history.ops[txns.txns[txn as usize].event()].to_map())
}

fn mop_json(txns: &Txns<'_>, read: ReadRef) -> Value {
    let mop = txns.txns[read.txn as usize].mops[read.mop as usize];
    json!([mop.kind.as_str(), txns.key(mop.key), mop.value])
}

impl KeyOrder<'_> {
    /// Which version a list read observed.
    pub fn observe(&self, list: &[Value]) -> Observed {
        if list.len() <= self.longest.len() && list == &self.longest[..list.len()] {
            match self.distinct_prefix[list.len()] {
                0 => Observed::Initial,
                n => Observed::Version(n - 1),
            }
        } else {
            let last = list.last().map(Atom::of);
            Observed::Incompatible(last.and_then(|a| self.positions.get(&a).copied()))
        }
    }
}

/// Every non-cycle anomaly of a list-append history.
pub fn list_append(txns: &Txns<'_>, index: &ListIndex<'_>, sink: &mut Sink) {
    for (k, key) in index.keys.iter().enumerate() {
        per_key(txns, index, k as KeyId, key, sink);
    }
    let mut lost: LostUpdates<'_> = fast_map();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome == Outcome::Ok {
            per_txn(txns, index, t as u32, sink, &mut lost);
        }
    }
    let mut lost: Vec<_> = lost.into_iter().filter(|(_, (t, _))| t.len() > 1).collect();
    lost.sort_unstable_by_key(|(group, _)| *group);
    for ((k, _), (writers, value)) in lost {
        sink.push("lost-update", || {
            let key = txns.key(k);
            let ops: Vec<String> = writers
                .iter()
                .map(|&t| format!("op {}", txns.txn_index(t as usize)))
                .collect();
            json!({
                "key": key,
                "value": value,
                "txns": writers.iter().map(|&t| op_json(txns, t)).collect::<Vec<_>>(),
                "explanation": format!(
                    "{} all read {} = {} and then appended to {}: each overwrote the version the \
                     others read, so all but one update is lost (lost update)",
                    ops.join(", "), show(key), show(value), show(key)
                ),
            })
        });
    }
}

fn per_key(txns: &Txns<'_>, index: &ListIndex<'_>, k: KeyId, key: &KeyOrder<'_>, sink: &mut Sink) {
    let key_value = txns.key(k);
    // Where the longest read first shows a failed writer's element, or an element nobody wrote:
    // every compatible read at least that long shows it too.
    let mut first_failed: Option<usize> = None;
    let mut first_garbage: Option<usize> = None;
    for i in 0..key.longest.len() {
        match index.longest_writer(k, i) {
            None => {
                first_garbage.get_or_insert(i);
            }
            Some(w) if txns.txns[w.txn as usize].outcome == Outcome::Fail => {
                first_failed.get_or_insert(i);
            }
            Some(_) => {}
        }
        if first_failed.is_some() && first_garbage.is_some() {
            break;
        }
    }
    let mut first_incompatible: Option<ReadRef> = None;
    let mut incompatible = 0usize;
    for &(read, list, observed) in &key.reads {
        // The read's value, for reports only.
        let value = || txns.txns[read.txn as usize].mops[read.mop as usize].value;
        let compatible = !matches!(observed, Observed::Incompatible(_));
        if !compatible {
            incompatible += 1;
            first_incompatible.get_or_insert(read);
        }
        let failed = if compatible {
            first_failed
                .filter(|&i| i < list.len())
                .map(|i| &key.longest[i])
        } else {
            list.iter().find(|e| {
                index
                    .writer(k, e)
                    .is_some_and(|w| txns.txns[w.txn as usize].outcome == Outcome::Fail)
            })
        };
        if let Some(element) = failed {
            let writer = index
                .writer(k, element)
                .expect("failed elements have writers");
            sink.push("G1a", || {
                json!({
                    "op": op_json(txns, read.txn),
                    "mop": mop_json(txns, read),
                    "key": key_value,
                    "element": element,
                    "writer": op_json(txns, writer.txn),
                    "explanation": format!(
                        "op {} read {} = {}, which includes {}, appended by op {}, which failed: \
                         an aborted read",
                        txns.txn_index(read.txn as usize), show(key_value), show(value()),
                        show(element), txns.txn_index(writer.txn as usize)
                    ),
                })
            });
        }
        let garbage = if compatible {
            first_garbage
                .filter(|&i| i < list.len())
                .map(|i| &key.longest[i])
        } else {
            list.iter().find(|e| index.writer(k, e).is_none())
        };
        if let Some(element) = garbage {
            sink.push("garbage-read", || {
                json!({
                    "op": op_json(txns, read.txn),
                    "mop": mop_json(txns, read),
                    "key": key_value,
                    "element": element,
                    "explanation": format!(
                        "op {} read {} = {}, but no transaction ever appended {} to {}",
                        txns.txn_index(read.txn as usize), show(key_value), show(value()),
                        show(element), show(key_value)
                    ),
                })
            });
        }
        let has_duplicates = if compatible {
            key.duplicate_at.is_some_and(|i| i < list.len())
        } else {
            let mut seen: FastMap<Atom<'_>, ()> = fast_map();
            list.iter().any(|e| seen.insert(Atom::of(e), ()).is_some())
        };
        if has_duplicates {
            sink.push("duplicate-elements", || {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for e in list {
                    *counts.entry(e.to_string()).or_default() += 1;
                }
                let dups: serde_json::Map<String, Value> = counts
                    .into_iter()
                    .filter(|(_, n)| *n > 1)
                    .map(|(e, n)| (e, Value::from(n)))
                    .collect();
                let names: Vec<String> = dups.keys().cloned().collect();
                json!({
                    "op": op_json(txns, read.txn),
                    "mop": mop_json(txns, read),
                    "key": key_value,
                    "duplicates": dups,
                    "explanation": format!(
                        "op {} read {} = {}, which holds {} more than once, but every value is \
                         appended once",
                        txns.txn_index(read.txn as usize), show(key_value), show(value()),
                        names.join(", ")
                    ),
                })
            });
        }
        // G1b: the read ends with an element its writer later followed with another append to
        // the same key in the same transaction.
        let last_writer = match (compatible, list.len()) {
            (_, 0) => None,
            (true, n) => index.longest_writer(k, n - 1),
            (false, n) => index.writer(k, &list[n - 1]),
        };
        if let Some(last) = list.last()
            && let Some(writer) = last_writer
            && writer.intermediate
            && writer.txn != read.txn
            && txns.txns[writer.txn as usize].outcome != Outcome::Fail
        {
            sink.push("G1b", || {
                let later = txns.txns[writer.txn as usize].mops[writer.mop as usize + 1..]
                    .iter()
                    .filter(|m| m.kind == MopKind::Append && m.key == k)
                    .map(|m| show(m.value))
                    .collect::<Vec<_>>();
                json!({
                    "op": op_json(txns, read.txn),
                    "mop": mop_json(txns, read),
                    "key": key_value,
                    "element": last,
                    "writer": op_json(txns, writer.txn),
                    "explanation": format!(
                        "op {} read {} = {}, ending with {}, but op {} appended {} to {} after {} \
                         in the same transaction: an intermediate read",
                        txns.txn_index(read.txn as usize), show(key_value), show(value()), show(last),
                        txns.txn_index(writer.txn as usize), later.join(" and "), show(key_value),
                        show(last)
                    ),
                })
            });
        }
    }
    if let (Some(read), Some(longest)) = (first_incompatible, key.longest_read) {
        sink.push("incompatible-order", || {
            let a = txns.txns[read.txn as usize].mops[read.mop as usize].value;
            let b = txns.txns[longest.txn as usize].mops[longest.mop as usize].value;
            json!({
                "key": key_value,
                "values": [a, b],
                "ops": [op_json(txns, read.txn), op_json(txns, longest.txn)],
                "incompatible_reads": incompatible,
                "explanation": format!(
                    "{} was read as {} (op {}) and as {} (op {}): the first is not a prefix of \
                     the second, so no single order of appends explains both ({} read(s) of {} \
                     disagree with its longest read)",
                    show(key_value), show(a), txns.txn_index(read.txn as usize), show(b),
                    txns.txn_index(longest.txn as usize), incompatible, show(key_value)
                ),
            })
        });
    }
}

/// A key's first micro-operation in a transaction: the version it read (when it was a read in
/// the version order) and whether a later append already counted it towards lost updates.
type FirstTouch<'h> = (KeyId, Option<(i64, &'h Value)>, bool);

/// Transactions that read a version of a key and then appended to it, by (key, version).
type LostUpdates<'h> = FastMap<(KeyId, i64), (Vec<u32>, &'h Value)>;

/// What a transaction expects a key to hold, given its own earlier reads and appends.
enum Expect<'h> {
    /// The whole list: a read, then the transaction's appends since.
    Known(&'h [Value], Vec<&'h Value>),
    /// Only the end: appends with no read before them.
    Suffix(Vec<&'h Value>),
}

impl Expect<'_> {
    fn matches(&self, list: &[Value]) -> bool {
        match self {
            Expect::Known(base, appended) => {
                list.len() == base.len() + appended.len()
                    && &list[..base.len()] == *base
                    && list[base.len()..]
                        .iter()
                        .zip(appended)
                        .all(|(a, b)| a == *b)
            }
            Expect::Suffix(appended) => {
                list.len() >= appended.len()
                    && list[list.len() - appended.len()..]
                        .iter()
                        .zip(appended)
                        .all(|(a, b)| a == *b)
            }
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Expect::Known(base, appended) => Value::Array(
                base.iter()
                    .cloned()
                    .chain(appended.iter().map(|v| (*v).clone()))
                    .collect(),
            ),
            Expect::Suffix(appended) => Value::Array(
                std::iter::once(Value::from("..."))
                    .chain(appended.iter().map(|v| (*v).clone()))
                    .collect(),
            ),
        }
    }
}

fn per_txn<'h>(
    txns: &Txns<'h>,
    index: &ListIndex<'h>,
    t: u32,
    sink: &mut Sink,
    lost: &mut LostUpdates<'h>,
) {
    let txn = &txns.txns[t as usize];
    let mut expected: Vec<(KeyId, Expect<'_>)> = Vec::new();
    // Keys whose first micro-operation was a read, with the version it observed, until the
    // transaction appends to them (then they count towards lost updates).
    let mut first_touch: Vec<FirstTouch<'_>> = Vec::new();
    for (m, mop) in txn.mops.iter().enumerate() {
        let slot = expected.iter().position(|(k, _)| *k == mop.key);
        let touched = first_touch.iter().position(|(k, _, _)| *k == mop.key);
        match mop.kind {
            MopKind::Append => {
                match slot {
                    Some(i) => match &mut expected[i].1 {
                        Expect::Known(_, appended) | Expect::Suffix(appended) => {
                            appended.push(mop.value)
                        }
                    },
                    None => expected.push((mop.key, Expect::Suffix(vec![mop.value]))),
                }
                match touched {
                    Some(i) => {
                        let (k, version, counted) = &mut first_touch[i];
                        if let Some((v, value)) = *version
                            && !*counted
                        {
                            lost.entry((*k, v))
                                .or_insert_with(|| (Vec::new(), value))
                                .0
                                .push(t);
                            *counted = true;
                        }
                    }
                    None => first_touch.push((mop.key, None, true)),
                }
                // A read earlier in this transaction that already showed this element. For a read
                // in the version order, the element's position says so without a scan.
                let order = &index.keys[mop.key as usize];
                let position = order.positions.get(&Atom::of(mop.value)).copied();
                let future = txn.mops[..m].iter().enumerate().find(|(r, read)| {
                    if read.kind != MopKind::Read || read.key != mop.key {
                        return false;
                    }
                    match index.observed(t, *r as u32) {
                        None => false,
                        Some(Observed::Initial) => false,
                        Some(Observed::Version(v)) => position.is_some_and(|p| p <= v),
                        Some(Observed::Incompatible(_)) => {
                            read.value.as_array().is_some_and(|l| l.contains(mop.value))
                        }
                    }
                });
                if let Some((r, _)) = future {
                    sink.push("future-read", || {
                        json!({
                            "op": op_json(txns, t),
                            "mop": mop_json(txns, ReadRef { txn: t, mop: r as u32 }),
                            "element": mop.value,
                            "explanation": format!(
                                "op {} read {} = {}, which includes {}, before appending {} \
                                 itself later in the same transaction",
                                txns.txn_index(t as usize), show(txns.key(mop.key)),
                                show(txn.mops[r].value), show(mop.value), show(mop.value)
                            ),
                        })
                    });
                }
            }
            MopKind::Read => {
                let Some(list) = mop.value.as_array() else {
                    continue;
                };
                if touched.is_none() {
                    // Only reads in the version order group reliably.
                    let version = match index.observed(t, m as u32) {
                        Some(Observed::Incompatible(_)) | None => None,
                        Some(seen) => seen.position().map(|p| (p, mop.value)),
                    };
                    first_touch.push((mop.key, version, false));
                }
                let expect = Expect::Known(list.as_slice(), Vec::new());
                match slot {
                    Some(i) => {
                        if !expected[i].1.matches(list) {
                            let wanted = expected[i].1.to_json();
                            sink.push("internal", || {
                                json!({
                                    "op": op_json(txns, t),
                                    "mop": mop_json(txns, ReadRef { txn: t, mop: m as u32 }),
                                    "expected": wanted,
                                    "explanation": format!(
                                        "op {} read {} = {}, but its own earlier reads and \
                                         appends in the same transaction imply {}",
                                        txns.txn_index(t as usize), show(txns.key(mop.key)),
                                        show(mop.value), show(&wanted)
                                    ),
                                })
                            });
                        }
                        expected[i].1 = expect;
                    }
                    None => expected.push((mop.key, expect)),
                }
            }
            MopKind::Write => {}
        }
    }
}
