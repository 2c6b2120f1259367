//! The deterministic simulator: one thread, an event queue ordered by (virtual time, sequence),
//! one master seed split into named ChaCha8 streams. Every message is serialized and parsed on
//! every hop, so nodes see exactly the bytes they would in real mode.

pub mod clock;
pub mod network;

use crate::client_model::{FINAL_READ_ATTEMPTS, Pending, Worker};
use crate::recorder::{NewOp, Recorder};
use checkers::{OpType, Process};
use clock::NodeClock;
use nemesis::{Fault, Schedule, ScheduleOptions};
use network::{Fate, LatencyDist, Network};
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use systems::node::Envelope;
use systems::{Clocks, Context, Delay, DiskImage, Effect, Node, NodeConfig, TimerKey};
use workloads::{Invocation, Outcome, Workload};

const SECOND: u64 = 1_000_000_000;
const MS: f64 = 1_000_000.0;

/// Named RNG streams of the master seed: changing how one is used does not shift the others.
mod stream {
    pub const NETWORK: u64 = 1;
    pub const NEMESIS: u64 = 2;
    pub const WORKLOAD: u64 = 3;
    pub const NODE_BASE: u64 = 100;
}

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Everything a simulated run is made of.
#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    pub system: String,
    pub nodes: usize,
    pub bugs: Vec<String>,
    pub seed: u64,
    /// Simulated seconds of client load (before the heal and the final reads).
    pub time_limit_ns: u64,
    /// Client operations per second, across all processes.
    pub rate: f64,
    pub concurrency: usize,
    pub latency_dist: LatencyDist,
    pub mean_latency_ns: f64,
    pub loss: f64,
    pub duplication: f64,
    pub client_timeout_ns: u64,
    pub epsilon_ns: u64,
    /// Quiet period between the heal and the final reads.
    pub quiet_ns: u64,
    pub nemesis: ScheduleOptions,
}

impl SimConfig {
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }
}

/// One message's journey, for message sequence diagrams: sent at `sent_ns` from `from` to `to`,
/// delivered at `delivered_ns` (or lost: `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageTrace {
    pub sent_ns: u64,
    pub delivered_ns: Option<u64>,
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `delivered`, `lost` (loss), `cut` (partition at delivery), `dead` (crashed receiver),
    /// or `client` for client requests and replies.
    pub fate: &'static str,
}

/// What a run produced besides the history.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    pub schedule: Schedule,
    pub end_ns: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    /// Per-node trace lines, for `node-logs/`.
    pub node_logs: BTreeMap<String, Vec<String>>,
    pub final_states: BTreeMap<String, Value>,
    /// Every peer message (when tracing is on), in send order.
    pub messages: Vec<MessageTrace>,
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
        /// Index into the message trace, when tracing.
        trace: Option<usize>,
    },
    ClientArrive {
        to: usize,
        request: u64,
        bytes: Vec<u8>,
    },
    ClientReply {
        worker: usize,
        request: u64,
        bytes: Vec<u8>,
    },
    ClientTimeout {
        worker: usize,
        request: u64,
    },
    Timer {
        node: usize,
        key: TimerKey,
        generation: u64,
    },
    Generate,
    Fault(usize),
    FinalReads,
}

