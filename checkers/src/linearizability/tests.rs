//! End-to-end tests of `check`: small known histories, budgets, input errors, fairness.

use super::*;
use crate::history::{Op, OpType, Process};
use crate::verdict::Validity;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// Events as (process, type, f, value); indices are positions.
fn history(events: &[(u64, &str, &str, Value)]) -> History {
    History::new(
        events
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, v))| Op {
                index: i as u64,
                time: None,
                process: Process::Client(*p),
                kind: OpType::parse(t).unwrap(),
                f: (*f).into(),
                value: v.clone(),
                error: None,
                node: None,
                extra: Map::new(),
            })
            .collect(),
    )
}

fn opts(model: ModelKind) -> Options {
    Options::new(model)
}

fn first_op(result: &LinResult) -> u64 {
    result.counterexample.as_ref().expect("invalid").op.index
}

#[test]
fn model_names_round_trip() {
    for &m in ModelKind::all() {
        assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
    }
    assert!(
        "bogus"
            .parse::<ModelKind>()
            .unwrap_err()
            .contains("cas-register")
    );
}

#[test]
fn concurrent_read_of_an_unwritten_value_is_refuted_at_its_completion() {
    // Knossos's rethink-fail-minimal: after write 0, a read concurrent with write 4 returns 3.
    let h = history(&[
        (0, "invoke", "write", json!(0)),
        (0, "ok", "write", json!(0)),
        (1, "invoke", "read", Value::Null),
        (2, "invoke", "write", json!(4)),
        (1, "ok", "read", json!(3)),
        (2, "ok", "write", json!(4)),
        (3, "invoke", "read", Value::Null),
        (3, "ok", "read", json!(4)),
    ]);
    let r = check(&h, &opts(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    let c = r.counterexample.as_ref().unwrap();
    assert_eq!(c.op.index, 4);
    assert_eq!(c.op.invoke_index, 2);
    assert_eq!(c.op.value, json!(3));
    assert_eq!(c.previous_ok.as_ref().unwrap().index, 1);
    assert!(!c.final_paths.is_empty());
    assert!(
        c.final_paths
            .iter()
            .all(|p| p.failing_op.index == 4 && p.failure.contains("can't read 3")),
        "{:?}",
        c.final_paths
    );
    let j = r.to_json();
    assert_eq!(j["valid"], json!(false));
    assert_eq!(j["op"]["index"], json!(4));
    assert_eq!(j["op"]["invoke_index"], json!(2));
    assert_eq!(j["previous_ok"]["index"], json!(1));
    assert!(
        j["final_paths"][0]["failure"]
            .as_str()
            .unwrap()
            .contains("can't read 3")
    );
    let text = r.explain();
    assert!(text.contains("op 4: process 1 read → 3"), "{text}");
}

#[test]
fn linearizable_history_with_info_and_pending_is_valid() {
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (1, "invoke", "cas", json!([1, 2])),
        (0, "ok", "write", json!(1)),
        (1, "info", "cas", json!([1, 2])),
        (2, "invoke", "read", Value::Null),
        (2, "ok", "read", json!(2)),
        (3, "invoke", "write", json!(7)),
        (4, "invoke", "read", Value::Null),
        (4, "ok", "read", json!(7)),
    ]);
    let r = check(&h, &opts(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    assert_eq!(r.to_json()["valid"], json!(true));
}

#[test]
fn a_read_of_null_matches_any_state_and_a_failed_cas_did_not_happen() {
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "cas", json!([1, 5])),
        (1, "fail", "cas", json!([1, 5])),
        (2, "invoke", "read", Value::Null),
        (2, "ok", "read", Value::Null),
        (2, "invoke", "read", Value::Null),
        (2, "ok", "read", json!(1)),
    ]);
    let mut o = opts(ModelKind::CasRegister);
    o.init = Some(json!(0));
    assert_eq!(check(&h, &o).unwrap().validity, Validity::Valid);
}

#[test]
fn kv_refutation_names_the_key_and_ignores_other_keys() {
    let h = history(&[
        (0, "invoke", "write", json!(["a", 1])),
        (0, "ok", "write", json!(["a", 1])),
        (1, "invoke", "write", json!([7, 2])),
        (1, "ok", "write", json!([7, 2])),
        (0, "invoke", "read", json!(["a", null])),
        (0, "ok", "read", json!(["a", 1])),
        (1, "invoke", "read", json!([7, null])),
        (1, "ok", "read", json!([7, 1])),
    ]);
    let r = check(&h, &opts(ModelKind::Kv)).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.counterexample.as_ref().unwrap().key, Some(json!(7)));
    assert_eq!(first_op(&r), 7);
    assert_eq!(r.to_json()["key"], json!(7));
    assert_eq!(r.stats.keys, 2);
}

