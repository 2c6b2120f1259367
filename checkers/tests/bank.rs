//! The bank checker: valid histories, wrong totals, negative balances, bad input.

use checkers::bank::{BankOptions, check};
use checkers::{History, Op, OpType, Process, Validity};
use serde_json::{Map, Value, json};

fn op(index: usize, process: u64, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index: index as u64,
        time: Some(index as u64 * 1000),
        process: Process::Client(process),
        kind,
        f: f.into(),
        value,
        error: None,
        node: None,
        extra: Map::new(),
    }
}

/// A history from (process, type, f, value) tuples.
fn history(events: &[(u64, OpType, &str, Value)]) -> History {
    History::new(
        events
            .iter()
            .enumerate()
            .map(|(i, (p, k, f, v))| op(i, *p, *k, f, v.clone()))
            .collect(),
    )
}

fn transfer(from: &str, to: &str, amount: u64) -> Value {
    json!({"from": from, "to": to, "amount": amount})
}

use OpType::{Fail, Info, Invoke, Ok};

#[test]
fn valid_bank_history() {
    let h = history(&[
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": 50, "b": 50})),
        (1, Invoke, "transfer", transfer("a", "b", 20)),
        (1, Ok, "transfer", transfer("a", "b", 20)),
        (2, Invoke, "transfer", transfer("b", "a", 500)),
        (2, Fail, "transfer", transfer("b", "a", 500)),
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!([["r", "a", 30], ["r", "b", 70]])),
        (3, Invoke, "read", Value::Null),
        (3, Info, "read", Value::Null),
    ]);
    let r = check(&h, &BankOptions::default()).unwrap();
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    assert_eq!(r.expected_total, Some(100));
    assert_eq!((r.ok_reads, r.transfers, r.ok_transfers), (2, 2, 1));
    assert_eq!(r.to_json()["valid"], json!(true));
    assert!(r.explain().contains("every read adds up"));
}

#[test]
fn wrong_total_is_reported_with_the_offending_read() {
    let h = history(&[
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": 50, "b": 50})),
        (1, Invoke, "read", Value::Null),
        (1, Ok, "read", json!({"a": 30, "b": 50})),
    ]);
    let r = check(&h, &BankOptions::default()).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    let doc = r.to_json();
    assert_eq!(doc["error_types"], json!(["wrong-total"]));
    let e = &doc["errors"]["wrong-total"][0];
    assert_eq!(e["op"]["index"], 3);
    assert_eq!(e["total"], 80);
    assert_eq!(e["expected_total"], 100);
    let text = e["explanation"].as_str().unwrap();
    assert!(text.contains("op 3 read balances {a: 30, b: 50} totalling 80, but every read must total 100 (lost 20)"), "{text}");

    // With a given total, even the first read is held to it.
    let r = check(
        &h,
        &BankOptions {
            total: Some(80),
            ..BankOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.error_counts["wrong-total"], 1);
    assert_eq!(r.errors["wrong-total"][0]["op"]["index"], 1);
}

#[test]
fn negative_balances_nil_balances_and_accounts() {
    let h = history(&[
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": -10, "b": 110})),
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": null, "b": 100})),
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": 0, "b": 90, "c": 10})),
    ]);
    let opts = BankOptions {
        accounts: Some(vec!["a".into(), "b".into()]),
        ..BankOptions::default()
    };
    let r = check(&h, &opts).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    let text = |kind: &str| {
        r.errors[kind][0]["explanation"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text("negative-value").contains("op 1 read account a with balance -10"),
        "{}",
        r.explain()
    );
    assert!(text("nil-balance").contains("op 3 read no balance (null) for account(s) a"));
    assert!(text("wrong-accounts").contains("unexpected [\"c\"]"));
    assert!(!r.errors.contains_key("wrong-total"));
    let allowed = check(
        &h,
        &BankOptions {
            allow_negative: true,
            ..BankOptions::default()
        },
    )
    .unwrap();
    assert!(!allowed.errors.contains_key("negative-value"));
}

#[test]
fn bad_input_names_the_op() {
    let h = history(&[(0, Invoke, "transfer", json!({"from": "a", "amount": 1}))]);
    let e = check(&h, &BankOptions::default()).unwrap_err();
    assert!(
        e.message.starts_with("op 0: a transfer's value must be"),
        "{e}"
    );
    let h = history(&[(0, Invoke, "read", Value::Null), (0, Ok, "read", json!(7))]);
    let e = check(&h, &BankOptions::default()).unwrap_err();
    assert!(
        e.message
            .starts_with("op 1: an ok read's value must be a map"),
        "{e}"
    );
    let h = history(&[
        (0, Invoke, "read", Value::Null),
        (0, Ok, "read", json!({"a": "lots"})),
    ]);
    let e = check(&h, &BankOptions::default()).unwrap_err();
    assert!(e.message.contains("balance must be an integer"), "{e}");
    let h = history(&[(0, Invoke, "withdraw", Value::Null)]);
    let e = check(&h, &BankOptions::default()).unwrap_err();
    assert!(
        e.message
            .contains("expected `f` = \"transfer\" or \"read\""),
        "{e}"
    );
}
