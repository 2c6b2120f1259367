//! The version-vector checker on hand-built histories: one valid history in which siblings
//! appear and are resolved, and one history per violation kind.

use checkers::Validity;
use checkers::history::jsonl;
use checkers::version_vectors::{self, VvResult, WriteOutcome};
use serde_json::{Value, json};

/// Builds a history one event at a time (each event gets the next index).
#[derive(Default)]
struct Builder {
    lines: Vec<String>,
}

impl Builder {
    fn event(&mut self, process: Value, kind: &str, f: &str, value: Value) -> &mut Self {
        let index = self.lines.len();
        self.lines.push(
            json!({"index": index, "process": process, "type": kind, "f": f, "value": value})
                .to_string(),
        );
        self
    }

    fn invoke_write(&mut self, p: u64, key: u64, v: u64, ctx: Value) -> &mut Self {
        self.event(
            json!(p),
            "invoke",
            "write",
            json!([key, {"value": v, "context": ctx}]),
        )
    }

    fn end_write(&mut self, p: u64, kind: &str, key: u64, v: u64, ctx: Value) -> &mut Self {
        self.event(
            json!(p),
            kind,
            "write",
            json!([key, {"value": v, "context": ctx}]),
        )
    }

    /// A write that completes `ok` right away.
    fn write(&mut self, p: u64, key: u64, v: u64, ctx: Value) -> &mut Self {
        self.invoke_write(p, key, v, ctx.clone())
            .end_write(p, "ok", key, v, ctx)
    }

    fn invoke_read(&mut self, p: u64, key: u64) -> &mut Self {
        self.event(json!(p), "invoke", "read", json!([key, null]))
    }

    fn end_read(&mut self, p: u64, key: u64, siblings: Value, ctx: Value) -> &mut Self {
        self.event(
            json!(p),
            "ok",
            "read",
            json!([key, {"siblings": siblings, "context": ctx}]),
        )
    }

    /// A read that completes `ok` right away.
    fn read(&mut self, p: u64, key: u64, siblings: Value, ctx: Value) -> &mut Self {
        self.invoke_read(p, key).end_read(p, key, siblings, ctx)
    }

    /// The heal: final reads are the ones invoked after the last nemesis operation.
    fn heal(&mut self) -> &mut Self {
        self.event(json!("nemesis"), "info", "stop-partition", Value::Null)
    }

    fn check(&self) -> VvResult {
        let history = jsonl::parse(&self.lines.join("\n"), "<test>").unwrap();
        version_vectors::check(&history).unwrap()
    }
}

