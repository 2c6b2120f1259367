//! One fault operation and how it appears in a history.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Directed cuts: `grudge[dest]` is the set of nodes whose messages `dest` does not receive
/// (Jepsen's convention).
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// A node name that the runtime resolves, when the fault is applied, to the nodes that consider
/// themselves leader (their state's `"role"` is `"leader"`).
pub const PRIMARY: &str = "primary";

/// A fault operation, applied by a runtime at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Fault {
    /// Cut links as the grudge says; `shape` names the partition (e.g. `majorities-ring`).
    StartPartition {
        shape: String,
        grudge: Grudge,
    },
    /// Heal every cut link.
    StopPartition,
    /// Crash nodes: memory and unsynced writes are lost.
    Kill {
        nodes: Vec<String>,
    },
    /// Start crashed nodes again from their synced disk.
    Restart {
        nodes: Vec<String>,
    },
    /// Freeze nodes (SIGSTOP): their events wait until resumed.
    Pause {
        nodes: Vec<String>,
    },
    Resume {
        nodes: Vec<String>,
    },
    /// Jump a node's wall clock by `delta_ms` (either sign).
    ClockBump {
        node: String,
        delta_ms: i64,
    },
    /// Flip a node's clock between its offset and offset + `delta_ms` every `period_ms`, for
    /// `duration_ms`.
    ClockStrobe {
        node: String,
        delta_ms: i64,
        period_ms: u64,
        duration_ms: u64,
    },
    /// Make a node's clock run fast or slow by `ppm` parts per million.
    ClockDrift {
        node: String,
        ppm: i64,
    },
    /// Put every clock back to true time.
    ClockReset {
        nodes: Vec<String>,
    },
    /// Drop each message with this probability.
    StartLoss {
        probability: f64,
    },
    StopLoss,
    /// Add this much mean latency to every message.
    StartLatency {
        extra_ms: f64,
    },
    StopLatency,
    /// Duplicate each message with this probability.
    StartDuplication {
        probability: f64,
    },
    StopDuplication,
}

impl Fault {
    /// Whether applying this fault needs to know which nodes lead right now.
    pub fn targets_primary(&self) -> bool {
        match self {
            Fault::Kill { nodes } | Fault::Pause { nodes } => nodes.iter().any(|n| n == PRIMARY),
            Fault::StartPartition { shape, .. } => shape == crate::partition::ISOLATE_PRIMARY,
            _ => false,
        }
    }

    /// This fault with the symbolic `primary` target replaced by `primaries` (the nodes that
    /// lead at the moment it is applied), out of a cluster of `nodes`. What the runtimes apply
    /// and record.
    pub fn resolve_primary(&self, primaries: &[String], nodes: &[String]) -> Fault {
        let resolve = |targets: &Vec<String>| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for n in targets {
                if n == PRIMARY {
                    out.extend(primaries.iter().cloned());
                } else {
                    out.push(n.clone());
                }
            }
            out.sort();
            out.dedup();
            out
        };
        match self {
            Fault::Kill { nodes: targets } => Fault::Kill {
                nodes: resolve(targets),
            },
            Fault::Pause { nodes: targets } => Fault::Pause {
                nodes: resolve(targets),
            },
            Fault::StartPartition { shape, .. } if shape == crate::partition::ISOLATE_PRIMARY => {
                Fault::StartPartition {
                    shape: shape.clone(),
                    grudge: crate::partition::isolate(primaries, nodes),
                }
            }
            other => other.clone(),
        }
    }

    /// The history operation's `f`.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::StartPartition { .. } => "start-partition",
            Fault::StopPartition => "stop-partition",
            Fault::Kill { .. } => "kill",
            Fault::Restart { .. } => "restart",
            Fault::Pause { .. } => "pause",
            Fault::Resume { .. } => "resume",
            Fault::ClockBump { .. } => "clock-bump",
            Fault::ClockStrobe { .. } => "clock-strobe",
            Fault::ClockDrift { .. } => "clock-drift",
            Fault::ClockReset { .. } => "clock-reset",
            Fault::StartLoss { .. } => "start-loss",
            Fault::StopLoss => "stop-loss",
            Fault::StartLatency { .. } => "start-latency",
            Fault::StopLatency => "stop-latency",
            Fault::StartDuplication { .. } => "start-duplication",
            Fault::StopDuplication => "stop-duplication",
        }
    }

    /// The history operation's `value`: what was done, to whom.
    pub fn history_value(&self) -> Value {
        match self {
            Fault::StartPartition { shape, grudge } => json!({"shape": shape, "grudge": grudge}),
            Fault::StopPartition
            | Fault::StopLoss
            | Fault::StopLatency
            | Fault::StopDuplication => Value::Null,
            Fault::Kill { nodes }
            | Fault::Restart { nodes }
            | Fault::Pause { nodes }
            | Fault::Resume { nodes }
            | Fault::ClockReset { nodes } => json!(nodes),
            Fault::ClockBump { node, delta_ms } => json!({"node": node, "delta_ms": delta_ms}),
            Fault::ClockStrobe {
                node,
                delta_ms,
                period_ms,
                duration_ms,
            } => json!({"node": node, "delta_ms": delta_ms, "period_ms": period_ms,
                        "duration_ms": duration_ms}),
            Fault::ClockDrift { node, ppm } => json!({"node": node, "ppm": ppm}),
            Fault::StartLoss { probability } | Fault::StartDuplication { probability } => {
                json!({"probability": probability})
            }
            Fault::StartLatency { extra_ms } => json!({"extra_ms": extra_ms}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_target_resolves_to_the_current_leaders() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let leaders = vec!["n3".to_string()];
        let kill = Fault::Kill {
            nodes: vec![PRIMARY.into(), "n1".into()],
        };
        assert!(kill.targets_primary());
        assert_eq!(
            kill.resolve_primary(&leaders, &nodes),
            Fault::Kill {
                nodes: vec!["n1".into(), "n3".into()]
            }
        );
        let isolate = Fault::StartPartition {
            shape: crate::partition::ISOLATE_PRIMARY.into(),
            grudge: Grudge::new(),
        };
        let Fault::StartPartition { grudge, .. } = isolate.resolve_primary(&leaders, &nodes) else {
            unreachable!()
        };
        assert_eq!(grudge["n3"].len(), 2);
        assert!(!Fault::StopPartition.targets_primary());
        assert_eq!(
            Fault::Pause {
                nodes: vec![PRIMARY.into()]
            }
            .resolve_primary(&[], &nodes),
            Fault::Pause { nodes: vec![] }
        );
    }
}
