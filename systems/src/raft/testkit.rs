//! A tiny deterministic cluster driver for tests: virtual time, an event queue, a network with
//! a fixed delay and directed cuts, timers, disks with staged and synced writes, crashes.

use super::kv::RaftKv;
use crate::node::{Body, Clocks, Context, Delay, DiskImage, Effect, Node, NodeConfig, RequestId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const MS: u64 = 1_000_000;

#[derive(Debug)]
enum Action {
    Deliver { from: usize, body: Body },
    Timer { key: u64, generation: u64 },
    Request { id: RequestId, body: Value },
}

struct Slot {
    id: String,
    node: RaftKv,
    up: bool,
    rng: ChaCha8Rng,
    synced: DiskImage,
    staged: DiskImage,
    /// Current generation per timer key; a queued firing of an older generation is void.
    timers: BTreeMap<u64, u64>,
    /// Bumped on crash: anything queued for an earlier incarnation is void.
    incarnation: u64,
}

pub struct Cluster {
    pub now: u64,
    ids: Vec<String>,
    bugs: Vec<String>,
    slots: Vec<Slot>,
    /// (time, sequence) → (node, incarnation, action).
    queue: BTreeMap<(u64, u64), (usize, u64, Action)>,
    sequence: u64,
    pub latency: u64,
    /// Extra uniform random delay (reorders messages), and loss / duplication probabilities.
    pub jitter: u64,
    pub loss: f64,
    pub duplication: f64,
    /// Directed links that drop everything: (from, to).
    pub cut: BTreeSet<(usize, usize)>,
    next_request: RequestId,
    pub replies: BTreeMap<RequestId, Value>,
    rng: ChaCha8Rng,
    pub messages_sent: u64,
}

impl Cluster {
    pub fn new(size: usize, seed: u64, bugs: &[&str]) -> Cluster {
        let ids: Vec<String> = (1..=size).map(|i| format!("n{i}")).collect();
        let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
        let slots = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Slot {
                id: id.clone(),
                node: RaftKv::new(NodeConfig {
                    id: id.clone(),
                    nodes: ids.clone(),
                    bugs: bugs.clone(),
                }),
                up: false,
                rng: ChaCha8Rng::seed_from_u64(seed * 100 + i as u64),
                synced: DiskImage::new(),
                staged: DiskImage::new(),
                timers: BTreeMap::new(),
                incarnation: 0,
            })
            .collect();
        let mut cluster = Cluster {
            now: 0,
            ids,
            bugs,
            slots,
            queue: BTreeMap::new(),
            sequence: 0,
            latency: MS,
            jitter: 0,
            loss: 0.0,
            duplication: 0.0,
            cut: BTreeSet::new(),
            next_request: 0,
            replies: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            messages_sent: 0,
        };
        for i in 0..size {
            cluster.start(i);
        }
        cluster
    }

    pub fn node(&self, i: usize) -> &RaftKv {
        &self.slots[i].node
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].up
    }

    pub fn size(&self) -> usize {
        self.slots.len()
    }

    fn schedule(&mut self, at: u64, node: usize, action: Action) {
        self.sequence += 1;
        let incarnation = self.slots[node].incarnation;
        self.queue
            .insert((at, self.sequence), (node, incarnation, action));
    }

    fn run_handler(&mut self, i: usize, handler: impl FnOnce(&mut RaftKv, &mut Context)) {
        let peers: Vec<String> = self
            .ids
            .iter()
            .filter(|p| **p != self.ids[i])
            .cloned()
            .collect();
        let clocks = Clocks {
            wall_clock_ns: self.now as i64,
            monotonic_ns: self.now,
            epsilon_ns: 0,
        };
        let slot = &mut self.slots[i];
        let disk = slot.synced.clone();
        let mut ctx = Context::new(&slot.id, &peers, clocks, &mut slot.rng, &disk);
        handler(&mut slot.node, &mut ctx);
        let effects = ctx.into_effects();
        self.apply_effects(i, effects);
    }

    fn apply_effects(&mut self, i: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { dest, body } => {
                    self.messages_sent += 1;
                    let Some(to) = self.ids.iter().position(|id| *id == dest) else {
                        continue;
                    };
                    if self.cut.contains(&(i, to)) || self.rng.random_bool(self.loss) {
                        continue;
                    }
                    let copies = if self.rng.random_bool(self.duplication) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        let at = self.now + self.latency + self.rng.random_range(0..=self.jitter);
                        let body = body.clone();
                        self.schedule(at, to, Action::Deliver { from: i, body });
                    }
                }
                Effect::Reply { request, body } => {
                    self.replies.insert(request, body);
                }
                Effect::SetTimer { key, delay } => {
                    let after = match delay {
                        Delay::Fixed(ns) => ns,
                        Delay::Jitter { min, max } => self.rng.random_range(min..=max),
                    };
                    let generation = {
                        let g = self.slots[i].timers.entry(key).or_insert(0);
                        *g += 1;
                        *g
                    };
                    let at = self.now + after;
                    self.schedule(at, i, Action::Timer { key, generation });
                }
                Effect::CancelTimer { key } => {
                    *self.slots[i].timers.entry(key).or_insert(0) += 1;
                }
                Effect::DiskWrite { file, bytes } => {
                    self.slots[i].staged.insert(file, bytes);
                }
                Effect::DiskSync => {
                    let staged = std::mem::take(&mut self.slots[i].staged);
                    self.slots[i].synced.extend(staged);
                }
                Effect::Trace { .. } => {}
            }
        }
    }

    fn start(&mut self, i: usize) {
        self.slots[i].up = true;
        self.run_handler(i, |node, ctx| node.on_start(ctx));
    }

    /// Kills node `i`: memory and unsynced writes are lost; queued events for it are void.
    pub fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.up = false;
        slot.incarnation += 1;
        slot.staged.clear();
        slot.timers.clear();
        slot.node = RaftKv::new(NodeConfig {
            id: self.ids[i].clone(),
            nodes: self.ids.clone(),
            bugs: self.bugs.clone(),
        });
    }

    pub fn restart(&mut self, i: usize) {
        self.start(i);
    }

    /// Isolates node `i` from every other node (both directions).
    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.size() {
            if j != i {
                self.cut.insert((i, j));
                self.cut.insert((j, i));
            }
        }
    }

    /// Cuts every link from node `i` and drops its messages still in flight.
    pub fn silence(&mut self, i: usize) {
        for j in 0..self.size() {
            if j != i {
                self.cut.insert((i, j));
            }
        }
        self.queue.retain(
            |_, (_, _, action)| !matches!(action, Action::Deliver { from, .. } if *from == i),
        );
    }

    /// Restores every link of node `i`.
    pub fn reconnect(&mut self, i: usize) {
        self.cut.retain(|&(a, b)| a != i && b != i);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Sends a client request to node `i` now; its reply lands in `replies`.
    pub fn request(&mut self, i: usize, body: Value) -> RequestId {
        self.next_request += 1;
        let id = self.next_request;
        let at = self.now;
        self.schedule(at, i, Action::Request { id, body });
        id
    }

    /// Processes events up to and including time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > until {
                break;
            }
            let (i, incarnation, action) = entry.remove();
            self.now = at;
            if !self.slots[i].up || self.slots[i].incarnation != incarnation {
                continue;
            }
            match action {
                Action::Deliver { from, body } => {
                    let from_id = self.ids[from].clone();
                    self.run_handler(i, |node, ctx| {
                        node.on_message_json(ctx, &from_id, body.as_str())
                    });
                }
                Action::Timer { key, generation } => {
                    if self.slots[i].timers.get(&key) == Some(&generation) {
                        self.run_handler(i, |node, ctx| node.on_timer(ctx, key));
                    }
                }
                Action::Request { id, body } => {
                    self.run_handler(i, |node, ctx| node.on_client_request(ctx, id, body));
                }
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, duration: u64) {
        let until = self.now + duration;
        self.run_until(until);
    }

    /// The nodes that currently believe they lead, with their terms.
    pub fn leaders(&self) -> Vec<(usize, u64)> {
        (0..self.size())
            .filter(|&i| self.slots[i].up && self.slots[i].node.raft().is_leader())
            .map(|i| (i, self.slots[i].node.raft().term()))
            .collect()
    }

    /// The single leader of the highest term, after running until one exists.
    pub fn await_leader(&mut self) -> usize {
        for _ in 0..200 {
            if let Some(&(i, _)) = self.leaders().iter().max_by_key(|(_, term)| *term) {
                return i;
            }
            self.run_for(10 * MS);
        }
        panic!("no leader elected");
    }

    /// Sends `body` to the current leader and runs until it answers (retrying on errors).
    pub fn call(&mut self, body: Value) -> Value {
        for _ in 0..50 {
            let leader = self.await_leader();
            let id = self.request(leader, body.clone());
            for _ in 0..100 {
                self.run_for(MS);
                if let Some(reply) = self.replies.get(&id) {
                    if reply["type"] == "error" && reply["code"] == 11 {
                        break;
                    }
                    return reply.clone();
                }
            }
        }
        panic!("no answer to {body}");
    }
}
