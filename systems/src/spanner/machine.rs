//! One shard's replicated state: multi-versioned data, prepared transactions and decisions.
//!
//! Every replica applies the same commands in log order (through [`crate::raft::Raft`]), so a
//! new leader knows every prepared transaction (and the locks it holds) and every decision.
//! The first decision logged for a transaction wins: a later commit or abort of the same
//! transaction reports the decision already made, which is how a coordinator and a leader
//! resolving an orphaned transaction can never disagree.

use crate::raft::{Command as RaftCommand, StateMachine};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A TrueTime timestamp: nanoseconds on the (simulated) wall clock.
pub type Ts = i64;

/// A transaction's identity: (agent node index, agent incarnation, sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId(pub u32, pub u64, pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}.{}.{}", self.0 + 1, self.1, self.2)
    }
}

/// Wound-wait priority: the smaller (older) one wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Priority {
    /// The agent's wall clock when the transaction started.
    pub start: i64,
    pub txn: TxnId,
}

/// A buffered write to one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Write {
    /// Replace the value.
    Put(Value),
    /// Append to the list stored at the key (a missing key is the empty list).
    Append(Value),
}

impl Write {
    /// The value after this write, given the value before (`Null` when never written).
    pub fn apply_to(&self, before: &Value) -> Value {
        match self {
            Write::Put(v) => v.clone(),
            Write::Append(v) => {
                let mut list = match before {
                    Value::Array(items) => items.clone(),
                    _ => Vec::new(),
                };
                list.push(v.clone());
                Value::Array(list)
            }
        }
    }
}

/// Keys are JSON values; their JSON text names them in maps.
pub fn key_text(key: &Value) -> String {
    key.to_string()
}

/// A command in a shard's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Command {
    /// A participant promises to commit at or after `ts` if told to; its locks survive a
    /// change of leader because they are rebuilt from this record.
    Prepare {
        txn: TxnId,
        ts: Ts,
        /// The shard whose leader coordinates the transaction.
        coordinator: usize,
        writes: Vec<(Value, Write)>,
        reads: Vec<Value>,
    },
    /// The decision to commit at `ts`. The coordinator's record carries its own shard's
    /// writes; a participant's takes them from its prepare record.
    Commit {
        txn: TxnId,
        ts: Ts,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        writes: Option<Vec<(Value, Write)>>,
    },
    Abort {
        txn: TxnId,
    },
}

/// A prepared transaction awaiting its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub ts: Ts,
    pub coordinator: usize,
    pub writes: Vec<(Value, Write)>,
    pub reads: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Committed(Ts),
    Aborted,
}

/// What applying a command did, for the leader to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Prepared {
        txn: TxnId,
        ts: Ts,
    },
    /// A prepare arrived after the transaction was decided: it stays decided.
    PrepareRefused {
        txn: TxnId,
    },
    /// The transaction's decision (the first one logged), at every command that decides it.
    Decided {
        txn: TxnId,
        decision: Decision,
    },
}

#[derive(Debug, Default)]
pub struct ShardMachine {
    /// Key text → versions `(commit ts, value)` in the order they were applied.
    versions: BTreeMap<String, Vec<(Ts, Value)>>,
    prepared: BTreeMap<TxnId, Prepared>,
    decisions: BTreeMap<TxnId, Decision>,
    /// The largest timestamp in any applied prepare or commit.
    max_ts: Ts,
    applied: Vec<Applied>,
}

impl ShardMachine {
    pub fn new() -> Self {
        ShardMachine::default()
    }

    /// The outcomes of the commands applied since the last call.
    pub fn take_applied(&mut self) -> Vec<Applied> {
        std::mem::take(&mut self.applied)
    }

    /// The latest committed value (`Null` when never written).
    pub fn read_latest(&self, key: &Value) -> Value {
        self.versions
            .get(&key_text(key))
            .and_then(|v| v.last())
            .map_or(Value::Null, |(_, value)| value.clone())
    }

    /// The value as of timestamp `ts`: the last applied version committed at or before it.
    pub fn read_at(&self, key: &Value, ts: Ts) -> Value {
        self.versions
            .get(&key_text(key))
            .and_then(|versions| versions.iter().rev().find(|(at, _)| *at <= ts))
            .map_or(Value::Null, |(_, value)| value.clone())
    }

    pub fn prepared(&self) -> &BTreeMap<TxnId, Prepared> {
        &self.prepared
    }

    pub fn decision(&self, txn: &TxnId) -> Option<Decision> {
        self.decisions.get(txn).copied()
    }

    pub fn max_ts(&self) -> Ts {
        self.max_ts
    }

    pub fn keys(&self) -> usize {
        self.versions.len()
    }

