//! The external-consistency checker: commit timestamps against real time, and reads against
//! timestamp order.

use checkers::external_consistency::check;
mod support;

use checkers::{OpType, Validity};
use serde_json::{Value, json};
use support::{Builder, invocation};

fn explanations(doc: &Value, kind: &str) -> Vec<String> {
    doc["violations"][kind]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|v| v["explanation"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn valid_history_with_snapshot_reads_registers_and_indeterminate_writes() {
    let mut b = Builder::default();
    b.txn_ts(0, json!([["append", "x", 1], ["r", "x", [1]]]), 10)
        // Concurrent: a read-only snapshot at 15 and an append committed at 20.
        .invoke(1, json!([["r", "x", [1]]]))
        .invoke(2, json!([["append", "x", 2]]))
        .ok_ts(2, json!([["append", "x", 2]]), 20)
        .ok_ts(1, json!([["r", "x", [1]]]), 15)
        // A register, read by a snapshot at the write's own timestamp after it completed.
        .txn_ts(0, json!([["w", "y", 5]]), 30)
        .txn_ts(1, json!([["r", "y", 5], ["r", "z", null]]), 30)
        // An append whose outcome is unknown: later reads may or may not show it.
        .invoke(3, json!([["append", "x", 3]]))
        .event(3, OpType::Info, json!([["append", "x", 3]]))
        .txn_ts(0, json!([["r", "x", [1, 2, 3]]]), 40)
        .txn_ts(
            1,
            json!([
                ["r", "x", [1, 2]],
                ["append", "x", 4],
                ["r", "x", [1, 2, 4]]
            ]),
            50,
        );
    let r = check(&b.history()).unwrap();
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    let doc = r.to_json();
    assert_eq!(doc["valid"], json!(true));
    assert_eq!(r.stats.read_only, 3);
    assert!(r.explain().contains("externally consistent"));
}

#[test]
fn real_time_inversion_names_both_times_and_timestamps() {
    let mut b = Builder::default();
    b.txn_ts(0, json!([["append", "x", 1]]), 100)
        .txn_ts(1, json!([["append", "y", 1]]), 90);
    let r = check(&b.history()).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    let doc = r.to_json();
    assert_eq!(doc["violation_types"], json!(["realtime"]));
    let v = &doc["violations"]["realtime"][0];
    assert_eq!(v["before"]["index"], 1);
    assert_eq!(v["after"]["index"], 3);
    assert_eq!(v["before_ts"], 100);
    assert_eq!(v["after_ts"], 90);
    assert_eq!(v["before_completed_time"], 2_000_000);
    assert_eq!(v["after_invoked_time"], 3_000_000);
    let text = explanations(&doc, "realtime").remove(0);
    for phrase in [
        "op 1 completed at 0.002000 s with commit timestamp 100",
        "before op 2 was invoked at 0.003000 s",
        "got timestamp 90, which is smaller than ts 100",
        "contradicts real-time order",
    ] {
        assert!(text.contains(phrase), "{phrase:?} in {text}");
    }
    assert!(r.explain().contains("realtime violations: 1"));
}

#[test]
fn equal_timestamps_are_fine_only_for_a_later_read_only_transaction() {
    let mut b = Builder::default();
    b.txn_ts(0, json!([["append", "x", 1]]), 100)
        .txn_ts(1, json!([["r", "x", [1]]]), 100);
    assert_eq!(check(&b.history()).unwrap().validity, Validity::Valid);
    let mut b = Builder::default();
    b.txn_ts(0, json!([["append", "x", 1]]), 100)
        .txn_ts(1, json!([["append", "y", 1]]), 100);
    let r = check(&b.history()).unwrap();
    assert_eq!(
        r.violation_counts.get("realtime"),
        Some(&1),
        "{}",
        r.explain()
    );
    // A read-only transaction before a write at its own timestamp would have seen the write.
    let mut b = Builder::default();
    b.txn_ts(0, json!([["r", "x", []]]), 100)
        .txn_ts(1, json!([["append", "x", 1]]), 100);
    let r = check(&b.history()).unwrap();
    assert_eq!(
        r.violation_counts.get("realtime"),
        Some(&1),
        "{}",
        r.explain()
    );
}

#[test]
fn read_not_explained_by_timestamp_order() {
    // Concurrent appends at 10 and 20; a snapshot at 30 misses the one at 20.
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .ok_ts(0, json!([["append", "x", 1]]), 10)
        .ok_ts(1, json!([["append", "x", 2]]), 20)
        .invoke(2, json!([["r", "x", [1]]]))
        .invoke(3, json!([["r", "x", [2, 1]]]))
        .ok_ts(2, json!([["r", "x", [1]]]), 30)
        .ok_ts(3, json!([["r", "x", [2, 1]]]), 31);
    let r = check(&b.history()).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    let doc = r.to_json();
    assert_eq!(doc["violation_types"], json!(["read"]));
    assert_eq!(r.violation_counts["read"], 2);
    let texts = explanations(&doc, "read");
    assert!(texts[0].contains("op 6 (read-only, timestamp 30) read x = [1], but replaying the committed transactions in timestamp order gives [1 2]: it is missing 2, which op 3 wrote at timestamp 20"), "{}", texts[0]);
    assert!(
        texts[1].contains("read x = [2 1]") && texts[1].contains("another order"),
        "{}",
        texts[1]
    );
    assert_eq!(doc["violations"]["read"][0]["expected"], json!([1, 2]));
}

#[test]
fn stale_register_read_future_reads_and_failed_writes() {
    let mut b = Builder::default();
    b.txn_ts(0, json!([["w", "y", 1]]), 10)
        .txn_ts(0, json!([["w", "y", 2]]), 20)
        .txn_ts(1, json!([["r", "y", 1]]), 25)
        .invoke(2, json!([["w", "y", 9]]))
        .event(2, OpType::Fail, json!([["w", "y", 9]]))
        .txn_ts(1, json!([["r", "y", 9]]), 26);
    let r = check(&b.history()).unwrap();
    let texts = explanations(&r.to_json(), "read");
    assert_eq!(texts.len(), 2, "{}", r.explain());
    assert!(texts[0].contains("read y = 1, but replaying the committed transactions in timestamp order gives 2: it shows 1, which op 1 wrote at timestamp 10, not earlier"), "{}", texts[0]);
    assert!(
        texts[1].contains("it shows 9, written by op 7, which failed"),
        "{}",
        texts[1]
    );

    // An indeterminate append with a timestamp after the reader's: the reader cannot see it.
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 7]]))
        .event_ts(0, OpType::Info, json!([["append", "x", 7]]), Some(50))
        .txn_ts(1, json!([["r", "x", [7]]]), 40)
        .txn_ts(1, json!([["r", "x", []]]), 60);
    let r = check(&b.history()).unwrap();
    assert_eq!(r.violation_counts.get("read"), Some(&1), "{}", r.explain());
    assert!(explanations(&r.to_json(), "read")[0].contains("timestamp 40) read x = [7]"));
}

