//! Records the history as operations happen: in memory, and appended line by line to
//! `history.jsonl` so that a crash of the harness loses nothing already recorded.

use checkers::history::jsonl;
use checkers::{History, Op, OpType, Process};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub struct Recorder {
    ops: Vec<Op>,
    file: Option<BufWriter<File>>,
    write_error: Option<String>,
}

/// The fields of a new operation (the recorder assigns the index).
pub struct NewOp {
    pub time: u64,
    pub process: Process,
    pub kind: OpType,
    pub f: String,
    pub value: Value,
    pub error: Option<Value>,
    pub node: Option<String>,
    /// Extra fields of the operation (e.g. `commit_ts`).
    pub extra: Map<String, Value>,
}

impl Recorder {
    /// Keeps the history in memory only.
    pub fn in_memory() -> Self {
        Recorder {
            ops: Vec::new(),
            file: None,
            write_error: None,
        }
    }

    /// Also appends every operation to `path`, flushed per operation.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        Ok(Recorder {
            ops: Vec::new(),
            file: Some(BufWriter::new(File::create(path)?)),
            write_error: None,
        })
    }

    pub fn record(&mut self, new: NewOp) -> u64 {
        let index = self.ops.len() as u64;
        let op = Op {
            index,
            time: Some(new.time),
            process: new.process,
            kind: new.kind,
            f: new.f,
            value: new.value,
            error: new.error,
            node: new.node,
            extra: new.extra,
        };
        if let Some(w) = &mut self.file {
            let line = jsonl::to_line(&op);
            if let Err(e) = writeln!(w, "{line}").and_then(|_| w.flush()) {
                self.write_error.get_or_insert(e.to_string());
            }
        }
        self.ops.push(op);
        index
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The first write error, if any happened.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    pub fn into_history(self) -> History {
        History::new(self.ops)
    }
}
