//! A dynamo node: a replica for the keys the ring gives it, and a coordinator for any client.
//!
//! - **Reads** go to the first N reachable nodes of the key's preference list (a sloppy quorum:
//!   unreachable home replicas are replaced by the next nodes); R answers are merged, so the
//!   reply holds every concurrent sibling and the merged causal context. A read may name a
//!   session context (`after`) that its answer must cover: the coordinator then waits for more
//!   replicas, or fails definitely rather than answer with less than the client already saw.
//!   Replicas whose answer was behind the merge get it back (read repair).
//! - **Writes** are coordinated by a node among those N (a node outside forwards the request):
//!   it applies the write to its own stored object, which mints the new dot, persists, and
//!   sends the whole object to the other targets; W acknowledgements answer the client.
//! - **Hinted handoff**: a node that is not a home replica of a key but holds data for it
//!   remembers which home replicas still need it, and hands the object over once they answer.
//! - **Anti-entropy**: every half second each node exchanges its objects with one peer, for the
//!   keys both are home replicas of.
//! - **Liveness**: pings every 100 ms; a peer is reachable while its pongs keep coming.

use super::messages::Message;
use super::object::{Minting, Object, VersionVector, dominates};
use super::ring::Ring;
use super::storage::{self, StoredKey};
use crate::node::{Context, Delay, Node, NodeConfig, NodeId, RequestId, TimerKey};
use crate::protocol::{self, code};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const MS: u64 = 1_000_000;
const TICK_TIMER: TimerKey = 1;
const TICK_NS: u64 = 50 * MS;
const PING_EVERY_TICKS: u64 = 2;
/// A peer whose last pong is older than this is treated as unreachable.
const ALIVE_NS: u64 = 350 * MS;
/// Unanswered replica requests are sent again (to a fallback if the target looks dead).
const RETRY_NS: u64 = 150 * MS;
/// A coordinator gives up on an operation after this long (clients wait a second).
const OP_DEADLINE_NS: u64 = 800 * MS;
const FORWARD_DEADLINE_NS: u64 = 900 * MS;
const HANDOFF_EVERY_TICKS: u64 = 5;
const ANTI_ENTROPY_EVERY_TICKS: u64 = 10;
/// Forwarded requests remembered, so that a duplicated message is not applied twice.
const SEEN_FORWARDS: usize = 4096;

/// Replication factor and quorums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorums {
    /// Replicas per key.
    pub n: usize,
    /// Answers a read waits for.
    pub r: usize,
    /// Acknowledgements a write waits for.
    pub w: usize,
}

impl Default for Quorums {
    fn default() -> Self {
        Quorums { n: 3, r: 2, w: 2 }
    }
}

/// The deliberate bugs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Keep only the sibling with the newest wall-clock timestamp.
    pub lww: bool,
    /// Version-vector entries per client instead of per coordinating node.
    pub client_ids: bool,
    /// Writes ignore their context.
    pub drop_context: bool,
    /// Hinted handoff never runs.
    pub no_handoff: bool,
}

impl Bugs {
    pub fn from_config(config: &NodeConfig) -> Bugs {
        Bugs {
            lww: config.has_bug("lww"),
            client_ids: config.has_bug("client-ids"),
            drop_context: config.has_bug("drop-context"),
            no_handoff: config.has_bug("no-handoff"),
        }
    }
}

/// Where an answer goes: the client, or the node that forwarded the request.
#[derive(Debug, Clone, PartialEq)]
enum ReplyTo {
    Client(RequestId),
    Forwarded { origin: NodeId, fwd: u64 },
}

/// A client request, parsed.
#[derive(Debug, Clone, PartialEq)]
enum Request {
    Read {
        key: Value,
        /// The session context the answer must cover.
        after: Option<VersionVector>,
        /// The node that should coordinate it.
        node: Option<NodeId>,
    },
    Write {
        key: Value,
        value: Value,
        context: Option<VersionVector>,
        client: Option<String>,
    },
}

