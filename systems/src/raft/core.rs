//! The generic Raft consensus core: election, log replication, commitment, read-index and
//! (optionally) leader leases, over any [`StateMachine`].
//!
//! The core is embedded, not a [`crate::node::Node`] itself: the embedding node forwards its
//! handlers (`on_start`, `on_message`, `on_timer`) and calls [`Raft::propose`] /
//! [`Raft::read_index`] for its clients, then drains [`Raft::take_events`] to answer them.
//! Several cores can share one node (one per Spanner shard): each gets its own `group` (tagged on
//! its messages), disk prefix and timer keys.
//!
//! Every public entry point ends with a flush: the term, vote and new log entries are written
//! and synced *before* the messages that depend on them are sent, and before the caller gets
//! the events it answers clients from.

use super::log::Log;
use super::messages::{Append, AppendReply, Command, Entry, Message, RequestVote, Vote};
use super::storage::Storage;
use crate::node::{Context, Delay, NodeId, TimerKey};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What the log replicates. Commands are applied in log order on every replica.
pub trait StateMachine {
    /// Applies a committed command and returns its result (for a client: the reply body).
    fn apply(&mut self, command: &Command) -> Value;

    /// Forgets everything: the node restarted and will replay its log as entries commit.
    fn reset(&mut self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Deliberate bugs (see `INFO.bugs`); all off in a correct node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Term and vote are never written to disk: a restarted node forgets whom it voted for.
    pub forget_vote: bool,
    /// A leader commits an entry from an earlier term as soon as a majority stores it.
    pub commit_old_term: bool,
}

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub id: NodeId,
    /// Every member of the group, this node included.
    pub members: Vec<NodeId>,
    /// Added to every message as `"group"`, for nodes hosting several groups.
    pub group: Option<String>,
    /// Disk files are `<disk_prefix>.state` and `<disk_prefix>.log.<n>`.
    pub disk_prefix: String,
    /// The election timer is `timer_base`, the heartbeat timer `timer_base + 1`.
    pub timer_base: TimerKey,
    /// Election timeout range (ns), sampled anew each time the timer is set.
    pub election_timeout_ns: (u64, u64),
    pub heartbeat_interval_ns: u64,
    /// Most entries per append message.
    pub max_batch: usize,
    /// A read-index read not confirmed within this long fails (definitely).
    pub read_timeout_ns: u64,
    /// Leader leases: followers refuse votes (and ignore higher terms in vote requests) within
    /// the minimum election timeout of hearing from a leader, and a leader that has not heard
    /// from a majority for a maximum election timeout steps down. Enables [`Raft::has_lease`].
    pub leases: bool,
    pub faults: Faults,
}

const MS: u64 = 1_000_000;

impl RaftConfig {
    /// Defaults: 150–300 ms election timeout, 50 ms heartbeats, batches of 64 entries.
    pub fn new(id: &str, members: &[NodeId]) -> Self {
        RaftConfig {
            id: id.to_string(),
            members: members.to_vec(),
            group: None,
            disk_prefix: "raft".to_string(),
            timer_base: 0,
            election_timeout_ns: (150 * MS, 300 * MS),
            heartbeat_interval_ns: 50 * MS,
            max_batch: 64,
            read_timeout_ns: 1_000 * MS,
            leases: false,
            faults: Faults::default(),
        }
    }

    pub fn election_timer(&self) -> TimerKey {
        self.timer_base
    }

    pub fn heartbeat_timer(&self) -> TimerKey {
        self.timer_base + 1
    }
}

/// What happened during a call, for the embedder to act on (answer clients, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A committed entry was applied (on every replica, leader or not): `result` is the
    /// command's, `None` for a leader's no-op (which tells a node whose proposal sat at this
    /// index that another entry took its place).
    Applied {
        index: u64,
        term: u64,
        result: Option<Value>,
    },
    /// The read registered by [`Raft::read_index`] may now be served from the state machine.
    ReadReady {
        id: u64,
    },
    /// The read could not be confirmed (leadership lost or timed out); nothing was read.
    ReadFailed {
        id: u64,
    },
    BecameLeader {
        term: u64,
    },
    /// This node was leader and no longer is: its pending proposals may or may not commit.
    SteppedDown {
        term: u64,
    },
}

