//! What a shard leader does: participant (locks with wound-wait, prepare records), coordinator
//! (two-phase commit, the commit timestamp, commit wait) and snapshot reads at a timestamp.
//!
//! All of it is volatile leader state ([`Leadership`]): it is built when the replica becomes
//! leader — locks of the transactions its log holds prepared — and dropped when it steps down,
//! after telling the agents waiting on it to ask again. Decisions live in the log, so nothing
//! a client was told depends on this state surviving.

use super::SHARDS;
use super::locks::{LockTable, Mode};
use super::machine::{Applied, Command, Decision, Priority, Ts, TxnId, Write, key_text};
use super::messages::{CommitOutcome, Message, Part};
use super::node::{MS, SpannerNode};
use crate::node::{Context, NodeId};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A coordinator resends prepares this often until every participant answered.
const PREPARE_RETRY_NS: u64 = 60 * MS;
/// A coordinator that has not heard from every participant by then aborts.
const COORDINATION_TIMEOUT_NS: u64 = 500 * MS;
/// A participant prepared this long without a decision asks the coordinator's shard.
const STATUS_AFTER_NS: u64 = 200 * MS;
const STATUS_RETRY_NS: u64 = 100 * MS;
/// Locks of a transaction that has not prepared and has not been heard of for this long are
/// released (its agent gave up or crashed).
const IDLE_TIMEOUT_NS: u64 = 1_500 * MS;
/// Lock waits and snapshot reads give up after this long.
const WAIT_TIMEOUT_NS: u64 = 800 * MS;
/// How long a transaction aborted here without a record is remembered (to refuse it).
const ABORTED_MEMORY_NS: u64 = 10_000 * MS;

pub(super) struct Leadership {
    /// The largest timestamp this leader gave (prepares, commits): the next is larger.
    last_ts: Ts,
    locks: LockTable,
    parts: BTreeMap<TxnId, Participant>,
    waits: Vec<LockWait>,
    /// Locks were released since the waits were last tried.
    waits_dirty: bool,
    snapshots: Vec<SnapshotWait>,
    coordinating: BTreeMap<TxnId, Coordination>,
    /// Transactions nobody coordinates that an abort record is resolving, and who asked.
    resolving: BTreeMap<TxnId, Vec<Inquirer>>,
    /// Transactions aborted here without a record (wounded, released, idle): refused later.
    aborted: BTreeMap<TxnId, u64>,
}

impl Leadership {
    fn new(last_ts: Ts) -> Self {
        Leadership {
            last_ts,
            locks: LockTable::default(),
            parts: BTreeMap::new(),
            waits: Vec::new(),
            waits_dirty: false,
            snapshots: Vec::new(),
            coordinating: BTreeMap::new(),
            resolving: BTreeMap::new(),
            aborted: BTreeMap::new(),
        }
    }

    pub(super) fn summary(&self) -> Value {
        json!({
            "locked_keys": self.locks.len(),
            "participants": self.parts.len(),
            "lock_waits": self.waits.len(),
            "snapshot_waits": self.snapshots.len(),
            "coordinating": self.coordinating.len(),
        })
    }

    /// Whether a write prepared (or being prepared) at or below `ts` may still change `keys`.
    fn pending_at_or_below(
        &self,
        prepared: &[(Ts, &[(Value, Write)])],
        keys: &[Value],
        ts: Ts,
    ) -> bool {
        let touches = |writes: &[(Value, Write)]| writes.iter().any(|(k, _)| keys.contains(k));
        prepared
            .iter()
            .any(|(p, writes)| *p <= ts && touches(writes))
            || self.parts.values().any(|part| match part.phase {
                Phase::Preparing { ts: p, .. } | Phase::OwnPrepared { ts: p } => {
                    p <= ts && touches(&part.writes)
                }
                _ => false,
            })
    }
}

/// A transaction that holds or wants locks here.
struct Participant {
    /// `None` for a transaction adopted from a prepare record (it can no longer be wounded).
    prio: Option<Priority>,
    touched: u64,
    phase: Phase,
    writes: Vec<(Value, Write)>,
    reads: Vec<Value>,
    coordinator: usize,
    status_asked: u64,
    status_attempts: u32,
}

impl Participant {
    fn new(prio: Option<Priority>, now: u64) -> Self {
        Participant {
            prio,
            touched: now,
            phase: Phase::Active,
            writes: Vec::new(),
            reads: Vec::new(),
            coordinator: 0,
            status_asked: 0,
            status_attempts: 0,
        }
    }

    /// Wound-wait spares prepared transactions: they wait for nothing and will finish.
    fn woundable(&self) -> bool {
        matches!(self.phase, Phase::Active)
    }
}

enum Phase {
    /// Reading under shared locks, then taking exclusive ones for its writes. Only in this
    /// phase does a transaction wait for locks, so a prepared one never waits and wound-wait
    /// (which spares prepared transactions) cannot deadlock.
    Active,
    /// Prepare record proposed at `ts`.
    Preparing {
        ts: Ts,
        reply_to: NodeId,
        abort_when_logged: bool,
    },
    /// Prepare record applied.
    Prepared,
    /// The coordinator's own shard: locked and timestamped; logged only with the commit.
    OwnPrepared { ts: Ts },
}

