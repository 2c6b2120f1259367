//! A Dynamo-style leaderless key-value store (DeCandia et al., SOSP 2007; Riak's dotted
//! version vectors): a consistent-hashing ring with virtual nodes, N = 3 replicas per key,
//! configurable R and W (2 and 2), any node coordinates, sloppy quorums with hinted handoff,
//! per-key causality with dotted version vectors, reads that return every concurrent sibling
//! with a causal context, writes that replace exactly what their context covers, read repair
//! and anti-entropy. Served to the `vv-kv` workload.
//!
//! - [`object`]: siblings, dots, causal contexts, merge;
//! - [`ring`]: consistent hashing and preference lists;
//! - [`server`]: the node (replica and coordinator), handoff, anti-entropy, liveness;
//! - [`messages`], [`storage`]: the peer messages and the durable state.

pub mod messages;
pub mod object;
pub mod ring;
pub mod server;
pub mod storage;

#[cfg(test)]
mod tests;

pub use object::{Dot, Object, VersionVector};
pub use server::{Bugs, DynamoNode, Quorums};

use crate::catalog::{BugInfo, SystemInfo};

pub const INFO: SystemInfo = SystemInfo {
    name: "dynamo",
    description: "Dynamo-style leaderless store: consistent hashing, N=3 R=2 W=2, sloppy \
                  quorums with hinted handoff, dotted version vectors with siblings, read \
                  repair, anti-entropy",
    workloads: &["vv-kv"],
    bugs: &[
        BugInfo {
            name: "lww",
            description: "keep only the sibling with the newest wall-clock timestamp instead \
                          of all concurrent ones: concurrent writes are lost, and clock skew \
                          decides which",
            exposed_by: "clock",
        },
        BugInfo {
            name: "client-ids",
            description: "version-vector entries per client instead of per coordinating node: \
                          a client that has not read its own last write reuses a dot, and one \
                          of the two values silently disappears",
            exposed_by: "partition",
        },
        BugInfo {
            name: "drop-context",
            description: "writes ignore their causal context: nothing is ever superseded, so \
                          reads return values together with the writes that replaced them",
            exposed_by: "partition",
        },
        BugInfo {
            name: "no-handoff",
            description: "hinted handoff never runs: writes accepted only by fallback nodes \
                          during a partition never reach their home replicas",
            exposed_by: "partition",
        },
    ],
    clocks_within_epsilon: false,
};
