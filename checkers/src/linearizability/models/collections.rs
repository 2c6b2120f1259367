//! Collections: a grow-only set, an unordered queue (a multiset), and a FIFO queue.
//!
//! A dequeue that completed `ok` with a null value found the queue empty. A dequeue whose result
//! is unknown (`info` or pending) may have removed any element (unordered) or the head (FIFO).

use super::{Meaning, Model, Parser, Values};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetOp {
    Add(u32),
    /// The whole set, as sorted distinct value ids.
    Read(Vec<u32>),
}

pub(crate) struct SetParser {
    pub values: Values,
}

impl Parser for SetParser {
    type Op = SetOp;

    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<SetOp>, String> {
        let op = match f {
            "add" => SetOp::Add(self.values.intern(value)),
            "read" if !ok || value.is_null() => return Ok(Meaning::Nothing),
            "read" => {
                let Some(items) = value.as_array() else {
                    return Err(format!("expected the set read as a list, got {value}"));
                };
                SetOp::Read(sorted_ids(&mut self.values, items, true))
            }
            _ => return Err(format!("unknown operation `{f}` (expected add or read)")),
        };
        Ok(Meaning::On {
            key: Value::Null,
            op,
        })
    }
}

fn sorted_ids(values: &mut Values, items: &[Value], dedup: bool) -> Vec<u32> {
    let mut ids: Vec<u32> = items.iter().map(|v| values.intern(v)).collect();
    ids.sort_unstable();
    if dedup {
        ids.dedup();
    }
    ids
}

/// A collection's initial contents: a list, empty by default.
pub(crate) fn initial_items(
    values: &mut Values,
    init: Option<&Value>,
    what: &str,
) -> Result<Vec<u32>, String> {
    match init {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.iter().map(|v| values.intern(v)).collect()),
        Some(other) => Err(format!(
            "the {what}'s initial contents must be a list, got {other}"
        )),
    }
}

pub(crate) struct Set {
    pub values: Arc<Values>,
    /// Sorted, distinct.
    pub init: Vec<u32>,
}

impl Set {
    pub(crate) fn new(values: Arc<Values>, mut init: Vec<u32>) -> Self {
        init.sort_unstable();
        init.dedup();
        Set { values, init }
    }
}

impl Model for Set {
    type State = Vec<u32>;
    type Op = SetOp;

