//! The list-append checker on hand-built histories: every anomaly class detected and explained,
//! valid histories valid, bad input reported.

use checkers::elle::{ElleResult, Options, check_list_append};
mod support;

use checkers::{OpType, Validity};
use serde_json::{Value, json};
use support::{Builder, assert_contains};

fn check(b: &Builder) -> ElleResult {
    let result = check_list_append(&b.history(), &Options::default()).expect("well-formed");
    // The JSON always has Elle's shape.
    let doc = result.to_json();
    for field in ["valid", "anomaly_types", "anomalies", "not", "also_not"] {
        assert!(doc.get(field).is_some(), "missing {field}: {doc}");
    }
    result
}

fn first<'a>(result: &'a ElleResult, kind: &str) -> &'a Value {
    result
        .anomalies
        .get(kind)
        .and_then(|l| l.first())
        .unwrap_or_else(|| panic!("no {kind} in {}", result.explain()))
}

fn explanation(anomaly: &Value) -> &str {
    anomaly["explanation"].as_str().expect("an explanation")
}

/// The `index` of each transaction of a cycle.
fn cycle_ops(anomaly: &Value) -> Vec<u64> {
    let mut ops: Vec<u64> = anomaly["cycle"]
        .as_array()
        .expect("a cycle")
        .iter()
        .map(|op| op["index"].as_u64().unwrap())
        .collect();
    ops.sort_unstable();
    ops
}

#[test]
fn serial_history_is_valid() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1], ["r", "x", [1]]]))
        .txn(
            1,
            json!([["r", "x", [1]], ["append", "y", 1], ["append", "x", 2]]),
        )
        .txn(0, json!([["r", "y", [1]], ["r", "x", [1, 2]]]))
        .txn(
            2,
            json!([["r", "z", []], ["append", "z", 5], ["r", "z", [5]]]),
        );
    let r = check(&b);
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    assert!(r.anomaly_types.is_empty());
    assert!(r.not.is_empty() && r.also_not.is_empty());
    assert_eq!(r.to_json()["valid"], json!(true));
    assert_eq!(r.stats.ok, 4);
}

#[test]
fn concurrent_valid_history_with_info_and_fail_is_valid() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .ok(1, json!([["append", "x", 2]]))
        .ok(0, json!([["append", "x", 1]]))
        .invoke(2, json!([["append", "x", 3]]))
        .info(2, json!([["append", "x", 3]]))
        .invoke(3, json!([["append", "x", 4]]))
        .fail(3, json!([["append", "x", 4]]))
        .txn(4, json!([["r", "x", [2, 1, 3]]]));
    let r = check(&b);
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
}

#[test]
fn g0_write_cycle() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .txn(2, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]]));
    let r = check(&b);
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.anomaly_types, vec!["G0"], "{}", r.explain());
    let g0 = first(&r, "G0");
    assert_eq!(cycle_ops(g0), vec![2, 3]);
    assert_contains(
        explanation(g0),
        &[
            "appended 2 to x after",
            "'s append of 1",
            "appended 1 to y after",
            "'s append of 2",
            "a contradiction",
            "G0",
        ],
    );
    assert_eq!(r.not, vec!["read-uncommitted"]);
    assert!(r.also_not.contains(&"serializable".to_string()));
    let steps = g0["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["type"] == "ww"));
}

#[test]
fn g1a_aborted_read() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1]]))
        .fail(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]]]));
    let r = check(&b);
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.anomaly_types, vec!["G1a"]);
    let a = first(&r, "G1a");
    assert_eq!(a["op"]["index"], 3);
    assert_eq!(a["writer"]["index"], 1);
    assert_contains(
        explanation(a),
        &[
            "op 3 read x = [1]",
            "appended by op 1, which failed",
            "aborted read",
        ],
    );
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn g1b_intermediate_read() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .txn(1, json!([["r", "x", [1]]]))
        .txn(1, json!([["r", "x", [1, 2]]]));
    let r = check(&b);
    assert!(
        r.anomaly_types.contains(&"G1b".to_string()),
        "{}",
        r.explain()
    );
    let a = first(&r, "G1b");
    assert_eq!(a["op"]["index"], 3);
    assert_contains(
        explanation(a),
        &[
            "op 3 read x = [1]",
            "op 1 appended 2 to x after 1",
            "intermediate read",
        ],
    );
    assert!(r.not.contains(&"read-committed".to_string()));
}

