//! The Spanner node: one replica of every shard, plus the agent for the clients it serves.
//!
//! Handlers route peer messages to a shard's Raft core (by `group`) or to the agent,
//! participant and coordinator code (`agent.rs`, `leader.rs`). Work is collected, then
//! [`SpannerNode::finish`] runs until nothing is left: it reacts to Raft events and applied
//! commands, delivers messages a node sends itself, retries lock waits, finishes commit waits
//! and serves snapshot reads; then it sends and sets the one wake-up timer that the earliest
//! TrueTime wait needs.

use super::agent::{AgentTxn, ReadOnlyTxn};
use super::leader::Leadership;
use super::machine::{ShardMachine, Ts, TxnId};
use super::messages::Message;
use super::{Bugs, SHARDS, shard_of};
use crate::node::{Context, Delay, Node, NodeConfig, NodeId, RequestId, TimerKey};
use crate::raft::{Event, Raft, RaftConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

/// Housekeeping: retransmissions and timeouts.
pub(super) const TICK_TIMER: TimerKey = 1;
/// The earliest TrueTime wait (commit wait, snapshot reads).
pub(super) const WAKE_TIMER: TimerKey = 2;
pub(super) const MS: u64 = 1_000_000;
pub(super) const TICK_NS: u64 = 10 * MS;

const INCARNATION_FILE: &str = "spanner.incarnation";

/// One shard's replica on this node; `lead` exists while this replica leads.
pub(super) struct Shard {
    pub raft: Raft<ShardMachine>,
    pub lead: Option<Leadership>,
}

/// What this node measured, for `state()` and the tests.
#[derive(Debug, Clone, Default)]
pub(super) struct Stats {
    pub commits: u64,
    pub aborts: u64,
    pub wounds: u64,
    pub read_only: u64,
    /// Commit wait measured from the commit timestamp's choice to the release.
    pub commit_wait_total_ns: u128,
    /// The part of commit wait spent after the commit record was applied.
    pub commit_wait_after_log_ns: u128,
}

pub struct SpannerNode {
    pub(super) id: NodeId,
    pub(super) index: u32,
    pub(super) nodes: Vec<NodeId>,
    pub(super) bugs: Bugs,
    pub(super) shards: Vec<Shard>,
    /// Leader hints heard in refusals, per shard.
    pub(super) hints: Vec<Option<NodeId>>,
    pub(super) incarnation: u64,
    pub(super) next_seq: u64,
    /// Read-write transactions this node's clients asked for.
    pub(super) txns: BTreeMap<TxnId, AgentTxn>,
    /// Read-only transactions this node's clients asked for, by snapshot id.
    pub(super) snapshots: BTreeMap<u64, ReadOnlyTxn>,
    pub(super) outbox: Vec<(NodeId, Message)>,
    pub(super) local: VecDeque<Message>,
    /// Client replies, sent with the messages at the end of the handler.
    pub(super) replies: Vec<(RequestId, Value)>,
    wake_at: Option<u64>,
    pub(super) stats: Stats,
}

impl SpannerNode {
    pub fn new(config: NodeConfig) -> SpannerNode {
        let shards = (0..SHARDS)
            .map(|s| {
                let mut raft = RaftConfig::new(&config.id, &config.nodes);
                raft.group = Some(format!("s{s}"));
                raft.disk_prefix = format!("shard{s}");
                raft.timer_base = 16 * (s as u64 + 1);
                raft.leases = true;
                Shard {
                    raft: Raft::new(raft, ShardMachine::new()),
                    lead: None,
                }
            })
            .collect();
        let index = config
            .nodes
            .iter()
            .position(|n| *n == config.id)
            .unwrap_or(0) as u32;
        SpannerNode {
            index,
            bugs: Bugs {
                no_commit_wait: config.has_bug("no-commit-wait"),
                no_prepare_max: config.has_bug("no-prepare-max"),
            },
            id: config.id,
            nodes: config.nodes,
            shards,
            hints: vec![None; SHARDS],
            incarnation: 0,
            next_seq: 0,
            txns: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            outbox: Vec::new(),
            local: VecDeque::new(),
            replies: Vec::new(),
            wake_at: None,
            stats: Stats::default(),
        }
    }

    /// The raft core of shard `s` (for tests and state).
    pub fn shard_raft(&self, s: usize) -> &Raft<ShardMachine> {
        &self.shards[s].raft
    }

    /// Sends `message` to `dest`; to this node itself it is delivered by [`Self::finish`].
    pub(super) fn send(&mut self, dest: &str, message: Message) {
        if dest == self.id {
            self.local.push_back(message);
        } else {
            self.outbox.push((dest.to_string(), message));
        }
    }

    /// The node an agent's `attempt`-th message for shard `s` should go to: this node if it
    /// leads, else its Raft hint, else a hint from a refusal, else each node in turn.
    pub(super) fn leader_guess(&self, s: usize, attempt: u32) -> NodeId {
        let raft = &self.shards[s].raft;
        if raft.is_leader() {
            return self.id.clone();
        }
        let own = raft.leader_hint().map(str::to_string);
        let heard = self.hints[s].clone();
        let candidates: Vec<NodeId> = own.into_iter().chain(heard).collect();
        if attempt < 2 * candidates.len() as u32 {
            return candidates[attempt as usize % candidates.len()].clone();
        }
        let n = self.nodes.len().max(1);
        self.nodes[(attempt as usize + s) % n].clone()
    }

    /// Who leads shard `s`, as far as this node knows (for refusals).
    pub(super) fn leader_hint(&self, s: usize) -> Option<NodeId> {
        self.shards[s].raft.leader_hint().map(str::to_string)
    }

    /// Whether this replica of `s` leads with a lease (so it alone serves reads and locks).
    pub(super) fn leads(&self, ctx: &Context, s: usize) -> bool {
        let shard = &self.shards[s];
        shard.lead.is_some() && shard.raft.has_lease(ctx.monotonic_ns())
    }

    pub(super) fn node_of(&self, txn: TxnId) -> NodeId {
        self.nodes
            .get(txn.0 as usize)
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }

    /// Delay (ns) until `TT.after(ts)` holds on this node's clock, 0 if it already does.
    pub(super) fn until_after(ctx: &Context, ts: Ts) -> u64 {
        let earliest = ctx.truetime().earliest;
        if earliest > ts {
            0
        } else {
            (ts - earliest) as u64 + 1
        }
    }

    fn process_raft(&mut self, ctx: &mut Context, s: usize) {
        let events = self.shards[s].raft.take_events();
        for event in events {
            match event {
                Event::BecameLeader { .. } => self.become_leader(ctx, s),
                Event::SteppedDown { .. } => self.step_down(ctx, s),
                Event::Applied { .. } | Event::ReadReady { .. } | Event::ReadFailed { .. } => {}
            }
        }
        let applied = self.shards[s].raft.machine_mut().take_applied();
        for outcome in applied {
            self.on_applied(ctx, s, outcome);
        }
    }

    /// Runs everything a handler set in motion to completion, then sends.
    fn finish(&mut self, ctx: &mut Context) {
        loop {
            for s in 0..SHARDS {
                self.process_raft(ctx, s);
            }
            if let Some(message) = self.local.pop_front() {
                let from = self.id.clone();
                self.handle_message(ctx, &from, message);
                continue;
            }
            let mut progress = false;
            for s in 0..SHARDS {
                progress |= self.retry_waits(ctx, s);
                progress |= self.finish_commit_waits(ctx, s);
                progress |= self.serve_snapshots(ctx, s);
            }
            if !progress && self.local.is_empty() {
                break;
            }
        }
        for (dest, message) in std::mem::take(&mut self.outbox) {
            ctx.send(&dest, &message);
        }
        for (request, reply) in std::mem::take(&mut self.replies) {
            ctx.reply(request, reply);
        }
        self.arm_wake(ctx);
    }

    /// Sets the wake-up timer for the earliest TrueTime wait, if it moved.
    fn arm_wake(&mut self, ctx: &mut Context) {
        let now = ctx.monotonic_ns();
        let mut earliest: Option<u64> = None;
        for s in 0..SHARDS {
            if let Some(delay) = self.next_truetime_wait(ctx, s) {
                let at = now + delay.max(1);
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        if earliest == self.wake_at {
            return;
        }
        self.wake_at = earliest;
        match earliest {
            Some(at) => ctx.set_timer(WAKE_TIMER, Delay::Fixed(at - now)),
            None => ctx.cancel_timer(WAKE_TIMER),
        }
    }

    fn handle_message(&mut self, ctx: &mut Context, from: &str, message: Message) {
        match message {
            Message::Read { shard, prio, key } => self.on_read(ctx, from, shard, prio, key),
            Message::ReadOk {
                txn,
                key,
                value,
                term,
            } => self.on_read_ok(ctx, txn, key, value, term),
            Message::Lock { shard, prio, keys } => self.on_lock(ctx, from, shard, prio, keys),
            Message::Locked { txn, shard, term } => self.on_locked(ctx, txn, shard, term),
            Message::Refused {
                txn,
                shard,
                leader,
                aborted,
            } => self.on_refused(ctx, txn, shard, leader, aborted),
            Message::Wounded { txn } => self.on_wounded(ctx, txn),
            Message::Release { txn, shard } => self.on_release(ctx, txn, shard),
            Message::Commit {
                prio,
                coordinator,
                parts,
            } => self.on_commit(ctx, from, prio, coordinator, parts),
            Message::CommitResult { txn, outcome } => self.on_commit_result(ctx, txn, outcome),
            Message::Prepare {
                prio,
                coordinator,
                part,
            } => self.on_prepare(ctx, from, prio, coordinator, part),
            Message::Prepared { txn, shard, ts } => self.on_prepared(ctx, txn, shard, ts),
            Message::Decision { txn, shard, commit } => self.on_decision(ctx, txn, shard, commit),
            Message::Status {
                txn,
                coordinator,
                shard,
            } => self.on_status(ctx, from, txn, coordinator, shard),
            Message::Snapshot {
                id,
                shard,
                ts,
                keys,
            } => self.on_snapshot(ctx, from, id, shard, ts, keys),
            Message::SnapshotOk { id, shard, values } => {
                self.on_snapshot_ok(ctx, id, shard, values)
            }
            Message::SnapshotRefused { id, shard, leader } => {
                self.on_snapshot_refused(ctx, id, shard, leader)
            }
        }
    }

    fn tick(&mut self, ctx: &mut Context) {
        self.agent_tick(ctx);
        for s in 0..SHARDS {
            self.leader_tick(ctx, s);
        }
    }

    fn stats_json(&self) -> Value {
        let st = &self.stats;
        let mean_ms = |total: u128| {
            if st.commits == 0 {
                0.0
            } else {
                total as f64 / st.commits as f64 / 1e6
            }
        };
        json!({
            "commits_coordinated": st.commits,
            "aborts_coordinated": st.aborts,
            "wounds": st.wounds,
            "snapshot_reads": st.read_only,
            "commit_wait_total_ns": st.commit_wait_total_ns as u64,
            "commit_wait_after_log_ns": st.commit_wait_after_log_ns as u64,
            "commit_wait_mean_ms": mean_ms(st.commit_wait_total_ns),
            "commit_wait_after_log_mean_ms": mean_ms(st.commit_wait_after_log_ns),
        })
    }
}

/// Keys grouped by shard, in first-seen order within each shard.
pub(super) fn by_shard<'a>(
    keys: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<usize, Vec<Value>> {
    let mut out: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for key in keys {
        let list = out.entry(shard_of(key)).or_default();
        if !list.contains(key) {
            list.push(key.clone());
        }
    }
    out
}

impl Node for SpannerNode {
    fn on_start(&mut self, ctx: &mut Context) {
        // Transaction ids must never repeat, so each boot gets a new incarnation.
        self.incarnation = ctx
            .disk_read(INCARNATION_FILE)
            .and_then(|b| std::str::from_utf8(b).ok()?.trim().parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        ctx.disk_write(INCARNATION_FILE, self.incarnation.to_string().into_bytes());
        ctx.disk_sync();
        self.next_seq = 0;
        self.txns.clear();
        self.snapshots.clear();
        self.outbox.clear();
        self.local.clear();
        self.replies.clear();
        self.wake_at = None;
        self.hints = vec![None; SHARDS];
        for s in 0..SHARDS {
            self.shards[s].lead = None;
            self.shards[s].raft.on_start(ctx);
        }
        ctx.set_timer(TICK_TIMER, Delay::Fixed(TICK_NS));
        self.finish(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context, from: &str, body: Value) {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.starts_with("raft_") {
            let shard = body
                .get("group")
                .and_then(Value::as_str)
                .and_then(|g| g.strip_prefix('s'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|s| *s < SHARDS);
            match shard {
                Some(s) => self.shards[s].raft.on_message(ctx, from, body),
                None => ctx.trace("spanner-unknown-group", json!({"from": from})),
            }
        } else {
            match Message::parse(body) {
                Ok(message) => self.handle_message(ctx, from, message),
                Err(error) => {
                    ctx.trace("spanner-malformed", json!({"from": from, "error": error}));
                }
            }
        }
        self.finish(ctx);
    }

    fn on_client_request(&mut self, ctx: &mut Context, request: RequestId, body: Value) {
        self.on_client(ctx, request, body);
        self.finish(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Context, key: TimerKey) {
        match key {
            TICK_TIMER => {
                self.tick(ctx);
                ctx.set_timer(TICK_TIMER, Delay::Fixed(TICK_NS));
            }
            WAKE_TIMER => self.wake_at = None,
            _ => {
                if let Some(s) = (0..SHARDS).find(|s| self.shards[*s].raft.owns_timer(key)) {
                    self.shards[s].raft.on_timer(ctx, key);
                }
            }
        }
        self.finish(ctx);
    }

    fn state(&self) -> Value {
        let shards: Vec<Value> = self
            .shards
            .iter()
            .map(|shard| {
                let mut status = shard.raft.status();
                if let Some(obj) = status.as_object_mut() {
                    let machine = shard.raft.machine();
                    obj.insert("keys".into(), json!(machine.keys()));
                    obj.insert("prepared".into(), json!(machine.prepared().len()));
                    obj.insert("max_ts".into(), json!(machine.max_ts()));
                    if let Some(lead) = &shard.lead {
                        obj.insert("leader_state".into(), lead.summary());
                    }
                }
                status
            })
            .collect();
        json!({
            "id": self.id,
            "incarnation": self.incarnation,
            "shards": shards,
            "agent": {"txns": self.txns.len(), "snapshots": self.snapshots.len()},
            "stats": self.stats_json(),
        })
    }
}
