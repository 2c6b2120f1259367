//! Sequential specifications: what each operation means, and how it changes a model's state.
//!
//! Parsing (`Parser`) turns an operation's `f` and value into a model operation on a key, or into
//! nothing when it can neither change the state nor tell anything about it. A `Model` then gives
//! the transitions. JSON values are interned to `u32` ids first, so states compare integers.

mod collections;
mod kv_string;
mod multi_register;
mod register;

pub(crate) use collections::{
    FifoQueue, QueueParser, Set, SetParser, UnorderedQueue, initial_items,
};
pub(crate) use kv_string::{KvString, KvStringParser, link_gets};
pub(crate) use multi_register::{MultiRegister, MultiRegisterParser};
pub(crate) use register::{
    Mutex, MutexParser, Register, RegisterParser, observable, register_init,
};

use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;

/// JSON values interned to dense ids; id 0 is `null`.
#[derive(Debug, Clone)]
pub(crate) struct Values {
    ids: HashMap<Value, u32>,
    values: Vec<Value>,
}

pub(crate) const NULL_ID: u32 = 0;

impl Default for Values {
    fn default() -> Self {
        let mut values = Values {
            ids: HashMap::new(),
            values: Vec::new(),
        };
        values.intern(&Value::Null);
        values
    }
}

impl Values {
    pub(crate) fn intern(&mut self, v: &Value) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v.clone(), id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    /// The value as compact JSON text, for messages.
    pub(crate) fn show(&self, id: u32) -> String {
        self.get(id).to_string()
    }

    pub(crate) fn list(&self, ids: &[u32]) -> Value {
        Value::Array(ids.iter().map(|&id| self.get(id).clone()).collect())
    }
}

/// What one history operation means to a model.
pub(crate) enum Meaning<O> {
    /// It neither changes the state nor says anything about it: leave it out.
    Nothing,
    /// A model operation on a key (`Value::Null` for models that are one object).
    On { key: Value, op: O },
}

/// Turns operations into model operations.
pub(crate) trait Parser {
    type Op;
    /// `ok` says whether the operation certainly completed; otherwise (info, pending) `value` is
    /// the invocation's and results are unknown. Errors say what was expected.
    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<Self::Op>, String>;
}

/// A deterministic-or-branching sequential specification.
pub(crate) trait Model: Send + Sync + 'static {
    type State: Clone + Eq + Hash + Send + Sync;
    type Op: Send + Sync;

    fn initial(&self) -> Self::State;

    /// The `alt`-th possible state after `op` (alt = 0, 1, ...), `None` when there is no such
    /// alternative. Only operations with unknown results (a crashed dequeue) have more than one.
    fn step(&self, state: &Self::State, op: &Self::Op, alt: u32) -> Option<Self::State>;

    /// Whether `op` never changes the state (when it can happen at all): a read.
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether `op` may have more than one successor (`alt` > 0).
    fn may_branch(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether the model looks ahead (`observes`, `can_reach`); other models' searches skip it.
    const LOOKAHEAD: bool = false;

    /// Whether the search should look ahead to `op`: an operation whose result pins down the
    /// state (a get).
    fn observes(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether `op`, an observing operation that is not linearized yet, can still be linearized
    /// after `state` (`linearized[i]`: operation i of this key already is). `false` only when
    /// certain; the search then cuts the branch.
    fn can_reach(&self, _state: &Self::State, _op: &Self::Op, _linearized: &[bool]) -> bool {
        true
    }

    /// Why `op` cannot happen in `state`, in words.
    fn failure(&self, state: &Self::State, op: &Self::Op) -> String;

    fn state_json(&self, state: &Self::State) -> Value;

    /// Heap bytes a state holds, for the memory budget.
    fn state_bytes(_state: &Self::State) -> usize {
        0
    }
}

/// A key of a keyed model: a string or an integer.
pub(crate) fn parse_key(key: &Value) -> Result<&Value, String> {
    match key {
        Value::String(_) => Ok(key),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(key),
        other => Err(format!("a key must be a string or an integer, got {other}")),
    }
}

/// `[key, v]`, as keyed models' values are.
pub(crate) fn key_and_value(value: &Value) -> Result<(&Value, &Value), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, v]) => Ok((parse_key(key)?, v)),
        _ => Err(format!("expected [key, value], got {value}")),
    }
}