    fn initial(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn step(&self, state: &Vec<u32>, op: &SetOp, alt: u32) -> Option<Vec<u32>> {
        if alt > 0 {
            return None;
        }
        match op {
            SetOp::Add(v) => {
                let mut next = state.clone();
                if let Err(at) = next.binary_search(v) {
                    next.insert(at, *v);
                }
                Some(next)
            }
            SetOp::Read(items) => (items == state).then(|| state.clone()),
        }
    }

    fn is_read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    fn failure(&self, state: &Vec<u32>, op: &SetOp) -> String {
        match op {
            SetOp::Read(items) => format!(
                "read {} but the set is {}",
                self.values.list(items),
                self.values.list(state)
            ),
            SetOp::Add(_) => "adds always succeed".into(),
        }
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        self.values.list(state)
    }

    fn state_bytes(state: &Vec<u32>) -> usize {
        state.capacity() * 4
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueOp {
    Enqueue(u32),
    Dequeue(u32),
    /// An `ok` dequeue that returned nothing: the queue was empty.
    DequeueEmpty,
    /// A dequeue with an unknown result.
    DequeueUnknown,
}

pub(crate) struct QueueParser {
    pub values: Values,
}

impl Parser for QueueParser {
    type Op = QueueOp;

    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<QueueOp>, String> {
        let op = match f {
            "enqueue" => QueueOp::Enqueue(self.values.intern(value)),
            "dequeue" if !ok => QueueOp::DequeueUnknown,
            "dequeue" if value.is_null() => QueueOp::DequeueEmpty,
            "dequeue" => QueueOp::Dequeue(self.values.intern(value)),
            _ => {
                return Err(format!(
                    "unknown operation `{f}` (expected enqueue or dequeue)"
                ));
            }
        };
        Ok(Meaning::On {
            key: Value::Null,
            op,
        })
    }
}

/// A multiset: dequeue removes any one element.
pub(crate) struct UnorderedQueue {
    pub values: Arc<Values>,
    /// Sorted.
    pub init: Vec<u32>,
}

impl UnorderedQueue {
    pub(crate) fn new(values: Arc<Values>, mut init: Vec<u32>) -> Self {
        init.sort_unstable();
        UnorderedQueue { values, init }
    }
}

impl Model for UnorderedQueue {
    type State = Vec<u32>;
    type Op = QueueOp;

    fn initial(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn step(&self, state: &Vec<u32>, op: &QueueOp, alt: u32) -> Option<Vec<u32>> {
        let remove_at = |at: usize| {
            let mut next = state.clone();
            next.remove(at);
            next
        };
        match *op {
            QueueOp::Enqueue(v) if alt == 0 => {
                let mut next = state.clone();
                let at = next.partition_point(|&x| x <= v);
                next.insert(at, v);
                Some(next)
            }
            QueueOp::Dequeue(v) if alt == 0 => state.binary_search(&v).ok().map(remove_at),
            QueueOp::DequeueEmpty if alt == 0 => state.is_empty().then(Vec::new),
            QueueOp::DequeueUnknown => {
                // The alt-th distinct element (removing equal elements gives equal states).
                let mut distinct = state
                    .iter()
                    .enumerate()
                    .filter(|&(i, x)| i == 0 || state[i - 1] != *x);
                distinct.nth(alt as usize).map(|(i, _)| remove_at(i))
            }
            _ => None,
        }
    }

    fn may_branch(&self, op: &QueueOp) -> bool {
        *op == QueueOp::DequeueUnknown
    }

    fn is_read_only(&self, op: &QueueOp) -> bool {
        *op == QueueOp::DequeueEmpty
    }

    fn failure(&self, state: &Vec<u32>, op: &QueueOp) -> String {
        match *op {
            QueueOp::Dequeue(v) => format!(
                "can't dequeue {}: the queue holds {}",
                self.values.show(v),
                self.values.list(state)
            ),
            QueueOp::DequeueEmpty => format!(
                "the dequeue found the queue empty but it holds {}",
                self.values.list(state)
            ),
            QueueOp::DequeueUnknown => "can't dequeue from an empty queue".into(),
            QueueOp::Enqueue(_) => "enqueues always succeed".into(),
        }
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        self.values.list(state)
    }

    fn state_bytes(state: &Vec<u32>) -> usize {
        state.capacity() * 4
    }
}

/// A FIFO queue, head first.
pub(crate) struct FifoQueue {
    pub values: Arc<Values>,
    pub init: Vec<u32>,
}

impl Model for FifoQueue {
    type State = Vec<u32>;
    type Op = QueueOp;

    fn initial(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn step(&self, state: &Vec<u32>, op: &QueueOp, alt: u32) -> Option<Vec<u32>> {
        if alt > 0 {
            return None;
        }
        match *op {
            QueueOp::Enqueue(v) => {
                let mut next = Vec::with_capacity(state.len() + 1);
                next.extend_from_slice(state);
                next.push(v);
                Some(next)
            }
            QueueOp::Dequeue(v) => (state.first() == Some(&v)).then(|| state[1..].to_vec()),
            QueueOp::DequeueEmpty => state.is_empty().then(Vec::new),
            QueueOp::DequeueUnknown => (!state.is_empty()).then(|| state[1..].to_vec()),
        }
    }

    fn is_read_only(&self, op: &QueueOp) -> bool {
        *op == QueueOp::DequeueEmpty
    }

    fn failure(&self, state: &Vec<u32>, op: &QueueOp) -> String {
        match *op {
            QueueOp::Dequeue(v) => match state.first() {
                Some(&head) => format!(
                    "can't dequeue {}: the head is {} (queue {})",
                    self.values.show(v),
                    self.values.show(head),
                    self.values.list(state)
                ),
                None => format!("can't dequeue {}: the queue is empty", self.values.show(v)),
            },
            QueueOp::DequeueEmpty => format!(
                "the dequeue found the queue empty but it holds {}",
                self.values.list(state)
            ),
            QueueOp::DequeueUnknown => "can't dequeue from an empty queue".into(),
            QueueOp::Enqueue(_) => "enqueues always succeed".into(),
        }
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        self.values.list(state)
    }

    fn state_bytes(state: &Vec<u32>) -> usize {
        state.capacity() * 4
    }
}