#[test]
fn timestamp_collisions_between_writers() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .ok_ts(0, json!([["append", "x", 1]]), 10)
        .ok_ts(1, json!([["append", "x", 2]]), 10);
    let r = check(&b.history()).unwrap();
    assert!(
        r.violation_counts.contains_key("timestamp-collision"),
        "{}",
        r.explain()
    );
    assert!(
        explanations(&r.to_json(), "timestamp-collision")[0]
            .contains("both committed writes to x at timestamp 10")
    );
}

#[test]
fn bad_input_is_an_error_naming_the_op() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]))
        .event(0, OpType::Ok, json!([["append", "x", 1]]));
    let e = check(&b.history()).unwrap_err();
    assert!(
        e.message
            .starts_with("op 1: an ok txn completion has no `commit_ts`"),
        "{e}"
    );

    let mut b = Builder::default();
    b.txn_ts(0, json!([["append", "x", 1]]), 1)
        .txn_ts(0, json!([["w", "x", 1]]), 2);
    let e = check(&b.history()).unwrap_err();
    assert!(e.message.contains("a key must be either a list"), "{e}");

    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]));
    b.event(0, OpType::Ok, json!([["append", "x", 1]]));
    b.ops[1].extra.insert("commit_ts".into(), json!("soon"));
    let e = check(&b.history()).unwrap_err();
    assert!(e.message.contains("`commit_ts` must be an integer"), "{e}");
}

