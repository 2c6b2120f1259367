//! A string per key with `get`, `put` and `append` — the model of students' KV labs.

use super::{Meaning, Model, Parser, key_and_value};
use crate::linearizability::prepare::Paired;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KvStringOp {
    Get {
        value: String,
        /// The puts (operation ids) invoked before this get returned whose value is a prefix of
        /// `value`: the only ways to reach `value` from a state that is not its prefix.
        puts: Vec<u32>,
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
                puts: Vec::new(),
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

    // Concurrent appends can be ordered in factorially many ways, each a different string; a get
    // that must come later tells which orders can still work: appends only extend the string, so
    // unless one of the puts that could have set a prefix of its value is still to come, the
    // state must be a prefix of what the get returned.
    const LOOKAHEAD: bool = true;

    fn observes(&self, op: &KvStringOp) -> bool {
        matches!(op, KvStringOp::Get { .. })
    }

    fn can_reach(&self, state: &String, op: &KvStringOp, linearized: &[bool]) -> bool {
        match op {
            KvStringOp::Get { value, puts } => {
                value.starts_with(state.as_str()) || puts.iter().any(|&p| !linearized[p as usize])
            }
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

/// Fills each get's `puts`. Operation ids are indices into `ops`.
pub(crate) fn link_puts_to_gets(ops: &mut [(Paired, KvStringOp)]) {
    let mut puts_by_value: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, (_, op)) in ops.iter().enumerate() {
        if let KvStringOp::Put(v) = op {
            puts_by_value.entry(v.as_str()).or_default().push(i as u32);
        }
    }
    // Prefixes of a get's value are looked up only at the lengths some put has.
    let mut lengths: Vec<usize> = puts_by_value.keys().map(|v| v.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let links: Vec<(usize, Vec<u32>)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, (p, op))| {
            let KvStringOp::Get { value, .. } = op else {
                return None;
            };
            let returned = p.complete.unwrap_or(usize::MAX);
            let puts: Vec<u32> = lengths
                .iter()
                .take_while(|&&len| len <= value.len())
                .filter_map(|&len| value.get(..len))
                .filter_map(|prefix| puts_by_value.get(prefix))
                .flatten()
                .copied()
                .filter(|&put| ops[put as usize].0.invoke < returned)
                .collect();
            Some((i, puts))
        })
        .collect();
    for (i, linked) in links {
        if let KvStringOp::Get { puts, .. } = &mut ops[i].1 {
            *puts = linked;
        }
    }
}
