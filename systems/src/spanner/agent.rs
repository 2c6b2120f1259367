//! The agent: the node a client asked runs the transaction on the client's behalf (Spanner's
//! client library).
//!
//! Read-write transactions run their micro-operations in order: a read takes a shared lock
//! at the key's shard leader and returns the latest committed value (plus the transaction's
//! own earlier writes to that key); writes are buffered. At the end the agent takes exclusive
//! locks on the written keys (all shards at once), then sends every shard's part to the
//! coordinator — the leader of the shard of the first write — and answers the client with the
//! commit timestamp it returns. Taking every lock before committing means a prepared
//! transaction never waits for one, which wound-wait needs: it cannot wound a prepared
//! transaction, so two prepared transactions waiting for each other would deadlock. Read-only transactions take no locks:
//! they read every shard at `TT.now().latest` on this node, and that timestamp is their
//! `commit_ts`.
//!
//! Client requests: `{"type": "txn", "txn": [[f, key, value], ...]}` with `f` one of `r`,
//! `w`, `append` (answered `{"type": "txn_ok", "txn": [...], "commit_ts": ts}` with the
//! reads filled in), and `{"type": "transfer", "from": a, "to": b, "amount": n, "initial": i,
//! "id": tag}`, which moves `amount` between two balances stored as `{"balance": n, "by": tag}`
//! (a never-written account holds `initial`) unless `from` holds less (definite
//! `precondition-failed`), answered `{"type": "transfer_ok", "commit_ts": ts, "read": [before
//! from, before to]}` with the stored values it read (`null` when never written).

use super::machine::{Priority, Ts, TxnId, Write, key_text};
use super::messages::{CommitOutcome, Message, Part};
use super::node::{MS, SpannerNode, by_shard};
use super::shard_of;
use crate::node::{Context, NodeId, RequestId};
use crate::protocol::{self, code};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The agent resends a read, snapshot read or commit request after this long without answer.
const RETRY_NS: u64 = 100 * MS;
/// After a refusal (not leader yet, leader moved) the agent tries again this soon.
const QUICK_RETRY_NS: u64 = 20 * MS;
/// The agent gives up on a transaction after this long (below the clients' usual timeout).
const DEADLINE_NS: u64 = 900 * MS;

#[derive(Debug, Clone)]
struct Mop {
    f: String,
    key: Value,
    value: Value,
}

enum TxnKind {
    Mops(Vec<Mop>),
    Transfer(Box<Transfer>),
}

struct Transfer {
    from: Value,
    to: Value,
    amount: i64,
    initial: i64,
    tag: Value,
}

enum AgentPhase {
    Reading {
        shard: usize,
        key: Value,
        sent_at: u64,
        attempt: u32,
    },
    /// Taking exclusive locks on the written keys: the shards not answered yet, with (last
    /// sent, attempts), and each shard's keys.
    Locking {
        pending: BTreeMap<usize, (u64, u32)>,
        keys: BTreeMap<usize, Vec<Value>>,
    },
    Committing {
        coordinator: usize,
        parts: Vec<Part>,
        sent_at: u64,
        attempt: u32,
    },
}

pub(super) struct AgentTxn {
    request: RequestId,
    prio: Priority,
    kind: TxnKind,
    /// The next micro-operation.
    step: usize,
    results: Vec<Value>,
    /// Committed values read under lock, by key text.
    committed: BTreeMap<String, Value>,
    /// Buffered writes, in order.
    own: Vec<(Value, Write)>,
    /// Keys read under lock, in order.
    read_keys: Vec<Value>,
    /// Per shard, the Raft term of the leader holding this transaction's locks: locks taken
    /// under two different leaders of a shard were not held throughout.
    terms: BTreeMap<usize, u64>,
    phase: AgentPhase,
    deadline: u64,
}

pub(super) struct ReadOnlyTxn {
    request: RequestId,
    ts: Ts,
    mops: Vec<Mop>,
    by_shard: BTreeMap<usize, Vec<Value>>,
    values: BTreeMap<String, Value>,
    /// Shards not answered yet: (last sent, attempts).
    pending: BTreeMap<usize, (u64, u32)>,
    deadline: u64,
}