#[test]
fn concurrent_writes_become_siblings_and_a_covering_write_resolves_them() {
    let mut h = Builder::default();
    h.read(0, 1, json!([]), json!({}))
        .invoke_write(0, 1, 10, json!({}))
        .write(1, 1, 20, Value::Null) // concurrent with 10: a blind write
        .end_write(0, "ok", 1, 10, json!({}))
        .read(0, 1, json!([10, 20]), json!({"n1": 1, "n2": 1}))
        // The context's key order does not matter.
        .write(0, 1, 30, json!({"n2": 1, "n1": 1}))
        .read(1, 1, json!([30]), json!({"n1": 2, "n2": 1}))
        .heal()
        .read(2, 1, json!([30]), json!({"n1": 2, "n2": 1}))
        .read(3, 1, json!([30]), json!({"n1": 2, "n2": 1}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    assert_eq!(r.max_siblings(), 2);
    assert_eq!(r.reads_with_siblings(), 1);
    assert_eq!(r.final_reads, 2);
    assert_eq!(r.unmatched_contexts, 0);
    let fin = &r.finals["1"];
    assert!(fin.converged);
    assert_eq!(fin.siblings, vec![json!(30)]);
    let doc = r.to_json();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["sibling_counts"], json!({"0": 1, "1": 3, "2": 1}));
}

#[test]
fn an_acknowledged_write_missing_at_the_end_is_lost() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .write(1, 1, 20, Value::Null)
        .heal()
        .read(2, 1, json!([20]), json!({"n1": 2}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.lost_count, 1);
    let lost = &r.lost[0];
    assert_eq!(lost.value, json!(10));
    assert_eq!(lost.write, 1, "names the write's completion");
    assert_eq!(lost.outcome, WriteOutcome::Ok);
    assert_eq!(lost.final_read, 6);
    assert_eq!((r.dominated_count, r.resurrected_count), (0, 0));
    let text = r.explain();
    assert!(text.contains("1 lost write"), "{text}");
    assert!(text.contains("value 10 (write op 1, ok)"), "{text}");
}

#[test]
fn a_write_superseded_by_a_covering_write_is_not_lost() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(1, 1, json!([10]), json!({"n1": 1}))
        .write(1, 1, 20, json!({"n1": 1}))
        .heal()
        .read(2, 1, json!([20]), json!({"n1": 2}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
}

#[test]
fn an_unacknowledged_write_may_vanish_unless_someone_read_it() {
    let mut h = Builder::default();
    h.invoke_write(0, 1, 10, Value::Null)
        .end_write(0, "info", 1, 10, Value::Null)
        .write(1, 1, 20, Value::Null)
        .heal()
        .read(2, 1, json!([20]), json!({"n1": 2}));
    assert_eq!(h.check().validity, Validity::Valid);

    // Once read, it happened: it must survive.
    let mut h = Builder::default();
    h.invoke_write(0, 1, 10, Value::Null)
        .end_write(0, "info", 1, 10, Value::Null)
        .read(1, 1, json!([10]), json!({"n1": 1}))
        .write(1, 2, 20, Value::Null)
        .heal()
        .read(2, 1, json!([]), json!({}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.lost[0].value, json!(10));
    assert_eq!(r.lost[0].outcome, WriteOutcome::Info);
    assert!(r.lost[0].observed);
}

#[test]
fn a_sibling_returned_with_its_superseder_is_dominated() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(0, 1, json!([10]), json!({"n1": 1}))
        .write(0, 1, 20, json!({"n1": 1}))
        .read(1, 1, json!([10, 20]), json!({"n1": 2}))
        .heal()
        .read(2, 1, json!([20]), json!({"n1": 2}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.dominated_count, 1);
    let d = &r.dominated[0];
    assert_eq!((d.dominated.clone(), d.by.clone()), (json!(10), json!(20)));
    assert_eq!(d.read, 7);
    assert_eq!(d.by_write, 4);
    assert_eq!(d.by_write_basis, Some(3));
    assert_eq!(r.lost_count, 0);
    assert!(
        r.explain()
            .contains("returned [10, 20] with 10 superseded by 20")
    );
}

#[test]
fn domination_is_transitive() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(0, 1, json!([10]), json!({"n1": 1}))
        .write(0, 1, 20, json!({"n1": 1}))
        .read(0, 1, json!([20]), json!({"n1": 2}))
        .write(0, 1, 30, json!({"n1": 2}))
        .read(1, 1, json!([10, 30]), json!({"n1": 3}));
    let r = h.check();
    assert_eq!(r.dominated_count, 1);
    assert_eq!(r.dominated[0].by, json!(30));
}

#[test]
fn a_value_seen_superseded_must_not_come_back_in_a_final_read() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(0, 1, json!([10]), json!({"n1": 1}))
        // The superseding write is never acknowledged, but process 1 reads it.
        .invoke_write(0, 1, 20, json!({"n1": 1}))
        .end_write(0, "info", 1, 20, json!({"n1": 1}))
        .read(1, 1, json!([20]), json!({"n1": 2}))
        .heal()
        .read(2, 1, json!([10]), json!({"n1": 1}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.resurrected_count, 1);
    let res = &r.resurrected[0];
    assert_eq!(res.value, json!(10));
    assert_eq!(res.superseded_by, json!(20));
    assert_eq!(res.seen_superseded_at, 7);
    assert_eq!(res.seen_by_process, 1);
    assert_eq!(res.returned_at, 10);
    assert_eq!(res.scope, "final");
    // The write that was read is lost as well.
    assert_eq!(r.lost_count, 1);
    assert_eq!(r.lost[0].value, json!(20));
    assert!(
        r.explain()
            .contains("value 10 came back in final read op 10")
    );
}

#[test]
fn a_value_must_not_come_back_within_a_process() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(0, 1, json!([10]), json!({"n1": 1}))
        .write(0, 1, 20, json!({"n1": 1}))
        .read(1, 1, json!([20]), json!({"n1": 2}))
        .read(1, 1, json!([10]), json!({"n1": 1}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.resurrected_count, 1);
    assert_eq!(r.resurrected[0].scope, "process");
    assert_eq!(r.resurrected[0].returned_at, 9);
    // Process 1 also lost sight of 20.
    assert_eq!(r.backwards_count, 1);
}

#[test]
fn a_process_whose_context_goes_backwards_is_caught() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .write(1, 1, 20, Value::Null)
        .read(2, 1, json!([10, 20]), json!({"n1": 1, "n2": 1}))
        .read(2, 1, json!([10]), json!({"n1": 1}))
        .heal()
        .read(3, 1, json!([10, 20]), json!({"n1": 1, "n2": 1}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.backwards_count, 1);
    let b = &r.backwards[0];
    assert_eq!((b.process, b.earlier_read, b.read), (2, 5, 7));
    assert_eq!(b.missing, vec![json!(20)]);
    assert_eq!(
        (r.lost_count, r.dominated_count, r.resurrected_count),
        (0, 0, 0)
    );
    // Another process reading less is only a stale read: allowed.
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .write(1, 1, 20, Value::Null)
        .read(2, 1, json!([10, 20]), json!({"n1": 1, "n2": 1}))
        .read(3, 1, json!([10]), json!({"n1": 1}))
        .heal()
        .read(3, 1, json!([10, 20]), json!({"n1": 1, "n2": 1}));
    assert_eq!(h.check().validity, Validity::Valid);
}

#[test]
fn values_never_written_or_failed_are_unexpected() {
    let mut h = Builder::default();
    h.invoke_write(0, 1, 10, Value::Null)
        .end_write(0, "fail", 1, 10, Value::Null)
        .read(1, 1, json!([10, 99]), json!({"n1": 2}));
    let r = h.check();
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.unexpected_count, 2);
    assert!(r.unexpected[0].reason.contains("failed (op 1)"));
    assert_eq!(r.unexpected[1].reason, "never written");
}

#[test]
fn without_a_final_read_lost_writes_cannot_be_judged() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .read(0, 1, json!([10]), json!({"n1": 1}))
        .heal();
    let r = h.check();
    assert_eq!(r.validity, Validity::Unknown);
    assert!(r.unknown[0].contains("key 1"), "{:?}", r.unknown);
}

