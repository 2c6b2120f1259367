//! The Wing–Gong–Lowe search of one key, as a resumable state machine.
//!
//! Call and return events are kept in a doubly-linked list in history order. The search repeatedly
//! takes the first call it can apply (from the list's head up to the first return event: those
//! operations are minimal in real-time order), applies it to the model, and removes the operation
//! from the list; reaching a return event means the operation returning there was not linearized
//! in time, so it backtracks. Lowe's memo skips configurations (linearized set, state) already
//! explored. Operations that may not have happened (`info`, pending) have no return event: they
//! may be linearized at any point, or never; the search succeeds once every `ok` operation is.
//!
//! The search is an explicit stack, so it can stop after any number of steps and resume later,
//! which lets the scheduler share cores fairly between keys.

use super::budget::{MemoryBudget, Reservation};
use super::machine::Machine;
use super::memo::{Insert, Memo, fingerprint, op_key};
use serde_json::Value;
use std::sync::Arc;

const HEAD: u32 = 0;
const NIL: u32 = u32::MAX;
/// At most this many partial linearizations are kept for the report.
pub(crate) const MAX_PATHS: usize = 10;
/// Operations shown at the end of each partial linearization.
const PATH_TAIL: usize = 8;

/// One operation of the key, by history positions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSpec {
    pub invoke: usize,
    /// The `ok` completion; `None` for operations that may not have happened.
    pub ret: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    Running,
    Valid,
    Invalid,
    OutOfMemory,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The call entry linearized.
    entry: u32,
    /// The state before it.
    state: u32,
    /// Which of the operation's alternative successors was taken, or'ed with `COMMITTED` for a
    /// read linearized as soon as it could be: a read changes nothing, so any linearization
    /// that postpones it can take it now instead (and reaches every return the postponed one
    /// does); so when the configuration after it fails, the one before fails too.
    alt: u32,
}

const COMMITTED: u32 = 1 << 31;

/// A configuration at the furthest return event reached.
struct Snapshot {
    fingerprint: u128,
    /// The state before the first shown operation.
    start_state: u32,
    /// The last operations of the partial linearization and the state after each.
    tail: Vec<(u32, u32)>,
    depth: usize,
    state: u32,
    /// The operation whose return event was reached without linearizing it.
    failing_op: u32,
}

/// A partial linearization that cannot be extended past the furthest return event.
#[derive(Debug, Clone)]
pub(crate) struct PathReport {
    pub start_state: Value,
    /// Operation ids (in this key's numbering) and the state after each.
    pub ops: Vec<(u32, Value)>,
    /// Operations before the shown ones.
    pub omitted: usize,
    pub failing_op: u32,
    pub failure: String,
}

/// What a search found, in this key's operation numbering.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchReport {
    /// The operation whose return event is the furthest reached (on a refutation: the first
    /// operation that cannot be linearized).
    pub furthest_op: Option<u32>,
    pub paths: Vec<PathReport>,
    /// Configurations memoized.
    pub configurations: usize,
    pub states: usize,
    pub steps: u64,
    pub peak_bytes: u64,
}

pub(crate) struct Search<M: Machine> {
    machine: M,
    /// Doubly-linked list of entries; entry 0 is the head.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// `op << 1 | is_return` per entry.
    entry: Vec<u32>,
    /// Per operation: its return entry, or `NIL` if it has none.
    ret_entry: Vec<u32>,
    op_keys: Vec<u128>,
    stack: Vec<Frame>,
    memo: Memo,
    state: u32,
    set_key: u128,
    cursor: u32,
    alt: u32,
    /// `ok` operations not linearized yet.
    remaining: usize,
    /// The furthest return entry reached (0: none).
    furthest: u32,
    snapshots: Vec<Snapshot>,
    /// Per operation: it never changes the state (a read).
    read_only: Vec<bool>,
    any_reads: bool,
    /// Lookahead only (empty otherwise): which operations are linearized, the observing
    /// operations in order of their returns, each one's rank there, and the first not linearized.
    linearized: Vec<bool>,
    observers: Vec<u32>,
    observer_rank: Vec<u32>,
    first_observer: usize,
    steps: u64,
    fixed_bytes: u64,
    reservation: Reservation,
    peak_bytes: u64,
    done: Option<Progress>,
}