/// What a read-write transaction needs next.
enum Next {
    Read(Value),
    Commit,
    Fail(Value),
}

fn parse_mops(body: &Value) -> Result<Vec<Mop>, String> {
    let list = body
        .get("txn")
        .and_then(Value::as_array)
        .ok_or("a txn request needs `txn`: a list of [f, key, value]")?;
    list.iter()
        .map(|m| match m.as_array().map(Vec::as_slice) {
            Some([f, key, value]) => match f.as_str() {
                Some(f @ ("r" | "w" | "append")) => Ok(Mop {
                    f: f.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                }),
                _ => Err(format!("unknown micro-operation {m}")),
            },
            _ => Err(format!(
                "a micro-operation must be [f, key, value], got {m}"
            )),
        })
        .collect()
}

fn parse_transfer(body: &Value) -> Result<TxnKind, String> {
    let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
    let (from, to) = (field("from"), field("to"));
    let amount = body.get("amount").and_then(Value::as_i64);
    let initial = body.get("initial").and_then(Value::as_i64).unwrap_or(0);
    match amount {
        Some(amount) if amount >= 0 && !from.is_null() && !to.is_null() && from != to => {
            Ok(TxnKind::Transfer(Box::new(Transfer {
                from,
                to,
                amount,
                initial,
                tag: field("id"),
            })))
        }
        _ => Err("a transfer needs distinct `from` and `to` and an `amount` ≥ 0".into()),
    }
}

/// A stored account's balance (`initial` when never written).
fn balance(stored: &Value, initial: i64) -> i64 {
    stored
        .get("balance")
        .and_then(Value::as_i64)
        .unwrap_or(initial)
}

impl AgentTxn {
    /// The value of `key` as this transaction sees it: committed, then its own writes.
    fn view(&self, key: &Value) -> Option<Value> {
        let committed = self.committed.get(&key_text(key))?;
        Some(
            self.own
                .iter()
                .filter(|(k, _)| k == key)
                .fold(committed.clone(), |value, (_, w)| w.apply_to(&value)),
        )
    }

    /// Runs the local steps and says what the transaction needs next.
    fn next(&mut self) -> Next {
        match &self.kind {
            TxnKind::Mops(mops) => {
                while let Some(mop) = mops.get(self.step) {
                    match mop.f.as_str() {
                        "r" => match self.view(&mop.key) {
                            Some(value) => self.results.push(json!(["r", mop.key, value])),
                            None => return Next::Read(mop.key.clone()),
                        },
                        f => {
                            let write = if f == "w" {
                                Write::Put(mop.value.clone())
                            } else {
                                Write::Append(mop.value.clone())
                            };
                            self.own.push((mop.key.clone(), write));
                            self.results.push(json!([f, mop.key, mop.value]));
                        }
                    }
                    self.step += 1;
                }
                Next::Commit
            }
            TxnKind::Transfer(transfer) => {
                let Transfer {
                    from,
                    to,
                    amount,
                    initial,
                    tag,
                } = transfer.as_ref();
                for key in [from, to] {
                    if !self.committed.contains_key(&key_text(key)) {
                        return Next::Read(key.clone());
                    }
                }
                let from_balance = balance(&self.committed[&key_text(from)], *initial);
                let to_balance = balance(&self.committed[&key_text(to)], *initial);
                if from_balance < *amount {
                    return Next::Fail(protocol::definite_error(
                        code::PRECONDITION_FAILED,
                        format!("insufficient funds: {from} holds {from_balance}"),
                    ));
                }
                self.own = vec![
                    (
                        from.clone(),
                        Write::Put(json!({"balance": from_balance - amount, "by": tag})),
                    ),
                    (
                        to.clone(),
                        Write::Put(json!({"balance": to_balance + amount, "by": tag})),
                    ),
                ];
                Next::Commit
            }
        }
    }