#[test]
fn kv_string_appends_concatenate() {
    let mut events = vec![
        (0, "invoke", "put", json!(["k", "a"])),
        (0, "ok", "put", json!(["k", "a"])),
        (1, "invoke", "append", json!(["k", "b"])),
        (2, "invoke", "append", json!(["k", "c"])),
        (1, "ok", "append", json!(["k", "b"])),
        (2, "ok", "append", json!(["k", "c"])),
        (0, "invoke", "get", json!(["k", null])),
        (0, "ok", "get", json!(["k", "acb"])),
    ];
    assert_eq!(
        check(&history(&events), &opts(ModelKind::KvString))
            .unwrap()
            .validity,
        Validity::Valid
    );
    events[7].3 = json!(["k", "abcb"]);
    let r = check(&history(&events), &opts(ModelKind::KvString)).unwrap();
    assert_eq!(r.validity, Validity::Invalid);
    assert!(
        r.explain().contains("get returned \"abcb\""),
        "{}",
        r.explain()
    );
}

#[test]
fn mutex_cannot_be_acquired_twice() {
    let h = history(&[
        (0, "invoke", "acquire", Value::Null),
        (0, "ok", "acquire", Value::Null),
        (1, "invoke", "acquire", Value::Null),
        (1, "ok", "acquire", Value::Null),
    ]);
    let r = check(&h, &opts(ModelKind::Mutex)).unwrap();
    assert_eq!(first_op(&r), 3);
    let mut locked = opts(ModelKind::Mutex);
    locked.init = Some(json!("locked"));
    assert_eq!(first_op(&check(&h, &locked).unwrap()), 1);
    locked.init = Some(json!("ajar"));
    let err = check(&h, &locked).unwrap_err();
    assert_eq!(err.source, "<init>");
}

#[test]
fn crashed_dequeue_may_remove_any_element_of_an_unordered_queue() {
    let h = history(&[
        (0, "invoke", "enqueue", json!(1)),
        (0, "ok", "enqueue", json!(1)),
        (0, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(2)),
        (2, "invoke", "dequeue", Value::Null),
        (2, "ok", "dequeue", json!(2)),
        (1, "invoke", "dequeue", Value::Null),
        (1, "info", "dequeue", Value::Null),
        (2, "invoke", "dequeue", Value::Null),
        (2, "ok", "dequeue", Value::Null),
    ]);
    // The crashed dequeue took 1, so the queue was empty at the end.
    assert_eq!(
        check(&h, &opts(ModelKind::UnorderedQueue))
            .unwrap()
            .validity,
        Validity::Valid
    );
    // A FIFO queue cannot dequeue 2 while 1 is at its head.
    let r = check(&h, &opts(ModelKind::FifoQueue)).unwrap();
    assert_eq!(first_op(&r), 5);
    assert!(r.explain().contains("the head is 1"), "{}", r.explain());
    // Without the crashed dequeue, the final empty dequeue is impossible.
    let mut without = h.clone();
    without.ops.drain(6..8);
    let r = check(&without, &opts(ModelKind::UnorderedQueue)).unwrap();
    assert_eq!(first_op(&r), 9);
    assert!(
        r.explain().contains("found the queue empty"),
        "{}",
        r.explain()
    );
}

#[test]
fn multi_register_transactions_read_their_own_writes() {
    let h = history(&[
        (
            0,
            "invoke",
            "txn",
            json!([["w", "x", 1], ["r", "x", null], ["r", "y", null]]),
        ),
        (
            0,
            "ok",
            "txn",
            json!([["w", "x", 1], ["r", "x", 1], ["r", "y", 0]]),
        ),
        (
            1,
            "invoke",
            "txn",
            json!([["read", "x", null], ["write", "y", 2]]),
        ),
        (1, "ok", "txn", json!([["read", "x", 0], ["write", "y", 2]])),
    ]);
    let mut o = opts(ModelKind::MultiRegister);
    o.init = Some(json!({"x": 0, "y": 0}));
    let r = check(&h, &o).unwrap();
    assert_eq!(first_op(&r), 3);
    assert!(
        r.explain().contains("can't read x = 0: it is 1"),
        "{}",
        r.explain()
    );
}

