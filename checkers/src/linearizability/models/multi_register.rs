//! Registers read and written together by transactions: `txn` of micro-operations `[f, key, v]`.

use super::{Meaning, Model, NULL_ID, Parser, Values, parse_key};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Micro {
    /// Register index and the value read.
    Read(u32, u32),
    Write(u32, u32),
}

pub(crate) struct MultiRegisterParser {
    pub values: Values,
    keys: HashMap<Value, u32>,
    pub key_names: Vec<Value>,
}

impl MultiRegisterParser {
    /// Registers named in the initial state come first, so the state shows them even if unused.
    pub(crate) fn new(init: Option<&Value>) -> Self {
        let mut parser = MultiRegisterParser {
            values: Values::default(),
            keys: HashMap::new(),
            key_names: Vec::new(),
        };
        if let Some(Value::Object(map)) = init {
            for k in map.keys() {
                parser.register(&Value::from(k.as_str()));
            }
        }
        parser
    }

    fn register(&mut self, key: &Value) -> u32 {
        if let Some(&r) = self.keys.get(key) {
            return r;
        }
        let r = self.key_names.len() as u32;
        self.keys.insert(key.clone(), r);
        self.key_names.push(key.clone());
        r
    }

    /// The initial value of every register: an object gives each key's (null when absent),
    /// anything else is every register's.
    pub(crate) fn initial(&mut self, init: Option<&Value>) -> Vec<u32> {
        let names = self.key_names.clone();
        names
            .iter()
            .map(|name| match init {
                None => NULL_ID,
                Some(Value::Object(map)) => {
                    let v = name
                        .as_str()
                        .and_then(|n| map.get(n))
                        .unwrap_or(&Value::Null);
                    self.values.intern(v)
                }
                Some(scalar) => self.values.intern(scalar),
            })
            .collect()
    }
}

impl Parser for MultiRegisterParser {
    type Op = Vec<Micro>;

    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<Vec<Micro>>, String> {
        if f != "txn" {
            return Err(format!("unknown operation `{f}` (expected txn)"));
        }
        let Some(micros) = value.as_array() else {
            return Err(format!(
                "expected a list of [f, key, value] micro-operations, got {value}"
            ));
        };
        let mut ops = Vec::with_capacity(micros.len());
        for micro in micros {
            let Some([mf, key, v]) = micro.as_array().map(Vec::as_slice) else {
                return Err(format!(
                    "expected a micro-operation [f, key, value], got {micro}"
                ));
            };
            let reg = self.register(parse_key(key)?);
            match mf.as_str() {
                // An unknown result (null, or a transaction that may not have run) constrains nothing.
                Some("read" | "r") if !ok || v.is_null() => {}
                Some("read" | "r") => ops.push(Micro::Read(reg, self.values.intern(v))),
                Some("write" | "w") => ops.push(Micro::Write(reg, self.values.intern(v))),
                _ => {
                    return Err(format!(
                        "unknown micro-operation {mf} in {micro} (expected read, r, write or w)"
                    ));
                }
            }
        }
        if ops.is_empty() {
            return Ok(Meaning::Nothing);
        }
        Ok(Meaning::On {
            key: Value::Null,
            op: ops,
        })
    }
}

pub(crate) struct MultiRegister {
    pub values: Arc<Values>,
    pub key_names: Vec<Value>,
    pub init: Vec<u32>,
}

impl Model for MultiRegister {
    type State = Vec<u32>;
    type Op = Vec<Micro>;

    fn initial(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn step(&self, state: &Vec<u32>, op: &Vec<Micro>, alt: u32) -> Option<Vec<u32>> {
        if alt > 0 {
            return None;
        }
        let mut next = state.clone();
        for micro in op {
            match *micro {
                Micro::Read(r, v) if next[r as usize] != v => return None,
                Micro::Read(..) => {}
                Micro::Write(r, v) => next[r as usize] = v,
            }
        }
        Some(next)
    }

    fn is_read_only(&self, op: &Vec<Micro>) -> bool {
        op.iter().all(|m| matches!(m, Micro::Read(..)))
    }

    fn failure(&self, state: &Vec<u32>, op: &Vec<Micro>) -> String {
        let mut current = state.clone();
        for micro in op {
            match *micro {
                Micro::Read(r, v) if current[r as usize] != v => {
                    return format!(
                        "can't read {} = {}: it is {}",
                        self.name(r),
                        self.values.show(v),
                        self.values.show(current[r as usize])
                    );
                }
                Micro::Read(..) => {}
                Micro::Write(r, v) => current[r as usize] = v,
            }
        }
        "the transaction can run (writes always succeed)".into()
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        let map = state
            .iter()
            .enumerate()
            .map(|(r, &v)| (self.name(r as u32), self.values.get(v).clone()))
            .collect();
        Value::Object(map)
    }

    fn state_bytes(state: &Vec<u32>) -> usize {
        state.capacity() * 4
    }
}

impl MultiRegister {
    fn name(&self, r: u32) -> String {
        match &self.key_names[r as usize] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}
