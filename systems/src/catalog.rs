//! The bundled systems by name, with their bug switches.

use crate::node::{Node, NodeConfig};

/// A deliberate bug and the fault that exposes it.
#[derive(Debug, Clone, Copy)]
pub struct BugInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// The nemesis (as given to `--nemesis`) that exposes it.
    pub exposed_by: &'static str,
}

/// A bundled reference system.
#[derive(Debug, Clone, Copy)]
pub struct SystemInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub workloads: &'static [&'static str],
    pub bugs: &'static [BugInfo],
    /// The system is correct only while every clock is within TrueTime's ε of true time (as
    /// Spanner): the `clock` nemesis then keeps skews within ε unless told otherwise, and
    /// `clock-beyond-epsilon` is how to break the assumption on purpose.
    pub clocks_within_epsilon: bool,
}

/// Every bundled system.
pub fn systems() -> &'static [SystemInfo] {
    &[crate::raft::INFO, crate::dynamo::INFO, crate::spanner::INFO]
}

/// Builds a node of the named system; an unknown system or bug is an error naming it.
pub fn build(system: &str, config: NodeConfig) -> Result<Box<dyn Node>, String> {
    let info = systems().iter().find(|s| s.name == system).ok_or_else(|| {
        let names: Vec<_> = systems().iter().map(|s| s.name).collect();
        format!("unknown system {system:?}; known: {}", names.join(", "))
    })?;
    for bug in &config.bugs {
        if !info.bugs.iter().any(|b| b.name == bug) {
            let names: Vec<_> = info.bugs.iter().map(|b| b.name).collect();
            return Err(format!(
                "system {system} has no bug {bug:?}; its bugs: {}",
                names.join(", ")
            ));
        }
    }
    match system {
        "raft" => Ok(Box::new(crate::raft::RaftKv::new(config))),
        "dynamo" => Ok(Box::new(crate::dynamo::DynamoNode::new(config))),
        "spanner" => Ok(Box::new(crate::spanner::SpannerNode::new(config))),
        _ => Err(format!("system {system:?} is listed but cannot be built")),
    }
}
