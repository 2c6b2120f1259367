//! List-append version orders: who appended each element, and, per key, the order of versions
//! that the reads reveal.
//!
//! Every committed read of a list is a prefix of the key's final state, so the longest read of a
//! key gives its version order: the states `[]`, `[e0]`, `[e0 e1]`, ... Every other read must be
//! a prefix of it (else the key has incompatible orders). Appends never observed came after every
//! observed element. Elements are compared as JSON values, and only the last element of each read
//! is looked up, so a read costs a slice comparison, not a hash per element.

use super::graph::{EdgeBuf, RW, WR, WW};
use super::history::{Atom, FastMap, KeyId, MopKind, Outcome, Txns, fast_map, input_error, show};
use crate::error::InputError;
use serde_json::Value;

/// Who appended an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append {
    pub txn: u32,
    pub mop: u32,
    /// The writer appended to the same key again later in the same transaction.
    pub intermediate: bool,
}

/// A read micro-operation of a committed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRef {
    pub txn: u32,
    pub mop: u32,
}

/// What the reads of one key reveal.
#[derive(Debug, Default)]
pub struct KeyOrder<'h> {
    /// The longest committed read (raw, duplicates and all): the version order.
    pub longest: &'h [Value],
    pub longest_read: Option<ReadRef>,
    /// Distinct elements of `longest`, in order: version `i` is the state ending with
    /// `versions[i]`.
    pub versions: Vec<&'h Value>,
    /// The writer of each version; `None` when nobody appended that element.
    pub version_writers: Vec<Option<Append>>,
    /// Position of each element in `versions`.
    pub positions: FastMap<Atom<'h>, u32>,
    /// `distinct_prefix[l]`: how many distinct elements `longest[..l]` holds.
    pub distinct_prefix: Vec<u32>,
    /// Raw positions in `longest` that repeat an earlier element.
    pub duplicate_at: Option<usize>,
    /// Every committed read of the key: which, the list read (kept here so later passes need not
    /// chase pointers through the transactions), and the version it observed.
    pub reads: Vec<(ReadRef, &'h [Value], Observed)>,
    /// Appends by transactions that may have committed, never observed by any read.
    pub unobserved: Vec<(u32, u32)>,
}

/// The version a read observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The initial, empty list.
    Initial,
    /// A prefix of the longest read: the state ending with `versions[i]`.
    Version(u32),
    /// Not a prefix of the longest read; its last element is at this version, when known.
    Incompatible(Option<u32>),
}

impl Observed {
    /// The version the read ended at, if it is in the order (`-1` for the initial state).
    pub fn position(self) -> Option<i64> {
        match self {
            Observed::Initial => Some(-1),
            Observed::Version(i) => Some(i64::from(i)),
            Observed::Incompatible(Some(i)) => Some(i64::from(i)),
            Observed::Incompatible(None) => None,
        }
    }
}

/// Everything the list-append checker knows about appends and reads.
pub struct ListIndex<'h> {
    pub keys: Vec<KeyOrder<'h>>,
    /// Every append of every transaction (committed, indeterminate or failed).
    pub writers: FastMap<(KeyId, Atom<'h>), Append>,
    /// Where each transaction's micro-operations start in `observed`.
    mop_base: Vec<u32>,
    /// Per micro-operation: for a committed list read, the version it observed.
    observed: Vec<Option<Observed>>,
}