/// A running transaction's request for locks, granted once no older holder is in the way.
struct LockWait {
    txn: TxnId,
    prio: Priority,
    agent: NodeId,
    since: u64,
    keys: Vec<(String, Mode)>,
    purpose: WaitFor,
}

enum WaitFor {
    /// A read under a shared lock: answered with the latest committed value.
    Read(Value),
    /// Write locks before committing: answered `Locked`.
    Lock,
}

struct SnapshotWait {
    id: u64,
    agent: NodeId,
    ts: Ts,
    keys: Vec<Value>,
    since: u64,
}

struct Coordination {
    agent: NodeId,
    prio: Priority,
    /// The coordinator's own shard first.
    parts: Vec<Part>,
    prepared: BTreeMap<usize, Ts>,
    phase: CoordPhase,
    started: u64,
    prepare_sent: u64,
    attempts: u32,
}

enum CoordPhase {
    Preparing,
    /// Commit record proposed at `ts`; commit wait ends once it is logged and `TT.after(ts)`.
    Committing {
        ts: Ts,
        chosen_at: u64,
        logged_at: Option<u64>,
    },
    /// Abort record proposed.
    Aborting,
}

enum Inquirer {
    Participant { node: NodeId, shard: usize },
    Agent { node: NodeId },
}

fn commit_ts(decision: Decision) -> Option<Ts> {
    match decision {
        Decision::Committed(ts) => Some(ts),
        Decision::Aborted => None,
    }
}

impl SpannerNode {
    fn lead(&self, s: usize) -> Option<&Leadership> {
        self.shards[s].lead.as_ref()
    }

    fn lead_mut(&mut self, s: usize) -> Option<&mut Leadership> {
        self.shards[s].lead.as_mut()
    }

    fn propose(&mut self, ctx: &mut Context, s: usize, command: Command) {
        let command = serde_json::to_value(command).unwrap_or(Value::Null);
        // Refused only when no longer leader: the step-down already dropped this state.
        let _ = self.shards[s].raft.propose(ctx, command);
    }

    // ----- leadership changes -----

    pub(super) fn become_leader(&mut self, ctx: &mut Context, s: usize) {
        let machine = self.shards[s].raft.machine();
        let prepared: Vec<TxnId> = machine.prepared().keys().copied().collect();
        self.shards[s].lead = Some(Leadership::new(machine.max_ts()));
        for txn in prepared {
            self.adopt_prepared(ctx, s, txn);
        }
    }

    pub(super) fn step_down(&mut self, _ctx: &mut Context, s: usize) {
        let Some(lead) = self.shards[s].lead.take() else {
            return;
        };
        let leader = self.leader_hint(s);
        for (txn, coord) in lead.coordinating {
            let outcome = CommitOutcome::NotLeader {
                leader: leader.clone(),
            };
            self.send(&coord.agent, Message::CommitResult { txn, outcome });
        }
        for (txn, inquirers) in lead.resolving {
            for inquirer in inquirers {
                if let Inquirer::Agent { node } = inquirer {
                    let outcome = CommitOutcome::NotLeader {
                        leader: leader.clone(),
                    };
                    self.send(&node, Message::CommitResult { txn, outcome });
                }
            }
        }
        for wait in lead.waits {
            let message = Message::Refused {
                txn: wait.txn,
                shard: s,
                leader: leader.clone(),
                aborted: false,
            };
            self.send(&wait.agent, message);
        }
        for wait in lead.snapshots {
            let message = Message::SnapshotRefused {
                id: wait.id,
                shard: s,
                leader: leader.clone(),
            };
            self.send(&wait.agent, message);
        }
    }

    /// Takes over a transaction the log holds prepared: its locks, and its answer to the
    /// coordinator if this leader proposed the record.
    fn adopt_prepared(&mut self, ctx: &mut Context, s: usize, txn: TxnId) {
        let now = ctx.monotonic_ns();
        let Some(record) = self.shards[s].raft.machine().prepared().get(&txn).cloned() else {
            return;
        };
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        let part = lead
            .parts
            .entry(txn)
            .or_insert_with(|| Participant::new(None, now));
        match part.phase {
            Phase::Prepared => return,
            Phase::Preparing {
                ref reply_to,
                abort_when_logged,
                ..
            } => {
                let reply_to = reply_to.clone();
                part.phase = Phase::Prepared;
                part.touched = now;
                let message = Message::Prepared {
                    txn,
                    shard: s,
                    ts: Some(record.ts),
                };
                self.send(&reply_to, message);
                if abort_when_logged {
                    self.propose(ctx, s, Command::Abort { txn });
                }
                return;
            }
            _ => {}
        }
        part.phase = Phase::Prepared;
        part.touched = now;
        part.writes = record.writes.clone();
        part.reads = record.reads.clone();
        part.coordinator = record.coordinator;
        lead.waits.retain(|w| w.txn != txn);
        let keys: Vec<(String, Mode)> = record
            .reads
            .iter()
            .map(|k| (key_text(k), Mode::Shared))
            .chain(
                record
                    .writes
                    .iter()
                    .map(|(k, _)| (key_text(k), Mode::Exclusive)),
            )
            .collect();
        // The record's locks were granted by an earlier leader: whoever holds them here now
        // cannot be prepared (this leader had no lease before applying the record), so it goes.
        for (key, mode) in keys {
            let conflicts = match self.lead(s) {
                Some(lead) => lead.locks.conflicts(txn, &key, mode),
                None => return,
            };
            for holder in conflicts {
                if self
                    .lead(s)
                    .and_then(|l| l.parts.get(&holder))
                    .is_some_and(Participant::woundable)
                {
                    self.wound(ctx, s, holder);
                }
            }
            if let Some(lead) = self.lead_mut(s) {
                lead.locks.grant(txn, &key, mode);
            }
        }
    }

