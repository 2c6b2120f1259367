//! `lin-kv`: read, write and cas on a few keys with small values (so cas often succeeds),
//! checked for linearizability with the `kv` model (Jepsen's `independent` convention).

use crate::checks::{checker_result, stats_checkers};
use crate::outcome::{Completion, Invocation, Outcome, error_completion};
use crate::{CheckReport, Workload, WorkloadOptions};
use checkers::linearizability::{self, ModelKind};
use checkers::{History, OpType};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Values are drawn from `0..VALUES`: few enough that cas often finds what it expects.
const VALUES: u64 = 5;

pub struct LinKv {
    opts: WorkloadOptions,
}

impl LinKv {
    pub fn new(opts: WorkloadOptions) -> Self {
        LinKv { opts }
    }
}

fn key_of(value: &Value) -> Value {
    value.get(0).cloned().unwrap_or(Value::Null)
}

impl Workload for LinKv {
    fn name(&self) -> &'static str {
        "lin-kv"
    }

    fn next_invocation(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        let key = rng.random_range(0..self.opts.keys.max(1) as u64);
        match rng.random_range(0..4) {
            0 | 1 => Invocation {
                f: "read".into(),
                value: json!([key, null]),
            },
            2 => Invocation {
                f: "write".into(),
                value: json!([key, rng.random_range(0..VALUES)]),
            },
            _ => Invocation {
                f: "cas".into(),
                value: json!([
                    key,
                    [rng.random_range(0..VALUES), rng.random_range(0..VALUES)]
                ]),
            },
        }
    }

    fn request_body(&self, inv: &Invocation) -> Value {
        let key = key_of(&inv.value);
        let arg = inv.value.get(1).cloned().unwrap_or(Value::Null);
        match inv.f.as_str() {
            "read" => json!({"type": "read", "key": key}),
            "write" => json!({"type": "write", "key": key, "value": arg}),
            _ => json!({"type": "cas", "key": key, "from": arg.get(0), "to": arg.get(1)}),
        }
    }

    fn complete(&self, inv: &Invocation, outcome: &Outcome) -> Completion {
        let read_only = inv.f == "read";
        if let Some(c) = error_completion(inv, outcome, read_only) {
            return c;
        }
        let value = match (inv.f.as_str(), outcome) {
            ("read", Outcome::Reply(body)) => json!([
                key_of(&inv.value),
                body.get("value").cloned().unwrap_or(Value::Null)
            ]),
            _ => inv.value.clone(),
        };
        Completion {
            kind: OpType::Ok,
            value,
            error: None,
            extra: Default::default(),
        }
    }

    fn final_invocations(&self) -> Vec<Invocation> {
        (0..self.opts.keys.max(1) as u64)
            .map(|k| Invocation {
                f: "read".into(),
                value: json!([k, null]),
            })
            .collect()
    }

    fn check(&self, history: &History) -> CheckReport {
        let mut lin_opts = linearizability::Options::new(ModelKind::Kv);
        lin_opts.time_limit = self.opts.check_time_limit;
        let mut checkers = vec![checker_result(
            "linearizability",
            linearizability::check(history, &lin_opts),
            |r| (r.validity, r.to_json(), r.explain()),
        )];
        checkers.extend(stats_checkers(history));
        CheckReport { checkers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(f: &str, value: Value) -> Invocation {
        Invocation { f: f.into(), value }
    }

    fn lin_kv() -> LinKv {
        LinKv::new(WorkloadOptions::default())
    }

    #[test]
    fn read_reply_fills_in_the_value() {
        let c = lin_kv().complete(
            &inv("read", json!([3, null])),
            &Outcome::Reply(json!({"type": "read_ok", "value": 4})),
        );
        assert_eq!(c.kind, OpType::Ok);
        assert_eq!(c.value, json!([3, 4]));
    }

    #[test]
    fn timeouts_are_info_for_writes_and_fail_for_reads() {
        let w = lin_kv();
        let write = w.complete(&inv("write", json!([1, 2])), &Outcome::Timeout);
        assert_eq!(write.kind, OpType::Info);
        assert!(write.retires_process());
        let read = w.complete(&inv("read", json!([1, null])), &Outcome::Timeout);
        assert_eq!(read.kind, OpType::Fail);
        assert!(!read.retires_process());
    }

    #[test]
    fn definite_errors_fail_and_indefinite_errors_are_info() {
        let w = lin_kv();
        let not_leader = json!({"type":"error","code":11,"text":"not leader","definite":true});
        let c = w.complete(&inv("cas", json!([1, [0, 1]])), &Outcome::Reply(not_leader));
        assert_eq!(c.kind, OpType::Fail);
        assert_eq!(
            c.error,
            Some(json!(["temporarily-unavailable", "not leader"]))
        );
        let precondition = json!({"type":"error","code":22,"text":"expected 0"});
        let c = w.complete(
            &inv("cas", json!([1, [0, 1]])),
            &Outcome::Reply(precondition),
        );
        assert_eq!(c.kind, OpType::Fail);
        let crash = json!({"type":"error","code":13,"text":"lost leadership","definite":false});
        let c = w.complete(
            &inv("cas", json!([1, [0, 1]])),
            &Outcome::Reply(crash.clone()),
        );
        assert_eq!(c.kind, OpType::Info);
        let c = w.complete(&inv("read", json!([1, null])), &Outcome::Reply(crash));
        assert_eq!(
            c.kind,
            OpType::Fail,
            "a read has no effect, so it certainly did not happen"
        );
    }

    #[test]
    fn request_bodies_follow_the_protocol() {
        let w = lin_kv();
        assert_eq!(
            w.request_body(&inv("cas", json!([2, [1, 3]]))),
            json!({"type":"cas","key":2,"from":1,"to":3})
        );
        assert_eq!(
            w.request_body(&inv("write", json!([0, 4]))),
            json!({"type":"write","key":0,"value":4})
        );
    }

    #[test]
    fn final_reads_cover_every_key() {
        let w = LinKv::new(WorkloadOptions {
            keys: 3,
            ..Default::default()
        });
        let finals = w.final_invocations();
        assert_eq!(finals.len(), 3);
        assert!(finals.iter().all(|i| i.f == "read"));
    }
}
