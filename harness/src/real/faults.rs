//! The nemesis in real mode: each [`Fault`] of the schedule carried out on real processes and the
//! relay. Partitions and link faults change the relay's [`Network`](crate::sim::network::Network)
//! exactly as the simulator changes its own; kill / restart / pause / resume go to the
//! supervisor; clock faults become `/admin/clock` calls, with strobes emulated by toggling the
//! offset every period.

use super::monotonic_ns;
use super::relay::Relay;
use super::supervisor::Supervisor;
use nemesis::Fault;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MS: f64 = 1_000_000.0;

/// What the harness wants a node's clock to be, in the run's monotonic time.
#[derive(Debug, Clone, Copy, Default)]
struct ClockModel {
    offset_ns: i64,
    drift_ppm: i64,
    drift_since_ns: u64,
    /// Added while a strobe is in its "on" half-period.
    strobe_ns: i64,
}

impl ClockModel {
    /// Offset plus the drift accumulated so far (the strobe excluded).
    fn base_skew(&self, now: u64) -> i64 {
        let elapsed = now.saturating_sub(self.drift_since_ns) as i128;
        self.offset_ns + (elapsed * self.drift_ppm as i128 / 1_000_000) as i64
    }

    /// Folds the drift so far into the offset, so that a new rate does not make the clock jump.
    fn fold(&mut self, now: u64) {
        self.offset_ns = self.base_skew(now);
        self.drift_since_ns = now;
    }
}

struct NodeClock {
    model: Mutex<ClockModel>,
    /// Serializes pushes to the node, so the last one to land carries the newest model.
    push: tokio::sync::Mutex<()>,
    /// Bumped to stop a running strobe.
    strobe_generation: AtomicU64,
}

/// Applies faults; cheap to clone into tasks.
#[derive(Clone)]
pub struct FaultApplier {
    supervisor: Arc<Supervisor>,
    relay: Relay,
    ids: Vec<String>,
    clocks: Arc<Vec<NodeClock>>,
    epoch_mono_ns: u64,
    errors: Arc<Mutex<Vec<String>>>,
    /// Faults in force, for the progress display.
    active: Arc<Mutex<ActiveFaults>>,
}

/// What is in force right now, for the progress display.
#[derive(Debug, Clone, Default)]
pub struct ActiveFaults {
    pub partition: Option<String>,
    pub killed: BTreeSet<String>,
    pub paused: BTreeSet<String>,
    pub skewed_clocks: BTreeSet<String>,
    pub link: Option<String>,
}

impl ActiveFaults {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.partition {
            parts.push(format!("partition {p}"));
        }
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        if !self.killed.is_empty() {
            parts.push(format!("killed {}", list(&self.killed)));
        }
        if !self.paused.is_empty() {
            parts.push(format!("paused {}", list(&self.paused)));
        }
        if !self.skewed_clocks.is_empty() {
            parts.push(format!("clock {}", list(&self.skewed_clocks)));
        }
        if let Some(l) = &self.link {
            parts.push(l.clone());
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join("; ")
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultApplier {
    pub fn new(supervisor: Arc<Supervisor>, relay: Relay, epoch_mono_ns: u64) -> Self {
        let ids: Vec<String> = supervisor.specs().iter().map(|s| s.id.clone()).collect();
        let clocks = ids
            .iter()
            .map(|_| NodeClock {
                model: Mutex::new(ClockModel::default()),
                push: tokio::sync::Mutex::new(()),
                strobe_generation: AtomicU64::new(0),
            })
            .collect();
        FaultApplier {
            supervisor,
            relay,
            ids,
            clocks: Arc::new(clocks),
            epoch_mono_ns,
            errors: Arc::new(Mutex::new(Vec::new())),
            active: Arc::new(Mutex::new(ActiveFaults::default())),
        }
    }

    fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.epoch_mono_ns)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }

    fn indices(&self, ids: &[String]) -> Vec<usize> {
        ids.iter().filter_map(|id| self.index(id)).collect()
    }

    /// Problems met while applying faults (a restart that failed, ...).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }

    pub fn active(&self) -> ActiveFaults {
        lock(&self.active).clone()
    }

    fn error(&self, text: String) {
        self.relay.log(&format!("nemesis error: {text}"));
        lock(&self.errors).push(text);
    }

