//! A string per key with `get`, `put` and `append` — the model of students' KV labs.

use super::{Meaning, Model, Parser, key_and_value};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KvStringOp {
    Get(String),
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
            "get" => KvStringOp::Get(text()?),
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
            KvStringOp::Get(s) => (s == state).then(|| state.clone()),
            KvStringOp::Put(s) => Some(s.clone()),
            KvStringOp::Append(s) => Some(format!("{state}{s}")),
        }
    }

    fn failure(&self, state: &String, op: &KvStringOp) -> String {
        match op {
            KvStringOp::Get(s) => format!(
                "get returned {} but the value is {}",
                Value::from(s.as_str()),
                Value::from(state.as_str())
            ),
            KvStringOp::Put(_) | KvStringOp::Append(_) => "puts and appends always succeed".into(),
        }
    }

    fn state_json(&self, state: &String) -> Value {
        Value::from(state.as_str())
    }

    fn state_bytes(state: &String) -> usize {
        state.capacity()
    }
}
