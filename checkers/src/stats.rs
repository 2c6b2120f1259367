//! Counts per `f` and outcome (Jepsen's stats checker) and availability (share of `ok`).

use crate::history::{History, OpType};
use crate::verdict::Validity;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    fn to_json(self) -> Value {
        json!({"count": self.total(), "ok": self.ok, "fail": self.fail, "info": self.info})
    }
}

/// Client completions counted by `f`.
pub fn counts_by_f(history: &History) -> BTreeMap<String, Counts> {
    let mut by_f: BTreeMap<String, Counts> = BTreeMap::new();
    for op in history.client_ops() {
        let c = by_f.entry(op.f.clone()).or_default();
        match op.kind {
            OpType::Ok => c.ok += 1,
            OpType::Fail => c.fail += 1,
            OpType::Info => c.info += 1,
            OpType::Invoke => {}
        }
    }
    by_f
}

/// Jepsen's stats: invalid when some function never once succeeded.
pub fn stats(history: &History) -> (Validity, Value) {
    let by_f = counts_by_f(history);
    let total = by_f.values().fold(Counts::default(), |a, c| Counts {
        ok: a.ok + c.ok,
        fail: a.fail + c.fail,
        info: a.info + c.info,
    });
    let never_ok: Vec<&String> = by_f
        .iter()
        .filter(|(_, c)| c.ok == 0)
        .map(|(f, _)| f)
        .collect();
    let validity = if never_ok.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let by_f_json: serde_json::Map<String, Value> =
        by_f.iter().map(|(f, c)| (f.clone(), c.to_json())).collect();
    let mut doc = total.to_json();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("valid".into(), validity.to_json());
        obj.insert("by_f".into(), Value::Object(by_f_json));
        if !never_ok.is_empty() {
            obj.insert("never_ok".into(), json!(never_ok));
        }
    }
    (validity, doc)
}

/// Availability: the share of client operations that completed `ok`. Informational: always
/// valid, unless `min_ok_share` is given and not reached.
pub fn availability(history: &History, min_ok_share: Option<f64>) -> (Validity, Value) {
    let by_f = counts_by_f(history);
    let (ok, total) = by_f
        .values()
        .fold((0, 0), |(ok, total), c| (ok + c.ok, total + c.total()));
    let share = if total == 0 {
        1.0
    } else {
        ok as f64 / total as f64
    };
    let validity = match min_ok_share {
        Some(min) if share < min => Validity::Invalid,
        _ => Validity::Valid,
    };
    (
        validity,
        json!({"valid": validity.to_json(), "ok_share": share, "ok": ok, "total": total}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::jsonl;

    fn history(lines: &[&str]) -> History {
        jsonl::parse(&lines.join("\n"), "<test>").unwrap()
    }

    #[test]
    fn counts_and_never_ok_function_is_invalid() {
        let h = history(&[
            r#"{"process":0,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1}"#,
            r#"{"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
            r#"{"process":1,"type":"fail","f":"cas","value":[1,2]}"#,
            r#"{"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#,
        ]);
        let (v, doc) = stats(&h);
        assert_eq!(v, Validity::Invalid);
        assert_eq!(doc["by_f"]["read"]["ok"], 1);
        assert_eq!(doc["by_f"]["cas"]["fail"], 1);
        assert_eq!(doc["never_ok"], json!(["cas"]));
        let (a, doc) = availability(&h, None);
        assert_eq!(a, Validity::Valid);
        assert_eq!(doc["ok_share"], 0.5);
        assert_eq!(availability(&h, Some(0.9)).0, Validity::Invalid);
    }
}