impl<'h> ListIndex<'h> {
    /// Builds the index. Errors: a `w` micro-operation, a committed read that is not a list, or
    /// the same element appended twice to a key (the inference needs unique appends).
    pub fn build(txns: &Txns<'h>) -> Result<ListIndex<'h>, InputError> {
        let mut keys: Vec<KeyOrder<'h>> =
            (0..txns.keys.len()).map(|_| KeyOrder::default()).collect();
        let mut mop_base = Vec::with_capacity(txns.txns.len());
        let mut total_mops = 0u32;
        let mut appends = 0usize;
        for txn in &txns.txns {
            mop_base.push(total_mops);
            total_mops += txn.mops.len() as u32;
            appends += txn
                .mops
                .iter()
                .filter(|m| m.kind == MopKind::Append)
                .count();
        }
        let mut writers: FastMap<(KeyId, Atom<'h>), Append> = fast_map();
        writers.reserve(appends);
        let mut last_append_of_key: Vec<(KeyId, u32)> = Vec::new();
        for (t, txn) in txns.txns.iter().enumerate() {
            last_append_of_key.clear();
            for (m, mop) in txn.mops.iter().enumerate() {
                match mop.kind {
                    MopKind::Write => {
                        return Err(input_error(format!(
                            "op {}: micro-operation {m} is a `w`; the list-append checker \
                             expects only `r` and `append` (use rw-register for registers)",
                            txns.txn_index(t)
                        )));
                    }
                    MopKind::Append => {
                        match last_append_of_key.iter_mut().find(|(k, _)| *k == mop.key) {
                            Some(slot) => slot.1 = m as u32,
                            None => last_append_of_key.push((mop.key, m as u32)),
                        }
                    }
                    MopKind::Read => {
                        if txn.outcome != Outcome::Ok || mop.value.is_null() {
                            continue;
                        }
                        let Some(list) = mop.value.as_array() else {
                            return Err(input_error(format!(
                                "op {}: micro-operation {m} reads key {}: expected a list \
                                 (list-append), got {}",
                                txns.txn_index(t),
                                show(txns.key(mop.key)),
                                mop.value
                            )));
                        };
                        let key = &mut keys[mop.key as usize];
                        let read = ReadRef {
                            txn: t as u32,
                            mop: m as u32,
                        };
                        if key.longest_read.is_none() || list.len() > key.longest.len() {
                            key.longest = list;
                            key.longest_read = Some(read);
                        }
                        key.reads.push((read, list.as_slice(), Observed::Initial));
                    }
                }
            }
            for (m, mop) in txn.mops.iter().enumerate() {
                if mop.kind != MopKind::Append {
                    continue;
                }
                let last = last_append_of_key
                    .iter()
                    .find(|(k, _)| *k == mop.key)
                    .map_or(m as u32, |(_, l)| *l);
                let append = Append {
                    txn: t as u32,
                    mop: m as u32,
                    intermediate: (m as u32) < last,
                };
                if let Some(earlier) = writers.insert((mop.key, Atom::of(mop.value)), append) {
                    return Err(input_error(format!(
                        "op {}: appends {} to key {}, which op {} also appended; list-append \
                         checking needs every appended value to be unique per key",
                        txns.txn_index(t),
                        show(mop.value),
                        show(txns.key(mop.key)),
                        txns.txn_index(earlier.txn as usize)
                    )));
                }
            }
        }
        for_each_key_parallel(
            &mut keys,
            |key| key.reads.len() + key.longest.len(),
            |k, key| key.derive_versions(k as KeyId, &writers),
        );
        let mut observed = vec![None; total_mops as usize];
        for key in &keys {
            for &(read, _, seen) in &key.reads {
                observed[(mop_base[read.txn as usize] + read.mop) as usize] = Some(seen);
            }
        }
        // Appends that may have happened but were never read came after every observed element.
        for (t, txn) in txns.txns.iter().enumerate() {
            if txn.outcome == Outcome::Fail {
                continue;
            }
            for (m, mop) in txn.mops.iter().enumerate() {
                if mop.kind == MopKind::Append {
                    let key = &mut keys[mop.key as usize];
                    if !key.positions.contains_key(&Atom::of(mop.value)) {
                        key.unobserved.push((t as u32, m as u32));
                    }
                }
            }
        }
        Ok(ListIndex {
            keys,
            writers,
            mop_base,
            observed,
        })
    }

    /// The version a committed list read observed (`None` for other micro-operations).
    pub fn observed(&self, txn: u32, mop: u32) -> Option<Observed> {
        self.observed[(self.mop_base[txn as usize] + mop) as usize]
    }

    /// The writer of the element at raw position `i` of a key's longest read, without hashing
    /// when it is the element's first occurrence.
    pub fn longest_writer(&self, key: KeyId, i: usize) -> Option<Append> {
        let order = &self.keys[key as usize];
        let (before, after) = (order.distinct_prefix[i], order.distinct_prefix[i + 1]);
        if after > before {
            order.version_writers[after as usize - 1]
        } else {
            self.writer(key, &order.longest[i])
        }
    }

    pub fn writer(&self, key: KeyId, element: &'h Value) -> Option<Append> {
        self.writers.get(&(key, Atom::of(element))).copied()
    }

    /// The data-dependency edges (ww, wr, rw) between transactions that may have committed.
    pub fn add_edges(&self, txns: &Txns<'h>, edges: &mut EdgeBuf) {
        let in_graph = |a: &Option<Append>| -> Option<u32> {
            a.filter(|a| txns.txns[a.txn as usize].outcome != Outcome::Fail)
                .map(|a| a.txn)
        };
        for key in &self.keys {
            let writers: Vec<Option<u32>> = key.version_writers.iter().map(in_graph).collect();
            // ww: each version's writer precedes the next version's writer.
            for pair in writers.windows(2) {
                if let (Some(a), Some(b)) = (pair[0], pair[1]) {
                    edges.add(a, b, WW);
                }
            }
            let last_writer = writers.last().copied().flatten();
            for &(t, _) in &key.unobserved {
                if let Some(a) = last_writer {
                    edges.add(a, t, WW);
                }
            }
            for &(read, _, observed) in &key.reads {
                let Some(pos) = observed.position() else {
                    continue;
                };
                // wr: the writer of the version read precedes the reader.
                if pos >= 0
                    && let Some(w) = writers[pos as usize]
                {
                    edges.add(w, read.txn, WR);
                }
                // rw: the reader precedes whoever wrote the next version.
                let next = (pos + 1) as usize;
                if next < writers.len() {
                    if let Some(w) = writers[next] {
                        edges.add(read.txn, w, RW);
                    }
                } else {
                    for &(t, _) in &key.unobserved {
                        edges.add(read.txn, t, RW);
                    }
                }
            }
        }
    }
}

impl<'h> KeyOrder<'h> {
    fn derive_versions(&mut self, key: KeyId, writers: &FastMap<(KeyId, Atom<'h>), Append>) {
        let longest = self.longest;
        self.distinct_prefix.reserve(longest.len() + 1);
        self.distinct_prefix.push(0);
        for (i, element) in longest.iter().enumerate() {
            let next = self.versions.len() as u32;
            let atom = Atom::of(element);
            if self.positions.contains_key(&atom) {
                self.duplicate_at.get_or_insert(i);
            } else {
                self.positions.insert(atom.clone(), next);
                self.versions.push(element);
                self.version_writers
                    .push(writers.get(&(key, atom)).copied());
            }
            self.distinct_prefix.push(self.versions.len() as u32);
        }
        for (_, list, observed) in &mut self.reads {
            let list: &[Value] = list;
            *observed =
                if list.len() <= longest.len() && same_elements(list, &longest[..list.len()]) {
                    match self.distinct_prefix[list.len()] {
                        0 => Observed::Initial,
                        n => Observed::Version(n - 1),
                    }
                } else {
                    let last = list.last().map(Atom::of);
                    Observed::Incompatible(last.and_then(|a| self.positions.get(&a).copied()))
                };
        }
    }
}

/// Element-wise equality of two lists, with a fast path for integers (the usual elements).
pub fn same_elements(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => x == y,
            },
            _ => x == y,
        })
}