fn parse_context(body: &Value, field: &str) -> Result<Option<VersionVector>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(c) => serde_json::from_value(c.clone())
            .map(Some)
            .map_err(|e| format!("`{field}` is not a causal context: {e}")),
    }
}

fn parse_request(body: &Value) -> Result<Request, String> {
    let key = body
        .get("key")
        .cloned()
        .ok_or_else(|| "missing `key`".to_string())?;
    match body.get("type").and_then(Value::as_str) {
        Some("read") => Ok(Request::Read {
            key,
            after: parse_context(body, "after")?,
            node: body.get("node").and_then(Value::as_str).map(str::to_string),
        }),
        Some("write") => Ok(Request::Write {
            key,
            value: body
                .get("value")
                .cloned()
                .ok_or_else(|| "missing `value`".to_string())?,
            context: parse_context(body, "context")?,
            client: body
                .get("client")
                .and_then(Value::as_str)
                .map(str::to_string),
        }),
        other => Err(format!("unknown request type {other:?}")),
    }
}

#[derive(Debug)]
enum OpKind {
    Read {
        after: Option<VersionVector>,
        replies: BTreeMap<NodeId, Object>,
    },
    Write {
        object: Object,
        acks: BTreeSet<NodeId>,
    },
}

/// An operation this node coordinates.
#[derive(Debug)]
struct PendingOp {
    reply_to: ReplyTo,
    key: Value,
    key_text: String,
    targets: Vec<NodeId>,
    kind: OpKind,
    started_ns: u64,
    last_send_ns: u64,
}

impl PendingOp {
    fn answered(&self, node: &str) -> bool {
        match &self.kind {
            OpKind::Read { replies, .. } => replies.contains_key(node),
            OpKind::Write { acks, .. } => acks.contains(node),
        }
    }
}

/// A client request this node forwarded to a coordinator.
#[derive(Debug)]
struct PendingForward {
    request: RequestId,
    read_only: bool,
    deadline_ns: u64,
}

pub struct DynamoNode {
    id: NodeId,
    peers: Vec<NodeId>,
    ring: Ring,
    quorums: Quorums,
    bugs: Bugs,
    store: BTreeMap<String, StoredKey>,
    last_pong: BTreeMap<NodeId, u64>,
    ops: BTreeMap<u64, PendingOp>,
    forwards: BTreeMap<u64, PendingForward>,
    next_id: u64,
    seen_forwards: BTreeSet<(NodeId, u64)>,
    seen_order: VecDeque<(NodeId, u64)>,
    ticks: u64,
    sync_cursor: usize,
}

impl DynamoNode {
    pub fn new(config: NodeConfig) -> DynamoNode {
        DynamoNode::with_quorums(config, Quorums::default())
    }

    pub fn with_quorums(config: NodeConfig, quorums: Quorums) -> DynamoNode {
        let n = quorums.n.clamp(1, config.nodes.len().max(1));
        DynamoNode {
            id: config.id.clone(),
            peers: config.peers(),
            ring: Ring::new(&config.nodes),
            quorums: Quorums {
                n,
                r: quorums.r.clamp(1, n),
                w: quorums.w.clamp(1, n),
            },
            bugs: Bugs::from_config(&config),
            store: BTreeMap::new(),
            last_pong: BTreeMap::new(),
            ops: BTreeMap::new(),
            forwards: BTreeMap::new(),
            next_id: 0,
            seen_forwards: BTreeSet::new(),
            seen_order: VecDeque::new(),
            ticks: 0,
            sync_cursor: 0,
        }
    }

    /// The stored object of a key (empty if none), for tests and invariants.
    pub fn object(&self, key: &Value) -> Object {
        self.local(&key.to_string())
    }

