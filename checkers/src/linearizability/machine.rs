//! A model seen by the search: states are `u32` ids and operations are indices.
//!
//! Models whose state is already a small integer (registers, the mutex) run directly. Others
//! intern their states into a per-search table and cache transitions, so that the memo compares
//! integers and a repeated transition costs one hash lookup.

use super::models::Model;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

pub(crate) trait Machine: Send {
    /// Whether the search should look ahead (see `Model::can_reach`).
    const LOOKAHEAD: bool;
    fn initial(&mut self) -> u32;
    /// The `alt`-th successor of `state` under operation `op`, if any.
    fn step(&mut self, state: u32, op: u32, alt: u32) -> Option<u32>;
    /// See `Model::is_read_only`.
    fn is_read_only(&self, op: u32) -> bool;
    /// See `Model::observes`.
    fn observes(&self, op: u32) -> bool;
    /// See `Model::can_reach`.
    fn can_reach(&self, state: u32, op: u32, linearized: &[bool]) -> bool;
    fn failure(&self, state: u32, op: u32) -> String;
    fn state_json(&self, state: u32) -> Value;
    /// Heap bytes held (interned states, transition cache), for the memory budget.
    fn heap_bytes(&self) -> usize;
    /// Distinct model states met.
    fn states(&self) -> usize;
}

/// A model whose states are the ids themselves.
pub(crate) struct Direct<M: Model<State = u32>> {
    model: Arc<M>,
    ops: Vec<M::Op>,
}

impl<M: Model<State = u32>> Direct<M> {
    pub(crate) fn new(model: Arc<M>, ops: Vec<M::Op>) -> Self {
        Direct { model, ops }
    }
}

impl<M: Model<State = u32>> Machine for Direct<M> {
    const LOOKAHEAD: bool = M::LOOKAHEAD;

    fn initial(&mut self) -> u32 {
        self.model.initial()
    }

    #[inline]
    fn step(&mut self, state: u32, op: u32, alt: u32) -> Option<u32> {
        self.model.step(&state, &self.ops[op as usize], alt)
    }

    fn is_read_only(&self, op: u32) -> bool {
        self.model.is_read_only(&self.ops[op as usize])
    }

    fn observes(&self, op: u32) -> bool {
        self.model.observes(&self.ops[op as usize])
    }

    fn can_reach(&self, state: u32, op: u32, linearized: &[bool]) -> bool {
        self.model
            .can_reach(&state, &self.ops[op as usize], linearized)
    }

    fn failure(&self, state: u32, op: u32) -> String {
        self.model.failure(&state, &self.ops[op as usize])
    }

    fn state_json(&self, state: u32) -> Value {
        self.model.state_json(&state)
    }

    fn heap_bytes(&self) -> usize {
        self.ops.capacity() * std::mem::size_of::<M::Op>()
    }

    fn states(&self) -> usize {
        0
    }
}

/// FxHash-style hashing of small integer keys: the std SipHash costs more than the transitions.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

const NO_STATE: u32 = u32::MAX;
/// Bytes of one hash-table slot beyond its key and value (control byte, spare capacity).
const SLOT_OVERHEAD: usize = 8;

/// A model whose states are interned; transitions are cached by (state, op, alternative).
pub(crate) struct Interned<M: Model> {
    model: Arc<M>,
    ops: Vec<M::Op>,
    states: Vec<M::State>,
    ids: HashMap<M::State, u32>,
    transitions: IntMap<(u32, u32, u32), u32>,
    state_heap: usize,
}

impl<M: Model> Interned<M> {
    pub(crate) fn new(model: Arc<M>, ops: Vec<M::Op>) -> Self {
        Interned {
            model,
            ops,
            states: Vec::new(),
            ids: HashMap::new(),
            transitions: IntMap::default(),
            state_heap: 0,
        }
    }

    fn intern(&mut self, state: M::State) -> u32 {
        if let Some(&id) = self.ids.get(&state) {
            return id;
        }
        let id = self.states.len() as u32;
        // Held twice: in the table and as the map's key.
        self.state_heap += 2 * M::state_bytes(&state);
        self.states.push(state.clone());
        self.ids.insert(state, id);
        id
    }
}

impl<M: Model> Machine for Interned<M> {
    const LOOKAHEAD: bool = M::LOOKAHEAD;

    fn initial(&mut self) -> u32 {
        let init = self.model.initial();
        self.intern(init)
    }

    fn step(&mut self, state: u32, op: u32, alt: u32) -> Option<u32> {
        if alt > 0 && !self.model.may_branch(&self.ops[op as usize]) {
            return None;
        }
        let key = (state, op, alt);
        if let Some(&next) = self.transitions.get(&key) {
            return (next != NO_STATE).then_some(next);
        }
        let next = self
            .model
            .step(&self.states[state as usize], &self.ops[op as usize], alt)
            .map(|s| self.intern(s));
        self.transitions.insert(key, next.unwrap_or(NO_STATE));
        next
    }

    fn is_read_only(&self, op: u32) -> bool {
        self.model.is_read_only(&self.ops[op as usize])
    }

    fn observes(&self, op: u32) -> bool {
        self.model.observes(&self.ops[op as usize])
    }

    fn can_reach(&self, state: u32, op: u32, linearized: &[bool]) -> bool {
        self.model.can_reach(
            &self.states[state as usize],
            &self.ops[op as usize],
            linearized,
        )
    }

    fn failure(&self, state: u32, op: u32) -> String {
        self.model
            .failure(&self.states[state as usize], &self.ops[op as usize])
    }

    fn state_json(&self, state: u32) -> Value {
        self.model.state_json(&self.states[state as usize])
    }

    fn heap_bytes(&self) -> usize {
        let state_size = std::mem::size_of::<M::State>();
        self.ops.capacity() * std::mem::size_of::<M::Op>()
            + self.states.capacity() * state_size
            + self.ids.capacity() * (state_size + 4 + SLOT_OVERHEAD)
            + self.transitions.capacity() * (16 + SLOT_OVERHEAD)
            + self.state_heap
    }

    fn states(&self) -> usize {
        self.states.len()
    }
}