/// A proposal or read was refused: this node is not the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLeader {
    /// Who this node believes is leader, if anyone.
    pub leader: Option<NodeId>,
}

/// Where a proposed command went: it is applied with this (index, term), or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub index: u64,
    pub term: u64,
}

/// The leader's view of one follower.
#[derive(Debug, Clone)]
struct Progress {
    /// Next index to send (advanced optimistically when sent).
    next: u64,
    /// Highest index known to match the leader's log.
    matched: u64,
    /// Highest `seq` acknowledged in the current term.
    acked_seq: u64,
    /// Latest `sent_at` acknowledged in the current term (lease start).
    acked_sent_at: Option<u64>,
    /// When the follower last answered anything in the current term (monotonic).
    last_reply_at: u64,
}

#[derive(Debug, Clone)]
struct PendingRead {
    id: u64,
    /// Confirmed once a majority acknowledged a message with a larger `seq`.
    after_seq: u64,
    /// Servable once applied up to here.
    index: u64,
    requested_at: u64,
}

pub struct Raft<M> {
    config: RaftConfig,
    peers: Vec<NodeId>,
    machine: M,
    storage: Storage,

    // Persistent state (synced before anything that depends on it leaves the node).
    term: u64,
    voted_for: Option<NodeId>,
    log: Log,

    // Volatile state.
    role: Role,
    leader: Option<NodeId>,
    commit_index: u64,
    last_applied: u64,
    votes: BTreeSet<NodeId>,
    progress: BTreeMap<NodeId, Progress>,
    /// Send counter for append messages (read-index confirmation).
    seq: u64,
    /// Index of this leader's first entry of its term.
    term_start_index: u64,
    reads: VecDeque<PendingRead>,
    next_read_id: u64,
    /// When this node last heard from a leader of its term (or booted), for leases.
    last_leader_contact: Option<u64>,

    // Work collected during one call, carried out by `flush`.
    hard_state_dirty: bool,
    log_dirty_from: Option<u64>,
    sync_wanted: bool,
    broadcast_wanted: bool,
    replicate_wanted: bool,
    outbox: Vec<(NodeId, Message)>,
    /// Entries applied since the last flush, as runs `(from, to, term)`: reported as
    /// `log-applied` trace events, which the harness's log-agreement checker reads.
    applied_runs: Vec<(u64, u64, u64)>,
    events: Vec<Event>,
}

impl<M: StateMachine> Raft<M> {
    pub fn new(config: RaftConfig, machine: M) -> Self {
        let peers = config
            .members
            .iter()
            .filter(|m| **m != config.id)
            .cloned()
            .collect();
        let storage = Storage::new(&config.disk_prefix);
        Raft {
            config,
            peers,
            machine,
            storage,
            term: 0,
            voted_for: None,
            log: Log::new(),
            role: Role::Follower,
            leader: None,
            commit_index: 0,
            last_applied: 0,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            seq: 0,
            term_start_index: 0,
            reads: VecDeque::new(),
            next_read_id: 0,
            last_leader_contact: None,
            hard_state_dirty: false,
            log_dirty_from: None,
            sync_wanted: false,
            broadcast_wanted: false,
            replicate_wanted: false,
            outbox: Vec::new(),
            applied_runs: Vec::new(),
            events: Vec::new(),
        }
    }

