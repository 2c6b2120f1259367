//! External consistency (Spanner's strict serializability by commit timestamps).
//!
//! Histories are Elle's transactions (`f` = `txn`, micro-operations `r`, `w`, `append`) whose
//! `ok` completions carry the timestamp the system assigned as `"commit_ts"` (an integer; for a
//! read-only transaction, its snapshot timestamp). Two properties are checked:
//!
//! 1. Real time: if committed T1 completed (`ok`) before committed T2 was invoked — by harness time `op.time`, or by
//!    history order when times are missing — then T1 is ordered before T2 by timestamp: `ts1 <
//!    ts2`, except that a read-only T2 may share T1's timestamp (a snapshot read at `t` sees every
//!    commit at `t`).
//! 2. Serializability in timestamp order: replaying the committed transactions by timestamp
//!    explains every read. A read-write transaction committed at `t` sees the writes with
//!    smaller timestamps and its own earlier writes; a read-only transaction at `t` sees the
//!    writes with timestamps `≤ t`. For a list key (one that is appended to) a read must equal
//!    the list of those appends in timestamp order; for a register (written with `w`) it must
//!    equal the last such write, `null` meaning "never written".
//!
//! `fail` transactions did not happen. `info` transactions may or may not have: one that
//! carries a `commit_ts` may have committed exactly at it, one without may have committed at any
//! time; the check stays sound by never flagging a read that such a transaction could explain
//! (its appends may be present or absent, its writes may be the value read). Two read-write
//! transactions with the same timestamp that write the same key are a violation of their own
//! (`timestamp-collision`): no timestamp order exists between them.
//!
//! API: [`check`] (or [`check_with`]) returns an [`ExtResult`] with `validity`, `to_json()` and
//! `explain()`.

use crate::elle::history::{
    Atom, FastMap, MopKind, Outcome, Txns, fast_map, input_error, show, transactions,
};
use crate::error::InputError;
use crate::history::History;
use crate::verdict::Validity;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How to check.
#[derive(Debug, Clone)]
pub struct ExtOptions {
    /// How many violations of each kind are kept in the result (all are counted).
    pub max_reported: usize,
}

impl Default for ExtOptions {
    fn default() -> Self {
        ExtOptions { max_reported: 16 }
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone)]
pub struct ExtResult {
    pub validity: Validity,
    /// Per kind (`realtime`, `read`, `timestamp-collision`): up to `max_reported` violations,
    /// each a JSON object with an `explanation`.
    pub violations: BTreeMap<String, Vec<Value>>,
    /// Per kind, how many were found.
    pub violation_counts: BTreeMap<String, usize>,
    pub stats: ExtStats,
}

/// Sizes of what was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtStats {
    pub txns: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub read_only: usize,
    pub keys: usize,
    pub reads_checked: usize,
}