#[test]
fn keys_are_judged_independently() {
    let mut h = Builder::default();
    h.write(0, 1, 10, Value::Null)
        .write(0, 2, 10, Value::Null)
        .heal()
        .read(1, 1, json!([10]), json!({"n1": 1}))
        .read(1, 2, json!([]), json!({}));
    let r = h.check();
    assert_eq!(r.lost_count, 1);
    assert_eq!(r.lost[0].key, "2");
}

#[test]
fn malformed_operations_are_errors_naming_the_op() {
    for (lines, needle) in [
        (
            vec![
                r#"{"process":0,"type":"invoke","f":"write","value":[1,5]}"#,
                r#"{"process":0,"type":"ok","f":"write","value":[1,5]}"#,
            ],
            "op 0: expected a value of the form [key, {\"value\"",
        ),
        (
            vec![
                r#"{"process":0,"type":"invoke","f":"read","value":[1,null]}"#,
                r#"{"process":0,"type":"ok","f":"read","value":[1,{"siblings":3}]}"#,
            ],
            "op 1: a read's completion value",
        ),
        (
            vec![
                r#"{"process":0,"type":"invoke","f":"write","value":[1,{"value":1,"context":null}]}"#,
                r#"{"process":0,"type":"ok","f":"write","value":[1,{"value":1,"context":null}]}"#,
                r#"{"process":0,"type":"invoke","f":"write","value":[1,{"value":1,"context":null}]}"#,
                r#"{"process":0,"type":"ok","f":"write","value":[1,{"value":1,"context":null}]}"#,
            ],
            "unique per key",
        ),
        (
            vec![r#"{"process":0,"type":"ok","f":"read","value":[1,null]}"#],
            "without an open invocation",
        ),
    ] {
        let history = jsonl::parse(&lines.join("\n"), "<test>").unwrap();
        let err = version_vectors::check(&history).unwrap_err();
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
}