    /// The home replicas a hint is still owed to, for a key this node holds.
    pub fn hints(&self, key: &Value) -> BTreeSet<NodeId> {
        self.store
            .get(&key.to_string())
            .map(|s| s.hints.clone())
            .unwrap_or_default()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn alive(&self, node: &str, now: u64) -> bool {
        node == self.id
            || self
                .last_pong
                .get(node)
                .is_some_and(|&t| now.saturating_sub(t) <= ALIVE_NS)
    }

    fn home(&self, key_text: &str) -> Vec<NodeId> {
        let mut list = self.ring.preference_list(key_text);
        list.truncate(self.quorums.n);
        list
    }

    /// The first N reachable nodes of the preference list: home replicas, or fallbacks.
    fn targets(&self, key_text: &str, now: u64) -> Vec<NodeId> {
        self.ring
            .preference_list(key_text)
            .into_iter()
            .filter(|n| self.alive(n, now))
            .take(self.quorums.n)
            .collect()
    }

    fn local(&self, key_text: &str) -> Object {
        self.store
            .get(key_text)
            .map(|s| s.object.clone())
            .unwrap_or_default()
    }

    fn settle(&self, object: &mut Object) {
        if self.bugs.lww {
            object.keep_newest();
        }
    }

    /// Stores `object` as the key's state (re-arming hints if this node is not a home
    /// replica), and makes it durable before anything else happens.
    fn put_local(&mut self, ctx: &mut Context, key: &Value, object: Object) {
        let key_text = key.to_string();
        let home = self.home(&key_text);
        let is_new = !self.store.contains_key(&key_text);
        let stored = self.store.entry(key_text.clone()).or_default();
        stored.key = key.clone();
        stored.object = object;
        if !home.contains(&self.id) {
            stored.hints = home.into_iter().collect();
        }
        let stored = &self.store[&key_text];
        storage::stage(ctx, &key_text, stored, is_new.then_some(&self.store));
        ctx.disk_sync();
    }

    /// Merges another replica's object for `key` into ours; returns whether ours changed.
    fn absorb(&mut self, ctx: &mut Context, key: &Value, incoming: &Object) -> bool {
        let key_text = key.to_string();
        let current = self.store.get(&key_text).map(|s| &s.object);
        if current.is_none() && incoming.is_empty() {
            return false;
        }
        let mut merged = current.cloned().unwrap_or_default();
        merged.merge(incoming);
        self.settle(&mut merged);
        if current == Some(&merged) {
            return false;
        }
        self.put_local(ctx, key, merged);
        true
    }

    fn answer(&self, ctx: &mut Context, reply_to: &ReplyTo, body: Value) {
        match reply_to {
            ReplyTo::Client(request) => ctx.reply(*request, body),
            ReplyTo::Forwarded { origin, fwd } => {
                ctx.send(origin, &Message::ForwardReply { fwd: *fwd, body })
            }
        }
    }

    fn forward(&mut self, ctx: &mut Context, request: RequestId, to: &str, body: Value) {
        let fwd = self.next_id();
        let read_only = body.get("type").and_then(Value::as_str) == Some("read");
        self.forwards.insert(
            fwd,
            PendingForward {
                request,
                read_only,
                deadline_ns: ctx.monotonic_ns() + FORWARD_DEADLINE_NS,
            },
        );
        ctx.send(to, &Message::Forward { fwd, body });
    }

    fn handle_request(&mut self, ctx: &mut Context, reply_to: ReplyTo, body: Value) {
        let request = match parse_request(&body) {
            Ok(r) => r,
            Err(e) => {
                let reply = protocol::definite_error(code::MALFORMED_REQUEST, e);
                self.answer(ctx, &reply_to, reply);
                return;
            }
        };
        let now = ctx.monotonic_ns();
        match request {
            Request::Read { key, after, node } => {
                // A read may name its coordinator (final reads go through every node).
                if let (ReplyTo::Client(request), Some(node)) = (&reply_to, &node)
                    && *node != self.id
                    && self.peers.contains(node)
                {
                    self.forward(ctx, *request, node, body);
                    return;
                }
                self.start_read(ctx, reply_to, key, after, now);
            }
            Request::Write {
                key,
                value,
                context,
                client,
            } => {
                let targets = self.targets(&key.to_string(), now);
                // Writes are coordinated by a node that stores the key; one hop at most.
                if let ReplyTo::Client(request) = reply_to
                    && !targets.contains(&self.id)
                    && let Some(first) = targets.first().cloned()
                {
                    self.forward(ctx, request, &first, body);
                    return;
                }
                let write = ClientWrite {
                    key,
                    value,
                    context,
                    client,
                };
                self.start_write(ctx, reply_to, write, targets, now);
            }
        }
    }

    fn start_read(
        &mut self,
        ctx: &mut Context,
        reply_to: ReplyTo,
        key: Value,
        after: Option<VersionVector>,
        now: u64,
    ) {
        let key_text = key.to_string();
        let targets = self.targets(&key_text, now);
        let mut replies = BTreeMap::new();
        if targets.contains(&self.id) {
            replies.insert(self.id.clone(), self.local(&key_text));
        }
        let op = self.next_id();
        for t in targets.iter().filter(|t| **t != self.id) {
            ctx.send(
                t,
                &Message::Fetch {
                    op,
                    key: key.clone(),
                },
            );
        }
        self.ops.insert(
            op,
            PendingOp {
                reply_to,
                key,
                key_text,
                targets,
                kind: OpKind::Read { after, replies },
                started_ns: now,
                last_send_ns: now,
            },
        );
        self.try_finish_read(ctx, op);
    }

    /// Answers a read once R replicas answered and their merge covers the session context;
    /// then repairs the replicas that were behind.
    fn try_finish_read(&mut self, ctx: &mut Context, op: u64) {
        let Some(pending) = self.ops.get(&op) else {
            return;
        };
        let OpKind::Read { after, replies } = &pending.kind else {
            return;
        };
        if replies.len() < self.quorums.r {
            return;
        }
        let mut merged = Object::default();
        for object in replies.values() {
            merged.merge(object);
        }
        self.settle(&mut merged);
        let caught_up = after.as_ref().is_none_or(|a| dominates(&merged.context, a));
        if !caught_up && replies.len() < pending.targets.len() {
            return; // more replicas may know what the session saw
        }
        let Some(pending) = self.ops.remove(&op) else {
            return;
        };
        let reply = if caught_up {
            protocol::ok(
                "read",
                json!({"siblings": merged.values(), "context": merged.context}),
            )
        } else {
            protocol::definite_error(
                code::TEMPORARILY_UNAVAILABLE,
                "the reachable replicas are behind the session's context",
            )
        };
        self.answer(ctx, &pending.reply_to, reply);
        let OpKind::Read { replies, .. } = pending.kind else {
            return;
        };
        for (node, object) in replies {
            if object.same_as(&merged) {
                continue;
            }
            if node == self.id {
                self.absorb(ctx, &pending.key, &merged);
            } else {
                ctx.send(
                    &node,
                    &Message::Repair {
                        key: pending.key.clone(),
                        object: merged.clone(),
                    },
                );
            }
        }
    }

    fn start_write(
        &mut self,
        ctx: &mut Context,
        reply_to: ReplyTo,
        write: ClientWrite,
        targets: Vec<NodeId>,
        now: u64,
    ) {
        let key_text = write.key.to_string();
        let mut object = self.local(&key_text);
        let context = if self.bugs.drop_context {
            None
        } else {
            write.context.as_ref()
        };
        let minting = if self.bugs.client_ids {
            Minting::PerClient
        } else {
            Minting::PerNode
        };
        let dot = object.write(
            context,
            write.value,
            ctx.wall_clock_ns(),
            &self.id,
            write.client.as_deref(),
            minting,
        );
        self.settle(&mut object);
        ctx.trace("write", json!({"key": write.key, "dot": dot}));
        self.put_local(ctx, &write.key, object.clone());
        let mut acks = BTreeSet::new();
        if targets.contains(&self.id) {
            acks.insert(self.id.clone());
        }
        let op = self.next_id();
        for t in targets.iter().filter(|t| **t != self.id) {
            ctx.send(
                t,
                &Message::Replicate {
                    op,
                    key: write.key.clone(),
                    object: object.clone(),
                },
            );
        }
        self.ops.insert(
            op,
            PendingOp {
                reply_to,
                key: write.key,
                key_text,
                targets,
                kind: OpKind::Write { object, acks },
                started_ns: now,
                last_send_ns: now,
            },
        );
        self.try_finish_write(ctx, op);
    }

    fn try_finish_write(&mut self, ctx: &mut Context, op: u64) {
        let done = matches!(
            self.ops.get(&op),
            Some(PendingOp { kind: OpKind::Write { acks, .. }, .. }) if acks.len() >= self.quorums.w
        );
        if done && let Some(pending) = self.ops.remove(&op) {
            self.answer(ctx, &pending.reply_to, protocol::ok("write", json!({})));
        }
    }

    /// Gives up on an operation past its deadline; otherwise sends its unanswered replica
    /// requests again, replacing targets that look dead by the next reachable nodes.
    fn retry_or_expire(&mut self, ctx: &mut Context, op: u64, now: u64) {
        let Some(pending) = self.ops.get(&op) else {
            return;
        };
        if now >= pending.started_ns + OP_DEADLINE_NS {
            let Some(pending) = self.ops.remove(&op) else {
                return;
            };
            let reply = match &pending.kind {
                OpKind::Write { acks, .. } => protocol::indefinite_error(
                    code::TIMEOUT,
                    format!(
                        "{} of {} replicas acknowledged in time",
                        acks.len(),
                        self.quorums.w
                    ),
                ),
                OpKind::Read { replies, .. } => protocol::definite_error(
                    code::TEMPORARILY_UNAVAILABLE,
                    format!(
                        "{} of {} replicas answered in time",
                        replies.len(),
                        self.quorums.r
                    ),
                ),
            };
            self.answer(ctx, &pending.reply_to, reply);
            return;
        }
        if now < pending.last_send_ns + RETRY_NS {
            return;
        }
        let mut targets: Vec<NodeId> = pending
            .targets
            .iter()
            .filter(|t| pending.answered(t) || self.alive(t, now))
            .cloned()
            .collect();
        for node in self.ring.preference_list(&pending.key_text) {
            if targets.len() >= self.quorums.n {
                break;
            }
            if !targets.contains(&node) && self.alive(&node, now) {
                targets.push(node);
            }
        }
        let own = self.local(&pending.key_text);
        let Some(pending) = self.ops.get_mut(&op) else {
            return;
        };
        pending.targets = targets;
        pending.last_send_ns = now;
        if pending.targets.contains(&self.id) {
            // This node became one of the targets: it already holds the key's state.
            match &mut pending.kind {
                OpKind::Read { replies, .. } => {
                    replies.entry(self.id.clone()).or_insert(own);
                }
                OpKind::Write { acks, .. } => {
                    acks.insert(self.id.clone());
                }
            }
        }
        for t in &pending.targets {
            if *t == self.id || pending.answered(t) {
                continue;
            }
            let message = match &pending.kind {
                OpKind::Read { .. } => Message::Fetch {
                    op,
                    key: pending.key.clone(),
                },
                OpKind::Write { object, .. } => Message::Replicate {
                    op,
                    key: pending.key.clone(),
                    object: object.clone(),
                },
            };
            ctx.send(t, &message);
        }
        match pending.kind {
            OpKind::Read { .. } => self.try_finish_read(ctx, op),
            OpKind::Write { .. } => self.try_finish_write(ctx, op),
        }
    }

    fn on_tick(&mut self, ctx: &mut Context) {
        self.ticks += 1;
        let now = ctx.monotonic_ns();
        ctx.set_timer(TICK_TIMER, Delay::Fixed(TICK_NS));
        if self.ticks.is_multiple_of(PING_EVERY_TICKS) {
            for peer in self.peers.clone() {
                ctx.send(&peer, &Message::Ping);
            }
        }
        let ops: Vec<u64> = self.ops.keys().copied().collect();
        for op in ops {
            self.retry_or_expire(ctx, op, now);
        }
        let expired: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| now >= f.deadline_ns)
            .map(|(id, _)| *id)
            .collect();
        for fwd in expired {
            if let Some(f) = self.forwards.remove(&fwd) {
                let reply = if f.read_only {
                    protocol::definite_error(
                        code::TEMPORARILY_UNAVAILABLE,
                        "the coordinator did not answer",
                    )
                } else {
                    protocol::indefinite_error(code::TIMEOUT, "the coordinator did not answer")
                };
                ctx.reply(f.request, reply);
            }
        }
        if !self.bugs.no_handoff && self.ticks.is_multiple_of(HANDOFF_EVERY_TICKS) {
            self.hand_off(ctx, now);
        }
        if self.ticks.is_multiple_of(ANTI_ENTROPY_EVERY_TICKS) {
            self.anti_entropy(ctx, now);
        }
    }