    // ----- applied commands -----

    pub(super) fn on_applied(&mut self, ctx: &mut Context, s: usize, outcome: Applied) {
        if self.lead(s).is_none() {
            return;
        }
        match outcome {
            Applied::Prepared { txn, .. } => self.adopt_prepared(ctx, s, txn),
            Applied::PrepareRefused { txn } => {
                let reply_to = match self.lead(s).and_then(|l| l.parts.get(&txn)) {
                    Some(Participant {
                        phase: Phase::Preparing { reply_to, .. },
                        ..
                    }) => Some(reply_to.clone()),
                    _ => None,
                };
                if let Some(node) = reply_to {
                    self.release(s, txn);
                    let message = Message::Prepared {
                        txn,
                        shard: s,
                        ts: None,
                    };
                    self.send(&node, message);
                }
            }
            Applied::Decided { txn, decision } => {
                self.answer_inquirers(ctx, s, txn, decision);
                let coordinating = self
                    .lead(s)
                    .is_some_and(|l| l.coordinating.contains_key(&txn));
                if !coordinating {
                    self.release(s, txn);
                    return;
                }
                match decision {
                    Decision::Committed(_) => {
                        let now = ctx.monotonic_ns();
                        if let Some(coord) =
                            self.lead_mut(s).and_then(|l| l.coordinating.get_mut(&txn))
                            && let CoordPhase::Committing { logged_at, .. } = &mut coord.phase
                        {
                            *logged_at = Some(now);
                        }
                    }
                    Decision::Aborted => self.finish_abort(s, txn),
                }
            }
        }
    }

    fn answer_inquirers(&mut self, ctx: &Context, s: usize, txn: TxnId, decision: Decision) {
        let Some(inquirers) = self.lead_mut(s).and_then(|l| l.resolving.remove(&txn)) else {
            return;
        };
        for inquirer in inquirers {
            match inquirer {
                Inquirer::Participant { node, shard } => {
                    let commit = commit_ts(decision);
                    self.send(&node, Message::Decision { txn, shard, commit });
                }
                Inquirer::Agent { node } => {
                    let outcome = match decision {
                        Decision::Committed(ts) if self.waited_out(ctx, ts) => {
                            CommitOutcome::Committed { ts }
                        }
                        // The agent asks again once commit wait is over.
                        Decision::Committed(_) => continue,
                        Decision::Aborted => CommitOutcome::Aborted,
                    };
                    self.send(&node, Message::CommitResult { txn, outcome });
                }
            }
        }
    }

    /// Whether a commit at `ts` may be revealed: `TT.after(ts)` (or the bug says not to wait).
    fn waited_out(&self, ctx: &Context, ts: Ts) -> bool {
        self.bugs.no_commit_wait || ctx.truetime().after(ts)
    }

    // ----- locks -----

    /// Takes `keys` for `txn` where it can, wounding younger holders; `Some(true)` once it
    /// holds them all, `None` if this replica does not lead.
    fn try_lock(
        &mut self,
        ctx: &mut Context,
        s: usize,
        txn: TxnId,
        prio: Priority,
        keys: &[(String, Mode)],
    ) -> Option<bool> {
        let mut all = true;
        for (key, mode) in keys {
            let conflicts = self.lead(s)?.locks.conflicts(txn, key, *mode);
            let mut blocked = false;
            for holder in conflicts {
                let younger_and_woundable =
                    self.lead(s)?.parts.get(&holder).is_some_and(|p| {
                        p.woundable() && p.prio.is_some_and(|theirs| prio < theirs)
                    });
                if younger_and_woundable {
                    self.wound(ctx, s, holder);
                } else {
                    blocked = true;
                }
            }
            if blocked {
                all = false;
            } else {
                self.lead_mut(s)?.locks.grant(txn, key, *mode);
            }
        }
        Some(all)
    }

    /// An older transaction needs `txn`'s locks: `txn` aborts here and its agent is told.
    fn wound(&mut self, ctx: &mut Context, s: usize, txn: TxnId) {
        self.stats.wounds += 1;
        self.abandon(ctx, s, txn);
        let agent = self.node_of(txn);
        self.send(&agent, Message::Wounded { txn });
    }

