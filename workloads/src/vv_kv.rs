//! `vv-kv`: clients of a version-vector store (Dynamo, Riak) read a key — every concurrent
//! sibling and the causal context — and write a new unique value with that context, which
//! replaces exactly the siblings they read; sometimes they write blind, without a context, which
//! adds a sibling. Checked by the version-vector checker.
//!
//! Sessions: each process remembers, per key, the context of its last read. Usually its next
//! operation writes that key with that context (read-modify-write; a context is used once), and
//! its reads carry the context as `after`, which the store's answer must cover, so a process
//! never reads less than it already saw. History values follow the conventions: a write is `[key, {"value": v, "context": C}]`,
//! a read completes as `[key, {"siblings": [...], "context": C}]` and is invoked as
//! `[key, null]`, `[key, {"after": C}]`, or for the final reads `[key, {"node": "n3"}]`.
//!
//! Values are unique: `process × 1 000 000 + the process's write count`. The writer's process is
//! also sent as the request's `client` id (which only the store's `client-ids` bug uses).
//!
//! Final reads: after the heal and the quiet period, every key is read through every node (the
//! request names its coordinator; the node that receives it forwards it there).

use crate::checks::{checker_result, stats_checkers};
use crate::outcome::{Completion, Invocation, Outcome, error_completion};
use crate::{CheckReport, Workload, WorkloadOptions};
use checkers::version_vectors;
use checkers::{History, OpType};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Writes per process are numbered below this: a value is `process * VALUES_PER_PROCESS + n`.
pub const VALUES_PER_PROCESS: u64 = 1_000_000;
/// Share of operations (in %) that are blind writes, without a context.
const BLIND_WRITE_PERCENT: u32 = 10;
/// Share (in %) of operations that write back what the process just read, when it has read.
const CONTEXT_WRITE_PERCENT: u32 = 60;

pub struct VvKv {
    opts: WorkloadOptions,
    /// (process, key) → the context of the process's last read of the key.
    sessions: BTreeMap<(u64, u64), Value>,
    /// process → the key of its last read, while no write has used that read's context.
    unwritten: BTreeMap<u64, u64>,
    writes_by_process: BTreeMap<u64, u64>,
}

impl VvKv {
    pub fn new(opts: WorkloadOptions) -> Self {
        VvKv {
            opts,
            sessions: BTreeMap::new(),
            unwritten: BTreeMap::new(),
            writes_by_process: BTreeMap::new(),
        }
    }

    fn write(&mut self, process: u64, key: u64, context: Value) -> Invocation {
        let n = self.writes_by_process.entry(process).or_insert(0);
        *n += 1;
        let value = process * VALUES_PER_PROCESS + *n;
        Invocation {
            f: "write".into(),
            value: json!([key, {"value": value, "context": context}]),
        }
    }
}

fn key_of(value: &Value) -> Value {
    value.get(0).cloned().unwrap_or(Value::Null)
}

/// The object in a value's second position (`[key, {...}]`), if any.
fn body_of(value: &Value) -> Option<&serde_json::Map<String, Value>> {
    value.get(1).and_then(Value::as_object)
}

