//! Fault schedules: explicit, timed, generated from a seed.

use crate::fault::Fault;
use crate::partition;
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The families of faults `--nemesis` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    Clock,
    Loss,
}

impl FaultKind {
    pub const ALL: &[FaultKind] = &[
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            FaultKind::Partition => {
                "network partitions: random halves, isolate one, majorities ring, bridge, one-way"
            }
            FaultKind::Kill => "crash a minority of nodes (unsynced writes lost), restart later",
            FaultKind::Pause => "freeze a minority of nodes, resume later",
            FaultKind::Clock => "clock bumps, strobes and drift on single nodes; reset",
            FaultKind::Loss => "link faults: message loss, extra latency, duplication",
        }
    }

    /// Parses `partition,kill`, `all` or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, String> {
        let mut kinds = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => kinds.extend(FaultKind::ALL.iter().copied()),
                "none" => {}
                other => {
                    kinds.insert(other.parse()?);
                }
            }
        }
        Ok(kinds.into_iter().collect())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown nemesis {s:?}; known: {}, all, none",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a schedule is generated from.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleOptions {
    pub kinds: Vec<FaultKind>,
    /// Mean time between fault operations.
    pub interval_ns: u64,
    /// Faults are generated in `[interval, duration)`; the heal comes at `duration`.
    pub duration_ns: u64,
    pub nodes: Vec<String>,
    /// Largest clock bump or strobe, in ms.
    pub clock_max_ms: i64,
}

/// A fault at a point in (runtime) time, in ns since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedFault {
    pub at_ns: u64,
    pub fault: Fault,
}

/// A whole run's faults, in time order, ending with the heal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub faults: Vec<TimedFault>,
}

/// Which faults are in force while a schedule is generated, so that each start has its stop.
#[derive(Default)]
struct Active {
    partitioned: bool,
    killed: BTreeSet<String>,
    paused: BTreeSet<String>,
    clocks_skewed: bool,
    link_fault: Option<Fault>,
}

impl Schedule {
    /// Generates a schedule from the nemesis RNG stream.
    pub fn generate(opts: &ScheduleOptions, rng: &mut ChaCha8Rng) -> Schedule {
        let mut faults = Vec::new();
        let mut active = Active::default();
        if !opts.kinds.is_empty() && opts.interval_ns > 0 && !opts.nodes.is_empty() {
            let mut t = jittered(opts.interval_ns, rng);
            while t < opts.duration_ns {
                let kind = *opts.kinds.choose(rng).unwrap_or(&FaultKind::Partition);
                if let Some(fault) = next_fault(kind, opts, &mut active, rng) {
                    faults.push(TimedFault { at_ns: t, fault });
                }
                t += jittered(opts.interval_ns, rng);
            }
        }
        for fault in heal(&opts.nodes) {
            faults.push(TimedFault {
                at_ns: opts.duration_ns,
                fault,
            });
        }
        Schedule { faults }
    }

    /// The kinds of fault operation (`f` names) this schedule contains.
    pub fn fault_names(&self) -> BTreeSet<&'static str> {
        self.faults.iter().map(|f| f.fault.name()).collect()
    }
}

/// Everything that ends a run's faults: heal links, resume, restart, reset clocks.
pub fn heal(nodes: &[String]) -> Vec<Fault> {
    vec![
        Fault::StopPartition,
        Fault::StopLoss,
        Fault::StopLatency,
        Fault::StopDuplication,
        Fault::Resume {
            nodes: nodes.to_vec(),
        },
        Fault::Restart {
            nodes: nodes.to_vec(),
        },
        Fault::ClockReset {
            nodes: nodes.to_vec(),
        },
    ]
}

/// Between half and one and a half times the mean.
fn jittered(mean: u64, rng: &mut ChaCha8Rng) -> u64 {
    let lo = (mean / 2).max(1);
    rng.random_range(lo..=mean + mean / 2)
}