#[test]
fn g1c_circular_information_flow() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .invoke(1, json!([["append", "y", 1], ["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", [1]]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G1c"], "{}", r.explain());
    let a = first(&r, "G1c");
    assert_eq!(cycle_ops(a), vec![2, 3]);
    assert_contains(
        explanation(a),
        &[
            "read x = [1], which includes",
            "'s append of 1",
            "read y = [1], which includes",
            "circular information flow",
        ],
    );
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn g_single_read_skew() {
    let mut b = Builder::default();
    b.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["r", "x", []], ["r", "y", [1]]]))
        .txn(2, json!([["r", "x", [1]]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G-single"], "{}", r.explain());
    let a = first(&r, "G-single");
    assert_eq!(cycle_ops(a), vec![2, 3]);
    assert_contains(
        explanation(a),
        &[
            "read y = [1], which includes",
            "read the initial (empty) state of x, which does not include",
            "'s append of 1",
            "exactly one read-write anti-dependency",
        ],
    );
    assert_eq!(r.not, vec!["consistent-view", "repeatable-read"]);
    assert!(r.also_not.contains(&"snapshot-isolation".to_string()));
    let kinds: Vec<&str> = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "rw").count(), 1);
}

#[test]
fn g2_item_write_skew_and_serializable_models() {
    let mut b = Builder::default();
    b.invoke(0, json!([["r", "x", []], ["append", "y", 1]]))
        .invoke(1, json!([["r", "y", []], ["append", "x", 1]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .ok(1, json!([["r", "y", []], ["append", "x", 1]]))
        .txn(2, json!([["r", "x", [1]], ["r", "y", [1]]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G2-item"], "{}", r.explain());
    let a = first(&r, "G2-item");
    assert_eq!(cycle_ops(a), vec![2, 3]);
    assert_contains(
        explanation(a),
        &[
            "read the initial (empty) state of x, which does not include",
            "read the initial (empty) state of y",
            "two or more read-write anti-dependencies",
        ],
    );
    assert_eq!(r.not, vec!["repeatable-read"]);
    assert!(r.also_not.contains(&"serializable".to_string()));
    assert!(
        !r.also_not.contains(&"snapshot-isolation".to_string()),
        "write skew is allowed by SI"
    );
    // Snapshot isolation allows write skew: valid under SI, invalid under serializability.
    let si = check_list_append(&b.history(), &Options::models(&["snapshot-isolation"])).unwrap();
    assert_eq!(si.validity, Validity::Valid, "{}", si.explain());
    let ser = check_list_append(&b.history(), &Options::models(&["serializable"])).unwrap();
    assert_eq!(ser.validity, Validity::Invalid);
}

#[test]
fn g_single_realtime_stale_read() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", []]]))
        .txn(2, json!([["r", "x", [1]]]));
    let r = check(&b);
    assert_eq!(
        r.anomaly_types,
        vec!["G-single-realtime"],
        "{}",
        r.explain()
    );
    let a = first(&r, "G-single-realtime");
    assert_eq!(cycle_ops(a), vec![1, 3]);
    assert_contains(
        explanation(a),
        &[
            "completed (op 1, at 0.002000 s) before",
            "was invoked (op 2, at 0.003000 s)",
            "read the initial (empty) state of x",
            "real-time order",
        ],
    );
    assert_eq!(r.not, vec!["strong-snapshot-isolation"]);
    assert_eq!(r.also_not, vec!["strict-serializable"]);
    // Serializable without real time: fine.
    let ser = check_list_append(&b.history(), &Options::models(&["serializable"])).unwrap();
    assert_eq!(ser.validity, Validity::Valid, "{}", ser.explain());
    assert!(ser.anomaly_types.is_empty());
}

#[test]
fn g_single_process_stale_read_in_one_session() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(0, json!([["r", "x", []]]))
        .txn(1, json!([["r", "x", [1]]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G-single-process"], "{}", r.explain());
    let a = first(&r, "G-single-process");
    assert_contains(
        explanation(a),
        &[
            "process 0 executed T",
            "read the initial (empty) state of x",
        ],
    );
    assert_eq!(r.not, vec!["strong-session-snapshot-isolation"]);
}

#[test]
fn g0_realtime_and_g1c_realtime() {
    // x's order says T2 appended before T1, but T1 finished before T2 began.
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [2, 1]]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G0-realtime"], "{}", r.explain());
    assert_contains(
        explanation(first(&r, "G0-realtime")),
        &["appended 1 to x after", "completed (op 1"],
    );
    assert_eq!(r.not, vec!["strong-read-uncommitted"]);

    // T1 read T2's append, but T2 began after T1 finished.
    let mut b = Builder::default();
    b.txn(0, json!([["r", "y", [1]]]))
        .txn(1, json!([["append", "y", 1]]));
    let r = check(&b);
    assert_eq!(r.anomaly_types, vec!["G1c-realtime"], "{}", r.explain());
    assert_contains(
        explanation(first(&r, "G1c-realtime")),
        &[
            "T1 < T2, because T1 completed",
            "read y = [1], which includes",
        ],
    );
    assert_eq!(r.not, vec!["strong-read-committed"]);
}

#[test]
fn internal_inconsistency() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1], ["r", "x", []]]))
        .txn(2, json!([["append", "y", 3]]))
        .txn(1, json!([["r", "y", [3]], ["r", "y", [3, 4]]]))
        .txn(2, json!([["append", "y", 4]]));
    let r = check_list_append(&b.history(), &Options::models(&["serializable"])).unwrap();
    // The second read also makes a G-single with T3 (T1 both saw and missed its append).
    assert_eq!(
        r.anomaly_types,
        vec!["G-single", "internal"],
        "{}",
        r.explain()
    );
    assert_eq!(r.anomaly_counts["internal"], 2);
    let a = first(&r, "internal");
    assert_eq!(a["expected"], json!(["...", 1]));
    assert_contains(
        explanation(a),
        &[
            "op 1 read x = []",
            "its own earlier reads and appends",
            "imply",
        ],
    );
    assert!(r.not.contains(&"read-atomic".to_string()));
}

#[test]
fn incompatible_order() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]))
        .txn(3, json!([["r", "x", [2, 1, 3]]]))
        .txn(4, json!([["append", "x", 3]]));
    let r = check(&b);
    assert!(
        r.anomaly_types.contains(&"incompatible-order".to_string()),
        "{}",
        r.explain()
    );
    let a = first(&r, "incompatible-order");
    assert_eq!(a["values"], json!([[1, 2], [2, 1, 3]]));
    assert_contains(
        explanation(a),
        &[
            "x was read as [1 2] (op 5) and as [2 1 3] (op 7)",
            "not a prefix",
        ],
    );
    assert!(r.not.contains(&"read-committed".to_string()));
}

