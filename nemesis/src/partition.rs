//! Partition shapes as grudges.

use crate::fault::Grudge;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// The partition shapes the nemesis knows.
pub const SHAPES: &[&str] = &[
    "random-halves",
    "isolate-one",
    "majorities-ring",
    "bridge",
    "one-way",
];

/// A partition shape the runtime resolves when it applies it: the nodes that consider
/// themselves leader at that moment are cut off from the rest (no leader: no cut).
pub const ISOLATE_PRIMARY: &str = "isolate-primary";

/// `isolated` cut off from every other node of `nodes`, both ways.
pub fn isolate(isolated: &[String], nodes: &[String]) -> Grudge {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !isolated.contains(n))
        .cloned()
        .collect();
    let mut g = Grudge::new();
    cut_between(&mut g, isolated, &rest);
    g
}

/// Every node in `a` stops hearing from every node in `b`, and the other way round.
fn cut_between(grudge: &mut Grudge, a: &[String], b: &[String]) {
    for x in a {
        for y in b {
            grudge.entry(x.clone()).or_default().insert(y.clone());
            grudge.entry(y.clone()).or_default().insert(x.clone());
        }
    }
}

/// Builds a grudge of the given shape over `nodes`.
pub fn grudge(shape: &str, nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let mut g = Grudge::new();
    let n = shuffled.len();
    if n < 2 {
        return g;
    }
    match shape {
        "isolate-one" => {
            let (one, rest) = shuffled.split_at(1);
            cut_between(&mut g, one, rest);
        }
        "majorities-ring" => {
            // Each node sees itself and its ring neighbours within a majority window.
            let majority = n / 2 + 1;
            for (i, dest) in shuffled.iter().enumerate() {
                let visible: BTreeSet<usize> = (0..majority)
                    .map(|k| (i + n + k - majority / 2) % n)
                    .collect();
                for (j, src) in shuffled.iter().enumerate() {
                    if !visible.contains(&j) {
                        g.entry(dest.clone()).or_default().insert(src.clone());
                    }
                }
            }
        }
        "bridge" => {
            // Two halves that only one node, the bridge, can talk to both of.
            let half = n / 2;
            let bridge = &shuffled[half];
            let left: Vec<String> = shuffled[..half].to_vec();
            let right: Vec<String> = shuffled[half + 1..].to_vec();
            cut_between(&mut g, &left, &right);
            let _ = bridge;
        }
        "one-way" => {
            // One node's outbound messages are dropped; it still hears everyone.
            let src = shuffled[0].clone();
            for dest in &shuffled[1..] {
                g.entry(dest.clone()).or_default().insert(src.clone());
            }
        }
        _ => {
            // random-halves: the smaller half is chosen at random.
            let half = if rng.random_bool(0.5) {
                n / 2
            } else {
                n.div_ceil(2)
            };
            let (a, b) = shuffled.split_at(half);
            cut_between(&mut g, a, b);
        }
    }
    g.retain(|_, s| !s.is_empty());
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn hears(g: &Grudge, dest: &str, src: &str) -> bool {
        !g.get(dest).is_some_and(|s| s.contains(src))
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_both_ways() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let g = grudge("isolate-one", &nodes(5), &mut rng);
        let isolated: Vec<_> = g.iter().filter(|(_, s)| s.len() == 4).collect();
        assert_eq!(isolated.len(), 1);
        let lone = isolated[0].0;
        for other in nodes(5).iter().filter(|n| *n != lone) {
            assert!(!hears(&g, other, lone));
            assert_eq!(g[other].len(), 1);
        }
    }

    #[test]
    fn majorities_ring_gives_every_node_a_majority_but_no_common_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let ns = nodes(5);
        let g = grudge("majorities-ring", &ns, &mut rng);
        for d in &ns {
            let heard = ns.iter().filter(|s| hears(&g, d, s)).count();
            assert_eq!(heard, 3, "{d} should hear a majority");
        }
        assert!(ns.iter().all(|d| g.contains_key(d)));
    }

    #[test]
    fn one_way_drops_only_one_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let ns = nodes(3);
        let g = grudge("one-way", &ns, &mut rng);
        let muted: BTreeSet<&String> = g.values().flatten().collect();
        assert_eq!(muted.len(), 1);
        let src = *muted.iter().next().unwrap();
        assert!(!g.contains_key(src), "the muted node still hears everyone");
    }

    #[test]
    fn bridge_node_hears_both_halves() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let ns = nodes(5);
        let g = grudge("bridge", &ns, &mut rng);
        let bridge: Vec<_> = ns.iter().filter(|n| !g.contains_key(*n)).collect();
        assert_eq!(bridge.len(), 1);
        for d in &ns {
            assert!(hears(&g, d, bridge[0]));
        }
    }

    #[test]
    fn isolating_the_leaders_cuts_them_from_the_rest_only() {
        let ns = nodes(5);
        let g = isolate(&["n2".to_string()], &ns);
        assert_eq!(g["n2"].len(), 4);
        for other in ns.iter().filter(|n| *n != "n2") {
            assert!(!hears(&g, other, "n2") && !hears(&g, "n2", other));
            assert!(hears(&g, other, "n1") || other == "n1");
        }
        assert!(isolate(&[], &ns).is_empty(), "no leader: no cut");
    }
}