    /// Aborts a transaction that has not prepared here: its locks go, its waits fail, it is
    /// refused from now on, and whoever waits on its prepare hears it failed.
    fn abandon(&mut self, ctx: &mut Context, s: usize, txn: TxnId) {
        let now = ctx.monotonic_ns();
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        lead.parts.remove(&txn);
        lead.locks.release_all(txn);
        lead.aborted.insert(txn, now);
        lead.waits_dirty = true;
        let mut failed_reads = Vec::new();
        lead.waits.retain(|w| {
            if w.txn != txn {
                return true;
            }
            failed_reads.push(w.agent.clone());
            false
        });
        for agent in failed_reads {
            let message = Message::Refused {
                txn,
                shard: s,
                leader: None,
                aborted: true,
            };
            self.send(&agent, message);
        }
        let coordinating = self
            .lead(s)
            .and_then(|l| l.coordinating.get(&txn))
            .is_some_and(|c| matches!(c.phase, CoordPhase::Preparing));
        if coordinating {
            self.coordinator_abort(ctx, s, txn);
        }
    }

    /// Forgets a decided transaction here: its locks and waits go.
    fn release(&mut self, s: usize, txn: TxnId) {
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        if lead.parts.remove(&txn).is_some() {
            lead.locks.release_all(txn);
            lead.waits.retain(|w| w.txn != txn);
            lead.waits_dirty = true;
        }
    }

    /// Grants what the released locks allow, oldest waiter first. Returns whether any was.
    pub(super) fn retry_waits(&mut self, ctx: &mut Context, s: usize) -> bool {
        let Some(lead) = self.lead_mut(s) else {
            return false;
        };
        if !std::mem::take(&mut lead.waits_dirty) {
            return false;
        }
        let mut waits = std::mem::take(&mut lead.waits);
        waits.sort_by_key(|w| w.prio);
        let mut progress = false;
        for wait in waits {
            let alive = self
                .lead(s)
                .is_some_and(|l| l.parts.contains_key(&wait.txn));
            if !alive {
                continue;
            }
            match self.try_lock(ctx, s, wait.txn, wait.prio, &wait.keys) {
                None => return progress,
                Some(true) => {
                    progress = true;
                    self.lock_granted(s, wait);
                }
                Some(false) => {
                    if let Some(lead) = self.lead_mut(s) {
                        lead.waits.push(wait);
                    }
                }
            }
        }
        progress
    }

    fn lock_granted(&mut self, s: usize, wait: LockWait) {
        let txn = wait.txn;
        let term = self.shards[s].raft.term();
        let message = match wait.purpose {
            WaitFor::Read(key) => {
                let value = self.shards[s].raft.machine().read_latest(&key);
                Message::ReadOk {
                    txn,
                    key,
                    value,
                    term,
                }
            }
            WaitFor::Lock => Message::Locked {
                txn,
                shard: s,
                term,
            },
        };
        self.send(&wait.agent, message);
    }

    // ----- participant -----

    pub(super) fn on_read(
        &mut self,
        ctx: &mut Context,
        from: &str,
        s: usize,
        prio: Priority,
        key: Value,
    ) {
        let keys = vec![(key_text(&key), Mode::Shared)];
        self.lock_for_agent(ctx, from, s, prio, keys, WaitFor::Read(key));
    }

    pub(super) fn on_lock(
        &mut self,
        ctx: &mut Context,
        from: &str,
        s: usize,
        prio: Priority,
        keys: Vec<Value>,
    ) {
        let mut keys: Vec<(String, Mode)> = keys
            .iter()
            .map(|k| (key_text(k), Mode::Exclusive))
            .collect();
        keys.sort();
        keys.dedup();
        self.lock_for_agent(ctx, from, s, prio, keys, WaitFor::Lock);
    }

    /// Takes locks for a transaction that is still running: granted now (and answered), or
    /// queued behind older holders.
    fn lock_for_agent(
        &mut self,
        ctx: &mut Context,
        from: &str,
        s: usize,
        prio: Priority,
        keys: Vec<(String, Mode)>,
        purpose: WaitFor,
    ) {
        let txn = prio.txn;
        if s >= SHARDS {
            return;
        }
        let refuse = |leader, aborted| Message::Refused {
            txn,
            shard: s,
            leader,
            aborted,
        };
        if !self.leads(ctx, s) {
            let hint = self.leader_hint(s);
            self.send(from, refuse(hint, false));
            return;
        }
        let now = ctx.monotonic_ns();
        // A late duplicate for a decided transaction must not take locks nobody will release.
        let decided = self.shards[s].raft.machine().decision(&txn).is_some();
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        if decided || lead.aborted.contains_key(&txn) {
            self.send(from, refuse(None, true));
            return;
        }
        let part = lead
            .parts
            .entry(txn)
            .or_insert_with(|| Participant::new(Some(prio), now));
        if !matches!(part.phase, Phase::Active) {
            return;
        }
        part.touched = now;
        // A resent request while the first one waits: the grant answers both.
        if lead.waits.iter().any(|w| w.txn == txn && w.keys == keys) {
            return;
        }
        let granted = self.try_lock(ctx, s, txn, prio, &keys);
        let wait = LockWait {
            txn,
            prio,
            agent: from.to_string(),
            since: now,
            keys,
            purpose,
        };
        match granted {
            Some(true) => self.lock_granted(s, wait),
            Some(false) => {
                if let Some(lead) = self.lead_mut(s) {
                    lead.waits.push(wait);
                }
            }
            None => {}
        }
    }