#[test]
fn duplicate_elements_and_garbage_reads() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1, 1]]]))
        .txn(2, json!([["r", "y", [9]]]));
    let r = check(&b);
    assert!(
        r.anomaly_types.contains(&"duplicate-elements".to_string()),
        "{}",
        r.explain()
    );
    assert!(r.anomaly_types.contains(&"garbage-read".to_string()));
    let d = first(&r, "duplicate-elements");
    assert_eq!(d["duplicates"], json!({"1": 2}));
    assert_contains(explanation(d), &["op 3 read x = [1 1]", "more than once"]);
    let g = first(&r, "garbage-read");
    assert_contains(explanation(g), &["no transaction ever appended 9 to y"]);
    assert_eq!(r.not, vec!["read-uncommitted"]);
}

#[test]
fn future_read_and_lost_update() {
    let mut b = Builder::default();
    b.txn(0, json!([["r", "z", [7]], ["append", "z", 7]]));
    let r = check(&b);
    assert!(
        r.anomaly_types.contains(&"future-read".to_string()),
        "{}",
        r.explain()
    );
    assert_contains(
        explanation(first(&r, "future-read")),
        &["before appending 7 itself"],
    );

    let mut b = Builder::default();
    b.invoke(0, json!([["r", "x", []], ["append", "x", 1]]))
        .invoke(1, json!([["r", "x", []], ["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "x", 1]]))
        .ok(1, json!([["r", "x", []], ["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]));
    let r = check(&b);
    assert!(
        r.anomaly_types.contains(&"lost-update".to_string()),
        "{}",
        r.explain()
    );
    assert!(r.anomaly_types.contains(&"G-single".to_string()));
    let a = first(&r, "lost-update");
    assert_eq!(a["txns"].as_array().unwrap().len(), 2);
    assert_contains(
        explanation(a),
        &["op 2, op 3 all read x = []", "lost update"],
    );
}

#[test]
fn unobserved_appends_still_order_after_observed_ones() {
    // T2's append of 2 to x is never read. T1 read x = [1], everything observed, so T2's append
    // came later: T1 < T2 (rw). But T1 read y = [5], T2's append: T2 < T1 (wr).
    let mut b = Builder::default();
    b.txn(2, json!([["append", "x", 1]]))
        .invoke(0, json!([["r", "x", [1]], ["r", "y", [5]]]))
        .invoke(1, json!([["append", "x", 2], ["append", "y", 5]]))
        .ok(0, json!([["r", "x", [1]], ["r", "y", [5]]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 5]]));
    let r = check_list_append(&b.history(), &Options::models(&["serializable"])).unwrap();
    assert_eq!(r.anomaly_types, vec!["G-single"], "{}", r.explain());
    assert_contains(
        explanation(first(&r, "G-single")),
        &[
            "read x = [1], which does not include",
            "append of 2",
            "read y = [5], which includes",
        ],
    );
}

#[test]
fn empty_history_is_unknown() {
    let b = Builder::default();
    let r = check(&b);
    assert_eq!(r.validity, Validity::Unknown);
    assert_eq!(r.anomaly_types, vec!["empty-transaction-graph"]);
}

#[test]
fn bad_input_names_the_op() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 1]]));
    let e = check_list_append(&b.history(), &Options::default()).unwrap_err();
    assert!(e.message.starts_with("op 3:"), "{e}");
    assert!(e.message.contains("which op 1 also appended"), "{e}");

    let mut b = Builder::default();
    b.txn(0, json!([["w", "x", 1]]));
    let e = check_list_append(&b.history(), &Options::default()).unwrap_err();
    assert!(
        e.message.contains("op 1: micro-operation 0 is a `w`"),
        "{e}"
    );

    let mut b = Builder::default();
    b.event(0, OpType::Invoke, json!([["append", "x"]]));
    let e = check_list_append(&b.history(), &Options::default()).unwrap_err();
    assert!(
        e.message
            .contains("op 0: micro-operation 0 must be [f, key, value]"),
        "{e}"
    );

    let mut b = Builder::default();
    b.invoke(0, json!([["r", "x", null]]))
        .ok(0, json!([["r", "x", 3]]));
    let e = check_list_append(&b.history(), &Options::default()).unwrap_err();
    assert!(e.message.contains("expected a list"), "{e}");

    let mut b = Builder::default();
    b.event(0, OpType::Invoke, json!(null));
    b.ops[0].f = "read".into();
    let e = check_list_append(&b.history(), &Options::default()).unwrap_err();
    assert!(e.message.contains("op 0: expected a transaction"), "{e}");

    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]));
    let e = check_list_append(&b.history(), &Options::models(&["serialisable"])).unwrap_err();
    assert_eq!(e.source, "<options>");
}

