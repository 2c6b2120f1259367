//! Fault schedules: explicit, timed, generated from a seed.

use crate::fault::Fault;
use crate::partition;
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Clock skew several times TrueTime's ε: breaks the assumption Spanner-like systems rest
    /// on, so it is not part of `all`.
    ClockBeyondEpsilon,
    /// Rapid crash-restart cycles of any subset of nodes, up to the whole cluster: what it takes
    /// to catch a node voting twice in one term, or a leader change in the middle of a
    /// replication (Raft's figure 8). Not part of `all`: it leaves no quorum at times.
    Crash,
    /// Cut the current leader off from everyone, again and again: each cut replaces the last,
    /// so the previous leader rejoins as the next one is isolated. Leaders that live for tens
    /// of milliseconds leave entries of many terms on minorities — Raft's figure 8. Not part
    /// of `all`: with no leader for long stretches, little gets done.
    LeaderChurn,
}

impl FaultKind {
    /// What `--nemesis all` selects: every fault a correct system must survive.
    pub const ALL: &[FaultKind] = &[
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
    ];

    /// Every kind `--nemesis` accepts by name: `ALL` plus the ones that break a system's
    /// stated assumptions on purpose.
    pub const EVERY: &[FaultKind] = &[
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::ClockBeyondEpsilon,
        FaultKind::Crash,
        FaultKind::LeaderChurn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::ClockBeyondEpsilon => "clock-beyond-epsilon",
            FaultKind::Crash => "crash",
            FaultKind::LeaderChurn => "leader-churn",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            FaultKind::Partition => {
                "network partitions: random halves, isolate one, majorities ring, bridge, one-way"
            }
            FaultKind::Kill => "crash a minority of nodes (unsynced writes lost), restart later",
            FaultKind::Pause => "freeze a minority of nodes, resume later",
            FaultKind::Clock => {
                "clock bumps, strobes and drift on single nodes, each node's skew within \
                 --clock-max-ms; reset"
            }
            FaultKind::Loss => "link faults: message loss, extra latency, duplication",
            FaultKind::ClockBeyondEpsilon => {
                "clock bumps and strobes of 3-10 x epsilon on one node (beyond TrueTime's \
                 uncertainty; not in `all`); reset"
            }
            FaultKind::Crash => {
                "kill any subset of nodes, up to all, and restart them 5-400 ms later (not in \
                 `all`)"
            }
            FaultKind::LeaderChurn => {
                "isolate whichever node is leader, each cut replacing the last (not in `all`)"
            }
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
        FaultKind::EVERY
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::EVERY.iter().map(|k| k.name()).collect();
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
    /// Largest clock skew the `clock` nemesis gives a node, in ms: its bumps, strobes and
    /// drift are chosen so that each node's total skew stays within it until the heal.
    pub clock_max_ms: i64,
    /// TrueTime's uncertainty ε in ms: `clock-beyond-epsilon` skews by 3 to 10 times it.
    pub epsilon_ms: f64,
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
    /// Each skewed node's clock as the schedule leaves it (to bound the `clock` nemesis).
    clocks: BTreeMap<String, ClockModel>,
    /// The node `clock-beyond-epsilon` skewed, until it resets the clocks.
    beyond_epsilon: Option<String>,
    link_fault: Option<Fault>,
}

/// A node's skew as the faults so far make it (the same arithmetic as the runtimes' clocks):
/// an offset, a drift since a point in time, and a strobe that adds `delta` until `until`.
#[derive(Debug, Clone, Copy, Default)]
struct ClockModel {
    offset_ns: i64,
    drift_ppm: i64,
    drift_since_ns: u64,
    strobe: Option<(i64, u64)>,
}

impl ClockModel {
    /// The skew without the strobe at time `t`.
    fn base_at(&self, t: u64) -> i64 {
        let elapsed = t.saturating_sub(self.drift_since_ns) as i128;
        self.offset_ns + (elapsed * self.drift_ppm as i128 / 1_000_000) as i64
    }