    // ----- accessors -----

    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    pub fn machine(&self) -> &M {
        &self.machine
    }

    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    pub fn leader_hint(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn voted_for(&self) -> Option<&str> {
        self.voted_for.as_deref()
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Whether `key` is one of this core's timers.
    pub fn owns_timer(&self, key: TimerKey) -> bool {
        key == self.config.election_timer() || key == self.config.heartbeat_timer()
    }

    /// The events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A JSON snapshot for `Node::state`.
    pub fn status(&self) -> Value {
        json!({
            "id": self.config.id,
            "role": self.role,
            "term": self.term,
            "voted_for": self.voted_for,
            "leader": self.leader,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "last_log_index": self.log.last_index(),
            "last_log_term": self.log.last_term(),
        })
    }

    fn majority(&self) -> usize {
        self.config.members.len() / 2 + 1
    }

    fn not_leader(&self) -> NotLeader {
        NotLeader {
            leader: self.leader.clone(),
        }
    }

    // ----- entry points -----

    /// Boot: recover term, vote and log from the synced disk; all volatile state starts over.
    pub fn on_start(&mut self, ctx: &mut Context) {
        let recovered = self.storage.recover(ctx);
        self.term = recovered.term;
        self.voted_for = recovered.voted_for;
        self.log = recovered.log;
        self.sync_wanted = recovered.needs_sync;
        self.machine.reset();
        self.role = Role::Follower;
        self.leader = None;
        self.commit_index = 0;
        self.last_applied = 0;
        self.applied_runs.clear();
        self.votes.clear();
        self.progress.clear();
        self.seq = 0;
        self.term_start_index = 0;
        self.reads.clear();
        self.hard_state_dirty = false;
        self.log_dirty_from = None;
        self.broadcast_wanted = false;
        self.replicate_wanted = false;
        self.outbox.clear();
        self.events.clear();
        // A leader may hold a lease that counted this node's ack from before the crash.
        self.last_leader_contact = Some(ctx.monotonic_ns());
        ctx.trace(
            "raft-recovered",
            json!({"term": self.term, "voted_for": self.voted_for,
                   "last_log_index": self.log.last_index(), "group": self.config.group}),
        );
        ctx.cancel_timer(self.config.heartbeat_timer());
        self.reset_election_timer(ctx);
        self.flush(ctx);
    }

    /// A peer message (any body; malformed ones and strangers are traced and ignored).
    pub fn on_message(&mut self, ctx: &mut Context, from: &str, body: Value) {
        self.on_parsed_message(ctx, from, Message::parse(body));
    }

    /// A peer message as JSON text (what the runtimes deliver).
    pub fn on_message_json(&mut self, ctx: &mut Context, from: &str, body: &str) {
        self.on_parsed_message(ctx, from, Message::parse_json(body));
    }

    fn on_parsed_message(
        &mut self,
        ctx: &mut Context,
        from: &str,
        message: Result<Message, String>,
    ) {
        if !self.peers.iter().any(|p| p == from) {
            ctx.trace("raft-unknown-sender", json!({"from": from}));
            return;
        }
        let message = match message {
            Ok(m) => m,
            Err(error) => {
                ctx.trace("raft-malformed", json!({"from": from, "error": error}));
                return;
            }
        };
        match message {
            Message::RequestVote(m) => self.handle_request_vote(ctx, from, m),
            Message::Vote(m) => self.handle_vote(ctx, from, m),
            Message::Append(m) => self.handle_append(ctx, from, m),
            Message::AppendReply(m) => self.handle_append_reply(ctx, from, m),
        }
        self.flush(ctx);
    }

    /// A timer fired; returns false (doing nothing) if it is not one of this core's.
    pub fn on_timer(&mut self, ctx: &mut Context, key: TimerKey) -> bool {
        if key == self.config.election_timer() {
            if self.role != Role::Leader {
                self.start_election(ctx);
            }
        } else if key == self.config.heartbeat_timer() {
            if self.role == Role::Leader {
                self.heartbeat(ctx);
            }
        } else {
            return false;
        }
        self.flush(ctx);
        true
    }

    /// Appends a command to the log if this node is leader. The caller learns the outcome from
    /// an [`Event::Applied`] with the same index and term (or an [`Event::SteppedDown`]).
    pub fn propose(&mut self, ctx: &mut Context, command: Value) -> Result<Proposal, NotLeader> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        let index = self.append_local(Entry::command(self.term, &command));
        self.replicate_wanted = true;
        // A single-node group commits at once.
        self.advance_commit();
        self.flush(ctx);
        Ok(Proposal {
            index,
            term: self.term,
        })
    }

    /// Registers a linearizable read (read-index): it becomes an [`Event::ReadReady`] once a
    /// majority confirmed this node still leads *after* the call and the state machine caught
    /// up with everything committed before it; then read the state machine directly.
    pub fn read_index(&mut self, ctx: &mut Context) -> Result<u64, NotLeader> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        let id = self.next_read_id;
        self.next_read_id += 1;
        // Until its first entry commits, a new leader may not know everything committed.
        let index = self.commit_index.max(self.term_start_index);
        self.reads.push_back(PendingRead {
            id,
            after_seq: self.seq,
            index,
            requested_at: ctx.monotonic_ns(),
        });
        self.broadcast_wanted = true;
        self.check_reads();
        self.flush(ctx);
        Ok(id)
    }

