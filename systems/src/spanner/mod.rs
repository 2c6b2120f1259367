//! A Spanner-like transactional store (Corbett et al., OSDI 2012): external consistency from
//! TrueTime and commit wait.
//!
//! Keys are split over [`SHARDS`] shards by a fixed function of the key ([`shard_of`]). Every
//! node hosts one replica of every shard; each shard is its own Raft group (the generic core in
//! [`crate::raft`], with leader leases), whose leader is the shard's lock manager and
//! two-phase-commit participant.
//!
//! - Read-write transactions: strict two-phase locking with wound-wait (an older transaction
//!   wounds a younger lock holder that has not prepared; a younger one waits), reads under
//!   shared locks at the shard leader, writes buffered at the agent (the node the client asked).
//!   At commit the coordinator — the leader of the first written key's shard — locks its own
//!   keys and takes `TT.now().latest` as its own prepare timestamp; every other participant
//!   checks it still holds the read locks, takes its write locks, chooses a prepare timestamp
//!   (at least `TT.now().latest`, above everything it has seen) and logs a prepare record. The
//!   commit timestamp is the largest prepare timestamp; the coordinator logs the commit record,
//!   then *commit wait*: only once `TT.after(ts)` holds does it release its locks, tell the
//!   participants (which log the decision and release theirs) and answer with `commit_ts`.
//! - Read-only transactions take `TT.now().latest` at the agent and read each shard's leader at
//!   that timestamp once it is safe there: `TT.after(ts)` on the leader's clock (no later
//!   prepare can be below it) and no prepared transaction at or below it on the keys read.
//! - Orphans: a participant prepared for too long asks the coordinator's shard; with nobody
//!   coordinating and no decision in its log, the leader logs an abort. The first decision
//!   logged wins, so a commit record and an abort can never both take effect.
//!
//! TrueTime is [`crate::node::Context::truetime`]: the node's (skewable) wall clock ± ε. All of
//! the above is correct while every clock is within ε of true time; the `clock-beyond-epsilon`
//! nemesis breaks that assumption on purpose.
//!
//! Files: [`machine`] (the replicated state), [`locks`], [`messages`], `node.rs` (the node,
//! routing), `leader.rs` (participant, coordinator, snapshot reads), `agent.rs` (the client's
//! side).

mod agent;
mod leader;
pub mod locks;
pub mod machine;
pub mod messages;
mod node;

pub use node::SpannerNode;

use crate::catalog::{BugInfo, SystemInfo};
use serde_json::Value;

/// Number of shards (each its own Raft group).
pub const SHARDS: usize = 3;

/// The shard that owns `key`: integers by value (so consecutive keys spread), anything else by
/// an FNV-1a hash of its JSON text.
pub fn shard_of(key: &Value) -> usize {
    if let Some(n) = key.as_i64() {
        return n.rem_euclid(SHARDS as i64) as usize;
    }
    let text = match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % SHARDS as u64) as usize
}

/// Deliberate bugs (see `INFO.bugs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    pub no_commit_wait: bool,
    pub no_prepare_max: bool,
}

pub const INFO: SystemInfo = SystemInfo {
    name: "spanner",
    description: "Spanner-like transactions over Raft-replicated shards with leader leases: \
                  strict 2PL with wound-wait, two-phase commit, TrueTime commit timestamps \
                  and commit wait, lock-free snapshot reads",
    workloads: &["list-append", "bank"],
    bugs: &[
        BugInfo {
            name: "no-commit-wait",
            description: "the coordinator answers and releases locks as soon as the commit \
                          record is logged, without waiting until TT.after(commit ts): a node \
                          whose clock runs ahead hands out timestamps a later transaction \
                          elsewhere can undercut",
            // Skew within ε (default 7 ms) is what it takes; more would break any Spanner.
            exposed_by: "clock --clock-max-ms 7 --nemesis-interval 2 --rate 200",
        },
        BugInfo {
            name: "no-prepare-max",
            description: "the commit timestamp is the coordinator's own TT.now().latest, \
                          ignoring the participants' prepare timestamps: a participant may \
                          already have served snapshot reads above the commit timestamp \
                          that miss the transaction (no fault needed)",
            exposed_by: "none",
        },
    ],
    clocks_within_epsilon: true,
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_map_to_shards_by_a_fixed_function() {
        assert_eq!(shard_of(&json!(0)), 0);
        assert_eq!(shard_of(&json!(4)), 1);
        assert_eq!(shard_of(&json!(-1)), 2);
        let s = shard_of(&json!("account-7"));
        assert!(s < SHARDS);
        assert_eq!(shard_of(&json!("account-7")), s);
        let spread: std::collections::BTreeSet<usize> =
            (0..20).map(|i| shard_of(&json!(format!("k{i}")))).collect();
        assert_eq!(spread.len(), SHARDS);
    }
}
