//! Differential test: the list-append checker's serializability verdict against a brute-force
//! search over every order of the committed transactions, on thousands of small random histories.
//!
//! Histories come from a simulated store that is sometimes serial and sometimes reads stale
//! snapshots (lost updates, read and write skew, ...), with failed and indeterminate
//! transactions, and occasionally a corrupted read. A final transaction reads every key after
//! everything else, so every append that happened is observed and the inferred version orders
//! are complete: then "no anomaly that serializability forbids" must agree exactly with "some
//! serial order of the committed transactions (choosing which indeterminate ones happened)
//! explains every read".

use checkers::elle::{Options, check_list_append};
use checkers::{History, Op, OpType, Process, Validity};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Ok,
    Fail,
    /// Indeterminate; `true` when it took effect.
    Info(bool),
}

#[derive(Clone)]
enum Mop {
    Read(usize, Option<Vec<i64>>),
    Append(usize, i64),
}

struct SimTxn {
    mops: Vec<Mop>,
    fate: Fate,
}

fn mops_json(mops: &[Mop], with_reads: bool) -> Value {
    Value::Array(
        mops.iter()
            .map(|m| match m {
                Mop::Read(k, v) => {
                    let v = match v {
                        Some(list) if with_reads => json!(list),
                        _ => Value::Null,
                    };
                    json!(["r", format!("k{k}"), v])
                }
                Mop::Append(k, e) => json!(["append", format!("k{k}"), e]),
            })
            .collect(),
    )
}

fn op(index: usize, process: usize, kind: OpType, value: Value) -> Op {
    Op {
        index: index as u64,
        time: Some(index as u64 * 1000),
        process: Process::Client(process as u64),
        kind,
        f: "txn".into(),
        value,
        error: None,
        node: None,
        extra: Map::new(),
    }
}

/// Generates one history; returns it and the simulated transactions (final read last).
fn generate(rng: &mut ChaCha8Rng) -> (History, Vec<SimTxn>) {
    let keys = rng.random_range(1..=3usize);
    let n = rng.random_range(2..=6usize);
    let mut next_value = vec![1i64; keys];
    let mut txns: Vec<SimTxn> = (0..n)
        .map(|_| {
            let len = rng.random_range(1..=3usize);
            let mops = (0..len)
                .map(|_| {
                    let k = rng.random_range(0..keys);
                    if rng.random_bool(0.5) {
                        Mop::Read(k, None)
                    } else {
                        next_value[k] += 1;
                        Mop::Append(k, next_value[k] - 1)
                    }
                })
                .collect();
            let roll = rng.random_range(0..10);
            let fate = match roll {
                0 => Fate::Fail,
                1 => Fate::Info(rng.random_bool(0.5)),
                _ => Fate::Ok,
            };
            SimTxn { mops, fate }
        })
        .collect();
    // Commit order, and for each transaction the number of earlier commits its reads see: all of
    // them when serial, else possibly a stale snapshot.
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let serial = rng.random_bool(0.3);
    let mut states: Vec<Vec<Vec<i64>>> = vec![vec![Vec::new(); keys]];
    for (position, &t) in order.iter().enumerate() {
        let snapshot = if serial || rng.random_bool(0.4) {
            states.len() - 1
        } else {
            rng.random_range(0..=position.min(states.len() - 1))
        };
        let mut view = states[snapshot].clone();
        let applies = matches!(txns[t].fate, Fate::Ok | Fate::Info(true));
        let mut writes: Vec<(usize, i64)> = Vec::new();
        for mop in &mut txns[t].mops {
            match mop {
                Mop::Read(k, v) => *v = Some(view[*k].clone()),
                Mop::Append(k, e) => {
                    view[*k].push(*e);
                    writes.push((*k, *e));
                }
            }
        }
        if applies {
            let mut next = states.last().unwrap().clone();
            for (k, e) in writes {
                next[k].push(e);
            }
            states.push(next);
        }
    }
    // Now and then a read goes wrong.
    let failed_appends: Vec<i64> = txns
        .iter()
        .filter(|t| t.fate == Fate::Fail)
        .flat_map(|t| t.mops.iter())
        .filter_map(|m| match m {
            Mop::Append(_, e) => Some(*e),
            Mop::Read(..) => None,
        })
        .collect();
    if rng.random_bool(0.12) {
        let reads: Vec<(usize, usize)> = txns
            .iter()
            .enumerate()
            .flat_map(|(t, txn)| {
                txn.mops
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| matches!(m, Mop::Read(..)))
                    .map(move |(m, _)| (t, m))
            })
            .collect();
        if !reads.is_empty() {
            let (t, m) = reads[rng.random_range(0..reads.len())];
            if let Mop::Read(_, Some(list)) = &mut txns[t].mops[m] {
                match rng.random_range(0..5) {
                    // A dirty read of a failed append (any key: may also be garbage).
                    4 if !failed_appends.is_empty() => {
                        list.push(failed_appends[rng.random_range(0..failed_appends.len())])
                    }
                    0 if !list.is_empty() => {
                        list.remove(rng.random_range(0..list.len()));
                    }
                    1 if list.len() > 1 => list.swap(0, 1),
                    2 if !list.is_empty() => list.push(list[0]),
                    _ => list.push(999),
                }
            }
        }
    }
    let final_state = states.last().unwrap().clone();
    txns.push(SimTxn {
        mops: (0..keys)
            .map(|k| Mop::Read(k, Some(final_state[k].clone())))
            .collect(),
        fate: Fate::Ok,
    });
    // Events: each transaction invoked at a random time and completed a little later, then the
    // final read after everything.
    let mut events: Vec<(u64, usize, bool)> = Vec::new();
    for t in 0..n {
        let start = rng.random_range(0..100u64) * 2;
        let end = start + 1 + rng.random_range(0..60u64) * 2;
        events.push((start, t, true));
        events.push((end, t, false));
    }
    events.sort_unstable();
    events.push((1000, n, true));
    events.push((1001, n, false));
    let mut ops = Vec::new();
    for (_, t, is_invoke) in events {
        let txn = &txns[t];
        let (kind, value) = match (is_invoke, txn.fate) {
            (true, _) => (OpType::Invoke, mops_json(&txn.mops, false)),
            (false, Fate::Ok) => (OpType::Ok, mops_json(&txn.mops, true)),
            (false, Fate::Fail) => (OpType::Fail, mops_json(&txn.mops, false)),
            (false, Fate::Info(_)) => (OpType::Info, mops_json(&txn.mops, false)),
        };
        ops.push(op(ops.len(), t, kind, value));
    }
    (History::new(ops), txns)
}