    /// Leader leases: whether this leader may serve reads locally at monotonic time `now`. A
    /// majority acknowledged messages sent within the last 90% of the minimum election timeout
    /// (the rest is margin for clock-rate differences), and the current term's first entry
    /// committed. Always false unless `config.leases`.
    pub fn has_lease(&self, now: u64) -> bool {
        self.lease_expiry().is_some_and(|expiry| now < expiry)
            && self.commit_index >= self.term_start_index
    }

    /// When the current lease runs out (monotonic ns), if this node is a leasing leader.
    pub fn lease_expiry(&self) -> Option<u64> {
        if !self.config.leases || self.role != Role::Leader {
            return None;
        }
        // Our own "ack" never limits the lease: sort descending and take the majority-th.
        let mut acked: Vec<Option<u64>> = self
            .progress
            .values()
            .map(|p| p.acked_sent_at)
            .chain([Some(u64::MAX)])
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let start = acked.get(self.majority() - 1).copied().flatten()?;
        Some(start.saturating_add(self.config.election_timeout_ns.0 / 10 * 9))
    }

    // ----- elections -----

    fn reset_election_timer(&self, ctx: &mut Context) {
        let (min, max) = self.config.election_timeout_ns;
        ctx.set_timer(self.config.election_timer(), Delay::Jitter { min, max });
    }