    /// The points in `[now, end]` where the skew must be checked (it is linear between them):
    /// `(time, skew added on top of the base)`.
    fn checkpoints(&self, now: u64, end: u64) -> Vec<(u64, i64)> {
        let mut points = vec![(now, 0), (end.max(now), 0)];
        if let Some((delta, until)) = self.strobe
            && until > now
        {
            points.push((now, delta));
            points.push((until.min(end).max(now), delta));
        }
        points
    }

    /// The range of offset changes that keeps the skew within `bound` at every checkpoint.
    fn bump_range(&self, now: u64, end: u64, bound: i64) -> (i64, i64) {
        let mut range = (-bound, bound);
        for (t, extra) in self.checkpoints(now, end) {
            let v = self.base_at(t) + extra;
            range = (range.0.max(-bound - v), range.1.min(bound - v));
        }
        range
    }

    /// The range of drift rates (ppm, from `now`) that keeps the skew within `bound`.
    fn drift_range(&self, now: u64, end: u64, bound: i64) -> (i64, i64) {
        let start = self.base_at(now);
        let mut range = (i64::MIN, i64::MAX);
        for (t, extra) in self.checkpoints(now, end) {
            let span = t.saturating_sub(now) as i128;
            if span == 0 {
                continue;
            }
            let v = (start + extra) as i128;
            let lo = (-(bound as i128) - v) * 1_000_000 / span;
            let hi = (bound as i128 - v) * 1_000_000 / span;
            range = (range.0.max(lo as i64), range.1.min(hi as i64));
        }
        range
    }

    /// The range of strobe deltas that keeps the skew within `bound` during `[now, until]`.
    fn strobe_range(&self, now: u64, until: u64, bound: i64) -> (i64, i64) {
        let mut range = (-bound, bound);
        for t in [now, until] {
            let v = self.base_at(t);
            range = (range.0.max(-bound - v), range.1.min(bound - v));
        }
        range
    }

    fn bump(&mut self, delta_ns: i64) {
        self.offset_ns += delta_ns;
    }

