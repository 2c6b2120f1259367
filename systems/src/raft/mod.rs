//! Raft (Ongaro & Ousterhout): a replicated log with leader election, the log consistency
//! check, current-term commitment, durable term/vote/log, and read-index reads; here serving a
//! linearizable key-value store (`lin-kv`).
//!
//! - [`core`]: the consensus, generic over a [`StateMachine`];
//! - [`log`], [`storage`], [`messages`]: the log, its persistence, the peer messages;
//! - [`kv`]: the key-value state machine and [`RaftKv`], the node clients talk to.
//!
//! # Reusing the core (one replicated log per Spanner shard)
//!
//! Build a [`Raft`] per group with [`RaftConfig::new`] and give each group on a node its own
//! `group` (tagged on its messages; route incoming bodies with [`messages::group_of`]),
//! `disk_prefix` and `timer_base` (it uses two keys; route with [`Raft::owns_timer`]). Forward
//! the node's `on_start` / `on_message` / `on_timer`, call [`Raft::propose`] for writes and
//! [`Raft::read_index`] for linearizable reads, and after every call drain
//! [`Raft::take_events`]: `Applied { index, term, result }` answers the proposal with that
//! index and term, `ReadReady` lets a read run against [`Raft::machine`], `SteppedDown` means
//! pending proposals may or may not commit. With `RaftConfig::leases`, followers stay loyal
//! to a live leader for the minimum election timeout and [`Raft::has_lease`] says when the
//! leader may read locally without a round trip.

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
pub use messages::Command;

use crate::catalog::{BugInfo, SystemInfo};

pub const INFO: SystemInfo = SystemInfo {
    name: "raft",
    description: "Raft-replicated linearizable key-value store: leader election, log \
                  replication, durable term/vote/log, read-index reads",
    workloads: &["lin-kv"],
    bugs: &[
        BugInfo {
            name: "stale-read",
            description: "reads skip the read-index round: whichever node gets a read answers \
                          from its local state without confirming leadership, so a deposed \
                          leader or a lagging follower serves stale values",
            exposed_by: "partition",
        },
        BugInfo {
            name: "forget-vote",
            description: "term and vote are not persisted: a restarted node comes back at term \
                          0 with no vote, so it can vote twice in one term, and after a \
                          cluster-wide restart terms regress and a stale log can win",
            exposed_by: "crash,partition --nemesis-interval 0.5",
        },
        BugInfo {
            name: "commit-old-term",
            description: "a new leader commits entries from earlier terms as soon as a \
                          majority stores them (and so skips the no-op that starts its term): \
                          Raft's figure 8, where such an entry can still be overwritten",
            exposed_by: "leader-churn --nemesis-interval 0.3",
        },
    ],
    clocks_within_epsilon: false,
};