    fn start_election(&mut self, ctx: &mut Context) {
        self.term = self.term.saturating_add(1);
        self.voted_for = Some(self.config.id.clone());
        self.hard_state_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.config.id.clone()]);
        ctx.trace("raft-candidate", json!({"term": self.term}));
        self.reset_election_timer(ctx);
        let request = RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in &self.peers {
            self.outbox
                .push((peer.clone(), Message::RequestVote(request.clone())));
        }
        if self.votes.len() >= self.majority() {
            self.become_leader(ctx);
        }
    }

    /// Within the minimum election timeout of hearing from a leader (leases only).
    fn leader_recently_heard(&self, now: u64) -> bool {
        self.config.leases
            && (self.role == Role::Leader
                || self
                    .last_leader_contact
                    .is_some_and(|t| now < t.saturating_add(self.config.election_timeout_ns.0)))
    }

    fn handle_request_vote(&mut self, ctx: &mut Context, from: &str, m: RequestVote) {
        if self.leader_recently_heard(ctx.monotonic_ns()) {
            // A leader's lease may still count on us: neither vote nor adopt the term.
            self.reply(
                from,
                Message::Vote(Vote {
                    term: self.term,
                    granted: false,
                }),
            );
            return;
        }
        if m.term > self.term {
            self.become_follower(ctx, m.term, None);
        }
        let granted = m.term == self.term
            && self.voted_for.as_deref().is_none_or(|v| v == from)
            && self.log.is_up_to_date(m.last_log_index, m.last_log_term);
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from.to_string());
                self.hard_state_dirty = true;
            }
            self.reset_election_timer(ctx);
        }
        self.reply(
            from,
            Message::Vote(Vote {
                term: self.term,
                granted,
            }),
        );
    }

    fn handle_vote(&mut self, ctx: &mut Context, from: &str, m: Vote) {
        if m.term > self.term {
            self.become_follower(ctx, m.term, None);
            return;
        }
        if self.role == Role::Candidate && m.term == self.term && m.granted {
            self.votes.insert(from.to_string());
            if self.votes.len() >= self.majority() {
                self.become_leader(ctx);
            }
        }
    }

    fn become_leader(&mut self, ctx: &mut Context) {
        let now = ctx.monotonic_ns();
        self.role = Role::Leader;
        self.leader = Some(self.config.id.clone());
        self.votes.clear();
        let next = self.log.last_index() + 1;
        self.progress = self
            .peers
            .iter()
            .map(|peer| {
                let progress = Progress {
                    next,
                    matched: 0,
                    acked_seq: 0,
                    acked_sent_at: None,
                    last_reply_at: now,
                };
                (peer.clone(), progress)
            })
            .collect();
        // The no-op commits (by the current-term rule) everything earlier terms left behind,
        // and marks the point a read-index must wait for. A leader that commits old entries
        // by counting replicas (the bug) sees no need for it.
        self.term_start_index = if self.config.faults.commit_old_term {
            self.log.last_index()
        } else {
            self.append_local(Entry::noop(self.term))
        };
        ctx.trace(
            "raft-leader",
            json!({"term": self.term, "last_log_index": self.log.last_index()}),
        );
        self.events.push(Event::BecameLeader { term: self.term });
        ctx.cancel_timer(self.config.election_timer());
        ctx.set_timer(
            self.config.heartbeat_timer(),
            Delay::Fixed(self.config.heartbeat_interval_ns),
        );
        self.broadcast_wanted = true;
        self.advance_commit();
    }

    /// Adopts `term` (if newer, clearing the vote) and follows `leader` (if known).
    fn become_follower(&mut self, ctx: &mut Context, term: u64, leader: Option<&str>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.hard_state_dirty = true;
        }
        let was_leader = self.role == Role::Leader;
        self.role = Role::Follower;
        self.leader = leader.map(str::to_string);
        self.votes.clear();
        if was_leader {
            self.progress.clear();
            for read in self.reads.drain(..) {
                self.events.push(Event::ReadFailed { id: read.id });
            }
            self.events.push(Event::SteppedDown { term: self.term });
            ctx.trace("raft-stepped-down", json!({"term": self.term}));
            ctx.cancel_timer(self.config.heartbeat_timer());
            self.reset_election_timer(ctx);
        }
    }

    // ----- replication -----

    fn append_local(&mut self, entry: Entry) -> u64 {
        let index = self.log.append(entry);
        self.mark_log_dirty(index);
        index
    }

    fn mark_log_dirty(&mut self, from: u64) {
        self.log_dirty_from = Some(self.log_dirty_from.map_or(from, |d| d.min(from)));
    }

    fn heartbeat(&mut self, ctx: &mut Context) {
        let now = ctx.monotonic_ns();
        while let Some(read) = self.reads.front() {
            if now.saturating_sub(read.requested_at) < self.config.read_timeout_ns {
                break;
            }
            self.events.push(Event::ReadFailed { id: read.id });
            self.reads.pop_front();
        }
        if self.config.leases {
            let window = self.config.election_timeout_ns.1;
            let heard = 1 + self
                .progress
                .values()
                .filter(|p| now.saturating_sub(p.last_reply_at) <= window)
                .count();
            if heard < self.majority() {
                // Check-quorum: a leader cut off from a majority stops pretending.
                self.become_follower(ctx, self.term, None);
                return;
            }
        }
        // Resend whatever is unacknowledged: the datagrams may have been lost.
        for progress in self.progress.values_mut() {
            progress.next = progress.matched + 1;
        }
        self.broadcast_wanted = true;
        ctx.set_timer(
            self.config.heartbeat_timer(),
            Delay::Fixed(self.config.heartbeat_interval_ns),
        );
    }

    /// A follower that answered lately gets entries; others only an empty probe, so an
    /// unreachable follower costs one small message per heartbeat.
    fn is_responsive(&self, progress: &Progress, now: u64) -> bool {
        now.saturating_sub(progress.last_reply_at) <= 3 * self.config.heartbeat_interval_ns
    }

    fn send_append(&mut self, peer: &str, now: u64, with_entries: bool) {
        let last = self.log.last_index();
        let Some(progress) = self.progress.get_mut(peer) else {
            return;
        };
        progress.next = progress.next.clamp(1, last + 1);
        let prev_log_index = progress.next - 1;
        let prev_log_term = self.log.term_at(prev_log_index).unwrap_or(0);
        let entries = if with_entries {
            self.log
                .slice(progress.next, self.config.max_batch)
                .to_vec()
        } else {
            Vec::new()
        };
        progress.next += entries.len() as u64;
        self.seq += 1;
        let message = Append {
            term: self.term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            seq: self.seq,
            sent_at: now,
        };
        self.outbox
            .push((peer.to_string(), Message::Append(message)));
    }

    fn handle_append(&mut self, ctx: &mut Context, from: &str, m: Append) {
        let reject = |term, conflict_index| {
            Message::AppendReply(AppendReply {
                term,
                success: false,
                match_index: 0,
                conflict_index,
                seq: m.seq,
                sent_at: m.sent_at,
            })
        };
        if m.term < self.term {
            self.reply(from, reject(self.term, 0));
            return;
        }
        if self.role == Role::Leader && m.term == self.term {
            // Impossible with one vote per term; possible with the forget-vote bug.
            ctx.trace(
                "raft-two-leaders",
                json!({"term": self.term, "other": from}),
            );
            self.reply(from, reject(self.term, 0));
            return;
        }
        if m.term > self.term || self.role != Role::Follower {
            self.become_follower(ctx, m.term, Some(from));
        }
        self.leader = Some(from.to_string());
        self.last_leader_contact = Some(ctx.monotonic_ns());
        self.reset_election_timer(ctx);

        // The consistency check: our log must hold the leader's entry at prev_log_index.
        let last = self.log.last_index();
        if m.prev_log_index > last {
            self.reply(from, reject(self.term, last + 1));
            return;
        }
        if self.log.term_at(m.prev_log_index) != Some(m.prev_log_term) {
            let conflict_index = self.log.first_index_of_term_at(m.prev_log_index);
            self.reply(from, reject(self.term, conflict_index));
            return;
        }

        // Skip what we already hold; at the first conflict drop our suffix and take theirs.
        // A stale or duplicated append never truncates entries it does not contradict.
        let match_index = m.prev_log_index + m.entries.len() as u64;
        let mut index = m.prev_log_index;
        let mut entries = m.entries.into_iter();
        for entry in entries.by_ref() {
            index += 1;
            match self.log.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    if index <= self.commit_index {
                        ctx.trace(
                            "raft-truncating-committed",
                            json!({"index": index, "commit_index": self.commit_index}),
                        );
                        self.commit_index = index - 1;
                    }
                    self.log.truncate_from(index);
                }
                None => {}
            }
            self.append_local(entry);
            break;
        }
        for entry in entries {
            self.append_local(entry);
        }

        let new_commit = m.leader_commit.min(match_index);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
            self.apply_committed();
        }
        self.reply(
            from,
            Message::AppendReply(AppendReply {
                term: self.term,
                success: true,
                match_index,
                conflict_index: 0,
                seq: m.seq,
                sent_at: m.sent_at,
            }),
        );
    }

    fn handle_append_reply(&mut self, ctx: &mut Context, from: &str, m: AppendReply) {
        if m.term > self.term {
            self.become_follower(ctx, m.term, None);
            return;
        }
        if self.role != Role::Leader || m.term != self.term {
            return;
        }
        let now = ctx.monotonic_ns();
        let last = self.log.last_index();
        let Some(progress) = self.progress.get_mut(from) else {
            return;
        };
        progress.last_reply_at = now;
        progress.acked_seq = progress.acked_seq.max(m.seq);
        progress.acked_sent_at = progress.acked_sent_at.max(Some(m.sent_at));
        if m.success {
            progress.matched = progress.matched.max(m.match_index.min(last));
            progress.next = progress.next.max(progress.matched + 1);
        } else {
            progress.next = m.conflict_index.clamp(progress.matched + 1, last + 1);
        }
        let behind = progress.next <= last;
        if m.success {
            self.advance_commit();
        }
        if behind {
            self.send_append(from, now, true);
        }
        self.check_reads();
    }

    /// Commits the highest index a majority stores — only if it is from the current term
    /// (Raft's figure 8: an earlier-term entry on a majority can still be overwritten).
    fn advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matched: Vec<u64> = self
            .progress
            .values()
            .map(|p| p.matched)
            .chain([self.log.last_index()])
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = matched.get(self.majority() - 1) else {
            return;
        };
        let current_term = self.log.term_at(candidate) == Some(self.term);
        if candidate > self.commit_index && (current_term || self.config.faults.commit_old_term) {
            self.commit_index = candidate;
            self.apply_committed();
        }
    }

    fn apply_committed(&mut self) {
        while self.last_applied < self.commit_index {
            let index = self.last_applied + 1;
            let Some(entry) = self.log.get(index) else {
                break;
            };
            self.last_applied = index;
            match self.applied_runs.last_mut() {
                Some((_, to, term)) if *to + 1 == index && *term == entry.term => *to = index,
                _ => self.applied_runs.push((index, index, entry.term)),
            }
            let result = entry.command.as_ref().map(|c| self.machine.apply(c));
            self.events.push(Event::Applied {
                index,
                term: entry.term,
                result,
            });
        }
        self.check_reads();
    }

    // ----- reads -----

    /// The highest `seq` a majority (this leader included) has acknowledged.
    fn quorum_acked_seq(&self) -> u64 {
        let mut acked: Vec<u64> = self
            .progress
            .values()
            .map(|p| p.acked_seq)
            .chain([u64::MAX])
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked.get(self.majority() - 1).copied().unwrap_or(0)
    }

    fn check_reads(&mut self) {
        if self.role != Role::Leader || self.reads.is_empty() {
            return;
        }
        let confirmed = self.quorum_acked_seq();
        while let Some(read) = self.reads.front() {
            if confirmed <= read.after_seq || self.last_applied < read.index {
                break;
            }
            self.events.push(Event::ReadReady { id: read.id });
            self.reads.pop_front();
        }
    }

    // ----- output -----

    fn reply(&mut self, to: &str, message: Message) {
        self.outbox.push((to.to_string(), message));
    }

    /// Sends the appends this call asked for, persists, syncs, and only then releases the
    /// outgoing messages.
    fn flush(&mut self, ctx: &mut Context) {
        if self.role == Role::Leader && (self.broadcast_wanted || self.replicate_wanted) {
            let now = ctx.monotonic_ns();
            let last = self.log.last_index();
            for peer in self.peers.clone() {
                let Some(progress) = self.progress.get(&peer) else {
                    continue;
                };
                let responsive = self.is_responsive(progress, now);
                let behind = progress.next <= last;
                if self.broadcast_wanted {
                    self.send_append(&peer, now, responsive);
                } else if responsive && behind {
                    self.send_append(&peer, now, true);
                }
            }
        }
        self.broadcast_wanted = false;
        self.replicate_wanted = false;

        let mut wrote = std::mem::take(&mut self.sync_wanted);
        if std::mem::take(&mut self.hard_state_dirty) && !self.config.faults.forget_vote {
            self.storage
                .write_hard_state(ctx, self.term, self.voted_for.as_deref());
            wrote = true;
        }
        if let Some(from) = self.log_dirty_from.take() {
            self.storage.write_log(ctx, &self.log, from);
            wrote = true;
        }
        if wrote {
            ctx.disk_sync();
        }
        for (from, to, term) in self.applied_runs.drain(..) {
            let log = self.config.group.as_deref().unwrap_or("raft");
            ctx.trace(
                "log-applied",
                json!({"log": log, "from": from, "to": to, "term": term}),
            );
        }
        for (to, message) in self.outbox.drain(..) {
            match &self.config.group {
                // Serialized once, straight from the message.
                None => ctx.send(&to, &message),
                Some(group) => ctx.send(&to, &message.to_body(Some(group))),
            }
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
