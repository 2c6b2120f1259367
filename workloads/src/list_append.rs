//! `list-append`: Elle-style transactions of 1–4 micro-operations `["append", k, v]` and
//! `["r", k, null]` over a few keys, each value appended once per key. A key takes at most
//! [`MAX_WRITES_PER_KEY`] appends, then a fresh key replaces it, so lists stay short and
//! version orders easy to infer (Jepsen's `max-writes-per-key`).
//!
//! Completions carry the system's commit timestamp as `commit_ts`. The history is checked by
//! the Elle-style list-append checker (strict serializability) and by the external-consistency
//! checker (timestamps against real time, reads against timestamp order).

use crate::checks::{checker_result, stats_checkers};
use crate::outcome::{Completion, Invocation, Outcome, error_completion};
use crate::{CheckReport, Workload, WorkloadOptions};
use checkers::{History, OpType, elle, external_consistency};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// Appends per key before it is retired.
pub const MAX_WRITES_PER_KEY: u64 = 32;
/// Micro-operations per transaction: 1 to this many.
pub const MAX_TXN_LEN: usize = 4;
/// Keys per final read-only transaction.
const FINAL_READ_KEYS: usize = 8;

pub struct ListAppend {
    /// Keys in use: each gets appends until it has `MAX_WRITES_PER_KEY`.
    active: Vec<u64>,
    /// Appends handed out so far for each active key.
    appended: Vec<u64>,
    next_key: u64,
}

impl ListAppend {
    pub fn new(opts: WorkloadOptions) -> Self {
        let keys = opts.keys.max(1);
        ListAppend {
            active: (0..keys as u64).collect(),
            appended: vec![0; keys],
            next_key: keys as u64,
        }
    }
}

fn is_read_only(value: &Value) -> bool {
    value.as_array().is_some_and(|mops| {
        mops.iter()
            .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
    })
}

/// The `commit_ts` of a reply, as the history's extra field.
pub(crate) fn commit_ts_extra(body: &Value) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(ts) = body.get("commit_ts").filter(|t| t.is_i64() || t.is_u64()) {
        extra.insert("commit_ts".into(), ts.clone());
    }
    extra
}

impl Workload for ListAppend {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn next_invocation(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        let len = rng.random_range(1..=MAX_TXN_LEN);
        let mut mops = Vec::with_capacity(len);
        for _ in 0..len {
            let slot = rng.random_range(0..self.active.len());
            let key = self.active[slot];
            if rng.random_bool(0.5) {
                mops.push(json!(["r", key, null]));
                continue;
            }
            self.appended[slot] += 1;
            mops.push(json!(["append", key, self.appended[slot]]));
            if self.appended[slot] >= MAX_WRITES_PER_KEY {
                self.active[slot] = self.next_key;
                self.appended[slot] = 0;
                self.next_key += 1;
            }
        }
        Invocation {
            f: "txn".into(),
            value: Value::Array(mops),
        }
    }

    fn request_body(&self, inv: &Invocation) -> Value {
        json!({"type": "txn", "txn": inv.value})
    }

    fn complete(&self, inv: &Invocation, outcome: &Outcome) -> Completion {
        if let Some(c) = error_completion(inv, outcome, is_read_only(&inv.value)) {
            return c;
        }
        let Outcome::Reply(body) = outcome else {
            unreachable!("a timeout is an error completion");
        };
        let value = match body.get("txn").and_then(Value::as_array) {
            Some(mops) => Value::Array(
                mops.iter()
                    .map(|m| match m.as_array().map(Vec::as_slice) {
                        // A key never appended to is the empty list.
                        Some([f, k, Value::Null]) if f == "r" => json!(["r", k, []]),
                        _ => m.clone(),
                    })
                    .collect(),
            ),
            None => inv.value.clone(),
        };
        Completion {
            kind: OpType::Ok,
            value,
            error: None,
            extra: commit_ts_extra(body),
        }
    }

    fn final_invocations(&self) -> Vec<Invocation> {
        let keys: Vec<u64> = (0..self.next_key).collect();
        keys.chunks(FINAL_READ_KEYS)
            .map(|chunk| Invocation {
                f: "txn".into(),
                value: Value::Array(chunk.iter().map(|k| json!(["r", k, null])).collect()),
            })
            .collect()
    }

    fn check(&self, history: &History) -> CheckReport {
        let mut checkers = Vec::new();
        let elle_opts = elle::Options::default();
        checkers.push(checker_result(
            "list-append",
            elle::check_list_append(history, &elle_opts),
            |r| (r.validity, r.to_json(), r.explain()),
        ));
        checkers.push(checker_result(
            "external-consistency",
            external_consistency::check(history),
            |r| (r.validity, r.to_json(), r.explain()),
        ));
        checkers.extend(stats_checkers(history));
        CheckReport { checkers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn workload(keys: usize) -> ListAppend {
        ListAppend::new(WorkloadOptions {
            keys,
            ..Default::default()
        })
    }

    #[test]
    fn values_are_unique_per_key_and_keys_retire() {
        let mut w = workload(2);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = std::collections::BTreeSet::new();
        let mut max_key = 0;
        for _ in 0..500 {
            let inv = w.next_invocation(&mut rng);
            let mops = inv.value.as_array().unwrap();
            assert!((1..=MAX_TXN_LEN).contains(&mops.len()));
            for m in mops {
                let key = m[1].as_u64().unwrap();
                max_key = max_key.max(key);
                if m[0] == "append" {
                    assert!(seen.insert((key, m[2].as_u64().unwrap())), "{m} twice");
                    assert!(m[2].as_u64().unwrap() <= MAX_WRITES_PER_KEY);
                }
            }
        }
        assert!(max_key > 2, "keys were retired and replaced");
        let finals = w.final_invocations();
        let read: usize = finals
            .iter()
            .map(|i| i.value.as_array().unwrap().len())
            .sum();
        assert_eq!(read as u64, w.next_key);
        assert!(finals.iter().all(|i| is_read_only(&i.value)));
    }

    #[test]
    fn completions_carry_commit_ts_and_empty_lists() {
        let w = workload(3);
        let inv = Invocation {
            f: "txn".into(),
            value: json!([["append", 1, 4], ["r", 2, null]]),
        };
        let reply = json!({"type": "txn_ok", "txn": [["append", 1, 4], ["r", 2, null]],
                           "commit_ts": 1234});
        let c = w.complete(&inv, &Outcome::Reply(reply));
        assert_eq!(c.kind, OpType::Ok);
        assert_eq!(c.value, json!([["append", 1, 4], ["r", 2, []]]));
        assert_eq!(c.extra["commit_ts"], 1234);
        assert_eq!(w.complete(&inv, &Outcome::Timeout).kind, OpType::Info);
        let read = Invocation {
            f: "txn".into(),
            value: json!([["r", 2, null]]),
        };
        assert_eq!(w.complete(&read, &Outcome::Timeout).kind, OpType::Fail);
        assert_eq!(
            w.request_body(&inv),
            json!({"type": "txn", "txn": [["append", 1, 4], ["r", 2, null]]})
        );
    }
}
