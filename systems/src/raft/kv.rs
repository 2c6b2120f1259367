//! The lin-kv service on Raft: a key-value state machine and the node that answers clients.
//!
//! Writes and compare-and-sets go through the log and are answered when applied. Reads use
//! read-index (a heartbeat round confirms leadership, then the leader reads its state machine)
//! unless the `stale-read` bug is on.

use super::core::{Event, Faults, Raft, RaftConfig, StateMachine};
use super::messages::Command;
use crate::node::{Context, Node, NodeConfig, RequestId, TimerKey};
use crate::protocol::{self, code};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A lin-kv client request (also the command stored in the log, minus reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KvRequest {
    Read { key: Value },
    Write { key: Value, value: Value },
    Cas { key: Value, from: Value, to: Value },
}

impl KvRequest {
    pub fn parse(body: Value) -> Result<KvRequest, String> {
        serde_json::from_value(body).map_err(|e| e.to_string())
    }

    /// The log command: only what applying needs (no `msg_id` and the like).
    pub fn to_command(&self) -> Value {
        match self {
            KvRequest::Read { key } => json!({"type": "read", "key": key}),
            KvRequest::Write { key, value } => {
                json!({"type": "write", "key": key, "value": value})
            }
            KvRequest::Cas { key, from, to } => {
                json!({"type": "cas", "key": key, "from": from, "to": to})
            }
        }
    }
}

/// Keys are any JSON value; their JSON text is the map key.
fn key_text(key: &Value) -> String {
    key.to_string()
}

/// The replicated key-value map. `apply` returns the client reply body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvMachine {
    data: BTreeMap<String, Value>,
}

impl KvMachine {
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The reply to a read of `key` in the current state.
    pub fn read(&self, key: &Value) -> Value {
        match self.data.get(&key_text(key)) {
            Some(value) => protocol::ok("read", json!({ "value": value })),
            None => protocol::definite_error(code::KEY_DOES_NOT_EXIST, "key does not exist"),
        }
    }
}

impl StateMachine for KvMachine {
    fn apply(&mut self, command: &Command) -> Value {
        let request = match command.parse::<KvRequest>() {
            Ok(r) => r,
            Err(e) => return protocol::definite_error(code::MALFORMED_REQUEST, e.to_string()),
        };
        match request {
            KvRequest::Read { key } => self.read(&key),
            KvRequest::Write { key, value } => {
                self.data.insert(key_text(&key), value);
                protocol::ok("write", json!({}))
            }
            KvRequest::Cas { key, from, to } => match self.data.get_mut(&key_text(&key)) {
                None => protocol::definite_error(code::KEY_DOES_NOT_EXIST, "key does not exist"),
                Some(current) if *current != from => protocol::definite_error(
                    code::PRECONDITION_FAILED,
                    format!("expected {from}, found {current}"),
                ),
                Some(current) => {
                    *current = to;
                    protocol::ok("cas", json!({}))
                }
            },
        }
    }

    fn reset(&mut self) {
        self.data.clear();
    }
}

/// A lin-kv node: one Raft group over a [`KvMachine`].
pub struct RaftKv {
    raft: Raft<KvMachine>,
    /// Bug `stale-read`: reads skip the read-index round; any node answers from local state.
    stale_reads: bool,
    /// Proposed writes by log index: (term proposed in, client request). Kept across a
    /// step-down; lost (clients time out) on a crash.
    pending_writes: BTreeMap<u64, (u64, RequestId)>,
    /// Read-index reads by read id: (client request, key).
    pending_reads: BTreeMap<u64, (RequestId, Value)>,
}

impl RaftKv {
    pub fn new(config: NodeConfig) -> RaftKv {
        let mut raft_config = RaftConfig::new(&config.id, &config.nodes);
        raft_config.faults = Faults {
            forget_vote: config.has_bug("forget-vote"),
            commit_old_term: config.has_bug("commit-old-term"),
        };
        RaftKv {
            raft: Raft::new(raft_config, KvMachine::default()),
            stale_reads: config.has_bug("stale-read"),
            pending_writes: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
        }
    }