    /// Offers every hinted object to its reachable home replicas.
    fn hand_off(&mut self, ctx: &mut Context, now: u64) {
        for stored in self.store.values() {
            for home in &stored.hints {
                if self.alive(home, now) {
                    ctx.send(
                        home,
                        &Message::Handoff {
                            key: stored.key.clone(),
                            object: stored.object.clone(),
                        },
                    );
                }
            }
        }
    }

    /// The keys this node and `peer` are both home replicas of.
    fn shared_keys(&self, peer: &str) -> Vec<String> {
        self.store
            .keys()
            .filter(|k| {
                let home = self.home(k);
                home.contains(&self.id) && home.iter().any(|n| n == peer)
            })
            .cloned()
            .collect()
    }

    /// Exchanges objects with the next reachable peer, for the keys both replicate.
    fn anti_entropy(&mut self, ctx: &mut Context, now: u64) {
        let reachable: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|p| self.alive(p, now))
            .cloned()
            .collect();
        if reachable.is_empty() {
            return;
        }
        self.sync_cursor = (self.sync_cursor + 1) % reachable.len();
        let peer = reachable[self.sync_cursor].clone();
        let objects = self
            .shared_keys(&peer)
            .iter()
            .map(|k| (self.store[k].key.clone(), self.store[k].object.clone()))
            .collect();
        ctx.send(
            &peer,
            &Message::Sync {
                objects,
                reply: false,
            },
        );
    }

    fn on_sync(
        &mut self,
        ctx: &mut Context,
        from: &str,
        objects: Vec<(Value, Object)>,
        reply: bool,
    ) {
        let mut received = BTreeSet::new();
        let mut behind = Vec::new();
        for (key, object) in objects {
            self.absorb(ctx, &key, &object);
            let key_text = key.to_string();
            if self
                .store
                .get(&key_text)
                .is_some_and(|s| !s.object.same_as(&object))
            {
                behind.push(key_text.clone());
            }
            received.insert(key_text);
        }
        if reply {
            return;
        }
        // Answer with what the sender lacks: newer objects, and keys it did not send.
        for key_text in self.shared_keys(from) {
            if !received.contains(&key_text) {
                behind.push(key_text);
            }
        }
        if behind.is_empty() {
            return;
        }
        let objects = behind
            .iter()
            .map(|k| (self.store[k].key.clone(), self.store[k].object.clone()))
            .collect();
        ctx.send(
            from,
            &Message::Sync {
                objects,
                reply: true,
            },
        );
    }

    fn remember_forward(&mut self, origin: &str, fwd: u64) -> bool {
        let id = (origin.to_string(), fwd);
        if !self.seen_forwards.insert(id.clone()) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN_FORWARDS
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen_forwards.remove(&old);
        }
        true
    }
}