impl Event {
    /// The node an event happens on, if any (paused nodes hold these).
    fn node(&self) -> Option<usize> {
        match self {
            Event::Deliver { to, .. } | Event::ClientArrive { to, .. } => Some(*to),
            Event::Timer { node, .. } => Some(*node),
            _ => None,
        }
    }
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct NodeSlot {
    id: String,
    peers: Vec<String>,
    node: Option<Box<dyn Node>>,
    /// Durable files: survive crashes.
    synced: DiskImage,
    /// Written but not yet synced: lost on a crash.
    staged: BTreeMap<String, Vec<u8>>,
    rng: ChaCha8Rng,
    clock: NodeClock,
    paused: bool,
    held: Vec<Event>,
    timers: BTreeMap<TimerKey, u64>,
    next_msg_id: u64,
    log: Vec<String>,
}

/// Builds a node from its configuration (normally [`systems::build`] with the system's name).
pub type NodeFactory = Box<dyn Fn(NodeConfig) -> Result<Box<dyn Node>, String>>;

/// The simulator. Build it with [`Simulator::new`], then [`Simulator::run`].
pub struct Simulator<'w> {
    cfg: SimConfig,
    factory: NodeFactory,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<NodeSlot>,
    net: Network,
    net_rng: ChaCha8Rng,
    workload_rng: ChaCha8Rng,
    workload: &'w mut dyn Workload,
    workers: Vec<Worker>,
    next_request: u64,
    schedule: Schedule,
    recorder: Recorder,
    final_queue: Vec<(Invocation, u32)>,
    finals_started: bool,
    messages_sent: u64,
    messages_delivered: u64,
    timer_generation: u64,
    tracing: bool,
    messages: Vec<MessageTrace>,
}

impl<'w> Simulator<'w> {
    /// A simulator of the bundled system `cfg.system`.
    pub fn new(
        cfg: SimConfig,
        workload: &'w mut dyn Workload,
        recorder: Recorder,
    ) -> Result<Self, String> {
        let system = cfg.system.clone();
        let factory: NodeFactory = Box::new(move |c| systems::build(&system, c));
        Self::with_factory(cfg, factory, workload, recorder)
    }