    /// The agent aborted before committing: release what the transaction holds here.
    pub(super) fn on_release(&mut self, ctx: &mut Context, txn: TxnId, s: usize) {
        if s >= SHARDS {
            return;
        }
        let unprepared = self
            .lead(s)
            .and_then(|l| l.parts.get(&txn))
            .is_none_or(Participant::woundable);
        if unprepared {
            self.abandon(ctx, s, txn);
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        ctx: &mut Context,
        from: &str,
        prio: Priority,
        coordinator: usize,
        part: Part,
    ) {
        let s = part.shard;
        let txn = prio.txn;
        if s >= SHARDS || !self.leads(ctx, s) {
            return; // the coordinator resends to whoever leads next
        }
        let machine = self.shards[s].raft.machine();
        let answer = if let Some(record) = machine.prepared().get(&txn) {
            Some(Some(record.ts))
        } else if machine.decision(&txn).is_some() {
            Some(None)
        } else {
            None
        };
        if let Some(ts) = answer {
            self.send(from, Message::Prepared { txn, shard: s, ts });
            return;
        }
        self.prepare(ctx, s, prio, coordinator, part, Some(from.to_string()));
    }

    /// Prepares a transaction that holds every lock its part needs (the agent took them):
    /// chooses the prepare timestamp — at least `TT.now().latest` and above every timestamp
    /// this shard has seen — and logs it, or, on the coordinator's own shard (`reply_to` is
    /// `None`), hands it to the coordinator. A transaction missing a lock (wounded, timed out,
    /// or locked under an earlier leader) cannot prepare: what it read may have changed.
    fn prepare(
        &mut self,
        ctx: &mut Context,
        s: usize,
        prio: Priority,
        coordinator: usize,
        part: Part,
        reply_to: Option<NodeId>,
    ) {
        let txn = prio.txn;
        let now = ctx.monotonic_ns();
        let latest = ctx.truetime().latest;
        let max_ts = self.shards[s].raft.machine().max_ts();
        let same_leader = part.term == self.shards[s].raft.term();
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        match lead.parts.get_mut(&txn).map(|p| &mut p.phase) {
            Some(Phase::Active) => {}
            // Already on its way: answer whoever asked last.
            Some(Phase::Preparing { reply_to: to, .. }) => {
                if let Some(node) = reply_to {
                    *to = node;
                }
                return;
            }
            Some(Phase::Prepared | Phase::OwnPrepared { .. }) => return,
            None if part.reads.is_empty() && part.writes.is_empty() => {}
            None => {
                self.prepare_failed(ctx, s, txn, reply_to);
                return;
            }
        }
        let holds = |k: &Value, mode| lead.locks.holds(txn, &key_text(k), mode);
        let locked = part.reads.iter().all(|k| holds(k, Mode::Shared))
            && part.writes.iter().all(|(k, _)| holds(k, Mode::Exclusive));
        if lead.aborted.contains_key(&txn) || !locked || !same_leader {
            self.abandon(ctx, s, txn);
            self.prepare_failed(ctx, s, txn, reply_to);
            return;
        }
        let ts = latest
            .max(lead.last_ts.saturating_add(1))
            .max(max_ts.saturating_add(1));
        lead.last_ts = ts;
        let entry = lead
            .parts
            .entry(txn)
            .or_insert_with(|| Participant::new(Some(prio), now));
        entry.touched = now;
        entry.coordinator = coordinator;
        entry.reads = part.reads;
        entry.writes = part.writes;
        match reply_to {
            Some(node) => {
                entry.phase = Phase::Preparing {
                    ts,
                    reply_to: node,
                    abort_when_logged: false,
                };
                let command = Command::Prepare {
                    txn,
                    ts,
                    coordinator,
                    writes: entry.writes.clone(),
                    reads: entry.reads.clone(),
                };
                self.propose(ctx, s, command);
            }
            None => {
                entry.phase = Phase::OwnPrepared { ts };
                if let Some(coord) = lead.coordinating.get_mut(&txn) {
                    coord.prepared.insert(s, ts);
                }
                self.check_coordination(ctx, s, txn);
            }
        }
    }

    fn prepare_failed(
        &mut self,
        ctx: &mut Context,
        s: usize,
        txn: TxnId,
        reply_to: Option<NodeId>,
    ) {
        match reply_to {
            Some(node) => self.send(
                &node,
                Message::Prepared {
                    txn,
                    shard: s,
                    ts: None,
                },
            ),
            None => self.coordinator_abort(ctx, s, txn),
        }
    }

    pub(super) fn on_decision(
        &mut self,
        ctx: &mut Context,
        txn: TxnId,
        s: usize,
        commit: Option<Ts>,
    ) {
        if s >= SHARDS || self.lead(s).is_none() {
            return;
        }
        let machine = self.shards[s].raft.machine();
        if machine.decision(&txn).is_some() {
            return;
        }
        if machine.prepared().contains_key(&txn) {
            let command = match commit {
                Some(ts) => Command::Commit {
                    txn,
                    ts,
                    writes: None,
                },
                None => Command::Abort { txn },
            };
            self.propose(ctx, s, command);
            return;
        }
        if commit.is_some() {
            return; // a commit needs this shard's prepare record, which is not applied yet
        }
        let Some(part) = self.lead_mut(s).and_then(|l| l.parts.get_mut(&txn)) else {
            return;
        };
        match &mut part.phase {
            Phase::Preparing {
                abort_when_logged, ..
            } => *abort_when_logged = true,
            Phase::Active => self.abandon(ctx, s, txn),
            Phase::Prepared | Phase::OwnPrepared { .. } => {}
        }
    }

    // ----- coordinator -----

    pub(super) fn on_commit(
        &mut self,
        ctx: &mut Context,
        from: &str,
        prio: Priority,
        c: usize,
        parts: Vec<Part>,
    ) {
        let txn = prio.txn;
        if c >= SHARDS || parts.first().is_none_or(|p| p.shard != c) {
            return;
        }
        if !self.leads(ctx, c) {
            let outcome = CommitOutcome::NotLeader {
                leader: self.leader_hint(c),
            };
            self.send(from, Message::CommitResult { txn, outcome });
            return;
        }
        match self.shards[c].raft.machine().decision(&txn) {
            Some(Decision::Committed(ts)) => {
                if self.waited_out(ctx, ts) {
                    let outcome = CommitOutcome::Committed { ts };
                    self.send(from, Message::CommitResult { txn, outcome });
                }
                return;
            }
            Some(Decision::Aborted) => {
                let outcome = CommitOutcome::Aborted;
                self.send(from, Message::CommitResult { txn, outcome });
                return;
            }
            None => {}
        }
        let now = ctx.monotonic_ns();
        let Some(lead) = self.lead_mut(c) else {
            return;
        };
        if let Some(coord) = lead.coordinating.get_mut(&txn) {
            coord.agent = from.to_string();
            return;
        }
        if let Some(inquirers) = lead.resolving.get_mut(&txn) {
            inquirers.push(Inquirer::Agent {
                node: from.to_string(),
            });
            return;
        }
        let own = parts[0].clone();
        let others: Vec<Part> = parts[1..].to_vec();
        lead.coordinating.insert(
            txn,
            Coordination {
                agent: from.to_string(),
                prio,
                parts,
                prepared: BTreeMap::new(),
                phase: CoordPhase::Preparing,
                started: now,
                prepare_sent: now,
                attempts: 0,
            },
        );
        for part in others {
            let dest = self.leader_guess(part.shard, 0);
            let message = Message::Prepare {
                prio,
                coordinator: c,
                part,
            };
            self.send(&dest, message);
        }
        self.prepare(ctx, c, prio, c, own, None);
    }

    pub(super) fn on_prepared(
        &mut self,
        ctx: &mut Context,
        txn: TxnId,
        shard: usize,
        ts: Option<Ts>,
    ) {
        let Some(c) = (0..SHARDS).find(|c| {
            self.lead(*c)
                .is_some_and(|l| l.coordinating.contains_key(&txn))
        }) else {
            return;
        };
        match ts {
            Some(ts) => {
                if let Some(coord) = self.lead_mut(c).and_then(|l| l.coordinating.get_mut(&txn))
                    && matches!(coord.phase, CoordPhase::Preparing)
                {
                    coord.prepared.insert(shard, ts);
                    self.check_coordination(ctx, c, txn);
                }
            }
            None => self.coordinator_abort(ctx, c, txn),
        }
    }

    /// Once every participant prepared: the commit timestamp is the largest prepare timestamp
    /// (the coordinator's own was `TT.now().latest` when it locked), and the commit record is
    /// logged. Bug `no-prepare-max` takes only the coordinator's own.
    fn check_coordination(&mut self, ctx: &mut Context, c: usize, txn: TxnId) {
        let now = ctx.monotonic_ns();
        let no_prepare_max = self.bugs.no_prepare_max;
        let Some(lead) = self.lead_mut(c) else {
            return;
        };
        let Some(coord) = lead.coordinating.get_mut(&txn) else {
            return;
        };
        if !matches!(coord.phase, CoordPhase::Preparing)
            || coord
                .parts
                .iter()
                .any(|p| !coord.prepared.contains_key(&p.shard))
        {
            return;
        }
        let own = coord.prepared[&c];
        let ts = if no_prepare_max {
            own
        } else {
            coord.prepared.values().copied().max().unwrap_or(own)
        };
        coord.phase = CoordPhase::Committing {
            ts,
            chosen_at: now,
            logged_at: None,
        };
        let writes = coord.parts[0].writes.clone();
        lead.last_ts = lead.last_ts.max(ts);
        let command = Command::Commit {
            txn,
            ts,
            writes: Some(writes),
        };
        self.propose(ctx, c, command);
    }

    /// Decides to abort (before any commit record): logged first, so a late duplicate of the
    /// commit request finds the decision instead of starting over.
    fn coordinator_abort(&mut self, ctx: &mut Context, c: usize, txn: TxnId) {
        let Some(coord) = self.lead_mut(c).and_then(|l| l.coordinating.get_mut(&txn)) else {
            return;
        };
        if !matches!(coord.phase, CoordPhase::Preparing) {
            return;
        }
        coord.phase = CoordPhase::Aborting;
        self.propose(ctx, c, Command::Abort { txn });
    }

    fn finish_abort(&mut self, c: usize, txn: TxnId) {
        let Some(coord) = self.lead_mut(c).and_then(|l| l.coordinating.remove(&txn)) else {
            return;
        };
        self.stats.aborts += 1;
        self.release(c, txn);
        for part in &coord.parts[1..] {
            let dest = self.leader_guess(part.shard, 0);
            let message = Message::Decision {
                txn,
                shard: part.shard,
                commit: None,
            };
            self.send(&dest, message);
        }
        let outcome = CommitOutcome::Aborted;
        self.send(&coord.agent, Message::CommitResult { txn, outcome });
    }

    /// Commit wait: once the commit record is logged and `TT.after(ts)` holds, the locks go,
    /// the participants learn the decision and the agent its timestamp.
    pub(super) fn finish_commit_waits(&mut self, ctx: &mut Context, c: usize) -> bool {
        let now = ctx.monotonic_ns();
        let Some(lead) = self.lead(c) else {
            return false;
        };
        let ready: Vec<TxnId> = lead
            .coordinating
            .iter()
            .filter(|(_, coord)| match coord.phase {
                CoordPhase::Committing {
                    ts,
                    logged_at: Some(_),
                    ..
                } => self.waited_out(ctx, ts),
                _ => false,
            })
            .map(|(txn, _)| *txn)
            .collect();
        for txn in &ready {
            let Some(coord) = self.lead_mut(c).and_then(|l| l.coordinating.remove(txn)) else {
                continue;
            };
            let CoordPhase::Committing {
                ts,
                chosen_at,
                logged_at: Some(logged_at),
            } = coord.phase
            else {
                continue;
            };
            self.stats.commits += 1;
            self.stats.commit_wait_total_ns += u128::from(now - chosen_at);
            self.stats.commit_wait_after_log_ns += u128::from(now - logged_at);
            self.release(c, *txn);
            for part in &coord.parts[1..] {
                let dest = self.leader_guess(part.shard, 0);
                let message = Message::Decision {
                    txn: *txn,
                    shard: part.shard,
                    commit: Some(ts),
                };
                self.send(&dest, message);
            }
            let outcome = CommitOutcome::Committed { ts };
            self.send(&coord.agent, Message::CommitResult { txn: *txn, outcome });
        }
        !ready.is_empty()
    }

    /// A participant asks what became of a transaction this shard coordinates. Nobody
    /// coordinating it and no decision logged means its coordinator lost leadership before
    /// a commit record took: an abort record settles it.
    pub(super) fn on_status(
        &mut self,
        ctx: &mut Context,
        from: &str,
        txn: TxnId,
        c: usize,
        shard: usize,
    ) {
        if c >= SHARDS || !self.leads(ctx, c) {
            return;
        }
        if let Some(decision) = self.shards[c].raft.machine().decision(&txn) {
            let commit = commit_ts(decision);
            self.send(from, Message::Decision { txn, shard, commit });
            return;
        }
        let Some(lead) = self.lead_mut(c) else {
            return;
        };
        if lead.coordinating.contains_key(&txn) {
            return;
        }
        let inquirers = lead.resolving.entry(txn).or_default();
        let first = inquirers.is_empty();
        inquirers.push(Inquirer::Participant {
            node: from.to_string(),
            shard,
        });
        if first {
            self.propose(ctx, c, Command::Abort { txn });
        }
    }

    // ----- snapshot reads -----

    pub(super) fn on_snapshot(
        &mut self,
        ctx: &mut Context,
        from: &str,
        id: u64,
        s: usize,
        ts: Ts,
        keys: Vec<Value>,
    ) {
        if s >= SHARDS {
            return;
        }
        if !self.leads(ctx, s) {
            let leader = self.leader_hint(s);
            self.send(
                from,
                Message::SnapshotRefused {
                    id,
                    shard: s,
                    leader,
                },
            );
            return;
        }
        let now = ctx.monotonic_ns();
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        if lead.snapshots.iter().any(|w| w.id == id && w.agent == from) {
            return;
        }
        lead.snapshots.push(SnapshotWait {
            id,
            agent: from.to_string(),
            ts,
            keys,
            since: now,
        });
    }

    /// Serves the snapshot reads whose timestamp is safe: `TT.after(ts)` here (so every later
    /// prepare, by this leader or the next, is above it) and nothing prepared at or below it
    /// on the keys read still undecided.
    pub(super) fn serve_snapshots(&mut self, ctx: &mut Context, s: usize) -> bool {
        if self.lead(s).is_none_or(|l| l.snapshots.is_empty()) || !self.leads(ctx, s) {
            return false;
        }
        let tt = ctx.truetime();
        let machine = self.shards[s].raft.machine();
        let prepared: Vec<(Ts, &[(Value, Write)])> = machine
            .prepared()
            .values()
            .map(|p| (p.ts, p.writes.as_slice()))
            .collect();
        let Some(lead) = self.shards[s].lead.as_ref() else {
            return false;
        };
        let mut served = Vec::new();
        for (i, wait) in lead.snapshots.iter().enumerate() {
            if tt.after(wait.ts) && !lead.pending_at_or_below(&prepared, &wait.keys, wait.ts) {
                let values: Vec<Value> = wait
                    .keys
                    .iter()
                    .map(|k| machine.read_at(k, wait.ts))
                    .collect();
                served.push((i, wait.agent.clone(), wait.id, values));
            }
        }
        if served.is_empty() {
            return false;
        }
        if let Some(lead) = self.lead_mut(s) {
            let done: Vec<usize> = served.iter().map(|(i, ..)| *i).collect();
            let mut i = 0;
            lead.snapshots.retain(|_| {
                let keep = !done.contains(&i);
                i += 1;
                keep
            });
        }
        for (_, agent, id, values) in served {
            self.send(
                &agent,
                Message::SnapshotOk {
                    id,
                    shard: s,
                    values,
                },
            );
        }
        true
    }

    /// How long until the next TrueTime wait on shard `s` can end (commit wait or a snapshot
    /// read), if one is waiting on the clock.
    pub(super) fn next_truetime_wait(&self, ctx: &Context, s: usize) -> Option<u64> {
        let lead = self.lead(s)?;
        let commit_waits = lead
            .coordinating
            .values()
            .filter_map(|coord| match coord.phase {
                CoordPhase::Committing {
                    ts,
                    logged_at: Some(_),
                    ..
                } if !self.bugs.no_commit_wait => Some(ts),
                _ => None,
            });
        let snapshot_waits = lead.snapshots.iter().map(|w| w.ts);
        commit_waits
            .chain(snapshot_waits)
            .map(|ts| Self::until_after(ctx, ts))
            .filter(|d| *d > 0)
            .min()
    }

    // ----- housekeeping -----

    pub(super) fn leader_tick(&mut self, ctx: &mut Context, s: usize) {
        let now = ctx.monotonic_ns();
        let Some(lead) = self.lead_mut(s) else {
            return;
        };
        lead.aborted
            .retain(|_, at| now.saturating_sub(*at) < ABORTED_MEMORY_NS);

        // Coordinations: resend prepares, or give up.
        let mut give_up = Vec::new();
        let mut resend = Vec::new();
        for (txn, coord) in lead.coordinating.iter_mut() {
            if !matches!(coord.phase, CoordPhase::Preparing) {
                continue;
            }
            if now.saturating_sub(coord.started) > COORDINATION_TIMEOUT_NS {
                give_up.push(*txn);
            } else if now.saturating_sub(coord.prepare_sent) > PREPARE_RETRY_NS {
                coord.prepare_sent = now;
                coord.attempts += 1;
                for part in &coord.parts[1..] {
                    if !coord.prepared.contains_key(&part.shard) {
                        resend.push((coord.attempts, coord.prio, part.clone()));
                    }
                }
            }
        }
        // Participants: idle ones are released; prepared ones without a decision ask.
        let mut idle = Vec::new();
        let mut ask = Vec::new();
        for (txn, part) in lead.parts.iter_mut() {
            match part.phase {
                Phase::Active if now.saturating_sub(part.touched) > IDLE_TIMEOUT_NS => {
                    idle.push(*txn)
                }
                Phase::Prepared
                    if now.saturating_sub(part.touched) > STATUS_AFTER_NS
                        && now.saturating_sub(part.status_asked) > STATUS_RETRY_NS =>
                {
                    part.status_asked = now;
                    part.status_attempts += 1;
                    ask.push((*txn, part.coordinator, part.status_attempts));
                }
                _ => {}
            }
        }
        let expired_waits: Vec<TxnId> = lead
            .waits
            .iter()
            .filter(|w| now.saturating_sub(w.since) > WAIT_TIMEOUT_NS)
            .map(|w| w.txn)
            .collect();
        let mut expired_snapshots = Vec::new();
        lead.snapshots.retain(|w| {
            let expired = now.saturating_sub(w.since) > WAIT_TIMEOUT_NS;
            if expired {
                expired_snapshots.push((w.agent.clone(), w.id));
            }
            !expired
        });

        for txn in give_up {
            self.coordinator_abort(ctx, s, txn);
        }
        let c = s;
        for (attempt, prio, part) in resend {
            let dest = self.leader_guess(part.shard, attempt);
            let message = Message::Prepare {
                prio,
                coordinator: c,
                part,
            };
            self.send(&dest, message);
        }
        for txn in idle.into_iter().chain(expired_waits) {
            if self
                .lead(s)
                .is_some_and(|l| l.parts.get(&txn).is_some_and(Participant::woundable))
            {
                self.abandon(ctx, s, txn);
                let agent = self.node_of(txn);
                self.send(&agent, Message::Wounded { txn });
            }
        }
        for (txn, coordinator, attempt) in ask {
            let dest = self.leader_guess(coordinator, attempt / 2);
            let message = Message::Status {
                txn,
                coordinator,
                shard: s,
            };
            self.send(&dest, message);
        }
        for (agent, id) in expired_snapshots {
            let message = Message::SnapshotRefused {
                id,
                shard: s,
                leader: None,
            };
            self.send(&agent, message);
        }
    }
}