/// A random subset of `pool` such that, with the `already_down` nodes, at most a minority of the
/// cluster is down (so a correct system stays available); empty when no room is left.
fn minority_of(
    pool: &[String],
    cluster: usize,
    already_down: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<String> {
    let max = ((cluster - 1) / 2)
        .max(1)
        .saturating_sub(already_down)
        .min(pool.len());
    if max == 0 {
        return Vec::new();
    }
    let count = rng.random_range(1..=max);
    let mut chosen: Vec<String> = pool.sample(rng, count).cloned().collect();
    chosen.sort();
    chosen
}

fn next_fault(
    kind: FaultKind,
    opts: &ScheduleOptions,
    active: &mut Active,
    rng: &mut ChaCha8Rng,
) -> Option<Fault> {
    let nodes = &opts.nodes;
    match kind {
        FaultKind::Partition => {
            active.partitioned = !active.partitioned;
            if active.partitioned {
                let shape = *partition::SHAPES.choose(rng)?;
                Some(Fault::StartPartition {
                    shape: shape.to_string(),
                    grudge: partition::grudge(shape, nodes, rng),
                })
            } else {
                Some(Fault::StopPartition)
            }
        }
        FaultKind::Kill => {
            if !active.killed.is_empty() {
                let nodes: Vec<String> = std::mem::take(&mut active.killed).into_iter().collect();
                return Some(Fault::Restart { nodes });
            }
            let pool: Vec<String> = nodes
                .iter()
                .filter(|n| !active.paused.contains(*n))
                .cloned()
                .collect();
            let chosen = minority_of(&pool, nodes.len(), active.paused.len(), rng);
            if chosen.is_empty() {
                return None;
            }
            active.killed.extend(chosen.iter().cloned());
            Some(Fault::Kill { nodes: chosen })
        }
        FaultKind::Pause => {
            if !active.paused.is_empty() {
                let nodes: Vec<String> = std::mem::take(&mut active.paused).into_iter().collect();
                return Some(Fault::Resume { nodes });
            }
            let pool: Vec<String> = nodes
                .iter()
                .filter(|n| !active.killed.contains(*n))
                .cloned()
                .collect();
            let chosen = minority_of(&pool, nodes.len(), active.killed.len(), rng);
            if chosen.is_empty() {
                return None;
            }
            active.paused.extend(chosen.iter().cloned());
            Some(Fault::Pause { nodes: chosen })
        }
        FaultKind::Clock => {
            if active.clocks_skewed && rng.random_bool(0.3) {
                active.clocks_skewed = false;
                return Some(Fault::ClockReset {
                    nodes: nodes.clone(),
                });
            }
            active.clocks_skewed = true;
            let node = nodes.choose(rng)?.clone();
            let max = opts.clock_max_ms.max(1);
            let delta_ms = rng.random_range(-max..=max);
            Some(match rng.random_range(0..3) {
                0 => Fault::ClockBump { node, delta_ms },
                1 => Fault::ClockStrobe {
                    node,
                    delta_ms,
                    period_ms: rng.random_range(5..=50),
                    duration_ms: rng.random_range(500..=3000),
                },
                _ => Fault::ClockDrift {
                    node,
                    ppm: rng.random_range(-50_000..=50_000),
                },
            })
        }
        FaultKind::Loss => {
            if let Some(current) = active.link_fault.take() {
                return Some(match current {
                    Fault::StartLoss { .. } => Fault::StopLoss,
                    Fault::StartLatency { .. } => Fault::StopLatency,
                    _ => Fault::StopDuplication,
                });
            }
            let fault = match rng.random_range(0..3) {
                0 => Fault::StartLoss {
                    probability: rng.random_range(0.05..0.4),
                },
                1 => Fault::StartLatency {
                    extra_ms: rng.random_range(5.0..100.0),
                },
                _ => Fault::StartDuplication {
                    probability: rng.random_range(0.05..0.3),
                },
            };
            active.link_fault = Some(fault.clone());
            Some(fault)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn opts(kinds: Vec<FaultKind>) -> ScheduleOptions {
        ScheduleOptions {
            kinds,
            interval_ns: 2_000_000_000,
            duration_ns: 60_000_000_000,
            nodes: (1..=5).map(|i| format!("n{i}")).collect(),
            clock_max_ms: 100,
        }
    }

    #[test]
    fn same_seed_same_schedule_and_different_seed_differs() {
        let o = opts(FaultKind::ALL.to_vec());
        let a = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(7));
        let b = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(7));
        let c = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn schedule_is_ordered_within_duration_and_ends_with_heal() {
        let o = opts(FaultKind::ALL.to_vec());
        let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(s.faults.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert!(s.faults.iter().all(|f| f.at_ns <= o.duration_ns));
        let tail: Vec<_> = s
            .faults
            .iter()
            .rev()
            .take(7)
            .map(|f| f.fault.name())
            .collect();
        for name in [
            "stop-partition",
            "resume",
            "restart",
            "clock-reset",
            "stop-loss",
        ] {
            assert!(tail.contains(&name), "heal lacks {name}");
        }
    }

    #[test]
    fn kills_stay_a_minority_and_every_kill_is_followed_by_restart() {
        let o = opts(vec![FaultKind::Kill, FaultKind::Pause]);
        for seed in 0..20 {
            let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(seed));
            let mut down: BTreeSet<String> = BTreeSet::new();
            for f in &s.faults {
                match &f.fault {
                    Fault::Kill { nodes } | Fault::Pause { nodes } => {
                        down.extend(nodes.iter().cloned());
                        assert!(down.len() <= 2, "seed {seed}: {down:?} is not a minority");
                    }
                    Fault::Restart { nodes } | Fault::Resume { nodes } => {
                        for n in nodes {
                            down.remove(n);
                        }
                    }
                    _ => {}
                }
            }
            assert!(down.is_empty());
        }
    }

    #[test]
    fn only_selected_kinds_appear() {
        let o = opts(vec![FaultKind::Partition]);
        let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(3));
        let before_heal = &s.faults[..s.faults.len() - 7];
        assert!(!before_heal.is_empty());
        assert!(
            before_heal
                .iter()
                .all(|f| matches!(f.fault, Fault::StartPartition { .. } | Fault::StopPartition))
        );
    }

    #[test]
    fn nemesis_lists_parse() {
        assert_eq!(
            FaultKind::parse_list("all").unwrap(),
            FaultKind::ALL.to_vec()
        );
        assert_eq!(
            FaultKind::parse_list("kill,partition").unwrap(),
            vec![FaultKind::Partition, FaultKind::Kill]
        );
        assert!(FaultKind::parse_list("none").unwrap().is_empty());
        assert!(
            FaultKind::parse_list("partition,bogus")
                .unwrap_err()
                .contains("bogus")
        );
    }
}