/// Whether some order of the committed transactions, with any choice of which indeterminate
/// ones took effect, explains every read of the committed ones.
fn brute_force_serializable(txns: &[SimTxn], keys: usize) -> bool {
    let candidates: Vec<usize> = (0..txns.len())
        .filter(|&t| txns[t].fate != Fate::Fail)
        .collect();
    let infos: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&t| matches!(txns[t].fate, Fate::Info(_)))
        .collect();
    for mask in 0..(1u32 << infos.len()) {
        let included: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|t| match infos.iter().position(|i| i == t) {
                Some(bit) => mask & (1 << bit) != 0,
                None => true,
            })
            .collect();
        let mut used = vec![false; included.len()];
        let mut state = vec![Vec::new(); keys];
        if search(txns, &included, &mut used, &mut state) {
            return true;
        }
    }
    false
}

fn search(txns: &[SimTxn], included: &[usize], used: &mut [bool], state: &mut [Vec<i64>]) -> bool {
    if used.iter().all(|u| *u) {
        return true;
    }
    for i in 0..included.len() {
        if used[i] {
            continue;
        }
        let txn = &txns[included[i]];
        let saved: Vec<usize> = state.iter().map(Vec::len).collect();
        let mut consistent = true;
        for mop in &txn.mops {
            match mop {
                Mop::Append(k, e) => state[*k].push(*e),
                Mop::Read(k, Some(v)) if txn.fate == Fate::Ok => {
                    if state[*k] != *v {
                        consistent = false;
                        break;
                    }
                }
                Mop::Read(..) => {}
            }
        }
        if consistent {
            used[i] = true;
            if search(txns, included, used, state) {
                return true;
            }
            used[i] = false;
        }
        for (k, len) in saved.into_iter().enumerate() {
            state[k].truncate(len);
        }
    }
    false
}

#[test]
fn elle_agrees_with_brute_force_serializability() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EA1);
    let opts = Options::models(&["serializable"]);
    let (mut serializable, mut not_serializable) = (0, 0);
    let mut by_type: std::collections::BTreeMap<String, usize> = Default::default();
    for case in 0..6000 {
        let (history, txns) = generate(&mut rng);
        let keys = txns.last().unwrap().mops.len();
        let expected = brute_force_serializable(&txns, keys);
        let result = check_list_append(&history, &opts).expect("well-formed");
        let elle_valid = result.validity == Validity::Valid;
        if elle_valid != expected {
            let lines: Vec<String> = history
                .ops
                .iter()
                .map(|o| Value::Object(o.to_map()).to_string())
                .collect();
            panic!(
                "case {case}: brute force says serializable = {expected}, the checker says \
                 {}\n{}\n\n{}",
                result.validity,
                lines.join("\n"),
                result.explain()
            );
        }
        if expected {
            serializable += 1;
        } else {
            not_serializable += 1;
            for t in &result.anomaly_types {
                *by_type.entry(t.clone()).or_default() += 1;
            }
        }
    }
    println!(
        "differential: {serializable} serializable and {not_serializable} non-serializable \
         histories, all agreeing; anomaly types seen: {by_type:?}"
    );
    assert!(serializable > 500 && not_serializable > 500);
}