    /// The running nodes whose state says they lead.
    async fn primaries(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, id) in self.ids.iter().enumerate() {
            if !self.supervisor.is_running(i) {
                continue;
            }
            let state = self.supervisor.state(i).await;
            if state
                .as_ref()
                .and_then(|s| s.get("role"))
                .and_then(|r| r.as_str())
                == Some("leader")
            {
                out.push(id.clone());
            }
        }
        out
    }

    /// Carries out one fault; returns once it is in force, with what was done (the symbolic
    /// `primary` target replaced by the nodes that led at that moment).
    pub async fn apply(&self, fault: &Fault) -> Fault {
        let fault = if fault.targets_primary() {
            fault.resolve_primary(&self.primaries().await, &self.ids)
        } else {
            fault.clone()
        };
        self.apply_resolved(&fault).await;
        fault
    }

    async fn apply_resolved(&self, fault: &Fault) {
        self.relay.log(&format!(
            "nemesis {} {}",
            fault.name(),
            fault.history_value()
        ));
        match fault {
            Fault::StartPartition { shape, grudge } => {
                let mut cut = vec![BTreeSet::new(); self.ids.len()];
                for (dest, srcs) in grudge {
                    if let Some(d) = self.index(dest) {
                        cut[d] = srcs.iter().filter_map(|s| self.index(s)).collect();
                    }
                }
                self.relay.links().net.set_cut(cut);
                lock(&self.active).partition = Some(shape.clone());
            }
            Fault::StopPartition => {
                self.relay.links().net.heal();
                lock(&self.active).partition = None;
            }
            Fault::Kill { nodes } => {
                for i in self.indices(nodes) {
                    self.supervisor.kill(i);
                    lock(&self.active).killed.insert(self.ids[i].clone());
                }
            }
            Fault::Restart { nodes } => {
                for i in self.indices(nodes) {
                    if self.supervisor.is_running(i) {
                        continue; // a running node is left alone
                    }
                    match self.supervisor.start(i).await {
                        Ok(()) => {
                            lock(&self.active).killed.remove(&self.ids[i]);
                            // The clock belongs to the machine, not the process: keep its skew.
                            self.push_clock(i).await;
                        }
                        Err(e) => self.error(format!("restarting {}: {e}", self.ids[i])),
                    }
                }
            }
            Fault::Pause { nodes } => {
                for i in self.indices(nodes) {
                    if self.supervisor.pause(i) {
                        lock(&self.active).paused.insert(self.ids[i].clone());
                    }
                }
            }
            Fault::Resume { nodes } => {
                for i in self.indices(nodes) {
                    self.supervisor.resume(i);
                    lock(&self.active).paused.remove(&self.ids[i]);
                    // A clock change sent while it was frozen may not have landed.
                    self.spawn_push(i);
                }
            }
            Fault::ClockBump { node, delta_ms } => {
                if let Some(i) = self.index(node) {
                    let now = self.now();
                    {
                        let mut m = lock(&self.clocks[i].model);
                        m.fold(now);
                        m.offset_ns += delta_ms * 1_000_000;
                    }
                    lock(&self.active).skewed_clocks.insert(node.clone());
                    self.spawn_push(i);
                }
            }
            Fault::ClockDrift { node, ppm } => {
                if let Some(i) = self.index(node) {
                    let now = self.now();
                    {
                        let mut m = lock(&self.clocks[i].model);
                        m.fold(now);
                        m.drift_ppm = *ppm;
                    }
                    lock(&self.active).skewed_clocks.insert(node.clone());
                    self.spawn_push(i);
                }
            }
            Fault::ClockStrobe {
                node,
                delta_ms,
                period_ms,
                duration_ms,
            } => {
                if let Some(i) = self.index(node) {
                    lock(&self.active).skewed_clocks.insert(node.clone());
                    self.spawn_strobe(i, delta_ms * 1_000_000, *period_ms, *duration_ms);
                }
            }
            Fault::ClockReset { nodes } => {
                for i in self.indices(nodes) {
                    self.clocks[i]
                        .strobe_generation
                        .fetch_add(1, Ordering::SeqCst);
                    *lock(&self.clocks[i].model) = ClockModel::default();
                    lock(&self.active).skewed_clocks.remove(&self.ids[i]);
                    self.spawn_push(i);
                }
            }
            Fault::StartLoss { probability } => {
                self.relay.links().net.loss = *probability;
                lock(&self.active).link = Some(format!("loss {probability:.2}"));
            }
            Fault::StopLoss => {
                let mut links = self.relay.links();
                links.net.loss = links.net.base_loss;
                self.clear_link("loss");
            }
            Fault::StartLatency { extra_ms } => {
                self.relay.links().net.extra_latency_ns = extra_ms * MS;
                lock(&self.active).link = Some(format!("latency +{extra_ms:.0} ms"));
            }
            Fault::StopLatency => {
                self.relay.links().net.extra_latency_ns = 0.0;
                self.clear_link("latency");
            }
            Fault::StartDuplication { probability } => {
                self.relay.links().net.duplication = *probability;
                lock(&self.active).link = Some(format!("duplication {probability:.2}"));
            }
            Fault::StopDuplication => {
                let mut links = self.relay.links();
                links.net.duplication = links.net.base_duplication;
                self.clear_link("duplication");
            }
        }
    }

    fn clear_link(&self, prefix: &str) {
        let mut active = lock(&self.active);
        if active
            .link
            .as_deref()
            .is_some_and(|l| l.starts_with(prefix))
        {
            active.link = None;
        }
    }

    /// Sends node `i` the clock the model says it has now. Pushes to one node are serialized,
    /// and the setting is computed after taking the turn, so the newest model wins.
    async fn push_clock(&self, i: usize) {
        let _turn = self.clocks[i].push.lock().await;
        let now = self.now();
        let (offset_ns, drift_ppm) = {
            let m = lock(&self.clocks[i].model);
            (m.base_skew(now) + m.strobe_ns, m.drift_ppm)
        };
        if !self.supervisor.set_clock(i, offset_ns, drift_ppm).await {
            // A killed node gets its clock again when it restarts; a paused one, when the
            // next change comes. Neither is an error.
            self.relay.log(&format!(
                "clock of {} not set now (killed or paused)",
                self.ids[i]
            ));
        }
    }

    /// Pushes without waiting: a paused node must not hold up the nemesis.
    fn spawn_push(&self, i: usize) {
        let this = self.clone();
        tokio::spawn(async move { this.push_clock(i).await });
    }

    /// Flips the clock between its base and base + delta every period, for the duration.
    fn spawn_strobe(&self, i: usize, delta_ns: i64, period_ms: u64, duration_ms: u64) {
        let generation = self.clocks[i]
            .strobe_generation
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        let this = self.clone();
        tokio::spawn(async move {
            let period = Duration::from_millis(period_ms.max(1));
            let flips = duration_ms / period_ms.max(1);
            let clock = &this.clocks[i];
            let start = tokio::time::Instant::now();
            for k in 1..=flips {
                tokio::time::sleep_until(start + period * k as u32).await;
                if clock.strobe_generation.load(Ordering::SeqCst) != generation {
                    return; // reset, or a newer strobe took over
                }
                lock(&clock.model).strobe_ns = if k % 2 == 1 { delta_ns } else { 0 };
                this.push_clock(i).await;
            }
            if clock.strobe_generation.load(Ordering::SeqCst) == generation {
                lock(&clock.model).strobe_ns = 0;
                this.push_clock(i).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_model_folds_drift_into_the_offset() {
        let mut m = ClockModel::default();
        m.fold(0);
        m.offset_ns += 5_000_000; // bump +5 ms
        assert_eq!(m.base_skew(1_000_000_000), 5_000_000);
        m.fold(1_000_000_000);
        m.drift_ppm = 1000; // 1 ms per second from t = 1 s
        assert_eq!(m.base_skew(3_000_000_000), 7_000_000);
        m.fold(3_000_000_000);
        m.drift_ppm = 0;
        assert_eq!(
            m.base_skew(9_000_000_000),
            7_000_000,
            "no jump, no more drift"
        );
    }

    #[test]
    fn active_faults_describe_themselves() {
        let mut a = ActiveFaults::default();
        assert_eq!(a.describe(), "none");
        a.partition = Some("isolate-one".into());
        a.killed.insert("n2".into());
        a.link = Some("loss 0.10".into());
        assert_eq!(a.describe(), "partition isolate-one; killed n2; loss 0.10");
    }
}