impl ExtResult {
    /// `{"valid": bool, "violation_types": [...], "violations": {kind: [...]},
    /// "violation_counts": {...}, "stats": {...}}`.
    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        json!({
            "valid": self.validity.to_json(),
            "violation_types": self.violations.keys().collect::<Vec<_>>(),
            "violations": self.violations,
            "violation_counts": self.violation_counts,
            "stats": {
                "txns": s.txns, "ok": s.ok, "info": s.info, "fail": s.fail,
                "read_only": s.read_only, "keys": s.keys, "reads_checked": s.reads_checked,
            },
        })
    }

    /// The verdict and the first few violations of each kind, in words.
    pub fn explain(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "{}: {} transactions ({} ok, of which {} read-only; {} info; {} fail), {} reads checked \
             against timestamp order",
            self.validity, s.txns, s.ok, s.read_only, s.info, s.fail, s.reads_checked
        );
        if self.violations.is_empty() {
            out.push_str("; externally consistent.\n");
            return out;
        }
        out.push('\n');
        for (kind, list) in &self.violations {
            out.push_str(&format!(
                "\n{kind} violations: {}\n",
                self.violation_counts[kind]
            ));
            for v in list.iter().take(3) {
                out.push_str("  - ");
                out.push_str(v["explanation"].as_str().unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }
}

/// Checks external consistency with the default options.
pub fn check(history: &History) -> Result<ExtResult, InputError> {
    check_with(history, &ExtOptions::default())
}

/// A transaction's place in timestamp order: read-write transactions at a timestamp come before
/// read-only ones at the same timestamp (which see them); then history order.
type Position = (i128, u8, usize);

struct Timed {
    txn: u32,
    ts: i128,
    read_only: bool,
}

impl Timed {
    fn position(&self, event: usize) -> Position {
        (self.ts, u8::from(self.read_only), event)
    }
}

/// Checks external consistency. Errors (source `<history>`, naming the op index): malformed
/// transactions (as for the Elle checkers), an `ok` transaction without an integer `commit_ts`,
/// a key both appended to and written.
pub fn check_with(history: &History, opts: &ExtOptions) -> Result<ExtResult, InputError> {
    let txns = transactions(history)?;
    let mut timed: Vec<Option<Timed>> = Vec::with_capacity(txns.txns.len());
    for (t, txn) in txns.txns.iter().enumerate() {
        let ts = match txn.complete.map(|c| &history.ops[c]) {
            Some(op) if txn.outcome != Outcome::Fail => match op.extra.get("commit_ts") {
                Some(v) => Some(timestamp(v).ok_or_else(|| {
                    input_error(format!(
                        "op {}: `commit_ts` must be an integer, got {v}",
                        op.index
                    ))
                })?),
                None => None,
            },
            _ => None,
        };
        if txn.outcome == Outcome::Ok && ts.is_none() {
            return Err(input_error(format!(
                "op {}: an ok txn completion has no `commit_ts`; the external-consistency checker \
                 needs the commit timestamp the system assigned to every committed transaction",
                txns.txn_index(t)
            )));
        }
        timed.push(ts.map(|ts| Timed {
            txn: t as u32,
            ts,
            read_only: txn.is_read_only(),
        }));
    }
    let mut report = Report::new(opts.max_reported.max(1));
    realtime(&txns, &timed, &mut report);
    let reads_checked = replay(&txns, &timed, &mut report)?;
    let count = |o: Outcome| txns.txns.iter().filter(|t| t.outcome == o).count();
    let stats = ExtStats {
        txns: txns.txns.len(),
        ok: count(Outcome::Ok),
        info: count(Outcome::Info),
        fail: count(Outcome::Fail),
        read_only: txns
            .txns
            .iter()
            .filter(|t| t.outcome == Outcome::Ok && t.is_read_only())
            .count(),
        keys: txns.keys.len(),
        reads_checked,
    };
    let validity = if report.found.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let mut violations = BTreeMap::new();
    let mut violation_counts = BTreeMap::new();
    for (kind, (n, list)) in report.found {
        violation_counts.insert(kind.clone(), n);
        violations.insert(kind, list);
    }
    Ok(ExtResult {
        validity,
        violations,
        violation_counts,
        stats,
    })
}

fn ts_json(ts: i128) -> Value {
    i64::try_from(ts)
        .map(Value::from)
        .or_else(|_| u64::try_from(ts).map(Value::from))
        .unwrap_or_else(|_| Value::from(ts.to_string()))
}

fn timestamp(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

struct Report {
    cap: usize,
    found: BTreeMap<String, (usize, Vec<Value>)>,
}

impl Report {
    fn new(cap: usize) -> Report {
        Report {
            cap,
            found: BTreeMap::new(),
        }
    }

    fn push(&mut self, kind: &str, describe: impl FnOnce() -> Value) {
        let entry = self.found.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if entry.1.len() < self.cap {
            entry.1.push(describe());
        }
    }
}

fn op_json(txns: &Txns<'_>, t: u32) -> Value {
    Value::Object(txns.history.ops[txns.txns[t as usize].event()].to_map())
}

fn seconds(ns: Option<u64>) -> String {
    ns.map_or_else(
        || "an unrecorded time".into(),
        |ns| format!("{:.6} s", ns as f64 / 1e9),
    )
}

/// Real-time order against timestamp order, in one sweep: committed transactions by completion,
/// against each committed transaction by invocation, keeping the largest timestamp completed so
/// far.
fn realtime(txns: &Txns<'_>, timed: &[Option<Timed>], report: &mut Report) {
    let ops = &txns.history.ops;
    let use_time = txns
        .txns
        .iter()
        .all(|t| ops[t.invoke].time.is_some() && t.complete.is_none_or(|c| ops[c].time.is_some()));
    let instant = |pos: usize| -> u64 {
        if use_time {
            ops[pos].time.unwrap_or(0)
        } else {
            pos as u64
        }
    };
    let committed: Vec<&Timed> = timed
        .iter()
        .flatten()
        .filter(|t| txns.txns[t.txn as usize].outcome == Outcome::Ok)
        .collect();
    let complete_of = |t: &Timed| {
        txns.txns[t.txn as usize]
            .complete
            .expect("ok has a completion")
    };
    let invoke_of = |t: &Timed| txns.txns[t.txn as usize].invoke;
    let mut by_completion = committed.clone();
    by_completion.sort_by_key(|t| (instant(complete_of(t)), complete_of(t)));
    let mut by_invocation = committed;
    by_invocation.sort_by_key(|t| (instant(invoke_of(t)), invoke_of(t)));
    let mut next = 0;
    let mut latest: Option<(Position, &Timed)> = None;
    for t2 in by_invocation {
        let invoked = instant(invoke_of(t2));
        while next < by_completion.len() && instant(complete_of(by_completion[next])) < invoked {
            let t1 = by_completion[next];
            let p1 = t1.position(0);
            if latest.is_none_or(|(p, _)| (p1.0, p1.1) > (p.0, p.1)) {
                latest = Some((p1, t1));
            }
            next += 1;
        }
        let Some((p1, t1)) = latest else { continue };
        let p2 = t2.position(0);
        let inverted =
            (p1.0, p1.1) > (p2.0, p2.1) || (p1.0 == p2.0 && p1.1 == p2.1 && !t2.read_only);
        if !inverted {
            continue;
        }
        report.push("realtime", || {
            let (c1, i2) = (complete_of(t1), invoke_of(t2));
            let (i1, i2o) = (txns.op_index(c1), txns.op_index(i2));
            json!({
                "before": op_json(txns, t1.txn),
                "after": op_json(txns, t2.txn),
                "before_completed_time": ops[c1].time,
                "after_invoked_time": ops[i2].time,
                "before_ts": ts_json(t1.ts),
                "after_ts": ts_json(t2.ts),
                "explanation": format!(
                    "op {i1} completed at {} with commit timestamp {}, before op {i2o} was \
                     invoked at {}, yet op {i2o} got timestamp {}, which is {} ts {}: \
                     timestamp order contradicts real-time order",
                    seconds(ops[c1].time), t1.ts, seconds(ops[i2].time), t2.ts,
                    if t2.ts < t1.ts { "smaller than" } else { "not larger than" }, t1.ts
                ),
            })
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Certainty {
    /// Committed (`ok`).
    Definite,
    /// `info` with a timestamp: committed at it, or not at all.
    MaybeAt,
    /// `info` without one: committed at any time, or not at all.
    MaybeAnywhere,
}

/// One write (append or register write) in timestamp order.
struct Write<'h> {
    position: Position,
    txn: u32,
    value: &'h Value,
    certainty: Certainty,
}

#[derive(Default)]
struct KeyWrites<'h> {
    /// Definite and `MaybeAt` writes, by position.
    timeline: Vec<Write<'h>>,
    /// Writes with no position (info without a timestamp).
    anywhere: Vec<Write<'h>>,
    /// The definite writes alone, by position.
    definite: Vec<(Position, &'h Value)>,
    /// Values maybe-committed transactions wrote: at a position (`MaybeAt`), or anywhere.
    optional: FastMap<Atom<'h>, Vec<Option<Position>>>,
    appended: Option<u32>,
    written: Option<u32>,
}

impl KeyWrites<'_> {
    /// Whether a maybe-committed write of `value` could be visible below `horizon`, and after
    /// `after` (registers: after the last definite write).
    fn maybe_visible(&self, value: &Value, after: Position, horizon: Position) -> bool {
        self.optional.get(&Atom::of(value)).is_some_and(|places| {
            places
                .iter()
                .any(|p| p.is_none_or(|p| p > after && p < horizon))
        })
    }
}

/// Replays committed transactions by timestamp; returns how many reads were checked.
fn replay(
    txns: &Txns<'_>,
    timed: &[Option<Timed>],
    report: &mut Report,
) -> Result<usize, InputError> {
    let mut keys: Vec<KeyWrites<'_>> = (0..txns.keys.len()).map(|_| KeyWrites::default()).collect();
    // Failed transactions' appends, to say who wrote an impossible element.
    let mut failed: FastMap<(u32, Atom<'_>), u32> = fast_map();
    for (t, txn) in txns.txns.iter().enumerate() {
        let certainty = match (txn.outcome, &timed[t]) {
            (Outcome::Fail, _) => None,
            (Outcome::Ok, _) => Some(Certainty::Definite),
            (Outcome::Info, Some(_)) => Some(Certainty::MaybeAt),
            (Outcome::Info, None) => Some(Certainty::MaybeAnywhere),
        };
        for (m, mop) in txn.mops.iter().enumerate() {
            if mop.kind == MopKind::Read {
                continue;
            }
            let key = &mut keys[mop.key as usize];
            let (mine, other) = match mop.kind {
                MopKind::Append => (&mut key.appended, key.written),
                _ => (&mut key.written, key.appended),
            };
            mine.get_or_insert(t as u32);
            if let Some(o) = other {
                return Err(input_error(format!(
                    "op {}: micro-operation {m} {} key {}, which op {} {}; a key must be either a \
                     list (append) or a register (w)",
                    txns.txn_index(t),
                    if mop.kind == MopKind::Append {
                        "appends to"
                    } else {
                        "writes"
                    },
                    show(txns.key(mop.key)),
                    txns.txn_index(o as usize),
                    if mop.kind == MopKind::Append {
                        "writes"
                    } else {
                        "appends to"
                    },
                )));
            }
            let Some(certainty) = certainty else {
                failed.insert((mop.key, Atom::of(mop.value)), t as u32);
                continue;
            };
            let position = timed[t]
                .as_ref()
                .map_or((0, 0, 0), |tm| tm.position(txn.invoke));
            let write = Write {
                position: (position.0, position.1, position.2 * 64 + m.min(63)),
                txn: t as u32,
                value: mop.value,
                certainty,
            };
            if certainty == Certainty::MaybeAnywhere {
                key.anywhere.push(write);
            } else {
                key.timeline.push(write);
            }
        }
    }
    for (k, key) in keys.iter_mut().enumerate() {
        key.timeline.sort_by_key(|w| w.position);
        for w in key.timeline.iter().chain(&key.anywhere) {
            match w.certainty {
                Certainty::Definite => key.definite.push((w.position, w.value)),
                Certainty::MaybeAt => key
                    .optional
                    .entry(Atom::of(w.value))
                    .or_default()
                    .push(Some(w.position)),
                Certainty::MaybeAnywhere => key
                    .optional
                    .entry(Atom::of(w.value))
                    .or_default()
                    .push(None),
            }
        }
        for pair in key.timeline.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.txn != b.txn
                && a.position.0 == b.position.0
                && a.certainty == Certainty::Definite
                && b.certainty == Certainty::Definite
            {
                report.push("timestamp-collision", || {
                    json!({
                        "key": txns.key(k as u32),
                        "ts": ts_json(a.position.0),
                        "txns": [op_json(txns, a.txn), op_json(txns, b.txn)],
                        "explanation": format!(
                            "ops {} and {} both committed writes to {} at timestamp {}: \
                             timestamps must order conflicting transactions",
                            txns.txn_index(a.txn as usize), txns.txn_index(b.txn as usize),
                            show(txns.key(k as u32)), a.position.0
                        ),
                    })
                });
            }
        }
    }
    let mut checked = 0usize;
    for timed_txn in timed.iter().flatten() {
        let t = timed_txn.txn;
        let txn = &txns.txns[t as usize];
        if txn.outcome != Outcome::Ok {
            continue;
        }
        // Reads see positions below this one (for a read-write transaction at ts: below
        // (ts, 0, 0); read-only: below (ts, 1, 0), i.e. every write at ts).
        let horizon: Position = (timed_txn.ts, u8::from(timed_txn.read_only), 0);
        let mut own: Vec<(u32, Vec<&Value>)> = Vec::new();
        for mop in &txn.mops {
            let slot = own.iter().position(|(k, _)| *k == mop.key);
            if mop.kind != MopKind::Read {
                match slot {
                    Some(i) => own[i].1.push(mop.value),
                    None => own.push((mop.key, vec![mop.value])),
                }
                continue;
            }
            if mop.value.is_null() && keys[mop.key as usize].written.is_none() {
                // A list read of null carries no information.
                continue;
            }
            checked += 1;
            let mine: &[&Value] = slot.map_or(&[], |i| own[i].1.as_slice());
            let key = &keys[mop.key as usize];
            let cut = key.definite.partition_point(|(p, _)| *p < horizon);
            let problem =
                if key.written.is_some() || (key.appended.is_none() && !mop.value.is_array()) {
                    check_register(key, cut, horizon, mine, mop.value)
                } else {
                    check_list(key, cut, horizon, mine, mop.value)
                };
            if let Some(problem) = problem {
                report.push("read", || {
                    let k = txns.key(mop.key);
                    let why = describe(txns, key, &failed, mop.key, &problem, timed);
                    json!({
                        "op": op_json(txns, t),
                        "ts": ts_json(timed_txn.ts),
                        "key": k,
                        "value": mop.value,
                        "expected": problem.expected,
                        "explanation": format!(
                            "op {} ({}, timestamp {}) read {} = {}, but replaying the committed \
                             transactions in timestamp order gives {}: {}",
                            txns.txn_index(t as usize),
                            if timed_txn.read_only { "read-only" } else { "read-write" },
                            timed_txn.ts, show(k), show(mop.value), show(&problem.expected), why
                        ),
                    })
                });
            }
        }
    }
    Ok(checked)
}

/// Why a read disagrees: what was expected, and the first element (or value) at fault.
struct Problem<'h> {
    expected: Value,
    /// An element or value the read shows but should not, or is missing.
    culprit: Culprit<'h>,
}

enum Culprit<'h> {
    Missing(&'h Value),
    Unexpected(&'h Value),
    Order,
    Stale,
}

fn check_list<'h>(
    key: &KeyWrites<'h>,
    cut: usize,
    horizon: Position,
    own: &[&'h Value],
    value: &'h Value,
) -> Option<Problem<'h>> {
    let definite = key.definite[..cut].iter().map(|(_, v)| *v);
    let wanted: Vec<&Value> = definite.chain(own.iter().copied()).collect();
    let expected = || Value::Array(wanted.iter().map(|v| (*v).clone()).collect());
    let Some(list) = value.as_array() else {
        return Some(Problem {
            expected: expected(),
            culprit: Culprit::Unexpected(value),
        });
    };
    let lowest = (i128::MIN, 0, 0);
    let filtered: Vec<&Value> = if key.optional.is_empty() {
        list.iter().collect()
    } else {
        // Elements a maybe-committed transaction could have put there (or not) are ignored.
        list.iter()
            .filter(|e| !key.maybe_visible(e, lowest, horizon))
            .collect()
    };
    if filtered == wanted {
        return None;
    }
    let first_diff = filtered.iter().zip(&wanted).position(|(a, b)| a != b);
    let culprit = match first_diff {
        Some(i) => {
            if !filtered.contains(&wanted[i]) {
                Culprit::Missing(wanted[i])
            } else if !wanted.contains(&filtered[i]) {
                Culprit::Unexpected(filtered[i])
            } else {
                Culprit::Order
            }
        }
        None if filtered.len() < wanted.len() => Culprit::Missing(wanted[filtered.len()]),
        None => Culprit::Unexpected(filtered[wanted.len()]),
    };
    Some(Problem {
        expected: expected(),
        culprit,
    })
}

fn check_register<'h>(
    key: &KeyWrites<'h>,
    cut: usize,
    horizon: Position,
    own: &[&'h Value],
    value: &'h Value,
) -> Option<Problem<'h>> {
    if let Some(last_own) = own.last() {
        return (value != *last_own).then(|| Problem {
            expected: (*last_own).clone(),
            culprit: Culprit::Stale,
        });
    }
    let last = cut.checked_sub(1).map(|i| key.definite[i]);
    let expected = last.map_or(Value::Null, |(_, v)| v.clone());
    if *value == expected {
        return None;
    }
    // A maybe-committed write after the last definite one may be what was read.
    let after = last.map_or((i128::MIN, 0, 0), |(p, _)| p);
    if key.maybe_visible(value, after, horizon) {
        return None;
    }
    Some(Problem {
        expected,
        culprit: if value.is_null() {
            Culprit::Stale
        } else {
            Culprit::Unexpected(value)
        },
    })
}

fn describe(
    txns: &Txns<'_>,
    key: &KeyWrites<'_>,
    failed: &FastMap<(u32, Atom<'_>), u32>,
    k: u32,
    problem: &Problem<'_>,
    timed: &[Option<Timed>],
) -> String {
    let writer = |e: &Value| {
        key.timeline
            .iter()
            .chain(&key.anywhere)
            .find(|w| w.value == e)
    };
    let ts_of = |t: u32| {
        timed[t as usize]
            .as_ref()
            .map_or("no timestamp".into(), |tm| format!("timestamp {}", tm.ts))
    };
    match problem.culprit {
        Culprit::Missing(e) => match writer(e) {
            Some(w) => format!(
                "it is missing {}, which op {} wrote at {}, earlier in timestamp order",
                show(e),
                txns.txn_index(w.txn as usize),
                ts_of(w.txn)
            ),
            None => format!("it is missing {}", show(e)),
        },
        Culprit::Unexpected(e) => match (writer(e), failed.get(&(k, Atom::of(e)))) {
            (Some(w), _) => format!(
                "it shows {}, which op {} wrote at {}, not earlier in timestamp order",
                show(e),
                txns.txn_index(w.txn as usize),
                ts_of(w.txn)
            ),
            (None, Some(&f)) => format!(
                "it shows {}, written by op {}, which failed",
                show(e),
                txns.txn_index(f as usize)
            ),
            (None, None) => format!("it shows {}, which no transaction wrote", show(e)),
        },
        Culprit::Order => "the same elements in another order".into(),
        Culprit::Stale => "it did not see the last write before it in timestamp order".into(),
    }
}
