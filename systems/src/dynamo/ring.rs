//! Consistent hashing with virtual nodes: each node owns several points (tokens) on a 64-bit
//! ring; a key's preference list is every node in the order met walking clockwise from the
//! key's hash. The first N are the key's home replicas; the rest are fallbacks for a sloppy
//! quorum.

use crate::node::NodeId;

/// Points per node: enough to spread keys evenly over a handful of nodes.
pub const VIRTUAL_NODES: usize = 16;

/// FNV-1a, then a SplitMix64 finalizer so that similar strings land far apart.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[derive(Debug, Clone)]
pub struct Ring {
    nodes: Vec<NodeId>,
    /// (token, index into `nodes`), sorted.
    tokens: Vec<(u64, usize)>,
}

impl Ring {
    pub fn new(nodes: &[NodeId]) -> Ring {
        let mut tokens: Vec<(u64, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, node)| {
                (0..VIRTUAL_NODES).map(move |v| (hash(format!("{node}#{v}").as_bytes()), i))
            })
            .collect();
        tokens.sort();
        Ring {
            nodes: nodes.to_vec(),
            tokens,
        }
    }

    /// Every node, in ring order from the key's position (`key` is the key's JSON text).
    pub fn preference_list(&self, key: &str) -> Vec<NodeId> {
        let mut order: Vec<NodeId> = Vec::with_capacity(self.nodes.len());
        if self.tokens.is_empty() {
            return order;
        }
        let point = hash(key.as_bytes());
        let start = self.tokens.partition_point(|(t, _)| *t < point);
        let mut seen = vec![false; self.nodes.len()];
        for k in 0..self.tokens.len() {
            let (_, node) = self.tokens[(start + k) % self.tokens.len()];
            if !seen[node] {
                seen[node] = true;
                order.push(self.nodes[node].clone());
                if order.len() == self.nodes.len() {
                    break;
                }
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn nodes(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn preference_lists_hold_every_node_once_and_are_stable() {
        let ring = Ring::new(&nodes(5));
        for key in 0..50 {
            let list = ring.preference_list(&key.to_string());
            let mut sorted = list.clone();
            sorted.sort();
            assert_eq!(sorted, nodes(5));
            assert_eq!(list, Ring::new(&nodes(5)).preference_list(&key.to_string()));
        }
    }

    #[test]
    fn keys_spread_over_the_nodes() {
        let ring = Ring::new(&nodes(5));
        let mut primaries: BTreeMap<NodeId, usize> = BTreeMap::new();
        for key in 0..1000 {
            *primaries
                .entry(ring.preference_list(&key.to_string())[0].clone())
                .or_default() += 1;
        }
        assert_eq!(primaries.len(), 5);
        assert!(primaries.values().all(|&c| c > 100), "{primaries:?}");
    }
}