    fn decide(&mut self, txn: TxnId, decision: Decision, writes: Option<Vec<(Value, Write)>>) {
        if let Some(&earlier) = self.decisions.get(&txn) {
            self.applied.push(Applied::Decided {
                txn,
                decision: earlier,
            });
            return;
        }
        self.decisions.insert(txn, decision);
        let prepared = self.prepared.remove(&txn);
        if let Decision::Committed(ts) = decision {
            let writes = writes.or(prepared.map(|p| p.writes)).unwrap_or_default();
            for (key, write) in writes {
                let versions = self.versions.entry(key_text(&key)).or_default();
                let before = versions.last().map_or(Value::Null, |(_, v)| v.clone());
                versions.push((ts, write.apply_to(&before)));
            }
            self.max_ts = self.max_ts.max(ts);
        }
        self.applied.push(Applied::Decided { txn, decision });
    }
}

impl StateMachine for ShardMachine {
    fn apply(&mut self, command: &RaftCommand) -> Value {
        let Ok(command) = command.parse::<Command>() else {
            return Value::Null;
        };
        match command {
            Command::Prepare {
                txn,
                ts,
                coordinator,
                writes,
                reads,
            } => {
                if self.decisions.contains_key(&txn) {
                    self.applied.push(Applied::PrepareRefused { txn });
                } else {
                    let record = self.prepared.entry(txn).or_insert(Prepared {
                        ts,
                        coordinator,
                        writes,
                        reads,
                    });
                    let ts = record.ts;
                    self.max_ts = self.max_ts.max(ts);
                    self.applied.push(Applied::Prepared { txn, ts });
                }
            }
            Command::Commit { txn, ts, writes } => {
                self.decide(txn, Decision::Committed(ts), writes);
            }
            Command::Abort { txn } => self.decide(txn, Decision::Aborted, None),
        }
        Value::Null
    }

    fn reset(&mut self) {
        *self = ShardMachine::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(m: &mut ShardMachine, c: Command) -> Vec<Applied> {
        m.apply(&RaftCommand::new(&serde_json::to_value(c).unwrap()));
        m.take_applied()
    }

    const T1: TxnId = TxnId(0, 1, 1);
    const T2: TxnId = TxnId(1, 1, 1);

    #[test]
    fn commits_make_versions_readable_by_timestamp() {
        let mut m = ShardMachine::new();
        let append = |v: i64| (json!(3), Write::Append(json!(v)));
        apply(
            &mut m,
            Command::Prepare {
                txn: T1,
                ts: 10,
                coordinator: 1,
                writes: vec![append(1)],
                reads: vec![],
            },
        );
        assert_eq!(m.read_latest(&json!(3)), Value::Null);
        let out = apply(
            &mut m,
            Command::Commit {
                txn: T1,
                ts: 12,
                writes: None,
            },
        );
        assert_eq!(
            out,
            vec![Applied::Decided {
                txn: T1,
                decision: Decision::Committed(12)
            }]
        );
        apply(
            &mut m,
            Command::Commit {
                txn: T2,
                ts: 20,
                writes: Some(vec![append(2)]),
            },
        );
        assert_eq!(m.read_latest(&json!(3)), json!([1, 2]));
        assert_eq!(m.read_at(&json!(3), 11), Value::Null);
        assert_eq!(m.read_at(&json!(3), 12), json!([1]));
        assert_eq!(m.read_at(&json!(3), 25), json!([1, 2]));
        assert!(m.prepared().is_empty());
        assert_eq!(m.max_ts(), 20);
    }

    #[test]
    fn the_first_decision_wins_and_a_late_prepare_is_refused() {
        let mut m = ShardMachine::new();
        apply(&mut m, Command::Abort { txn: T1 });
        let out = apply(
            &mut m,
            Command::Commit {
                txn: T1,
                ts: 5,
                writes: Some(vec![(json!("k"), Write::Put(json!(1)))]),
            },
        );
        assert_eq!(
            out,
            vec![Applied::Decided {
                txn: T1,
                decision: Decision::Aborted
            }]
        );
        assert_eq!(m.read_latest(&json!("k")), Value::Null);
        let out = apply(
            &mut m,
            Command::Prepare {
                txn: T1,
                ts: 7,
                coordinator: 0,
                writes: vec![],
                reads: vec![],
            },
        );
        assert_eq!(out, vec![Applied::PrepareRefused { txn: T1 }]);
        assert!(m.prepared().is_empty());
    }

    #[test]
    fn priorities_order_by_start_then_id() {
        let old = Priority { start: 5, txn: T2 };
        let young = Priority { start: 9, txn: T1 };
        assert!(old < young);
        assert_eq!(T1.to_string(), "t1.1.1");
    }
}