    /// Every shard's part; the coordinator's (the first write's shard) first.
    fn parts(&self) -> Vec<Part> {
        let mut parts: BTreeMap<usize, Part> = BTreeMap::new();
        let part = |shard| Part {
            shard,
            writes: Vec::new(),
            reads: Vec::new(),
            term: self.terms.get(&shard).copied().unwrap_or(0),
        };
        for (key, write) in &self.own {
            let shard = shard_of(key);
            parts
                .entry(shard)
                .or_insert_with(|| part(shard))
                .writes
                .push((key.clone(), write.clone()));
        }
        for key in &self.read_keys {
            let shard = shard_of(key);
            parts
                .entry(shard)
                .or_insert_with(|| part(shard))
                .reads
                .push(key.clone());
        }
        let first = self.own.first().map_or(0, |(k, _)| shard_of(k));
        let mut ordered: Vec<Part> = parts.remove(&first).into_iter().collect();
        ordered.extend(parts.into_values());
        ordered
    }

    /// The shards where this transaction may hold locks.
    fn touched_shards(&self) -> BTreeSet<usize> {
        let mut shards: BTreeSet<usize> = self.read_keys.iter().map(shard_of).collect();
        match &self.phase {
            AgentPhase::Reading { shard, .. } => {
                shards.insert(*shard);
            }
            AgentPhase::Locking { keys, .. } => shards.extend(keys.keys().copied()),
            AgentPhase::Committing { .. } => {}
        }
        shards
    }

    /// Records that shard `s`'s leader of `term` holds locks for this transaction; false if
    /// an earlier leader (another term) granted some: those were lost with it.
    fn same_leader(&mut self, s: usize, term: u64) -> bool {
        *self.terms.entry(s).or_insert(term) == term
    }

    /// Whether the transaction still runs (reads or locks) and may abort on its own.
    fn running(&self) -> bool {
        !matches!(self.phase, AgentPhase::Committing { .. })
    }

    fn reply(&self, ts: Ts) -> Value {
        match &self.kind {
            TxnKind::Mops(_) => protocol::ok("txn", json!({"txn": self.results, "commit_ts": ts})),
            TxnKind::Transfer(transfer) => {
                let (from, to) = (&transfer.from, &transfer.to);
                let read = |k: &Value| self.committed.get(&key_text(k)).cloned();
                protocol::ok(
                    "transfer",
                    json!({"commit_ts": ts, "read": [read(from), read(to)]}),
                )
            }
        }
    }
}

impl SpannerNode {
    pub(super) fn on_client(&mut self, ctx: &mut Context, request: RequestId, body: Value) {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
        let parsed = match kind {
            "txn" => parse_mops(&body).map(TxnKind::Mops),
            "transfer" => parse_transfer(&body),
            other => {
                let error = protocol::definite_error(
                    code::NOT_SUPPORTED,
                    format!("unsupported request type {other:?}"),
                );
                ctx.reply(request, error);
                return;
            }
        };
        match parsed {
            Err(e) => ctx.reply(
                request,
                protocol::definite_error(code::MALFORMED_REQUEST, e),
            ),
            Ok(TxnKind::Mops(mops)) if mops.iter().all(|m| m.f == "r") => {
                self.start_read_only(ctx, request, mops)
            }
            Ok(kind) => self.start_read_write(ctx, request, kind),
        }
    }

    fn next_txn_id(&mut self) -> TxnId {
        self.next_seq += 1;
        TxnId(self.index, self.incarnation, self.next_seq)
    }

    fn start_read_write(&mut self, ctx: &mut Context, request: RequestId, kind: TxnKind) {
        let txn = self.next_txn_id();
        let now = ctx.monotonic_ns();
        let prio = Priority {
            start: ctx.wall_clock_ns(),
            txn,
        };
        let agent_txn = AgentTxn {
            request,
            prio,
            kind,
            step: 0,
            results: Vec::new(),
            committed: BTreeMap::new(),
            own: Vec::new(),
            read_keys: Vec::new(),
            terms: BTreeMap::new(),
            phase: AgentPhase::Reading {
                shard: 0,
                key: Value::Null,
                sent_at: now,
                attempt: 0,
            },
            deadline: now + DEADLINE_NS,
        };
        self.txns.insert(txn, agent_txn);
        self.advance(ctx, txn);
    }