impl<M: Machine> Search<M> {
    /// `calls` are in invocation order; operation ids are their indices.
    pub(crate) fn new(mut machine: M, calls: &[CallSpec], budget: &Arc<MemoryBudget>) -> Self {
        let mut events: Vec<(usize, u32)> = Vec::with_capacity(calls.len() * 2);
        for (op, call) in calls.iter().enumerate() {
            let op = op as u32;
            events.push((call.invoke, op << 1));
            if let Some(ret) = call.ret {
                events.push((ret, op << 1 | 1));
            }
        }
        events.sort_unstable_by_key(|&(pos, _)| pos);
        let entries = events.len() + 1;
        let mut entry = Vec::with_capacity(entries);
        entry.push(NIL);
        entry.extend(events.iter().map(|&(_, code)| code));
        let mut ret_entry = vec![NIL; calls.len()];
        for (e, &code) in entry.iter().enumerate().skip(1) {
            if code & 1 == 1 {
                ret_entry[(code >> 1) as usize] = e as u32;
            }
        }
        let next: Vec<u32> = (1..=entries as u32)
            .map(|n| if n as usize == entries { NIL } else { n })
            .collect();
        let prev: Vec<u32> = (0..entries as u32).map(|e| e.saturating_sub(1)).collect();
        // Entry links and codes; per operation: return entry, key, stack frame, read flag, and
        // the lookahead's flag and rank.
        let per_op =
            4 + 16 + std::mem::size_of::<Frame>() + 1 + if M::LOOKAHEAD { 1 + 8 } else { 0 };
        let fixed_bytes = (entries * 3 * 4 + calls.len() * per_op) as u64;
        let mut reservation = Reservation::new(budget);
        let fits = reservation.resize(fixed_bytes + machine.heap_bytes() as u64);
        let remaining = calls.iter().filter(|c| c.ret.is_some()).count();
        let state = machine.initial();
        let read_only: Vec<bool> = (0..calls.len() as u32)
            .map(|op| machine.is_read_only(op))
            .collect();
        let any_reads = read_only.contains(&true);
        let mut observers: Vec<u32> = Vec::new();
        let mut observer_rank = Vec::new();
        if M::LOOKAHEAD {
            observers = (0..calls.len() as u32)
                .filter(|&op| ret_entry[op as usize] != NIL && machine.observes(op))
                .collect();
            observers.sort_unstable_by_key(|&op| ret_entry[op as usize]);
            observer_rank = vec![NIL; calls.len()];
            for (rank, &op) in observers.iter().enumerate() {
                observer_rank[op as usize] = rank as u32;
            }
        }
        Search {
            machine,
            cursor: next[HEAD as usize],
            next,
            prev,
            entry,
            ret_entry,
            op_keys: (0..calls.len() as u32).map(op_key).collect(),
            stack: Vec::with_capacity(if fits { calls.len() } else { 0 }),
            memo: Memo::new(budget),
            state,
            set_key: 0,
            alt: 0,
            remaining,
            furthest: 0,
            snapshots: Vec::new(),
            read_only,
            any_reads,
            linearized: if M::LOOKAHEAD {
                vec![false; calls.len()]
            } else {
                Vec::new()
            },
            observers,
            observer_rank,
            first_observer: 0,
            steps: 0,
            fixed_bytes,
            reservation,
            peak_bytes: 0,
            done: match (fits, remaining) {
                (false, _) => Some(Progress::OutOfMemory),
                (true, 0) => Some(Progress::Valid),
                _ => None,
            },
        }
    }

