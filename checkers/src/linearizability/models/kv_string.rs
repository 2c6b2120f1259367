//! A string per key with `get`, `put` and `append` — the model of students' KV labs.

use super::{Meaning, Model, Parser, key_and_value};
use crate::linearizability::prepare::Paired;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KvStringOp {
    Get {
        value: String,
        /// Some put that may still be unlinearized when this get's return is reached sets a
        /// prefix of `value` (see `mark_resetting_puts`).
        after_put: bool,
    },
    Put(String),
    Append(String),
}

pub(crate) struct KvStringParser;

impl Parser for KvStringParser {
    type Op = KvStringOp;

    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<KvStringOp>, String> {
        let (key, v) = key_and_value(value)?;
        let text = || match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("expected a string for {f}, got {other}")),
        };
        let op = match f {
            "get" if !ok || v.is_null() => return Ok(Meaning::Nothing),
            "get" => KvStringOp::Get {
                value: text()?,
                after_put: true,
            },
            "put" => KvStringOp::Put(text()?),
            "append" => KvStringOp::Append(text()?),
            _ => {
                return Err(format!(
                    "unknown operation `{f}` (expected get, put or append)"
                ));
            }
        };
        Ok(Meaning::On {
            key: key.clone(),
            op,
        })
    }
}

pub(crate) struct KvString {
    pub init: String,
}

impl KvString {
    /// A string; `""` by default.
    pub(crate) fn parse_init(init: Option<&Value>) -> Result<String, String> {
        match init {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!(
                "the kv-string initial value must be a string, got {other}"
            )),
        }
    }
}

impl Model for KvString {
    type State = String;
    type Op = KvStringOp;

    fn initial(&self) -> String {
        self.init.clone()
    }

    fn step(&self, state: &String, op: &KvStringOp, alt: u32) -> Option<String> {
        if alt > 0 {
            return None;
        }
        match op {
            KvStringOp::Get { value, .. } => (value == state).then(|| state.clone()),
            KvStringOp::Put(s) => Some(s.clone()),
            KvStringOp::Append(s) => Some(format!("{state}{s}")),
        }
    }

    fn failure(&self, state: &String, op: &KvStringOp) -> String {
        match op {
            KvStringOp::Get { value, .. } => format!(
                "get returned {} but the value is {}",
                Value::from(value.as_str()),
                Value::from(state.as_str())
            ),
            KvStringOp::Put(_) | KvStringOp::Append(_) => "puts and appends always succeed".into(),
        }
    }

    // Concurrent appends can be ordered in factorially many ways, each a different string; a
    // get due next tells which orders can still work: appends only extend the string, so unless
    // a put may intervene, the state must be a prefix of what the get returned.
    const LOOKAHEAD: bool = true;

    fn can_reach(&self, state: &String, op: &KvStringOp) -> bool {
        match op {
            KvStringOp::Get { value, after_put } => *after_put || value.starts_with(state.as_str()),
            _ => true,
        }
    }

    fn state_json(&self, state: &String) -> Value {
        Value::from(state.as_str())
    }

    fn state_bytes(state: &String) -> usize {
        state.capacity()
    }
}

/// Sets each get's `after_put`: whether a put whose value is a prefix of the get's may still be
/// unlinearized when the search reaches the get's return — a put invoked before that return and
/// either returning after it or never certainly completing. (Any `ok` put that returned earlier
/// is already linearized there.) Without such a put, only appends can come between any state and
/// the get.
pub(crate) fn mark_resetting_puts(ops: &mut [(Paired, KvStringOp)]) {
    let mut events: Vec<(usize, usize)> = Vec::new();
    for (i, (p, op)) in ops.iter().enumerate() {
        match op {
            KvStringOp::Put(_) => {
                events.push((p.invoke, i));
                if let (true, Some(ret)) = (p.outcome.is_ok(), p.complete) {
                    events.push((ret, i));
                }
            }
            KvStringOp::Get { .. } => events.push((p.complete.expect("ok gets complete"), i)),
            KvStringOp::Append(_) => {}
        }
    }
    events.sort_unstable();
    let mut open_puts: Vec<usize> = Vec::new();
    for (pos, i) in events {
        let starts = pos == ops[i].0.invoke;
        match &ops[i].1 {
            KvStringOp::Put(_) if starts => open_puts.push(i),
            KvStringOp::Put(_) => open_puts.retain(|&j| j != i),
            KvStringOp::Get { value, .. } => {
                let after_put = open_puts.iter().any(|&j| match &ops[j].1 {
                    KvStringOp::Put(v) => value.starts_with(v.as_str()),
                    _ => false,
                });
                if let KvStringOp::Get { after_put: flag, .. } = &mut ops[i].1 {
                    *flag = after_put;
                }
            }
            KvStringOp::Append(_) => {}
        }
    }
}