    /// A simulator whose nodes come from `factory`.
    pub fn with_factory(
        cfg: SimConfig,
        factory: NodeFactory,
        workload: &'w mut dyn Workload,
        recorder: Recorder,
    ) -> Result<Self, String> {
        let ids = cfg.node_ids();
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let config = NodeConfig {
                id: id.clone(),
                nodes: ids.clone(),
                bugs: cfg.bugs.clone(),
            };
            let node = factory(config.clone())?;
            nodes.push(NodeSlot {
                id: id.clone(),
                peers: config.peers(),
                node: Some(node),
                synced: DiskImage::new(),
                staged: BTreeMap::new(),
                rng: stream_rng(cfg.seed, stream::NODE_BASE + i as u64),
                clock: NodeClock::default(),
                paused: false,
                held: Vec::new(),
                timers: BTreeMap::new(),
                next_msg_id: 0,
                log: Vec::new(),
            });
        }
        let mut nemesis_rng = stream_rng(cfg.seed, stream::NEMESIS);
        let schedule = Schedule::generate(&cfg.nemesis, &mut nemesis_rng);
        let workers = (0..cfg.concurrency)
            .map(|w| Worker {
                process: w as u64,
                node: w % cfg.nodes.max(1),
                pending: None,
            })
            .collect();
        Ok(Simulator {
            net: Network::new(
                cfg.nodes,
                cfg.latency_dist,
                cfg.mean_latency_ns,
                cfg.loss,
                cfg.duplication,
            ),
            net_rng: stream_rng(cfg.seed, stream::NETWORK),
            workload_rng: stream_rng(cfg.seed, stream::WORKLOAD),
            cfg,
            factory,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            workload,
            workers,
            next_request: 0,
            schedule,
            recorder,
            final_queue: Vec::new(),
            finals_started: false,
            messages_sent: 0,
            messages_delivered: 0,
            timer_generation: 0,
            tracing: false,
            messages: Vec::new(),
        })
    }

    /// Records every peer message's fate (for message sequence diagrams).
    pub fn with_message_trace(mut self) -> Self {
        self.tracing = true;
        self
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Replays `schedule` instead of the one generated from the seed (a recorded or shrunk
    /// schedule). The other random streams stay the seed's.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Runs to the end: load, heal, quiet period, final reads.
    pub fn run(mut self) -> (Recorder, SimOutcome) {
        for i in 0..self.nodes.len() {
            self.call_node(i, |node, ctx| node.on_start(ctx));
        }
        for (i, f) in self.schedule.faults.iter().enumerate() {
            let at = f.at_ns;
            self.seq += 1;
            self.queue.push(Reverse(Scheduled {
                at,
                seq: self.seq,
                event: Event::Fault(i),
            }));
        }
        self.push(0, Event::Generate);
        let finals_at = self.cfg.time_limit_ns + self.cfg.quiet_ns;
        self.push(finals_at, Event::FinalReads);
        // A hard stop well after the final reads, in case a system never answers.
        let hard_stop = finals_at + 10 * self.cfg.client_timeout_ns + 30 * SECOND;
        while let Some(Reverse(next)) = self.queue.pop() {
            if next.at > hard_stop {
                break;
            }
            self.now = next.at;
            self.handle(next.event);
            if self.finals_started && self.final_queue.is_empty() && self.all_idle() {
                break;
            }
        }
        let final_states = self
            .nodes
            .iter()
            .map(|s| {
                let state = s.node.as_ref().map(|n| n.state()).unwrap_or(Value::Null);
                (s.id.clone(), state)
            })
            .collect();
        let outcome = SimOutcome {
            schedule: self.schedule.clone(),
            end_ns: self.now,
            messages_sent: self.messages_sent,
            messages_delivered: self.messages_delivered,
            node_logs: self
                .nodes
                .iter_mut()
                .map(|s| (s.id.clone(), std::mem::take(&mut s.log)))
                .collect(),
            final_states,
            messages: std::mem::take(&mut self.messages),
        };
        (self.recorder, outcome)
    }

    fn all_idle(&self) -> bool {
        self.workers.iter().all(|w| w.pending.is_none())
    }

    fn handle(&mut self, event: Event) {
        if let Some(n) = event.node() {
            let slot = &mut self.nodes[n];
            if slot.node.is_none() {
                if let Event::Deliver { trace: Some(t), .. } = event {
                    self.messages[t].fate = "dead";
                }
                return; // crashed: the event is lost
            }
            if slot.paused {
                slot.held.push(event);
                return;
            }
        }
        match event {
            Event::Deliver {
                to,
                from,
                bytes,
                trace,
            } => self.deliver(to, from, &bytes, trace),
            Event::ClientArrive { to, request, bytes } => {
                let body = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
                self.call_node(to, |node, ctx| node.on_client_request(ctx, request, body));
            }
            Event::ClientReply {
                worker,
                request,
                bytes,
            } => {
                let body = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
                self.complete(worker, request, Outcome::Reply(body));
            }
            Event::ClientTimeout { worker, request } => {
                self.complete(worker, request, Outcome::Timeout)
            }
            Event::Timer {
                node,
                key,
                generation,
            } => {
                if self.nodes[node].timers.get(&key) == Some(&generation) {
                    self.nodes[node].timers.remove(&key);
                    self.call_node(node, |n, ctx| n.on_timer(ctx, key));
                }
            }
            Event::Generate => self.generate(),
            Event::Fault(i) => {
                let fault = self.schedule.faults[i].fault.clone();
                self.apply_fault(&fault);
            }
            Event::FinalReads => {
                self.finals_started = true;
                self.final_queue = self
                    .workload
                    .final_invocations()
                    .into_iter()
                    .rev()
                    .map(|inv| (inv, FINAL_READ_ATTEMPTS))
                    .collect();
                for w in 0..self.workers.len() {
                    self.start_final_read(w);
                }
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, bytes: &[u8], trace: Option<usize>) {
        if !self.net.connected(from, to) {
            if let Some(t) = trace {
                self.messages[t].fate = "cut";
            }
            return; // cut while in flight: lost
        }
        if let Some(t) = trace {
            let m = &mut self.messages[t];
            if m.delivered_ns.is_none() {
                m.fate = "delivered";
                m.delivered_ns = Some(self.now);
            }
        }
        self.messages_delivered += 1;
        let Ok(envelope) = Envelope::parse(bytes) else {
            return;
        };
        let body = envelope.body.get();
        self.call_node(to, |node, ctx| {
            node.on_message_json(ctx, &envelope.src, body)
        });
    }

    /// Runs one handler of node `i` and applies its effects in order.
    fn call_node(&mut self, i: usize, handler: impl FnOnce(&mut dyn Node, &mut Context)) {
        let now = self.now;
        let epsilon_ns = self.cfg.epsilon_ns;
        let slot = &mut self.nodes[i];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let clocks = Clocks {
            wall_clock_ns: slot.clock.wall_ns(now),
            monotonic_ns: now,
            epsilon_ns,
        };
        let mut ctx = Context::new(&slot.id, &slot.peers, clocks, &mut slot.rng, &slot.synced);
        handler(node.as_mut(), &mut ctx);
        let effects = ctx.into_effects();
        for effect in effects {
            self.apply_effect(i, effect);
        }
    }

    fn apply_effect(&mut self, i: usize, effect: Effect) {
        match effect {
            Effect::Send { dest, body } => {
                let Some(to) = self.nodes.iter().position(|s| s.id == dest) else {
                    let line = format!("{} send to unknown node {dest}", self.now);
                    self.nodes[i].log.push(line);
                    return;
                };
                let slot = &mut self.nodes[i];
                let bytes = Envelope::encode(&slot.id, &dest, &body, &mut slot.next_msg_id);
                self.messages_sent += 1;
                let fate = self.net.send(&mut self.net_rng);
                let trace = self.tracing.then(|| {
                    self.messages.push(MessageTrace {
                        sent_ns: self.now,
                        delivered_ns: None,
                        from: self.nodes[i].id.clone(),
                        to: dest.clone(),
                        kind: body.kind(),
                        fate: "lost",
                    });
                    self.messages.len() - 1
                });
                if let Fate::Deliver(delays) = fate {
                    for d in delays {
                        let ev = Event::Deliver {
                            to,
                            from: i,
                            bytes: bytes.clone(),
                            trace,
                        };
                        self.push(self.now + d, ev);
                    }
                }
            }
            Effect::Reply { request, body } => {
                let Some(worker) = self.worker_of(request) else {
                    return; // the client gave up on it already
                };
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let d = self.net.sample_latency(&mut self.net_rng);
                self.push(
                    self.now + d,
                    Event::ClientReply {
                        worker,
                        request,
                        bytes,
                    },
                );
            }
            Effect::SetTimer { key, delay } => {
                let slot = &mut self.nodes[i];
                let after = match delay {
                    Delay::Fixed(ns) => ns,
                    Delay::Jitter { min, max } => slot.rng.random_range(min..=max.max(min)),
                };
                self.timer_generation += 1;
                let generation = self.timer_generation;
                slot.timers.insert(key, generation);
                self.push(
                    self.now + after,
                    Event::Timer {
                        node: i,
                        key,
                        generation,
                    },
                );
            }
            Effect::CancelTimer { key } => {
                self.nodes[i].timers.remove(&key);
            }
            Effect::DiskWrite { file, bytes } => {
                self.nodes[i].staged.insert(file, bytes);
            }
            Effect::DiskSync => {
                let slot = &mut self.nodes[i];
                let staged = std::mem::take(&mut slot.staged);
                slot.synced.extend(staged);
            }
            Effect::Trace { event, data } => {
                let line = format!("{} {event} {data}", self.now);
                self.nodes[i].log.push(line);
            }
        }
    }

    fn worker_of(&self, request: u64) -> Option<usize> {
        self.workers
            .iter()
            .position(|w| w.pending.as_ref().is_some_and(|p| p.request == request))
    }

    /// Invokes the next workload operation on a free process, at the configured rate.
    fn generate(&mut self) {
        if self.now >= self.cfg.time_limit_ns {
            return;
        }
        let free: Vec<usize> = (0..self.workers.len())
            .filter(|w| self.workers[*w].pending.is_none())
            .collect();
        if let Some(&w) = free.choose(&mut self.workload_rng) {
            let process = self.workers[w].process;
            let inv = self
                .workload
                .next_invocation_for(process, &mut self.workload_rng);
            self.invoke(w, inv, None);
        }
        // Jepsen's stagger: uniform in [0, 2/rate], so the mean rate is `rate`.
        let mean = SECOND as f64 / self.cfg.rate.max(1e-3);
        let gap = self.workload_rng.random_range(0.0..=2.0 * mean) as u64;
        self.push(self.now + gap.max(1), Event::Generate);
    }

    fn invoke(&mut self, w: usize, invocation: Invocation, final_attempts_left: Option<u32>) {
        self.next_request += 1;
        let request = self.next_request;
        let worker = &mut self.workers[w];
        let to = worker.node;
        self.recorder.record(NewOp {
            time: self.now,
            process: Process::Client(worker.process),
            kind: OpType::Invoke,
            f: invocation.f.clone(),
            value: invocation.value.clone(),
            error: None,
            node: Some(self.nodes[to].id.clone()),
            extra: Default::default(),
        });
        let body = self.workload.request_body(&invocation);
        worker.pending = Some(Pending {
            request,
            invocation,
            final_attempts_left,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let d = self.net.sample_latency(&mut self.net_rng);
        self.push(self.now + d, Event::ClientArrive { to, request, bytes });
        self.push(
            self.now + self.cfg.client_timeout_ns,
            Event::ClientTimeout { worker: w, request },
        );
    }

    fn complete(&mut self, w: usize, request: u64, outcome: Outcome) {
        let worker = &mut self.workers[w];
        if worker.pending.as_ref().map(|p| p.request) != Some(request) {
            return; // a late reply or timeout for an operation already completed
        }
        let Some(pending) = worker.pending.take() else {
            return;
        };
        let completion = self.workload.complete(&pending.invocation, &outcome);
        self.workload
            .observe(worker.process, &pending.invocation, &completion);
        let node_id = self.nodes[worker.node].id.clone();
        self.recorder.record(NewOp {
            time: self.now,
            process: Process::Client(worker.process),
            kind: completion.kind,
            f: pending.invocation.f.clone(),
            value: completion.value.clone(),
            error: completion.error.clone(),
            node: Some(node_id),
            extra: completion.extra.clone(),
        });
        let ids: Vec<String> = self.nodes.iter().map(|s| s.id.clone()).collect();
        let reply = match &outcome {
            Outcome::Reply(body) => Some(body),
            Outcome::Timeout => None,
        };
        let concurrency = self.cfg.concurrency as u64;
        if let Some(retry) = worker.finish(pending, &completion, reply, &ids, concurrency) {
            self.final_queue.push(retry);
        }
        if self.finals_started {
            self.start_final_read(w);
        }
    }

    fn start_final_read(&mut self, w: usize) {
        if self.workers[w].pending.is_some() {
            return;
        }
        if let Some((inv, attempts)) = self.final_queue.pop() {
            self.invoke(w, inv, Some(attempts.saturating_sub(1)));
        }
    }
}

impl Simulator<'_> {
    fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|s| s.id == id)
    }

    fn node_indices(&self, ids: &[String]) -> Vec<usize> {
        ids.iter().filter_map(|id| self.node_index(id)).collect()
    }

    /// Nodes that currently consider themselves leader.
    fn primaries(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|s| {
                s.node.as_ref().is_some_and(|n| {
                    n.state().get("role").and_then(Value::as_str) == Some("leader")
                })
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// Replaces the symbolic `primary` target by the nodes it names right now.
    fn resolve_targets(&self, fault: &Fault) -> Fault {
        if !fault.targets_primary() {
            return fault.clone();
        }
        let all: Vec<String> = self.nodes.iter().map(|s| s.id.clone()).collect();
        fault.resolve_primary(&self.primaries(), &all)
    }

    /// Applies one fault and records it in the history as a nemesis operation.
    fn apply_fault(&mut self, fault: &Fault) {
        let resolved = self.resolve_targets(fault);
        let fault = &resolved;
        let now = self.now;
        match fault {
            Fault::StartPartition { grudge, .. } => {
                let mut cut = vec![BTreeSet::new(); self.nodes.len()];
                for (dest, srcs) in grudge {
                    if let Some(d) = self.node_index(dest) {
                        cut[d] = srcs.iter().filter_map(|s| self.node_index(s)).collect();
                    }
                }
                self.net.set_cut(cut);
            }
            Fault::StopPartition => self.net.heal(),
            Fault::Kill { nodes } => {
                for i in self.node_indices(nodes) {
                    self.crash(i);
                }
            }
            Fault::Restart { nodes } => {
                for i in self.node_indices(nodes) {
                    self.restart(i);
                }
            }
            Fault::Pause { nodes } => {
                for i in self.node_indices(nodes) {
                    self.nodes[i].paused = true;
                }
            }
            Fault::Resume { nodes } => {
                for i in self.node_indices(nodes) {
                    let slot = &mut self.nodes[i];
                    slot.paused = false;
                    let held = std::mem::take(&mut slot.held);
                    for ev in held {
                        self.push(now, ev);
                    }
                }
            }
            Fault::ClockBump { node, delta_ms } => {
                if let Some(i) = self.node_index(node) {
                    self.nodes[i].clock.bump(delta_ms * 1_000_000);
                }
            }
            Fault::ClockStrobe {
                node,
                delta_ms,
                period_ms,
                duration_ms,
            } => {
                if let Some(i) = self.node_index(node) {
                    self.nodes[i].clock.strobe(
                        now,
                        delta_ms * 1_000_000,
                        period_ms * 1_000_000,
                        duration_ms * 1_000_000,
                    );
                }
            }
            Fault::ClockDrift { node, ppm } => {
                if let Some(i) = self.node_index(node) {
                    self.nodes[i].clock.set_drift(now, *ppm);
                }
            }
            Fault::ClockReset { nodes } => {
                for i in self.node_indices(nodes) {
                    self.nodes[i].clock.reset();
                }
            }
            Fault::StartLoss { probability } => self.net.loss = *probability,
            Fault::StopLoss => self.net.loss = self.net.base_loss,
            Fault::StartLatency { extra_ms } => self.net.extra_latency_ns = extra_ms * MS,
            Fault::StopLatency => self.net.extra_latency_ns = 0.0,
            Fault::StartDuplication { probability } => self.net.duplication = *probability,
            Fault::StopDuplication => self.net.duplication = self.net.base_duplication,
        }
        self.recorder.record(NewOp {
            time: now,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: fault.name().to_string(),
            value: fault.history_value(),
            error: None,
            node: None,
            extra: Default::default(),
        });
    }

    /// A crash: memory, timers, held events and unsynced writes are gone.
    fn crash(&mut self, i: usize) {
        let now = self.now;
        let slot = &mut self.nodes[i];
        if slot.node.take().is_some() {
            slot.log.push(format!("{now} crashed"));
        }
        slot.staged.clear();
        slot.timers.clear();
        slot.held.clear();
        slot.paused = false;
    }

    /// A restart of a crashed node from its synced disk; a running node is left alone.
    fn restart(&mut self, i: usize) {
        if self.nodes[i].node.is_some() {
            return;
        }
        let ids = self.cfg.node_ids();
        let config = NodeConfig {
            id: self.nodes[i].id.clone(),
            nodes: ids,
            bugs: self.cfg.bugs.clone(),
        };
        match (self.factory)(config) {
            Ok(node) => {
                let now = self.now;
                let slot = &mut self.nodes[i];
                slot.node = Some(node);
                slot.log.push(format!("{now} restarted"));
                self.call_node(i, |node, ctx| node.on_start(ctx));
            }
            Err(e) => self.nodes[i].log.push(format!("restart failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
