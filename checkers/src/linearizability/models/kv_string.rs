//! A string per key with `get`, `put` and `append` — the model of students' KV labs.

use super::{Meaning, Model, Parser, key_and_value};
use crate::linearizability::prepare::Paired;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KvStringOp {
    Get {
        value: String,
        /// What can precede the get (see `link_gets`).
        before: Arc<Before>,
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
                before: Arc::default(),
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

    fn is_read_only(&self, op: &KvStringOp) -> bool {
        matches!(op, KvStringOp::Get { .. })
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
        let KvStringOp::Get { value, before } = op else {
            return true;
        };
        // The get's value is a starting point — the state itself, or a put still to come —
        // followed by appends still to come.
        let from_state = value.starts_with(state.as_str()).then_some(state.len());
        let from_puts = before
            .puts
            .iter()
            .filter(|&&(put, _)| !linearized[put as usize])
            .map(|&(_, len)| len);
        from_state.into_iter().chain(from_puts).any(|start| {
            before
                .appends
                .compose(&value[start..], before.horizon, linearized)
        })
    }

    fn state_json(&self, state: &String) -> Value {
        Value::from(state.as_str())
    }

    fn state_bytes(state: &String) -> usize {
        state.capacity()
    }
}

/// What may be linearized before one get: operations invoked before it returned.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Before {
    /// Operation ids below this were invoked before the get returned.
    horizon: u32,
    /// Such puts whose value is a prefix of the get's, with that value's length.
    puts: Vec<(u32, usize)>,
    /// The key's appends (shared by its gets).
    appends: Arc<Appends>,
}

/// A key's appends by value.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Appends {
    by_value: HashMap<String, Vec<u32>>,
    /// The distinct lengths of the values, ascending.
    lengths: Vec<usize>,
}

impl Appends {
    /// Whether `rest` is a concatenation of values of appends below `horizon` not linearized
    /// yet (an append may be counted twice: this only has to be certain when it says no).
    fn compose(&self, rest: &str, horizon: u32, linearized: &[bool]) -> bool {
        let mut reachable = vec![false; rest.len() + 1];
        reachable[0] = true;
        for at in 0..rest.len() {
            if !reachable[at] {
                continue;
            }
            for &len in &self.lengths {
                let Some(piece) = rest.get(at..at + len) else {
                    continue;
                };
                let usable = self
                    .by_value
                    .get(piece)
                    .is_some_and(|ids| ids.iter().any(|&a| a < horizon && !linearized[a as usize]));
                if usable {
                    reachable[at + len] = true;
                }
            }
        }
        reachable[rest.len()]
    }
}

/// Fills each get's `before`. Operation ids are indices into `ops`, which are in invocation
/// order.
pub(crate) fn link_gets(ops: &mut [(Paired, KvStringOp)]) {
    let mut appends = Appends::default();
    let mut puts_by_value: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, (_, op)) in ops.iter().enumerate() {
        match op {
            KvStringOp::Append(v) if !v.is_empty() => {
                appends
                    .by_value
                    .entry(v.clone())
                    .or_default()
                    .push(i as u32);
                appends.lengths.push(v.len());
            }
            KvStringOp::Put(v) => puts_by_value.entry(v.as_str()).or_default().push(i as u32),
            _ => {}
        }
    }
    appends.lengths.sort_unstable();
    appends.lengths.dedup();
    let appends = Arc::new(appends);
    // Prefixes of a get's value are looked up only at the lengths some put has.
    let mut put_lengths: Vec<usize> = puts_by_value.keys().map(|v| v.len()).collect();
    put_lengths.sort_unstable();
    put_lengths.dedup();
    let links: Vec<(usize, Before)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, (p, op))| {
            let KvStringOp::Get { value, .. } = op else {
                return None;
            };
            let returned = p.complete.unwrap_or(usize::MAX);
            let horizon = ops.partition_point(|(q, _)| q.invoke < returned) as u32;
            let puts = put_lengths
                .iter()
                .take_while(|&&len| len <= value.len())
                .filter_map(|&len| value.get(..len))
                .filter_map(|prefix| puts_by_value.get(prefix).map(|ids| (ids, prefix.len())))
                .flat_map(|(ids, len)| ids.iter().map(move |&put| (put, len)))
                .filter(|&(put, _)| put < horizon)
                .collect();
            let before = Before {
                horizon,
                puts,
                appends: Arc::clone(&appends),
            };
            Some((i, before))
        })
        .collect();
    for (i, linked) in links {
        if let KvStringOp::Get { before, .. } = &mut ops[i].1 {
            *before = Arc::new(linked);
        }
    }
}
