//! Raft (Ongaro & Ousterhout): a replicated log with leader election, the log consistency
//! check, current-term commitment, durable term/vote/log, and read-index reads; here serving a
//! linearizable key-value store (`lin-kv`).
//!
//! - [`core`]: the consensus, generic over a [`StateMachine`] (Spanner reuses it per shard);
//! - [`log`], [`storage`], [`messages`]: the log, its persistence, the peer messages;
//! - [`kv`]: the key-value state machine and [`RaftKv`], the node clients talk to.

pub mod core;
pub mod kv;
pub mod log;
pub mod messages;
pub mod storage;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod testkit;

pub use self::core::{Event, Faults, NotLeader, Proposal, Raft, RaftConfig, Role, StateMachine};
pub use kv::{KvMachine, RaftKv};

use crate::catalog::{BugInfo, SystemInfo};

pub const INFO: SystemInfo = SystemInfo {
    name: "raft",
    description: "Raft-replicated linearizable key-value store: leader election, log \
                  replication, durable term/vote/log, read-index reads",
    workloads: &["lin-kv"],
    bugs: &[
        BugInfo {
            name: "stale-read",
            description: "the leader answers reads from its local state without confirming \
                          it is still leader, so a deposed leader serves stale values",
            exposed_by: "partition",
        },
        BugInfo {
            name: "forget-vote",
            description: "term and vote are not persisted: a restarted node forgets its vote \
                          and can vote twice in one term (two leaders, lost writes)",
            exposed_by: "kill",
        },
        BugInfo {
            name: "commit-old-term",
            description: "a new leader commits entries from earlier terms by counting \
                          replicas (Raft's figure 8): a committed entry can be overwritten",
            exposed_by: "kill,partition",
        },
    ],
};