impl Workload for VvKv {
    fn name(&self) -> &'static str {
        "vv-kv"
    }

    fn next_invocation(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        // Without a process, all operations share one session.
        self.next_invocation_for(0, rng)
    }

    fn next_invocation_for(&mut self, process: u64, rng: &mut ChaCha8Rng) -> Invocation {
        let key = rng.random_range(0..self.opts.keys.max(1) as u64);
        let roll = rng.random_range(0..100u32);
        if roll < BLIND_WRITE_PERCENT {
            return self.write(process, key, Value::Null);
        }
        if roll < BLIND_WRITE_PERCENT + CONTEXT_WRITE_PERCENT
            && let Some(read_key) = self.unwritten.remove(&process)
        {
            let context = self
                .sessions
                .get(&(process, read_key))
                .cloned()
                .unwrap_or(Value::Null);
            return self.write(process, read_key, context);
        }
        let value = match self.sessions.get(&(process, key)) {
            Some(context) => json!([key, {"after": context}]),
            None => json!([key, null]),
        };
        Invocation {
            f: "read".into(),
            value,
        }
    }

    fn request_body(&self, inv: &Invocation) -> Value {
        let key = key_of(&inv.value);
        let body = body_of(&inv.value);
        let field = |name: &str| body.and_then(|b| b.get(name)).cloned();
        match inv.f.as_str() {
            "write" => {
                let value = field("value").unwrap_or(Value::Null);
                let client = value
                    .as_u64()
                    .map(|v| format!("c{}", v / VALUES_PER_PROCESS));
                json!({"type": "write", "key": key, "value": value,
                       "context": field("context").unwrap_or(Value::Null), "client": client})
            }
            _ => {
                let mut req = json!({"type": "read", "key": key});
                for name in ["after", "node"] {
                    if let (Some(v), Some(obj)) = (field(name), req.as_object_mut()) {
                        obj.insert(name.into(), v);
                    }
                }
                req
            }
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
                {
                    "siblings": body.get("siblings").cloned().unwrap_or(json!([])),
                    "context": body.get("context").cloned().unwrap_or(json!({})),
                }
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

    fn observe(&mut self, process: u64, inv: &Invocation, completion: &Completion) {
        if inv.f != "read" || completion.kind != OpType::Ok {
            return;
        }
        let (Some(key), Some(context)) = (
            completion.value.get(0).and_then(Value::as_u64),
            body_of(&completion.value).and_then(|b| b.get("context")),
        ) else {
            return;
        };
        self.sessions.insert((process, key), context.clone());
        self.unwritten.insert(process, key);
    }

    fn final_invocations(&self) -> Vec<Invocation> {
        let mut reads = Vec::new();
        for key in 0..self.opts.keys.max(1) as u64 {
            for node in 1..=self.opts.nodes.max(1) {
                reads.push(Invocation {
                    f: "read".into(),
                    value: json!([key, {"node": format!("n{node}")}]),
                });
            }
        }
        reads
    }

    fn check(&self, history: &History) -> CheckReport {
        let mut checkers = vec![checker_result(
            "version-vectors",
            version_vectors::check(history),
            |r| (r.validity, r.to_json(), r.explain()),
        )];
        checkers.extend(stats_checkers(history));
        CheckReport { checkers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn vv_kv() -> VvKv {
        VvKv::new(WorkloadOptions {
            keys: 1,
            ..Default::default()
        })
    }

    fn read_reply(siblings: Value, context: Value) -> Outcome {
        Outcome::Reply(json!({"type": "read_ok", "siblings": siblings, "context": context}))
    }

    #[test]
    fn a_process_writes_back_what_it_read_once_then_reads_after_it() {
        let mut w = vv_kv();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let first = w.next_invocation_for(3, &mut rng);
        let read = loop {
            let inv = w.next_invocation_for(3, &mut rng);
            if inv.f == "read" {
                break inv;
            }
        };
        assert!(first.f == "read" || first.value[1]["context"].is_null());
        assert_eq!(read.value, json!([0, null]));
        let ctx = json!({"n1": 2});
        let done = w.complete(&read, &read_reply(json!([3000001]), ctx.clone()));
        assert_eq!(
            done.value,
            json!([0, {"siblings": [3000001], "context": {"n1": 2}}])
        );
        w.observe(3, &read, &done);
        let mut with_context = 0;
        for _ in 0..200 {
            let inv = w.next_invocation_for(3, &mut rng);
            match inv.f.as_str() {
                "write" if inv.value[1]["context"] == ctx => with_context += 1,
                "write" => assert!(inv.value[1]["context"].is_null()),
                _ => assert_eq!(inv.value, json!([0, {"after": ctx}])),
            }
        }
        assert_eq!(with_context, 1, "a context is used by one write");
        // Another process has its own session.
        let other = loop {
            let inv = w.next_invocation_for(4, &mut rng);
            if inv.f == "read" {
                break inv;
            }
        };
        assert_eq!(other.value, json!([0, null]));
    }

    #[test]
    fn values_are_unique_and_name_their_writer() {
        let mut w = vv_kv();
        let a = w.write(2, 0, Value::Null);
        let b = w.write(2, 0, Value::Null);
        let c = w.write(5, 0, json!({"n1": 1}));
        assert_eq!(a.value[1]["value"], 2_000_001);
        assert_eq!(b.value[1]["value"], 2_000_002);
        assert_eq!(
            w.request_body(&c),
            json!({"type": "write", "key": 0, "value": 5_000_001, "context": {"n1": 1},
                   "client": "c5"})
        );
    }

    #[test]
    fn request_bodies_and_failures() {
        let w = vv_kv();
        let read = Invocation {
            f: "read".into(),
            value: json!([1, {"after": {"n2": 1}}]),
        };
        assert_eq!(
            w.request_body(&read),
            json!({"type": "read", "key": 1, "after": {"n2": 1}})
        );
        let behind = json!({"type": "error", "code": 11, "text": "behind", "definite": true});
        assert_eq!(
            w.complete(&read, &Outcome::Reply(behind)).kind,
            OpType::Fail
        );
        assert_eq!(w.complete(&read, &Outcome::Timeout).kind, OpType::Fail);
        let write = Invocation {
            f: "write".into(),
            value: json!([1, {"value": 7, "context": null}]),
        };
        let c = w.complete(&write, &Outcome::Timeout);
        assert_eq!(c.kind, OpType::Info);
        let ok = w.complete(&write, &Outcome::Reply(json!({"type": "write_ok"})));
        assert_eq!((ok.kind, ok.value), (OpType::Ok, write.value.clone()));
    }

    #[test]
    fn final_reads_cover_every_key_through_every_node() {
        let w = VvKv::new(WorkloadOptions {
            keys: 2,
            nodes: 3,
            ..Default::default()
        });
        let finals = w.final_invocations();
        assert_eq!(finals.len(), 6);
        assert_eq!(finals[4].value, json!([1, {"node": "n2"}]));
        assert_eq!(
            w.request_body(&finals[4]),
            json!({"type": "read", "key": 1, "node": "n2"})
        );
    }
}
