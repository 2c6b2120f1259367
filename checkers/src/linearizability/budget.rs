//! The memory budget shared by all keys' searches: estimated bytes, reserved before allocating.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const FALLBACK_LIMIT: u64 = 4 << 30;

/// Half of the memory the kernel says is available (so the checker is never OOM-killed), or
/// 4 GiB when /proc/meminfo cannot be read.
pub fn default_memory_limit() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(FALLBACK_LIMIT, |kib| kib * 1024 / 2)
}

/// A limit and the bytes reserved against it by every search of one check.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes held by one owner against a [`MemoryBudget`]; returned when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(budget: &Arc<MemoryBudget>) -> Self {
        Reservation {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    /// Makes the reservation `bytes` in total; `false` (and no change) when the budget would be
    /// exceeded.
    pub(crate) fn resize(&mut self, bytes: u64) -> bool {
        if bytes > self.bytes {
            if !self.budget.try_take(bytes - self.bytes) {
                return false;
            }
        } else {
            self.budget.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_limit_and_return_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut a = Reservation::new(&budget);
        let mut b = Reservation::new(&budget);
        assert!(a.resize(60));
        assert!(!b.resize(50));
        assert_eq!(b.bytes(), 0);
        assert!(b.resize(40));
        assert!(a.resize(10));
        assert!(b.resize(90));
        drop(a);
        drop(b);
        let mut c = Reservation::new(&budget);
        assert!(c.resize(100));
    }

    #[test]
    fn default_limit_is_positive() {
        assert!(default_memory_limit() > 0);
    }
}
