//! The node contract (sans-IO) and every bundled reference system.
//!
//! Node code never touches sockets, threads, clocks or OS randomness: everything comes through
//! [`node::Context`] and everything it wants done is a [`node::Effect`]. `clippy.toml` in this
//! crate forbids the escape hatches.

pub mod catalog;
pub mod dynamo;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod spanner;

pub use catalog::{BugInfo, SystemInfo, build, systems};
pub use node::{Clocks, Context, Delay, DiskImage, Effect, Node, NodeConfig, NodeId, TimerKey};