/// Runs `work` on every key, on up to `available_parallelism` threads when there is enough of it
/// to pay for them: contiguous ranges of keys balanced by `weight`, so results do not depend on
/// the number of threads.
pub fn for_each_key_parallel<T: Send>(
    keys: &mut [T],
    weight: impl Fn(&T) -> usize,
    work: impl Fn(usize, &mut T) + Sync,
) {
    const WORTH_A_THREAD: usize = 200_000;
    let total: usize = keys.iter().map(&weight).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(total / WORTH_A_THREAD + 1)
        .min(keys.len().max(1));
    if threads <= 1 {
        for (k, key) in keys.iter_mut().enumerate() {
            work(k, key);
        }
        return;
    }
    let per_thread = total.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest = keys;
        let mut offset = 0;
        while !rest.is_empty() {
            let mut taken = 0;
            let mut len = 0;
            while len < rest.len() && (taken < per_thread || len == 0) {
                taken += weight(&rest[len]);
                len += 1;
            }
            let (chunk, tail) = rest.split_at_mut(len);
            let work = &work;
            let start = offset;
            scope.spawn(move || {
                for (i, key) in chunk.iter_mut().enumerate() {
                    work(start + i, key);
                }
            });
            offset += len;
            rest = tail;
        }
    });
}
