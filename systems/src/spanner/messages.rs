//! Spanner's peer messages (besides each shard's Raft messages, which carry `group`).
//!
//! Three roles talk: the *agent* (the node a client asked, which runs the transaction's reads
//! and buffers its writes), *participants* (the leaders of the shards a transaction touches:
//! locks, prepare records) and the *coordinator* (the leader of the transaction's first shard:
//! two-phase commit, the commit timestamp, commit wait).

use super::machine::{Priority, Ts, TxnId, Write};
use crate::node::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One shard's part of a read-write transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub shard: usize,
    pub writes: Vec<(Value, Write)>,
    /// Keys read under shared locks, which the participant must still hold to prepare.
    pub reads: Vec<Value>,
    /// The Raft term of the leader that granted this part's locks: locks live in a leader's
    /// memory, so a participant in another term cannot vouch for them.
    pub term: u64,
}

/// How a commit ended, as the coordinator tells the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOutcome {
    Committed {
        ts: Ts,
    },
    Aborted,
    /// Not (or no longer) the coordinator shard's leader: ask again, maybe elsewhere.
    NotLeader {
        leader: Option<NodeId>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    /// Agent → participant: read `key` under a shared lock.
    #[serde(rename = "sp_read")]
    Read {
        shard: usize,
        prio: Priority,
        key: Value,
    },
    /// Participant → agent: the latest committed value; the lock is held by the leader of
    /// `term`.
    #[serde(rename = "sp_read_ok")]
    ReadOk {
        txn: TxnId,
        key: Value,
        value: Value,
        term: u64,
    },
    /// Agent → participant: take exclusive locks on the keys this shard's part writes (before
    /// committing, so that a prepared transaction never waits for a lock).
    #[serde(rename = "sp_lock")]
    Lock {
        shard: usize,
        prio: Priority,
        keys: Vec<Value>,
    },
    /// Participant → agent: the write locks are held by the leader of `term`.
    #[serde(rename = "sp_locked")]
    Locked { txn: TxnId, shard: usize, term: u64 },
    /// Participant → agent: a read or lock was refused: not the leader (with a hint), or the
    /// transaction was wounded or timed out here.
    #[serde(rename = "sp_refused")]
    Refused {
        txn: TxnId,
        shard: usize,
        leader: Option<NodeId>,
        aborted: bool,
    },
    /// Participant → agent: an older transaction took this one's locks; it must abort.
    #[serde(rename = "sp_wounded")]
    Wounded { txn: TxnId },
    /// Agent → participant: the transaction aborted before committing; release its locks.
    #[serde(rename = "sp_release")]
    Release { txn: TxnId, shard: usize },
    /// Agent → coordinator: commit these parts (the coordinator's shard is the first).
    #[serde(rename = "sp_commit")]
    Commit {
        prio: Priority,
        coordinator: usize,
        parts: Vec<Part>,
    },
    /// Coordinator → agent.
    #[serde(rename = "sp_commit_result")]
    CommitResult { txn: TxnId, outcome: CommitOutcome },
    /// Coordinator → participant.
    #[serde(rename = "sp_prepare")]
    Prepare {
        prio: Priority,
        coordinator: usize,
        part: Part,
    },
    /// Participant → coordinator: prepared at `ts`, or (`None`) refused.
    #[serde(rename = "sp_prepared")]
    Prepared {
        txn: TxnId,
        shard: usize,
        ts: Option<Ts>,
    },
    /// Coordinator → participant: commit at `commit`, or (`None`) abort.
    #[serde(rename = "sp_decision")]
    Decision {
        txn: TxnId,
        shard: usize,
        commit: Option<Ts>,
    },
    /// Participant → coordinator shard: what became of a transaction prepared here?
    #[serde(rename = "sp_status")]
    Status {
        txn: TxnId,
        coordinator: usize,
        shard: usize,
    },
    /// Agent → shard leader: read `keys` as of `ts` (a read-only transaction).
    #[serde(rename = "sp_snapshot")]
    Snapshot {
        id: u64,
        shard: usize,
        ts: Ts,
        keys: Vec<Value>,
    },
    #[serde(rename = "sp_snapshot_ok")]
    SnapshotOk {
        id: u64,
        shard: usize,
        values: Vec<Value>,
    },
    #[serde(rename = "sp_snapshot_refused")]
    SnapshotRefused {
        id: u64,
        shard: usize,
        leader: Option<NodeId>,
    },
}

impl Message {
    pub fn parse(body: Value) -> Result<Message, String> {
        serde_json::from_value(body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_with_their_type_tag() {
        let txn = TxnId(2, 1, 9);
        let msg = Message::Prepare {
            prio: Priority { start: 5, txn },
            coordinator: 1,
            part: Part {
                shard: 2,
                writes: vec![(json!(4), Write::Append(json!(7)))],
                reads: vec![json!(4)],
                term: 3,
            },
        };
        let body = serde_json::to_value(&msg).unwrap();
        assert_eq!(body["type"], "sp_prepare");
        assert_eq!(Message::parse(body).unwrap(), msg);
        let result = Message::CommitResult {
            txn,
            outcome: CommitOutcome::Committed { ts: 12 },
        };
        let body = serde_json::to_value(&result).unwrap();
        assert_eq!(Message::parse(body).unwrap(), result);
        assert!(Message::parse(json!({"type": "sp_read"})).is_err());
    }
}