    /// Runs the transaction until it waits for a read or a commit, or fails.
    fn advance(&mut self, ctx: &mut Context, txn: TxnId) {
        let now = ctx.monotonic_ns();
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        match t.next() {
            Next::Read(key) => {
                let shard = shard_of(&key);
                if !t.read_keys.contains(&key) {
                    t.read_keys.push(key.clone());
                }
                t.phase = AgentPhase::Reading {
                    shard,
                    key: key.clone(),
                    sent_at: now,
                    attempt: 0,
                };
                let prio = t.prio;
                let dest = self.leader_guess(shard, 0);
                self.send(&dest, Message::Read { shard, prio, key });
            }
            Next::Commit => {
                let keys = by_shard(t.own.iter().map(|(k, _)| k));
                t.phase = AgentPhase::Locking {
                    pending: keys.keys().map(|s| (*s, (now, 0))).collect(),
                    keys: keys.clone(),
                };
                let prio = t.prio;
                for (shard, keys) in keys {
                    let dest = self.leader_guess(shard, 0);
                    self.send(&dest, Message::Lock { shard, prio, keys });
                }
                self.commit_when_locked(ctx, txn);
            }
            Next::Fail(reply) => self.abort_txn(txn, reply),
        }
    }

    /// Once every write lock is held, sends the parts to the coordinator.
    fn commit_when_locked(&mut self, ctx: &mut Context, txn: TxnId) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        if !matches!(&t.phase, AgentPhase::Locking { pending, .. } if pending.is_empty()) {
            return;
        }
        let parts = t.parts();
        let coordinator = parts[0].shard;
        t.phase = AgentPhase::Committing {
            coordinator,
            parts: parts.clone(),
            sent_at: ctx.monotonic_ns(),
            attempt: 0,
        };
        let prio = t.prio;
        let dest = self.leader_guess(coordinator, 0);
        let message = Message::Commit {
            prio,
            coordinator,
            parts,
        };
        self.send(&dest, message);
    }

    pub(super) fn on_locked(&mut self, ctx: &mut Context, txn: TxnId, shard: usize, term: u64) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let AgentPhase::Locking { pending, .. } = &mut t.phase else {
            return;
        };
        if pending.remove(&shard).is_none() {
            return;
        }
        if !t.same_leader(shard, term) {
            self.abort_txn(txn, leader_changed());
            return;
        }
        self.commit_when_locked(ctx, txn);
    }

    /// Ends a transaction that did not commit: its locks are released and the client told.
    fn abort_txn(&mut self, txn: TxnId, reply: Value) {
        let Some(t) = self.txns.remove(&txn) else {
            return;
        };
        for shard in t.touched_shards() {
            let dest = self.leader_guess(shard, 0);
            self.send(&dest, Message::Release { txn, shard });
        }
        self.replies.push((t.request, reply));
    }

    pub(super) fn on_read_ok(
        &mut self,
        ctx: &mut Context,
        txn: TxnId,
        key: Value,
        value: Value,
        term: u64,
    ) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let AgentPhase::Reading {
            key: wanted, shard, ..
        } = &t.phase
        else {
            return;
        };
        if *wanted != key {
            return;
        }
        if !t.same_leader(*shard, term) {
            self.abort_txn(txn, leader_changed());
            return;
        }
        t.committed.insert(key_text(&key), value);
        self.advance(ctx, txn);
    }

    /// A read or lock was refused: aborted there (the transaction aborts), or not the leader
    /// (ask again soon, following the hint).
    pub(super) fn on_refused(
        &mut self,
        ctx: &mut Context,
        txn: TxnId,
        shard: usize,
        leader: Option<NodeId>,
        aborted: bool,
    ) {
        if aborted {
            let wounded = protocol::definite_error(code::ABORT, "aborted by a conflict");
            if self.txns.get(&txn).is_some_and(AgentTxn::running) {
                self.abort_txn(txn, wounded);
            }
            return;
        }
        self.note_hint(shard, leader);
        let now = ctx.monotonic_ns();
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let retry = match &mut t.phase {
            AgentPhase::Reading {
                shard: s,
                sent_at,
                attempt,
                ..
            } if *s == shard => Some((sent_at, attempt)),
            AgentPhase::Locking { pending, .. } => pending
                .get_mut(&shard)
                .map(|(sent_at, attempt)| (sent_at, attempt)),
            _ => None,
        };
        if let Some((sent_at, attempt)) = retry {
            *sent_at = soon(now);
            *attempt += 1;
        }
    }

    pub(super) fn on_wounded(&mut self, _ctx: &mut Context, txn: TxnId) {
        if self.txns.get(&txn).is_some_and(AgentTxn::running) {
            let reply = protocol::definite_error(code::ABORT, "wounded by an older transaction");
            self.abort_txn(txn, reply);
        }
    }

    pub(super) fn on_commit_result(
        &mut self,
        ctx: &mut Context,
        txn: TxnId,
        outcome: CommitOutcome,
    ) {
        let now = ctx.monotonic_ns();
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let AgentPhase::Committing {
            coordinator,
            sent_at,
            attempt,
            ..
        } = &mut t.phase
        else {
            return;
        };
        match outcome {
            CommitOutcome::Committed { ts } => {
                let reply = t.reply(ts);
                let request = t.request;
                self.txns.remove(&txn);
                self.replies.push((request, reply));
            }
            CommitOutcome::Aborted => {
                let request = t.request;
                self.txns.remove(&txn);
                let reply = protocol::definite_error(code::ABORT, "aborted by its coordinator");
                self.replies.push((request, reply));
            }
            CommitOutcome::NotLeader { leader } => {
                *sent_at = soon(now);
                *attempt += 1;
                let shard = *coordinator;
                self.note_hint(shard, leader);
            }
        }
    }

    fn note_hint(&mut self, shard: usize, leader: Option<NodeId>) {
        if let (Some(leader), Some(hint)) = (leader, self.hints.get_mut(shard)) {
            *hint = Some(leader);
        }
    }

    // ----- read-only transactions -----

    fn start_read_only(&mut self, ctx: &mut Context, request: RequestId, mops: Vec<Mop>) {
        let ts = ctx.truetime().latest;
        let now = ctx.monotonic_ns();
        self.next_seq += 1;
        // Unique across restarts: a leader may still hold a wait from an earlier incarnation.
        let id = (self.incarnation << 32) | (self.next_seq & 0xffff_ffff);
        let by_shard = by_shard(mops.iter().map(|m| &m.key));
        let pending = by_shard.keys().map(|s| (*s, (now, 0))).collect();
        self.snapshots.insert(
            id,
            ReadOnlyTxn {
                request,
                ts,
                mops,
                by_shard: by_shard.clone(),
                values: BTreeMap::new(),
                pending,
                deadline: now + DEADLINE_NS,
            },
        );
        for (shard, keys) in by_shard {
            let dest = self.leader_guess(shard, 0);
            self.send(
                &dest,
                Message::Snapshot {
                    id,
                    shard,
                    ts,
                    keys,
                },
            );
        }
        self.finish_read_only(id);
    }

    fn finish_read_only(&mut self, id: u64) {
        let Some(r) = self.snapshots.get(&id) else {
            return;
        };
        if !r.pending.is_empty() {
            return;
        }
        let results: Vec<Value> = r
            .mops
            .iter()
            .map(|m| {
                let value = r.values.get(&key_text(&m.key)).cloned();
                json!(["r", m.key, value])
            })
            .collect();
        let reply = protocol::ok("txn", json!({"txn": results, "commit_ts": r.ts}));
        let request = r.request;
        self.snapshots.remove(&id);
        self.stats.read_only += 1;
        self.replies.push((request, reply));
    }

    pub(super) fn on_snapshot_ok(
        &mut self,
        _ctx: &mut Context,
        id: u64,
        shard: usize,
        values: Vec<Value>,
    ) {
        let Some(r) = self.snapshots.get_mut(&id) else {
            return;
        };
        if r.pending.remove(&shard).is_none() {
            return;
        }
        if let Some(keys) = r.by_shard.get(&shard) {
            for (key, value) in keys.iter().zip(values) {
                r.values.insert(key_text(key), value);
            }
        }
        self.finish_read_only(id);
    }

    pub(super) fn on_snapshot_refused(
        &mut self,
        ctx: &mut Context,
        id: u64,
        shard: usize,
        leader: Option<NodeId>,
    ) {
        self.note_hint(shard, leader);
        let now = ctx.monotonic_ns();
        if let Some((sent_at, attempt)) = self
            .snapshots
            .get_mut(&id)
            .and_then(|r| r.pending.get_mut(&shard))
        {
            *sent_at = soon(now);
            *attempt += 1;
        }
    }

    // ----- retries and deadlines -----

    pub(super) fn agent_tick(&mut self, ctx: &mut Context) {
        let now = ctx.monotonic_ns();
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (txn, t) in self.txns.iter_mut() {
            if now >= t.deadline {
                expired.push(*txn);
                continue;
            }
            match &mut t.phase {
                AgentPhase::Reading {
                    shard,
                    key,
                    sent_at,
                    attempt,
                } if now.saturating_sub(*sent_at) >= RETRY_NS => {
                    *sent_at = now;
                    *attempt += 1;
                    let message = Message::Read {
                        shard: *shard,
                        prio: t.prio,
                        key: key.clone(),
                    };
                    resend.push((*shard, *attempt, message));
                }
                AgentPhase::Locking { pending, keys } => {
                    for (shard, (sent_at, attempt)) in pending.iter_mut() {
                        if now.saturating_sub(*sent_at) >= RETRY_NS {
                            *sent_at = now;
                            *attempt += 1;
                            let message = Message::Lock {
                                shard: *shard,
                                prio: t.prio,
                                keys: keys.get(shard).cloned().unwrap_or_default(),
                            };
                            resend.push((*shard, *attempt, message));
                        }
                    }
                }
                AgentPhase::Committing {
                    coordinator,
                    parts,
                    sent_at,
                    attempt,
                } if now.saturating_sub(*sent_at) >= RETRY_NS => {
                    *sent_at = now;
                    *attempt += 1;
                    let message = Message::Commit {
                        prio: t.prio,
                        coordinator: *coordinator,
                        parts: parts.clone(),
                    };
                    resend.push((*coordinator, *attempt, message));
                }
                _ => {}
            }
        }
        let mut expired_reads = Vec::new();
        for (id, r) in self.snapshots.iter_mut() {
            if now >= r.deadline {
                expired_reads.push(*id);
                continue;
            }
            for (shard, (sent_at, attempt)) in r.pending.iter_mut() {
                if now.saturating_sub(*sent_at) >= RETRY_NS {
                    *sent_at = now;
                    *attempt += 1;
                    let message = Message::Snapshot {
                        id: *id,
                        shard: *shard,
                        ts: r.ts,
                        keys: r.by_shard.get(shard).cloned().unwrap_or_default(),
                    };
                    resend.push((*shard, *attempt, message));
                }
            }
        }
        for (shard, attempt, message) in resend {
            let dest = self.leader_guess(shard, attempt);
            self.send(&dest, message);
        }
        for txn in expired {
            let committing = matches!(
                self.txns.get(&txn).map(|t| &t.phase),
                Some(AgentPhase::Committing { .. })
            );
            if committing {
                // The commit may yet happen: the client must not be told it did not.
                if let Some(t) = self.txns.remove(&txn) {
                    let reply = protocol::indefinite_error(code::CRASH, "commit outcome unknown");
                    self.replies.push((t.request, reply));
                }
            } else {
                let reply = protocol::definite_error(code::ABORT, "timed out before committing");
                self.abort_txn(txn, reply);
            }
        }
        for id in expired_reads {
            if let Some(r) = self.snapshots.remove(&id) {
                let reply = protocol::definite_error(
                    code::TEMPORARILY_UNAVAILABLE,
                    "read-only transaction timed out",
                );
                self.replies.push((r.request, reply));
            }
        }
    }
}

fn leader_changed() -> Value {
    protocol::definite_error(code::ABORT, "a shard's leader changed while it held locks")
}

/// A `sent_at` that makes the next tick after [`QUICK_RETRY_NS`] resend.
fn soon(now: u64) -> u64 {
    (now + QUICK_RETRY_NS).saturating_sub(RETRY_NS)
}
