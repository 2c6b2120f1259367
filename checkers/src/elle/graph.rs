//! The transaction dependency graph: nodes are transactions (by index in `Txns::txns`), each
//! edge carries the set of relations that order its ends.
//!
//! Edges are collected as packed `u64`s, sorted and merged (no allocation per edge), then stored
//! in a petgraph [`Csr`] (compressed sparse rows: one slice of successors per node). Strongly
//! connected components use an iterative Tarjan: petgraph's `tarjan_scc` recurses once per node
//! on the DFS path, and the real-time chain of a 100k-transaction history would overflow the
//! stack.

use super::history::{Outcome, Txns};
use crate::history::{OpType, Process};
use petgraph::csr::Csr;

/// Write-write dependency: the target overwrote (appended after) the source's write.
pub const WW: u8 = 1;
/// Write-read dependency: the target read the source's write.
pub const WR: u8 = 2;
/// Read-write anti-dependency: the target overwrote the version the source read.
pub const RW: u8 = 4;
/// Same process, one after the other.
pub const PROCESS: u8 = 8;
/// The source completed before the target was invoked.
pub const REALTIME: u8 = 16;

pub const DATA: u8 = WW | WR | RW;

pub fn rel_name(rel: u8) -> &'static str {
    match rel {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "?",
    }
}

/// Node ids must fit the packed edge encoding: 29 bits of source, 30 of target, 5 of relations.
pub const MAX_NODES: usize = 1 << 29;

/// Edges being collected.
#[derive(Default)]
pub struct EdgeBuf {
    packed: Vec<u64>,
}

impl EdgeBuf {
    pub fn add(&mut self, from: u32, to: u32, rel: u8) {
        if from != to {
            self.packed
                .push((u64::from(from) << 35) | (u64::from(to) << 5) | u64::from(rel));
        }
    }

    /// Sorts, merges parallel edges (OR-ing their relations) and builds the graph.
    pub fn build(mut self, nodes: usize) -> DepGraph {
        self.packed.sort_unstable();
        let mut merged: Vec<(u32, u32, u8)> = Vec::with_capacity(self.packed.len());
        for &p in &self.packed {
            let (from, to, rel) = (
                (p >> 35) as u32,
                ((p >> 5) & 0x3FFF_FFFF) as u32,
                (p & 31) as u8,
            );
            match merged.last_mut() {
                Some(last) if last.0 == from && last.1 == to => last.2 |= rel,
                _ => merged.push((from, to, rel)),
            }
        }
        drop(self.packed);
        let mut csr: Csr<(), u8, petgraph::Directed, u32> =
            Csr::from_sorted_edges(&merged).expect("edges are sorted and deduplicated");
        while csr.node_count() < nodes {
            csr.add_node(());
        }
        DepGraph { csr }
    }
}

/// A dependency graph over transactions.
pub struct DepGraph {
    pub csr: Csr<(), u8, petgraph::Directed, u32>,
}

impl DepGraph {
    pub fn node_count(&self) -> usize {
        self.csr.node_count()
    }

    pub fn edge_count(&self) -> usize {
        self.csr.edge_count()
    }

    /// Successors of `node` and the relations of each edge.
    pub fn out(&self, node: u32) -> (&[u32], &[u8]) {
        (self.csr.neighbors_slice(node), self.csr.edges_slice(node))
    }

    /// Strongly connected components with at least two nodes, using only edges with a relation
    /// in `mask`; each sorted, in a deterministic order.
    pub fn cyclic_components(&self, mask: u8) -> Vec<Vec<u32>> {
        tarjan(self.node_count(), |v| {
            let (succ, rels) = self.out(v);
            succ.iter()
                .zip(rels)
                .filter(move |(_, r)| **r & mask != 0)
                .map(|(s, _)| *s)
        })
    }

    /// Every node's strongly connected component using only edges with a relation in `mask`,
    /// numbered in reverse topological order (see [`tarjan_with_ids`]).
    pub fn component_ids(&self, mask: u8) -> Vec<u32> {
        tarjan_with_ids(self.node_count(), |v| {
            let (succ, rels) = self.out(v);
            succ.iter()
                .zip(rels)
                .filter(move |(_, r)| **r & mask != 0)
                .map(|(s, _)| *s)
        })
        .0
    }

    /// The subgraph induced by `nodes`, renumbered `0..nodes.len()` in that order.
    pub fn induced(&self, nodes: &[u32], local_of: &mut [u32]) -> DepGraph {
        for (i, &n) in nodes.iter().enumerate() {
            local_of[n as usize] = i as u32;
        }
        let mut edges = EdgeBuf::default();
        for (i, &n) in nodes.iter().enumerate() {
            let (succ, rels) = self.out(n);
            for (&s, &r) in succ.iter().zip(rels) {
                let j = local_of[s as usize];
                if j != u32::MAX {
                    edges.add(i as u32, j, r);
                }
            }
        }
        for &n in nodes {
            local_of[n as usize] = u32::MAX;
        }
        edges.build(nodes.len())
    }
}