/// (process, invoke, commit, complete, micro-ops (is read, key, element), fate: 0 ok, 1 info
/// with a timestamp, 2 info without one, 3 info that never took effect).
type SimTxn = (u64, i64, i64, i64, Vec<(bool, u32, i64)>, u8);

/// A simulated store that commits every transaction atomically at a point of its interval and
/// stamps it with that point: always externally consistent, with indeterminate transactions
/// (with and without timestamps) mixed in. Moving one commit timestamp below the completion of an
/// earlier transaction must be caught.
#[test]
fn simulated_correct_store_is_valid_and_a_skewed_timestamp_is_not() {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for round in 0..200 {
        let mut txns: Vec<SimTxn> = Vec::new();
        let mut clock = [0i64; 4];
        let mut next = 0i64;
        for _ in 0..40 {
            let p = rng.random_range(0..4usize);
            let invoke = clock[p] + rng.random_range(1..10) * 10;
            let complete = invoke + rng.random_range(1..10) * 10;
            let commit = rng.random_range(invoke + 1..complete) * 1000 + next % 1000;
            let mops = (0..rng.random_range(1..4))
                .map(|_| {
                    next += 1;
                    (rng.random_bool(0.5), rng.random_range(0..3u32), next)
                })
                .collect();
            let fate = if rng.random_bool(0.9) {
                0
            } else {
                rng.random_range(1..4u8)
            };
            txns.push((
                p as u64 + 10 * txns.len() as u64 * u64::from(fate > 0),
                invoke,
                commit,
                complete,
                mops,
                fate,
            ));
            clock[p] = complete;
        }
        // Apply in commit order to learn every read.
        let mut order: Vec<usize> = (0..txns.len()).collect();
        order.sort_by_key(|&i| txns[i].2);
        let mut lists: Vec<Vec<i64>> = vec![Vec::new(); 3];
        let mut values: Vec<Vec<Value>> = vec![Vec::new(); txns.len()];
        for i in order {
            let (_, _, _, _, mops, fate) = &txns[i];
            let applies = *fate <= 2;
            let mut own = lists.clone();
            for &(is_read, k, e) in mops {
                let key = format!("k{k}");
                if is_read {
                    values[i].push(json!(["r", key, own[k as usize]]));
                } else {
                    own[k as usize].push(e);
                    values[i].push(json!(["append", key, e]));
                }
            }
            if applies {
                lists = own;
            }
        }
        let mut events: Vec<(i64, usize, bool)> = Vec::new();
        for (i, t) in txns.iter().enumerate() {
            events.push((t.1, i, true));
            events.push((t.3, i, false));
        }
        events.sort_unstable();
        let build = |skew: Option<usize>| {
            let mut b = Builder::default();
            for &(_, i, is_invoke) in &events {
                let (p, _, commit, _, _, fate) = &txns[i];
                let mops = Value::Array(values[i].clone());
                if is_invoke {
                    b.invoke(*p, mops);
                } else {
                    let ts = if skew == Some(i) { 0 } else { *commit };
                    match fate {
                        0 => b.ok_ts(*p, mops, ts),
                        1 => b.event_ts(*p, OpType::Info, invocation(&mops), Some(ts)),
                        _ => b.event(*p, OpType::Info, invocation(&mops)),
                    };
                }
            }
            b.history()
        };
        let r = check(&build(None)).unwrap();
        assert_eq!(
            r.validity,
            Validity::Valid,
            "round {round}: {}",
            r.explain()
        );
        // Skew the last committed transaction that has a real-time predecessor.
        let victim = (0..txns.len())
            .rev()
            .find(|&i| txns[i].5 == 0 && txns.iter().any(|t| t.5 == 0 && t.3 < txns[i].1))
            .unwrap();
        let r = check(&build(Some(victim))).unwrap();
        assert_eq!(r.validity, Validity::Invalid, "round {round}");
        assert!(
            r.violation_counts.contains_key("realtime"),
            "{}",
            r.explain()
        );
    }
}
