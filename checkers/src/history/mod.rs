//! The history model: Jepsen-shaped operations, and reading / writing them.
//!
//! An operation is one event: an invocation, or its completion (`ok`, `fail`, `info`).
//! See `docs/history-format.md` for the format and its conventions.

pub mod edn;
pub mod jsonl;

use crate::error::InputError;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// Who performed an operation: a client process, or the fault injector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Process {
    pub fn to_json(self) -> Value {
        match self {
            Process::Client(p) => Value::from(p),
            Process::Nemesis => Value::from("nemesis"),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => write!(f, "nemesis"),
        }
    }
}

/// The four kinds of history event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    /// The operation was started.
    Invoke,
    /// It took effect.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// It may or may not have taken effect (timeout, crash); the process is retired.
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<OpType> {
        match s {
            "invoke" => Some(OpType::Invoke),
            "ok" => Some(OpType::Ok),
            "fail" => Some(OpType::Fail),
            "info" => Some(OpType::Info),
            _ => None,
        }
    }
}

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Position in the history (0-based, unique, increasing).
    pub index: u64,
    /// Nanoseconds since the test started, by the harness's monotonic clock.
    pub time: Option<u64>,
    pub process: Process,
    pub kind: OpType,
    /// The function: `read`, `write`, `cas`, `txn`, `start-partition`, ...
    pub f: String,
    pub value: Value,
    pub error: Option<Value>,
    /// The node the client talked to, when it matters.
    pub node: Option<String>,
    /// Any further keys (e.g. `commit_ts`), kept in order so nothing recorded is lost.
    pub extra: Map<String, Value>,
}

impl Op {
    /// Builds an operation from a JSON object, naming the offending field on error.
    /// `position` is used as the index when the object has none.
    pub fn from_map(mut map: Map<String, Value>, position: u64) -> Result<Op, String> {
        let index = match map.shift_remove("index") {
            None | Some(Value::Null) => position,
            Some(v) => v.as_u64().ok_or_else(|| {
                format!("field `index`: expected a non-negative integer, got {v}")
            })?,
        };
        let time = match map.shift_remove("time") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                format!("field `time`: expected non-negative nanoseconds, got {v}")
            })?),
        };
        let process = match map.shift_remove("process") {
            None => return Err("missing field `process`".into()),
            Some(Value::String(s)) if s == "nemesis" => Process::Nemesis,
            Some(v) => Process::Client(v.as_u64().ok_or_else(|| {
                format!("field `process`: expected a non-negative integer or \"nemesis\", got {v}")
            })?),
        };
        let kind = match map.shift_remove("type") {
            None => return Err("missing field `type`".into()),
            Some(Value::String(s)) => OpType::parse(&s).ok_or_else(|| {
                format!("field `type`: expected one of invoke, ok, fail, info; got \"{s}\"")
            })?,
            Some(v) => return Err(format!("field `type`: expected a string, got {v}")),
        };
        let f = match map.shift_remove("f") {
            None => return Err("missing field `f`".into()),
            Some(Value::String(s)) => s,
            Some(v) => return Err(format!("field `f`: expected a string, got {v}")),
        };
        let value = map.shift_remove("value").unwrap_or(Value::Null);
        let error = map.shift_remove("error").filter(|e| !e.is_null());
        let node = match map.shift_remove("node") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => Some(v.to_string()),
        };
        Ok(Op {
            index,
            time,
            process,
            kind,
            f,
            value,
            error,
            node,
            extra: map,
        })
    }

    /// The operation as a JSON object with keys in the canonical order.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("index".into(), Value::from(self.index));
        if let Some(t) = self.time {
            m.insert("time".into(), Value::from(t));
        }
        m.insert("process".into(), self.process.to_json());
        m.insert("type".into(), Value::from(self.kind.as_str()));
        m.insert("f".into(), Value::from(self.f.clone()));
        m.insert("value".into(), self.value.clone());
        if let Some(e) = &self.error {
            m.insert("error".into(), e.clone());
        }
        if let Some(n) = &self.node {
            m.insert("node".into(), Value::from(n.clone()));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}

/// A whole history, in recorded order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
}

/// Which on-disk format a history is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Edn,
}

impl Format {
    /// Guesses from the extension, then from the first non-blank character.
    pub fn detect(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("edn") => return Format::Edn,
            Some("jsonl") | Some("json") => return Format::Jsonl,
            _ => {}
        }
        let first = text
            .lines()
            .map(str::trim_start)
            .find(|l| !l.is_empty() && !l.starts_with(';'));
        match first {
            Some(l) if l.starts_with("{\"") || l.starts_with("{}") => Format::Jsonl,
            Some(_) => Format::Edn,
            None => Format::Jsonl,
        }
    }
}

impl History {
    pub fn new(ops: Vec<Op>) -> Self {
        History { ops }
    }

    /// Parses a history from text in the given format; `source` names it in errors.
    pub fn parse(text: &str, format: Format, source: &str) -> Result<History, InputError> {
        match format {
            Format::Jsonl => jsonl::parse(text, source),
            Format::Edn => edn::parse_history(text, source),
        }
    }

    /// Reads a history file; `format` of `None` means detect it.
    pub fn read(path: &Path, format: Option<Format>) -> Result<History, InputError> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::new(&source, None, format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
            InputError::new(&source, Some(line), "not valid UTF-8 text")
        })?;
        let format = format.unwrap_or_else(|| Format::detect(path, &text));
        History::parse(&text, format, &source)
    }

    /// Client operations only (nemesis operations removed).
    pub fn client_ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.is_client())
    }
}