/// Iterative Tarjan: the non-trivial strongly connected components of a graph given by its
/// successor function. Components come out sorted, in reverse topological order.
pub fn tarjan<I, F>(nodes: usize, successors: F) -> Vec<Vec<u32>>
where
    F: Fn(u32) -> I,
    I: Iterator<Item = u32>,
{
    tarjan_with_ids(nodes, successors).1
}

/// Iterative Tarjan, also numbering every node's component: components are numbered in reverse
/// topological order, so if component X reaches component Y ≠ X, then `id(Y) < id(X)`.
pub fn tarjan_with_ids<I, F>(nodes: usize, successors: F) -> (Vec<u32>, Vec<Vec<u32>>)
where
    F: Fn(u32) -> I,
    I: Iterator<Item = u32>,
{
    let mut component_of = vec![0u32; nodes];
    let mut components = 0u32;
    const UNVISITED: u32 = u32::MAX;
    let mut index = vec![UNVISITED; nodes];
    let mut low = vec![0u32; nodes];
    let mut on_stack = vec![false; nodes];
    let mut stack: Vec<u32> = Vec::new();
    let mut frames: Vec<(u32, I)> = Vec::new();
    let mut next_index = 0u32;
    let mut out = Vec::new();
    for root in 0..nodes as u32 {
        if index[root as usize] != UNVISITED {
            continue;
        }
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        frames.push((root, successors(root)));
        while let Some((v, iter)) = frames.last_mut() {
            let v = *v;
            if let Some(w) = iter.next() {
                let wi = w as usize;
                if index[wi] == UNVISITED {
                    index[wi] = next_index;
                    low[wi] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    frames.push((w, successors(w)));
                } else if on_stack[wi] {
                    low[v as usize] = low[v as usize].min(index[wi]);
                }
                continue;
            }
            frames.pop();
            if let Some((parent, _)) = frames.last() {
                let p = *parent as usize;
                low[p] = low[p].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component_of[w as usize] = components;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components += 1;
                if component.len() > 1 {
                    component.sort_unstable();
                    out.push(component);
                }
            }
        }
    }
    (component_of, out)
}

/// Process edges: each process's transactions in order, from each committed one to the next
/// that may have committed. An `info` transaction is never a source: it may have taken effect
/// after its process moved on.
pub fn add_process_edges(txns: &Txns<'_>, edges: &mut EdgeBuf) {
    let mut last_committed: super::history::FastMap<u64, u32> = super::history::fast_map();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        if let Some(&prev) = last_committed.get(&txn.process) {
            edges.add(prev, t as u32, PROCESS);
        }
        if txn.outcome == Outcome::Ok {
            last_committed.insert(txn.process, t as u32);
        }
    }
}

/// Real-time edges: T1 → T2 when T1 completed `ok` before T2 was invoked (history order).
///
/// Only a transitive reduction is kept, after Elle: a frontier holds the committed transactions
/// no later-completed transaction is known to follow; an invocation links from every frontier
/// member, and a completion removes from the frontier whatever it was linked from. Frontier
/// members are pairwise concurrent, so each transaction gets at most about "concurrency" edges.
pub fn add_realtime_edges(txns: &Txns<'_>, edges: &mut EdgeBuf) {
    let mut txn_of_event: Vec<u32> = vec![u32::MAX; txns.history.ops.len()];
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        txn_of_event[txn.invoke] = t as u32;
        if let Some(c) = txn.complete {
            txn_of_event[c] = t as u32;
        }
    }
    let mut frontier: Vec<u32> = Vec::new();
    // Per open transaction: the frontier it was linked from when invoked.
    let mut linked_from: super::history::FastMap<u32, Vec<u32>> = super::history::fast_map();
    let mut spare: Vec<Vec<u32>> = Vec::new();
    for (pos, op) in txns.history.ops.iter().enumerate() {
        let t = txn_of_event[pos];
        if t == u32::MAX || !matches!(op.process, Process::Client(_)) {
            continue;
        }
        match op.kind {
            OpType::Invoke => {
                for &f in &frontier {
                    edges.add(f, t, REALTIME);
                }
                if txns.txns[t as usize].outcome == Outcome::Ok {
                    let mut snapshot = spare.pop().unwrap_or_default();
                    snapshot.clear();
                    snapshot.extend_from_slice(&frontier);
                    linked_from.insert(t, snapshot);
                }
            }
            OpType::Ok => {
                if let Some(preds) = linked_from.remove(&t) {
                    frontier.retain(|f| !preds.contains(f));
                    spare.push(preds);
                }
                frontier.push(t);
            }
            _ => {}
        }
    }
}