    /// Runs at most `budget` steps.
    pub(crate) fn run(&mut self, budget: u64) -> Progress {
        if let Some(done) = self.done {
            return done;
        }
        // The hot loop works on locals; they are written back below.
        let mut cursor = self.cursor;
        let mut alt = self.alt;
        let mut state = self.state;
        let mut set_key = self.set_key;
        let mut steps = 0;
        let progress = 'search: loop {
            if steps == budget {
                break Progress::Running;
            }
            steps += 1;
            let e = cursor;
            if e == NIL {
                break Progress::Valid;
            }
            let code = self.entry[e as usize];
            let op = code >> 1;
            if code & 1 == 1 {
                // A return entry: its operation was not linearized in time.
                self.note_furthest(e, op, state, set_key);
            } else {
                let Some(next_state) = self.machine.step(state, op, alt) else {
                    cursor = self.next[e as usize];
                    alt = 0;
                    continue;
                };
                let next_key = set_key ^ self.op_keys[op as usize];
                let commit = self.any_reads && self.read_only[op as usize];
                match self.memo.insert(fingerprint(next_key, next_state)) {
                    Insert::New => {
                        if M::LOOKAHEAD && self.cut(op, next_state) {
                            alt += 1;
                            continue;
                        }
                        self.stack.push(Frame {
                            entry: e,
                            state,
                            alt: if commit { alt | COMMITTED } else { alt },
                        });
                        state = next_state;
                        set_key = next_key;
                        if self.lift(e, op) {
                            self.remaining -= 1;
                            if self.remaining == 0 {
                                break Progress::Valid;
                            }
                        }
                        cursor = self.next[HEAD as usize];
                        if self.any_reads {
                            cursor = self.applicable_read(cursor, state);
                        }
                        alt = 0;
                        continue;
                    }
                    // A read that can happen now need not be postponed: if the configuration
                    // with it is known to fail, so does this one.
                    Insert::Seen if commit => {}
                    Insert::Seen => {
                        alt += 1;
                        continue;
                    }
                    Insert::OutOfMemory => break Progress::OutOfMemory,
                }
            }
            // This configuration fails: backtrack, past any reads committed to.
            loop {
                let Some(frame) = self.stack.pop() else {
                    break 'search Progress::Invalid;
                };
                let undone = self.entry[frame.entry as usize] >> 1;
                if self.unlift(frame.entry, undone) {
                    self.remaining += 1;
                }
                state = frame.state;
                set_key ^= self.op_keys[undone as usize];
                if frame.alt & COMMITTED == 0 {
                    cursor = frame.entry;
                    alt = frame.alt + 1;
                    break;
                }
            }
        };
        self.cursor = cursor;
        self.alt = alt;
        self.state = state;
        self.set_key = set_key;
        self.steps += steps;
        let progress = if progress == Progress::Running && !self.account() {
            Progress::OutOfMemory
        } else {
            progress
        };
        if progress != Progress::Running {
            self.done = Some(progress);
        }
        progress
    }

    /// Re-estimates this search's memory against the budget; `false` when it no longer fits.
    fn account(&mut self) -> bool {
        let bytes = self.fixed_bytes + self.machine.heap_bytes() as u64;
        self.peak_bytes = self.peak_bytes.max(bytes + self.memo.bytes());
        self.reservation.resize(bytes)
    }

    /// The first read-only candidate (call before the first return) that can happen in `state`,
    /// else `first`: reads are linearized as soon as they can be (see `Frame::alt`).
    fn applicable_read(&mut self, first: u32, state: u32) -> u32 {
        let mut e = first;
        while e != NIL {
            let code = self.entry[e as usize];
            if code & 1 == 1 {
                break;
            }
            let op = code >> 1;
            if self.read_only[op as usize] && self.machine.step(state, op, 0).is_some() {
                return e;
            }
            e = self.next[e as usize];
        }
        first
    }

    /// Lookahead: whether linearizing `op` into `next_state` makes the first observing operation
    /// not yet linearized unreachable. Only observers whose return the search has already reached
    /// are used: a cut branch could not have got past that return, so the furthest return reached
    /// — the first operation that cannot be linearized — is unchanged.
    fn cut(&mut self, op: u32, next_state: u32) -> bool {
        let Some(&due) = self.observers.get(self.first_observer) else {
            return false;
        };
        if due == op || self.ret_entry[due as usize] > self.furthest {
            return false;
        }
        // As if `op` were linearized, which it is about to be.
        let was = std::mem::replace(&mut self.linearized[op as usize], true);
        let reachable = self.machine.can_reach(next_state, due, &self.linearized);
        self.linearized[op as usize] = was;
        !reachable
    }

    fn mark_linearized(&mut self, op: u32, linearized: bool) {
        self.linearized[op as usize] = linearized;
        let rank = self.observer_rank[op as usize];
        if rank == NIL {
            return;
        }
        if !linearized {
            self.first_observer = self.first_observer.min(rank as usize);
        } else if rank as usize == self.first_observer {
            while self
                .observers
                .get(self.first_observer)
                .is_some_and(|&o| self.linearized[o as usize])
            {
                self.first_observer += 1;
            }
        }
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Undoes `unlink(e)`: e still knows its neighbours (dancing links).
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Removes an operation's call and return entries; `true` if it had a return (was `ok`).
    #[inline]
    fn lift(&mut self, call: u32, op: u32) -> bool {
        if M::LOOKAHEAD {
            self.mark_linearized(op, true);
        }
        self.unlink(call);
        let ret = self.ret_entry[op as usize];
        if ret == NIL {
            return false;
        }
        self.unlink(ret);
        true
    }

    #[inline]
    fn unlift(&mut self, call: u32, op: u32) -> bool {
        if M::LOOKAHEAD {
            self.mark_linearized(op, false);
        }
        let ret = self.ret_entry[op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
        ret != NIL
    }

    /// Keeps the configurations that reach the furthest return event, for the report.
    #[inline]
    fn note_furthest(&mut self, ret: u32, op: u32, state: u32, set_key: u128) {
        if ret < self.furthest {
            return;
        }
        if ret > self.furthest {
            self.furthest = ret;
            self.snapshots.clear();
        }
        if self.snapshots.len() < MAX_PATHS {
            self.snapshot(op, state, set_key);
        }
    }

    #[cold]
    fn snapshot(&mut self, failing_op: u32, state: u32, set_key: u128) {
        let fp = fingerprint(set_key, state);
        if self.snapshots.iter().any(|s| s.fingerprint == fp) {
            return;
        }
        let depth = self.stack.len();
        let first = depth.saturating_sub(PATH_TAIL);
        let start_state = self.stack.get(first).map_or(state, |f| f.state);
        let tail = (first..depth)
            .map(|i| {
                let op = self.entry[self.stack[i].entry as usize] >> 1;
                let after = self.stack.get(i + 1).map_or(state, |f| f.state);
                (op, after)
            })
            .collect();
        self.snapshots.push(Snapshot {
            fingerprint: fp,
            start_state,
            tail,
            depth,
            state,
            failing_op,
        });
    }

    pub(crate) fn report(&self) -> SearchReport {
        let machine = &self.machine;
        let paths = self
            .snapshots
            .iter()
            .map(|s| PathReport {
                start_state: machine.state_json(s.start_state),
                ops: s
                    .tail
                    .iter()
                    .map(|&(op, after)| (op, machine.state_json(after)))
                    .collect(),
                omitted: s.depth - s.tail.len(),
                failing_op: s.failing_op,
                failure: machine.failure(s.state, s.failing_op),
            })
            .collect();
        SearchReport {
            furthest_op: (self.furthest != 0).then(|| self.entry[self.furthest as usize] >> 1),
            paths,
            configurations: self.memo.len(),
            states: self.machine.states(),
            steps: self.steps,
            peak_bytes: self.peak_bytes.max(self.fixed_bytes + self.memo.bytes()),
        }
    }
}
