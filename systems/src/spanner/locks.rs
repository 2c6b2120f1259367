//! A shard leader's lock table: shared (read) and exclusive (write) locks per key.
//!
//! The table only records who holds what; the leader decides, by wound-wait, whether a
//! requester wounds the holders in its way (it is older) or waits for them (it is younger).
//! Locks live in the leader's memory: a new leader starts with the locks its log's prepare
//! records imply, and every other transaction finds its locks gone when it tries to prepare.

use super::machine::TxnId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Shared,
    Exclusive,
}

#[derive(Debug, Default)]
struct KeyLocks {
    shared: BTreeSet<TxnId>,
    exclusive: Option<TxnId>,
}

#[derive(Debug, Default)]
pub struct LockTable {
    keys: BTreeMap<String, KeyLocks>,
    /// Per transaction: the keys it holds, with the strongest mode.
    held: BTreeMap<TxnId, BTreeMap<String, Mode>>,
}

impl LockTable {
    /// The other transactions whose locks on `key` keep `txn` from taking it in `mode`.
    pub fn conflicts(&self, txn: TxnId, key: &str, mode: Mode) -> Vec<TxnId> {
        let Some(locks) = self.keys.get(key) else {
            return Vec::new();
        };
        let mut out: Vec<TxnId> = locks
            .exclusive
            .iter()
            .copied()
            .filter(|h| *h != txn)
            .collect();
        if mode == Mode::Exclusive {
            out.extend(locks.shared.iter().copied().filter(|h| *h != txn));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Records `txn` holding `key` in `mode` (the caller checked there is no conflict).
    pub fn grant(&mut self, txn: TxnId, key: &str, mode: Mode) {
        let locks = self.keys.entry(key.to_string()).or_default();
        match mode {
            Mode::Shared => {
                locks.shared.insert(txn);
            }
            Mode::Exclusive => locks.exclusive = Some(txn),
        }
        let held = self.held.entry(txn).or_default();
        let entry = held.entry(key.to_string()).or_insert(mode);
        *entry = (*entry).max(mode);
    }

    /// Whether `txn` holds `key` in `mode` or stronger.
    pub fn holds(&self, txn: TxnId, key: &str, mode: Mode) -> bool {
        self.held
            .get(&txn)
            .and_then(|h| h.get(key))
            .is_some_and(|m| *m >= mode)
    }

    /// Releases everything `txn` holds.
    pub fn release_all(&mut self, txn: TxnId) {
        let Some(held) = self.held.remove(&txn) else {
            return;
        };
        for key in held.keys() {
            if let Some(locks) = self.keys.get_mut(key) {
                locks.shared.remove(&txn);
                if locks.exclusive == Some(txn) {
                    locks.exclusive = None;
                }
                if locks.shared.is_empty() && locks.exclusive.is_none() {
                    self.keys.remove(key);
                }
            }
        }
    }

    /// How many keys are locked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TxnId = TxnId(0, 1, 1);
    const B: TxnId = TxnId(0, 1, 2);

    #[test]
    fn shared_locks_share_and_exclusive_ones_do_not() {
        let mut t = LockTable::default();
        t.grant(A, "x", Mode::Shared);
        assert!(t.conflicts(B, "x", Mode::Shared).is_empty());
        t.grant(B, "x", Mode::Shared);
        assert_eq!(t.conflicts(A, "x", Mode::Exclusive), vec![B]);
        assert!(t.conflicts(A, "y", Mode::Exclusive).is_empty());
        t.release_all(B);
        assert!(t.conflicts(A, "x", Mode::Exclusive).is_empty(), "upgrade");
        t.grant(A, "x", Mode::Exclusive);
        assert!(t.holds(A, "x", Mode::Shared));
        assert_eq!(t.conflicts(B, "x", Mode::Shared), vec![A]);
        t.release_all(A);
        assert!(t.is_empty());
        assert!(!t.holds(A, "x", Mode::Shared));
    }
}