    pub fn raft(&self) -> &Raft<KvMachine> {
        &self.raft
    }

    fn not_leader(&self) -> Value {
        protocol::not_leader(self.raft.leader_hint())
    }

    /// Answers the clients whose fate the core's events decided.
    fn handle_events(&mut self, ctx: &mut Context) {
        for event in self.raft.take_events() {
            match event {
                Event::Applied {
                    index,
                    term,
                    result,
                } => {
                    if let Some((proposed_term, request)) = self.pending_writes.remove(&index) {
                        // Another entry committed at our index: ours can never commit (an entry
                        // never moves), so the write definitely did not happen.
                        let reply = if let (true, Some(result)) = (proposed_term == term, result) {
                            result
                        } else {
                            protocol::definite_error(
                                code::ABORT,
                                "another leader's entry committed in its place",
                            )
                        };
                        ctx.reply(request, reply);
                    }
                }
                Event::ReadReady { id } => {
                    if let Some((request, key)) = self.pending_reads.remove(&id) {
                        let reply = self.raft.machine().read(&key);
                        ctx.reply(request, reply);
                    }
                }
                Event::ReadFailed { id } => {
                    if let Some((request, _)) = self.pending_reads.remove(&id) {
                        // A read has no effect: failing it is definite.
                        let reply = protocol::definite_error(
                            code::TEMPORARILY_UNAVAILABLE,
                            "leadership not confirmed",
                        );
                        ctx.reply(request, reply);
                    }
                }
                Event::SteppedDown { .. } => {
                    // Entries we proposed may still commit under the next leader: their clients
                    // keep waiting, and learn the outcome when this node (now a follower)
                    // applies the index — our entry, or another in its place.
                }
                Event::BecameLeader { .. } => {}
            }
        }
    }
}

impl Node for RaftKv {
    fn on_start(&mut self, ctx: &mut Context) {
        self.pending_writes.clear();
        self.pending_reads.clear();
        self.raft.on_start(ctx);
        self.handle_events(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context, from: &str, body: Value) {
        self.raft.on_message(ctx, from, body);
        self.handle_events(ctx);
    }

    fn on_message_json(&mut self, ctx: &mut Context, from: &str, body: &str) {
        self.raft.on_message_json(ctx, from, body);
        self.handle_events(ctx);
    }

    fn on_client_request(&mut self, ctx: &mut Context, request: RequestId, body: Value) {
        let parsed = match KvRequest::parse(body) {
            Ok(r) => r,
            Err(e) => {
                ctx.reply(
                    request,
                    protocol::definite_error(code::MALFORMED_REQUEST, e),
                );
                return;
            }
        };
        if self.stale_reads
            && let KvRequest::Read { key } = &parsed
        {
            // The bug: whatever this node has applied is taken to be current.
            let reply = self.raft.machine().read(key);
            ctx.reply(request, reply);
            return;
        }
        if !self.raft.is_leader() {
            ctx.reply(request, self.not_leader());
            return;
        }
        match parsed {
            KvRequest::Read { key } => match self.raft.read_index(ctx) {
                Ok(id) => {
                    self.pending_reads.insert(id, (request, key));
                }
                Err(_) => ctx.reply(request, self.not_leader()),
            },
            write => match self.raft.propose(ctx, write.to_command()) {
                Ok(proposal) => {
                    self.pending_writes
                        .insert(proposal.index, (proposal.term, request));
                }
                Err(_) => ctx.reply(request, self.not_leader()),
            },
        }
        self.handle_events(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Context, key: TimerKey) {
        self.raft.on_timer(ctx, key);
        self.handle_events(ctx);
    }

    fn state(&self) -> Value {
        let mut state = self.raft.status();
        if let Some(obj) = state.as_object_mut() {
            obj.insert("kv_size".into(), Value::from(self.raft.machine().len()));
        }
        state
    }
}
