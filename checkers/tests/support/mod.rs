//! What the transactional checker tests share: a builder of hand-written `txn` histories.
// Each test file uses its own subset.
#![allow(dead_code)]

use checkers::{History, Op, OpType, Process};
use serde_json::{Map, Value, json};

/// Builds histories event by event; times are 1 ms apart.
#[derive(Default)]
pub struct Builder {
    pub ops: Vec<Op>,
}

/// The invocation's value: the micro-operations with reads' values nulled.
pub fn invocation(mops: &Value) -> Value {
    let list = mops.as_array().expect("a list of micro-ops");
    Value::Array(
        list.iter()
            .map(|m| {
                let m = m.as_array().expect("[f k v]");
                let v = if m[0] == "r" {
                    Value::Null
                } else {
                    m[2].clone()
                };
                json!([m[0], m[1], v])
            })
            .collect(),
    )
}

impl Builder {
    /// An event whose completion may carry a commit timestamp (`commit_ts`).
    pub fn event_ts(
        &mut self,
        process: u64,
        kind: OpType,
        value: Value,
        ts: Option<i64>,
    ) -> &mut Self {
        let index = self.ops.len() as u64;
        let mut extra = Map::new();
        if let Some(ts) = ts {
            extra.insert("commit_ts".into(), Value::from(ts));
        }
        self.ops.push(Op {
            index,
            time: Some((index + 1) * 1_000_000),
            process: Process::Client(process),
            kind,
            f: "txn".into(),
            value,
            error: None,
            node: None,
            extra,
        });
        self
    }

    pub fn event(&mut self, process: u64, kind: OpType, value: Value) -> &mut Self {
        self.event_ts(process, kind, value, None)
    }

    pub fn invoke(&mut self, process: u64, mops: Value) -> &mut Self {
        self.event(process, OpType::Invoke, invocation(&mops))
    }

    pub fn ok(&mut self, process: u64, mops: Value) -> &mut Self {
        self.event(process, OpType::Ok, mops)
    }

    /// An `ok` completion committed at timestamp `ts`.
    pub fn ok_ts(&mut self, process: u64, mops: Value, ts: i64) -> &mut Self {
        self.event_ts(process, OpType::Ok, mops, Some(ts))
    }

    pub fn fail(&mut self, process: u64, mops: Value) -> &mut Self {
        self.event(process, OpType::Fail, invocation(&mops))
    }

    pub fn info(&mut self, process: u64, mops: Value) -> &mut Self {
        self.event(process, OpType::Info, invocation(&mops))
    }

    /// A transaction invoked and committed at once.
    pub fn txn(&mut self, process: u64, mops: Value) -> &mut Self {
        self.invoke(process, mops.clone()).ok(process, mops)
    }

    /// A transaction invoked and committed at once, at timestamp `ts`.
    pub fn txn_ts(&mut self, process: u64, mops: Value, ts: i64) -> &mut Self {
        self.invoke(process, mops.clone()).ok_ts(process, mops, ts)
    }

    pub fn history(&self) -> History {
        History::new(self.ops.clone())
    }
}

pub fn assert_contains(text: &str, phrases: &[&str]) {
    for p in phrases {
        assert!(text.contains(p), "expected {p:?} in:\n{text}");
    }
}
