//! Lowe's memo: the configurations (linearized set, model state) already explored.
//!
//! A configuration is stored as a 128-bit fingerprint: the xor of a random 128-bit key per
//! linearized operation (kept incrementally by the search, so no bitset is hashed per step) and a
//! random key derived from the state id. Two distinct configurations share a fingerprint only if
//! the keys of their symmetric difference xor to zero, which for random keys has probability
//! 2^-128 per pair: with a billion configurations the chance of any false match is below 10^-20,
//! so the fingerprint is not confirmed against a stored bitset — which would cost n bits per entry
//! instead of 16 bytes.

use super::budget::{MemoryBudget, Reservation};
use std::sync::Arc;

const ENTRY_BYTES: u64 = std::mem::size_of::<u128>() as u64;
const INITIAL_SLOTS: usize = 1 << 10;

/// splitmix64: a bijective mixer, used to derive independent-looking keys from small integers.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The random 128-bit key of operation `op` of a search (a pure function of `op`, so runs are
/// reproducible).
pub(crate) fn op_key(op: u32) -> u128 {
    let a = mix64(u64::from(op) ^ 0x6A09_E667_F3BC_C908);
    let b = mix64(a ^ 0xBB67_AE85_84CA_A73B);
    (u128::from(a) << 64) | u128::from(b)
}

/// The fingerprint of (the set whose key is `set_key`, state `state`).
#[inline]
pub(crate) fn fingerprint(set_key: u128, state: u32) -> u128 {
    let a = mix64(u64::from(state) ^ 0x3C6E_F372_FE94_F82B);
    let b = mix64(a ^ 0xA54F_F53A_5F1D_36F1);
    let fp = set_key ^ ((u128::from(a) << 64) | u128::from(b));
    // 0 marks an empty slot; moving one fingerprint to 1 changes nothing measurable.
    if fp == 0 { 1 } else { fp }
}

pub(crate) enum Insert {
    New,
    Seen,
    OutOfMemory,
}

/// An open-addressing (linear probing) set of fingerprints; its memory is reserved against the
/// budget before every growth.
pub(crate) struct Memo {
    slots: Vec<u128>,
    len: usize,
    reservation: Reservation,
}

impl Memo {
    pub(crate) fn new(budget: &Arc<MemoryBudget>) -> Self {
        Memo {
            slots: Vec::new(),
            len: 0,
            reservation: Reservation::new(budget),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.reservation.bytes()
    }

    #[inline]
    pub(crate) fn insert(&mut self, fp: u128) -> Insert {
        // Grow at 5/8 full: probes stay short while most inserts are of new fingerprints.
        if (self.len + 1) * 8 > self.slots.len() * 5 && !self.grow() {
            return Insert::OutOfMemory;
        }
        let mask = self.slots.len() - 1;
        let mut i = (fp as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == fp {
                return Insert::Seen;
            }
            if slot == 0 {
                self.slots[i] = fp;
                self.len += 1;
                return Insert::New;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) -> bool {
        let new_len = (self.slots.len() * 2).max(INITIAL_SLOTS);
        let old_bytes = self.slots.len() as u64 * ENTRY_BYTES;
        let new_bytes = new_len as u64 * ENTRY_BYTES;
        // Both tables are alive while rehashing.
        if !self.reservation.resize(old_bytes + new_bytes) {
            return false;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; new_len]);
        let mask = new_len - 1;
        for fp in old.into_iter().filter(|&fp| fp != 0) {
            let mut i = (fp as usize) & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = fp;
        }
        self.reservation.resize(new_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_reports_new_then_seen_across_growth() {
        let budget = MemoryBudget::new(u64::MAX);
        let mut memo = Memo::new(&budget);
        for i in 0..10_000u32 {
            assert!(matches!(
                memo.insert(fingerprint(op_key(i), i % 7)),
                Insert::New
            ));
        }
        for i in 0..10_000u32 {
            assert!(matches!(
                memo.insert(fingerprint(op_key(i), i % 7)),
                Insert::Seen
            ));
        }
        assert_eq!(memo.len(), 10_000);
        assert!(matches!(
            memo.insert(fingerprint(op_key(3), 4)),
            Insert::New
        ));
    }

    #[test]
    fn growth_stops_at_the_budget() {
        let budget = MemoryBudget::new(64 * 1024);
        let mut memo = Memo::new(&budget);
        let mut stopped = false;
        for i in 0..100_000u32 {
            if let Insert::OutOfMemory = memo.insert(fingerprint(op_key(i), 0)) {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert!(memo.bytes() <= 64 * 1024);
    }
}