#[test]
fn malformed_values_and_unknown_functions_name_the_op() {
    let h = history(&[(0, "invoke", "cas", json!(3)), (0, "ok", "cas", json!(3))]);
    let err = check(&h, &opts(ModelKind::CasRegister)).unwrap_err();
    assert_eq!(err.source, "<history>");
    assert!(err.message.starts_with("op 1 (cas)"), "{}", err.message);
    assert!(err.message.contains("[old, new]"), "{}", err.message);
    let err = check(&h, &opts(ModelKind::Register)).unwrap_err();
    assert!(
        err.message.contains("expected read or write"),
        "{}",
        err.message
    );
    let kv = history(&[(0, "invoke", "write", json!(5))]);
    let err = check(&kv, &opts(ModelKind::Kv)).unwrap_err();
    assert!(err.message.contains("op 0"), "{}", err.message);
}

#[test]
fn two_open_invocations_are_an_input_error() {
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "invoke", "write", json!(2)),
    ]);
    let err = check(&h, &opts(ModelKind::Register)).unwrap_err();
    assert!(err.message.starts_with("op 1:"), "{}", err.message);
}

/// `writers` crashed writes of distinct values, all concurrent, then reads of each in turn and
/// a read of a value never written: refuting it means trying every subset of the writes.
fn intractable(key: &str, writers: u64) -> Vec<(u64, &'static str, &'static str, Value)> {
    let mut events = Vec::new();
    for w in 0..writers {
        events.push((100 + w, "invoke", "write", json!([key, w])));
    }
    for w in 0..writers {
        events.push((1, "invoke", "read", json!([key, null])));
        events.push((1, "ok", "read", json!([key, w])));
    }
    events.push((1, "invoke", "read", json!([key, null])));
    events.push((1, "ok", "read", json!([key, -1])));
    events
}

#[test]
fn time_limit_gives_unknown_time() {
    let h = history(&intractable("slow", 40));
    let mut o = opts(ModelKind::Kv);
    o.time_limit = Some(Duration::from_millis(300));
    let started = Instant::now();
    let r = check(&h, &o).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.validity, Validity::Unknown);
    assert_eq!(r.cause, Some(UnknownCause::Time));
    assert_eq!(r.to_json()["cause"], json!("time"));
    assert_eq!(r.to_json()["valid"], json!("unknown"));
    assert!(r.explain().contains("time limit"), "{}", r.explain());
}

#[test]
fn memory_limit_gives_unknown_memory() {
    let h = history(&intractable("slow", 40));
    let mut o = opts(ModelKind::Kv);
    o.memory_limit = Some(1 << 20);
    let r = check(&h, &o).unwrap();
    assert_eq!(r.validity, Validity::Unknown);
    assert_eq!(r.cause, Some(UnknownCause::Memory));
    assert!(r.stats.peak_search_bytes <= 1 << 20);
}

#[test]
fn an_intractable_key_does_not_hide_a_cheap_violation() {
    let mut events = intractable("slow", 40);
    // The cheap key comes after the intractable one, and is refuted at its 400th operation.
    for i in 0..200 {
        events.push((2, "invoke", "write", json!(["cheap", i])));
        events.push((2, "ok", "write", json!(["cheap", i])));
    }
    events.push((2, "invoke", "read", json!(["cheap", null])));
    events.push((2, "ok", "read", json!(["cheap", 5])));
    let bad_read = events.len() as u64 - 1;
    let h = history(&events);
    for threads in [Some(1), None] {
        let mut o = opts(ModelKind::Kv);
        o.threads = threads;
        o.time_limit = Some(Duration::from_secs(60));
        o.memory_limit = Some(1 << 30);
        let r = check(&h, &o).unwrap();
        assert_eq!(r.validity, Validity::Invalid, "{}", r.explain());
        assert_eq!(r.counterexample.as_ref().unwrap().key, Some(json!("cheap")));
        assert_eq!(first_op(&r), bad_read);
        // The intractable key was stopped, not run to exhaustion.
        assert_eq!(r.stats.keys_stopped, 1, "{:?}", r.stats);
        assert!(r.stats.elapsed < Duration::from_secs(20), "{:?}", r.stats);
    }
}
