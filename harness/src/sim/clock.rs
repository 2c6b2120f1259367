//! A node's wall clock in the simulator: true time plus offset, drift and strobe.

/// The simulated epoch: wall clocks read real-looking nanoseconds since 1970.
pub const EPOCH_NS: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

#[derive(Debug, Clone, Default)]
pub struct NodeClock {
    offset_ns: i64,
    drift_ppm: i64,
    /// Virtual time at which the current drift rate started.
    drift_since_ns: u64,
    strobe: Option<Strobe>,
}

#[derive(Debug, Clone)]
struct Strobe {
    delta_ns: i64,
    period_ns: u64,
    from_ns: u64,
    until_ns: u64,
}

impl NodeClock {
    /// The node's wall clock at virtual time `now`.
    pub fn wall_ns(&self, now: u64) -> i64 {
        let mut t = EPOCH_NS + now as i64 + self.offset_ns + self.drift_ns(now);
        if let Some(s) = &self.strobe
            && now >= s.from_ns
            && now < s.until_ns
            && ((now - s.from_ns) / s.period_ns.max(1)) % 2 == 1
        {
            t += s.delta_ns;
        }
        t
    }

    fn drift_ns(&self, now: u64) -> i64 {
        let elapsed = now.saturating_sub(self.drift_since_ns) as i128;
        (elapsed * self.drift_ppm as i128 / 1_000_000) as i64
    }

    pub fn bump(&mut self, delta_ns: i64) {
        self.offset_ns += delta_ns;
    }

    pub fn set_drift(&mut self, now: u64, ppm: i64) {
        // Fold the drift so far into the offset, so the clock does not jump.
        self.offset_ns += self.drift_ns(now);
        self.drift_ppm = ppm;
        self.drift_since_ns = now;
    }

    pub fn strobe(&mut self, now: u64, delta_ns: i64, period_ns: u64, duration_ns: u64) {
        self.strobe = Some(Strobe {
            delta_ns,
            period_ns,
            from_ns: now,
            until_ns: now + duration_ns,
        });
    }

    pub fn reset(&mut self) {
        *self = NodeClock::default();
    }

    /// How far the clock is from true time at `now`.
    pub fn skew_ns(&self, now: u64) -> i64 {
        self.wall_ns(now) - EPOCH_NS - now as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_drift_strobe_and_reset() {
        let mut c = NodeClock::default();
        assert_eq!(c.skew_ns(5), 0);
        c.bump(-3_000_000);
        assert_eq!(c.skew_ns(10), -3_000_000);
        c.set_drift(1_000_000_000, 1000); // 1000 ppm = 1 ms per second
        assert_eq!(c.skew_ns(2_000_000_000), -2_000_000);
        c.set_drift(2_000_000_000, 0);
        assert_eq!(
            c.skew_ns(9_000_000_000),
            -2_000_000,
            "drift folds into the offset"
        );
        c.strobe(10_000_000_000, 7_000_000, 1_000_000, 10_000_000);
        assert_eq!(c.skew_ns(10_000_500_000), -2_000_000);
        assert_eq!(c.skew_ns(10_001_500_000), 5_000_000);
        assert_eq!(c.skew_ns(10_020_000_000), -2_000_000, "the strobe ends");
        c.reset();
        assert_eq!(c.skew_ns(11_000_000_000), 0);
    }
}