/// Random, mostly malformed histories: every transactional checker answers (a verdict or an
/// input error) and never panics.
#[test]
fn checkers_never_panic_on_random_input() {
    use checkers::bank::{self, BankOptions};
    use checkers::elle::check_rw_register;
    use checkers::external_consistency;
    use rand::{Rng, RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn scalar(rng: &mut ChaCha8Rng) -> Value {
        match rng.random_range(0..5) {
            0 => Value::Null,
            1 => json!(rng.random_range(-2..4)),
            2 => json!(["x", "y", "r", "w", "append"][rng.random_range(0..5)]),
            3 => json!(1.5),
            _ => json!(true),
        }
    }
    fn value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
        if depth == 0 || rng.random_bool(0.3) {
            return scalar(rng);
        }
        match rng.random_range(0..3) {
            0 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| value(rng, depth - 1))
                    .collect(),
            ),
            1 => {
                let f = ["r", "w", "append", "read", "bogus"][rng.random_range(0..5)];
                let k = ["x", "y"][rng.random_range(0..2)];
                json!([f, k, value(rng, depth - 1)])
            }
            _ => {
                json!({"from": scalar(rng), "to": scalar(rng), "amount": scalar(rng), "x": scalar(rng)})
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut answered = [0usize; 4];
    for _ in 0..3000 {
        let mut b = Builder::default();
        for _ in 0..rng.random_range(0..8) {
            let kind =
                [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info][rng.random_range(0..4)];
            let mut v = value(&mut rng, 3);
            if rng.random_bool(0.5) {
                v = Value::Array(
                    (0..rng.random_range(0..3))
                        .map(|_| {
                            let f = ["r", "w", "append"][rng.random_range(0..3)];
                            {
                                let k = ["x", "y"][rng.random_range(0..2)];
                                json!([f, k, value(&mut rng, 1)])
                            }
                        })
                        .collect(),
                );
            }
            b.event(rng.random_range(0..3), kind, v);
            let last = b.ops.last_mut().unwrap();
            last.f = ["txn", "txn", "txn", "read", "transfer"][rng.random_range(0..5)].into();
            if rng.random_bool(0.5) {
                last.extra.insert("commit_ts".into(), scalar(&mut rng));
            }
            if rng.random_bool(0.1) {
                last.time = None;
            }
            let _ = rng.next_u32();
        }
        let h = b.history();
        answered[0] += usize::from(check_list_append(&h, &Options::default()).is_ok());
        answered[1] += usize::from(check_rw_register(&h, &Options::default()).is_ok());
        answered[2] += usize::from(external_consistency::check(&h).is_ok());
        answered[3] += usize::from(bank::check(&h, &BankOptions::default()).is_ok());
    }
    // Some inputs get past validation into the checks themselves.
    assert!(
        answered.iter().all(|&n| n > 50),
        "verdicts per checker: {answered:?}"
    );
}
