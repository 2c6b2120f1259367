//! The simulated network: per-message latency, loss, duplication and directed grudges.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeSet;

/// The shape of per-message latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyDist {
    Constant,
    /// Uniform in `[0, 2 × mean]`.
    Uniform,
    Exponential,
}

impl std::str::FromStr for LatencyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(LatencyDist::Constant),
            "uniform" => Ok(LatencyDist::Uniform),
            "exponential" => Ok(LatencyDist::Exponential),
            _ => Err(format!(
                "unknown latency distribution {s:?}; known: constant, uniform, exponential"
            )),
        }
    }
}

/// What happens to one message sent on one link.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    Lost,
    /// Delivered after each of these delays (more than one when duplicated).
    Deliver(Vec<u64>),
}

#[derive(Debug, Clone)]
pub struct Network {
    pub dist: LatencyDist,
    pub mean_latency_ns: f64,
    pub extra_latency_ns: f64,
    pub loss: f64,
    pub duplication: f64,
    /// Baseline probabilities, restored when a link fault stops.
    pub base_loss: f64,
    pub base_duplication: f64,
    /// `cut[dest]` holds the sources `dest` does not hear from.
    cut: Vec<BTreeSet<usize>>,
}

impl Network {
    pub fn new(nodes: usize, dist: LatencyDist, mean_latency_ns: f64, loss: f64, dup: f64) -> Self {
        Network {
            dist,
            mean_latency_ns,
            extra_latency_ns: 0.0,
            loss,
            duplication: dup,
            base_loss: loss,
            base_duplication: dup,
            cut: vec![BTreeSet::new(); nodes],
        }
    }

    pub fn sample_latency(&self, rng: &mut ChaCha8Rng) -> u64 {
        let mean = self.mean_latency_ns + self.extra_latency_ns;
        let ns = match self.dist {
            LatencyDist::Constant => mean,
            LatencyDist::Uniform => rng.random_range(0.0..=2.0 * mean.max(0.0)),
            LatencyDist::Exponential => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                -mean * u.ln()
            }
        };
        ns.max(0.0) as u64
    }

    /// Decides at send time whether a message is lost and when its copies arrive.
    pub fn send(&self, rng: &mut ChaCha8Rng) -> Fate {
        if self.loss > 0.0 && rng.random_bool(self.loss.min(1.0)) {
            return Fate::Lost;
        }
        let mut delays = vec![self.sample_latency(rng)];
        if self.duplication > 0.0 && rng.random_bool(self.duplication.min(1.0)) {
            delays.push(self.sample_latency(rng));
        }
        Fate::Deliver(delays)
    }

    /// Whether `dest` hears `src` right now (checked at delivery time).
    pub fn connected(&self, src: usize, dest: usize) -> bool {
        !self.cut[dest].contains(&src)
    }

    pub fn set_cut(&mut self, cut: Vec<BTreeSet<usize>>) {
        self.cut = cut;
    }

    pub fn heal(&mut self) {
        for c in &mut self.cut {
            c.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grudges_are_directed() {
        let mut n = Network::new(3, LatencyDist::Constant, 1e6, 0.0, 0.0);
        let mut cut = vec![BTreeSet::new(); 3];
        cut[1].insert(0);
        n.set_cut(cut);
        assert!(!n.connected(0, 1));
        assert!(n.connected(1, 0));
        n.heal();
        assert!(n.connected(0, 1));
    }

    #[test]
    fn loss_and_duplication_rates_are_honoured() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = Network::new(2, LatencyDist::Exponential, 1e6, 0.25, 0.5);
        let (mut lost, mut dup, total) = (0, 0, 20_000);
        for _ in 0..total {
            match n.send(&mut rng) {
                Fate::Lost => lost += 1,
                Fate::Deliver(d) if d.len() == 2 => dup += 1,
                Fate::Deliver(_) => {}
            }
        }
        let lost_share = lost as f64 / total as f64;
        let dup_share = dup as f64 / (total - lost) as f64;
        assert!((lost_share - 0.25).abs() < 0.02, "lost {lost_share}");
        assert!((dup_share - 0.5).abs() < 0.02, "duplicated {dup_share}");
    }

    #[test]
    fn latency_distributions_have_the_configured_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for dist in [
            LatencyDist::Constant,
            LatencyDist::Uniform,
            LatencyDist::Exponential,
        ] {
            let n = Network::new(2, dist, 2e6, 0.0, 0.0);
            let mean = (0..20_000)
                .map(|_| n.sample_latency(&mut rng) as f64)
                .sum::<f64>()
                / 20_000.0;
            assert!((mean - 2e6).abs() < 0.05 * 2e6, "{dist:?} mean {mean}");
        }
    }
}