/// A client write as the coordinator applies it.
struct ClientWrite {
    key: Value,
    value: Value,
    context: Option<VersionVector>,
    client: Option<String>,
}

impl Node for DynamoNode {
    fn on_start(&mut self, ctx: &mut Context) {
        self.store = storage::load(ctx);
        self.ops.clear();
        self.forwards.clear();
        let now = ctx.monotonic_ns();
        // Ids of this incarnation start past any of an earlier one, so a late answer to an
        // operation from before a crash cannot be taken for an answer to a new one.
        self.next_id = self.next_id.max(now);
        // Optimistic start: peers count as reachable until their pongs stop.
        self.last_pong = self.peers.iter().map(|p| (p.clone(), now)).collect();
        ctx.set_timer(TICK_TIMER, Delay::Fixed(TICK_NS));
    }

    fn on_message(&mut self, ctx: &mut Context, from: &str, body: Value) {
        let message = match Message::parse(body) {
            Ok(m) => m,
            Err(e) => {
                ctx.trace("bad-message", json!({"from": from, "error": e}));
                return;
            }
        };
        match message {
            Message::Ping => ctx.send(from, &Message::Pong),
            Message::Pong => {
                self.last_pong.insert(from.to_string(), ctx.monotonic_ns());
            }
            Message::Replicate { op, key, object } => {
                self.absorb(ctx, &key, &object);
                ctx.send(from, &Message::ReplicateOk { op });
            }
            Message::ReplicateOk { op } => {
                if let Some(PendingOp {
                    kind: OpKind::Write { acks, .. },
                    targets,
                    ..
                }) = self.ops.get_mut(&op)
                    && targets.iter().any(|t| t == from)
                {
                    acks.insert(from.to_string());
                    self.try_finish_write(ctx, op);
                }
            }
            Message::Fetch { op, key } => {
                let object = self.local(&key.to_string());
                ctx.send(from, &Message::FetchOk { op, object });
            }
            Message::FetchOk { op, object } => {
                if let Some(PendingOp {
                    kind: OpKind::Read { replies, .. },
                    targets,
                    ..
                }) = self.ops.get_mut(&op)
                    && targets.iter().any(|t| t == from)
                {
                    replies.insert(from.to_string(), object);
                    self.try_finish_read(ctx, op);
                }
            }
            Message::Repair { key, object } => {
                self.absorb(ctx, &key, &object);
            }
            Message::Handoff { key, object } => {
                self.absorb(ctx, &key, &object);
                let context = self.local(&key.to_string()).context;
                ctx.send(from, &Message::HandoffOk { key, context });
            }
            Message::HandoffOk { key, context } => {
                let key_text = key.to_string();
                let done = self.store.get_mut(&key_text).is_some_and(|s| {
                    dominates(&context, &s.object.context) && s.hints.remove(from)
                });
                if done {
                    storage::stage(ctx, &key_text, &self.store[&key_text], None);
                    ctx.disk_sync();
                }
            }
            Message::Sync { objects, reply } => self.on_sync(ctx, from, objects, reply),
            Message::Forward { fwd, body } => {
                if self.remember_forward(from, fwd) {
                    let reply_to = ReplyTo::Forwarded {
                        origin: from.to_string(),
                        fwd,
                    };
                    self.handle_request(ctx, reply_to, body);
                }
            }
            Message::ForwardReply { fwd, body } => {
                if let Some(f) = self.forwards.remove(&fwd) {
                    ctx.reply(f.request, body);
                }
            }
        }
    }

    fn on_client_request(&mut self, ctx: &mut Context, request: RequestId, body: Value) {
        self.handle_request(ctx, ReplyTo::Client(request), body);
    }

    fn on_timer(&mut self, ctx: &mut Context, key: TimerKey) {
        if key == TICK_TIMER {
            self.on_tick(ctx);
        }
    }

    fn state(&self) -> Value {
        let keys: serde_json::Map<String, Value> = self
            .store
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    json!({"siblings": s.object.values(), "context": s.object.context,
                           "hints": s.hints}),
                )
            })
            .collect();
        json!({"keys": keys, "pending_ops": self.ops.len(), "pending_forwards": self.forwards.len()})
    }
}