    fn set_drift(&mut self, now: u64, ppm: i64) {
        self.offset_ns = self.base_at(now);
        self.drift_ppm = ppm;
        self.drift_since_ns = now;
    }
}

/// `value` moved into `[lo, hi]`; 0 (no change) when the range is empty, which happens only
/// when another nemesis already pushed the skew past the bound.
fn clamp_or_zero(value: i64, (lo, hi): (i64, i64)) -> i64 {
    if lo > hi { 0 } else { value.clamp(lo, hi) }
}

/// A nanosecond range in whole milliseconds inside it.
fn ms_range((lo, hi): (i64, i64)) -> (i64, i64) {
    const MS: i64 = 1_000_000;
    (
        lo.div_euclid(MS) + i64::from(lo.rem_euclid(MS) != 0),
        hi.div_euclid(MS),
    )
}

impl Schedule {
    /// Generates a schedule from the nemesis RNG stream.
    pub fn generate(opts: &ScheduleOptions, rng: &mut ChaCha8Rng) -> Schedule {
        let mut faults = Vec::new();
        let mut active = Active::default();
        // Crash restarts come after their kills, out of generation order: sorted in below.
        let mut crash_restarts = Vec::new();
        let mut crashed_until = 0;
        if !opts.kinds.is_empty() && opts.interval_ns > 0 && !opts.nodes.is_empty() {
            let mut t = jittered(opts.interval_ns, rng);
            while t < opts.duration_ns {
                let kind = *opts.kinds.choose(rng).unwrap_or(&FaultKind::Partition);
                if kind == FaultKind::Crash {
                    if t >= crashed_until
                        && let Some((kill, restart)) = crash_cycle(opts, t, &active, rng)
                    {
                        crashed_until = restart.at_ns;
                        faults.push(kill);
                        crash_restarts.push(restart);
                    }
                } else if let Some(fault) = next_fault(kind, opts, t, &mut active, rng) {
                    faults.push(TimedFault { at_ns: t, fault });
                }
                t += jittered(opts.interval_ns, rng);
            }
        }
        faults.extend(crash_restarts);
        faults.sort_by_key(|f| f.at_ns); // stable: simultaneous faults keep their order
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

/// A kill of a random subset of the nodes that are up (any size, up to all of them) at `t`,
/// and their restart 5–400 ms later (before the heal).
fn crash_cycle(
    opts: &ScheduleOptions,
    t: u64,
    active: &Active,
    rng: &mut ChaCha8Rng,
) -> Option<(TimedFault, TimedFault)> {
    let up: Vec<String> = opts
        .nodes
        .iter()
        .filter(|n| !active.killed.contains(*n) && !active.paused.contains(*n))
        .cloned()
        .collect();
    if up.is_empty() {
        return None;
    }
    // Half the cycles kill the current leader(s), as Jepsen's `:primaries` target does: leader
    // changes in the middle of replication are where consensus bugs live.
    let nodes: Vec<String> = if rng.random_bool(0.5) {
        vec![crate::fault::PRIMARY.to_string()]
    } else {
        let count = rng.random_range(1..=up.len());
        let mut chosen: Vec<String> = up.sample(rng, count).cloned().collect();
        chosen.sort();
        chosen
    };
    let restart_at = (t + rng.random_range(5_000_000..=400_000_000)).min(opts.duration_ns);
    Some((
        TimedFault {
            at_ns: t,
            fault: Fault::Kill { nodes },
        },
        TimedFault {
            at_ns: restart_at,
            // Restarting leaves running nodes alone, so naming every node restarts exactly the
            // ones this cycle (or a resolved `primary`) took down.
            fault: Fault::Restart {
                nodes: opts.nodes.clone(),
            },
        },
    ))
}

fn next_fault(
    kind: FaultKind,
    opts: &ScheduleOptions,
    now: u64,
    active: &mut Active,
    rng: &mut ChaCha8Rng,
) -> Option<Fault> {
    let nodes = &opts.nodes;
    match kind {
        // Crash cycles come in kill/restart pairs: see `crash_cycle`.
        FaultKind::Crash => None,
        FaultKind::LeaderChurn => {
            if active.partitioned && rng.random_bool(0.3) {
                active.partitioned = false;
                return Some(Fault::StopPartition);
            }
            active.partitioned = true;
            Some(Fault::StartPartition {
                shape: partition::ISOLATE_PRIMARY.to_string(),
                grudge: Default::default(),
            })
        }
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
                active.clocks.clear();
                active.beyond_epsilon = None;
                return Some(Fault::ClockReset {
                    nodes: nodes.clone(),
                });
            }
            active.clocks_skewed = true;
            let node = nodes.choose(rng)?.clone();
            let max = opts.clock_max_ms.max(1);
            let delta_ms = rng.random_range(-max..=max);
            // Skews add up (bumps on bumps, drift over time): each choice is clamped so that
            // the node's skew stays within the bound until the heal resets it.
            let bound = max.saturating_mul(1_000_000);
            let end = opts.duration_ns;
            let clock = active.clocks.entry(node.clone()).or_default();
            Some(match rng.random_range(0..3) {
                0 => {
                    let range = ms_range(clock.bump_range(now, end, bound));
                    let delta_ms = clamp_or_zero(delta_ms, range);
                    clock.bump(delta_ms * 1_000_000);
                    Fault::ClockBump { node, delta_ms }
                }
                1 => {
                    let period_ms = rng.random_range(5..=50);
                    let duration_ms: u64 = rng.random_range(500..=3000);
                    let until = now + duration_ms * 1_000_000;
                    let range = ms_range(clock.strobe_range(now, until.min(end), bound));
                    let delta_ms = clamp_or_zero(delta_ms, range);
                    clock.strobe = Some((delta_ms * 1_000_000, until));
                    Fault::ClockStrobe {
                        node,
                        delta_ms,
                        period_ms,
                        duration_ms,
                    }
                }
                _ => {
                    let ppm = rng.random_range(-50_000..=50_000);
                    let ppm = clamp_or_zero(ppm, clock.drift_range(now, end, bound));
                    clock.set_drift(now, ppm);
                    Fault::ClockDrift { node, ppm }
                }
            })
        }
        FaultKind::ClockBeyondEpsilon => {
            if active.beyond_epsilon.take().is_some() {
                active.clocks_skewed = false;
                active.clocks.clear();
                return Some(Fault::ClockReset {
                    nodes: nodes.clone(),
                });
            }
            let node = nodes.choose(rng)?.clone();
            let epsilon_ms = opts.epsilon_ms.max(1.0);
            let magnitude = (rng.random_range(3.0..=10.0) * epsilon_ms).round() as i64;
            let delta_ms = if rng.random_bool(0.5) {
                magnitude
            } else {
                -magnitude
            };
            active.beyond_epsilon = Some(node.clone());
            active.clocks_skewed = true;
            let clock = active.clocks.entry(node.clone()).or_default();
            Some(if rng.random_bool(0.5) {
                clock.bump(delta_ms * 1_000_000);
                Fault::ClockBump { node, delta_ms }
            } else {
                let duration_ms: u64 = rng.random_range(1000..=4000);
                clock.strobe = Some((delta_ms * 1_000_000, now + duration_ms * 1_000_000));
                Fault::ClockStrobe {
                    node,
                    delta_ms,
                    period_ms: rng.random_range(5..=50),
                    duration_ms,
                }
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
            epsilon_ms: 7.0,
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

    /// Replays a schedule's clock faults on one node the way the runtimes do (offset, drift
    /// folded in on change, one strobe at a time) and returns the largest |skew| seen.
    fn largest_skew_ns(s: &Schedule, node: &str, end: u64) -> i64 {
        let (mut offset, mut ppm, mut since) = (0i64, 0i64, 0u64);
        let mut strobe: Option<(i64, u64, u64)> = None;
        let drift =
            |t: u64, ppm: i64, since: u64| ((t - since) as i128 * ppm as i128 / 1_000_000) as i64;
        let mut worst = 0i64;
        let mut faults = s.faults.iter().peekable();
        let mut t = 0;
        while t <= end {
            while let Some(f) = faults.next_if(|f| f.at_ns <= t) {
                match &f.fault {
                    Fault::ClockBump { node: n, delta_ms } if n == node => {
                        offset += delta_ms * 1_000_000
                    }
                    Fault::ClockDrift { node: n, ppm: p } if n == node => {
                        offset += drift(f.at_ns, ppm, since);
                        ppm = *p;
                        since = f.at_ns;
                    }
                    Fault::ClockStrobe {
                        node: n,
                        delta_ms,
                        duration_ms,
                        ..
                    } if n == node => {
                        strobe = Some((
                            delta_ms * 1_000_000,
                            f.at_ns,
                            f.at_ns + duration_ms * 1_000_000,
                        ))
                    }
                    Fault::ClockReset { nodes } if nodes.iter().any(|n| n == node) => {
                        (offset, ppm, since, strobe) = (0, 0, f.at_ns, None);
                    }
                    _ => {}
                }
            }
            let base = offset + drift(t, ppm, since);
            let strobed = strobe
                .filter(|(_, from, until)| t >= *from && t < *until)
                .map_or(0, |(d, _, _)| d);
            worst = worst.max(base.abs()).max((base + strobed).abs());
            t += 10_000_000;
        }
        worst
    }

    #[test]
    fn the_clock_nemesis_keeps_every_skew_within_its_bound() {
        let mut o = opts(vec![FaultKind::Clock]);
        o.clock_max_ms = 6;
        o.interval_ns = 500_000_000;
        let mut kinds = BTreeSet::new();
        for seed in 0..30 {
            let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(seed));
            kinds.extend(s.fault_names());
            for node in &o.nodes {
                let worst = largest_skew_ns(&s, node, o.duration_ns);
                assert!(
                    worst <= 6_000_000,
                    "seed {seed}: {node} skewed by {worst} ns"
                );
            }
        }
        for name in ["clock-bump", "clock-strobe", "clock-drift", "clock-reset"] {
            assert!(kinds.contains(name), "no {name}");
        }
    }

    #[test]
    fn clock_beyond_epsilon_skews_one_node_by_several_epsilons() {
        let mut o = opts(vec![FaultKind::ClockBeyondEpsilon]);
        o.epsilon_ms = 7.0;
        let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(5));
        let skews: Vec<&Fault> = s
            .faults
            .iter()
            .map(|f| &f.fault)
            .filter(|f| matches!(f, Fault::ClockBump { .. } | Fault::ClockStrobe { .. }))
            .collect();
        assert!(!skews.is_empty());
        for f in skews {
            let (Fault::ClockBump { delta_ms, .. } | Fault::ClockStrobe { delta_ms, .. }) = f
            else {
                unreachable!()
            };
            assert!((21..=70).contains(&delta_ms.abs()), "{f:?}");
        }
        assert!(s.fault_names().contains("clock-reset"));
        assert_eq!(
            FaultKind::parse_list("clock-beyond-epsilon").unwrap(),
            vec![FaultKind::ClockBeyondEpsilon]
        );
        assert!(
            !FaultKind::parse_list("all")
                .unwrap()
                .contains(&FaultKind::ClockBeyondEpsilon)
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

    #[test]
    fn crash_cycles_restart_within_400_ms_and_sometimes_target_the_primary() {
        let mut o = opts(vec![FaultKind::Crash]);
        o.interval_ns = 300_000_000;
        let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(5));
        assert!(
            s.faults.windows(2).all(|w| w[0].at_ns <= w[1].at_ns),
            "sorted"
        );
        let kills: Vec<&TimedFault> = s
            .faults
            .iter()
            .filter(|f| matches!(f.fault, Fault::Kill { .. }))
            .collect();
        assert!(kills.len() > 50);
        for k in &kills {
            let restart = s
                .faults
                .iter()
                .find(|f| f.at_ns > k.at_ns && matches!(f.fault, Fault::Restart { .. }));
            let restart = restart.expect("every crash is followed by a restart");
            assert!(restart.at_ns - k.at_ns <= 400_000_000);
        }
        let primary = kills.iter().filter(|k| {
            matches!(&k.fault, Fault::Kill { nodes } if nodes == &vec![crate::fault::PRIMARY.to_string()])
        });
        assert!(
            primary.count() > 10,
            "about half the cycles target the leader"
        );
        let whole_cluster = kills
            .iter()
            .filter(|k| matches!(&k.fault, Fault::Kill { nodes } if nodes.len() == 5));
        assert!(
            whole_cluster.count() > 0,
            "some cycles take the whole cluster down"
        );
    }

    #[test]
    fn leader_churn_isolates_the_primary_again_and_again_with_heals_between() {
        let mut o = opts(vec![FaultKind::LeaderChurn]);
        o.interval_ns = 300_000_000;
        let s = Schedule::generate(&o, &mut ChaCha8Rng::seed_from_u64(9));
        let before_heal = &s.faults[..s.faults.len() - heal(&o.nodes).len()];
        let isolations = before_heal
            .iter()
            .filter(|f| {
                matches!(&f.fault, Fault::StartPartition { shape, grudge }
                    if shape == crate::partition::ISOLATE_PRIMARY && grudge.is_empty())
            })
            .count();
        let heals = before_heal
            .iter()
            .filter(|f| f.fault == Fault::StopPartition)
            .count();
        assert_eq!(isolations + heals, before_heal.len());
        assert!(
            isolations > 3 * heals && heals > 5,
            "{isolations} / {heals}"
        );
        assert!(!FaultKind::ALL.contains(&FaultKind::LeaderChurn));
    }
}
