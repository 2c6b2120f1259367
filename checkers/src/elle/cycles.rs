//! Finding the smallest cycle of each anomaly class inside one strongly connected component.
//!
//! A class is a set of "free" relations plus a rule on anti-dependency (rw) edges:
//!
//! | class         | free edges | rw edges                                   |
//! |---------------|------------|--------------------------------------------|
//! | G0            | ww         | none                                       |
//! | G1c           | ww, wr     | none                                       |
//! | G-single      | ww, wr     | exactly one                                |
//! | G-nonadjacent | ww, wr     | two or more, no two consecutive            |
//! | G2-item       | ww, wr     | two or more                                |
//!
//! and each has a `-process` form (process edges are free too) and a `-realtime` form (process
//! and real-time edges are free too). Classes are searched weakest level first (data, then
//! process, then real time) and, within a level, in the order above; a class implied by one
//! already found (G0 implies G1c, G0-process, ...) is skipped, so a `-realtime` cycle is only
//! reported when no cycle of that class exists without real-time edges.
//!
//! Each search is a breadth-first search over (transaction, rw-state) pairs from each candidate
//! start, so the first cycle closed from a start is the shortest through it; the best over all
//! starts is kept and deeper paths are pruned. Existence is decided exactly first by Tarjan on
//! the class's subgraph; the search itself runs under a budget of edge visits per class and SCC,
//! and reports a `cycle-search-timeout` when it runs out (with any cycle found so far).

use super::graph::{DepGraph, PROCESS, REALTIME, RW, WR, WW};
use super::models;
use std::collections::{BTreeSet, VecDeque};

/// What the rw edges of a cycle must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No rw edges.
    NoRw,
    /// Exactly one rw edge.
    SingleRw,
    /// At least two rw edges, none adjacent to another (cyclically).
    NonadjacentRw,
    /// At least two rw edges.
    MultipleRw,
    /// Anything (the fallback after a search ran out of budget).
    Any,
}

/// One edge of a found cycle, by global transaction id, with the one relation that justifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub from: u32,
    pub to: u32,
    pub rel: u8,
}

/// A cycle found in an SCC, named by the class its edges make it.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub steps: Vec<Step>,
}

/// What an SCC search produced.
#[derive(Debug, Default)]
pub struct SccFindings {
    pub cycles: Vec<Found>,
    /// Classes whose search ran out of budget.
    pub timed_out: Vec<String>,
}

const LEVELS: [(u8, &str); 3] = [
    (0, ""),
    (PROCESS, "-process"),
    (PROCESS | REALTIME, "-realtime"),
];

const CLASSES: [(&str, u8, Rule); 5] = [
    ("G0", WW, Rule::NoRw),
    ("G1c", WW | WR, Rule::NoRw),
    ("G-single", WW | WR, Rule::SingleRw),
    ("G-nonadjacent", WW | WR, Rule::NonadjacentRw),
    ("G2-item", WW | WR, Rule::MultipleRw),
];

/// Searches one strongly connected component (`nodes`, global ids, sorted) of `graph`.
/// `local_of` is scratch of `graph.node_count()` entries, all `u32::MAX`, left that way.
pub fn search_scc(
    graph: &DepGraph,
    nodes: &[u32],
    budget: u64,
    local_of: &mut [u32],
) -> SccFindings {
    let local = graph.induced(nodes, local_of);
    let mut findings = SccFindings::default();
    let mut found: Vec<String> = Vec::new();
    let mut bfs = Bfs::new(nodes.len());
    for (extra, suffix) in LEVELS {
        let level_mask = WW | WR | RW | extra;
        if local.cyclic_components(level_mask).is_empty() {
            continue;
        }
        let mut ran_out = false;
        let mut level_accounted = false;
        for (base, free, rule) in CLASSES {
            let name = format!("{base}{suffix}");
            let implied = implied_by(&found);
            if implied.contains(name.as_str()) {
                level_accounted = true;
                continue;
            }
            let free = free | extra;
            let mask = if rule == Rule::NoRw { free } else { free | RW };
            let components = local.cyclic_components(mask);
            if components.is_empty() {
                continue;
            }
            let result = bfs.shortest_cycle(&local, &components, free, rule, budget);
            if result.ran_out {
                ran_out = true;
                findings.timed_out.push(name.clone());
            }
            if let Some(steps) = result.steps {
                record(&mut findings, &mut found, nodes, steps);
                level_accounted = true;
            }
        }
        if ran_out && !level_accounted {
            let components = local.cyclic_components(level_mask);
            let result =
                bfs.shortest_cycle(&local, &components, WW | WR | extra, Rule::Any, u64::MAX);
            if let Some(steps) = result.steps {
                record(&mut findings, &mut found, nodes, steps);
            }
        }
    }
    findings
}

fn implied_by(found: &[String]) -> BTreeSet<&'static str> {
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    models::implied_anomalies(&names)
}

fn record(findings: &mut SccFindings, found: &mut Vec<String>, nodes: &[u32], steps: Vec<Step>) {
    let steps: Vec<Step> = steps
        .into_iter()
        .map(|s| Step {
            from: nodes[s.from as usize],
            to: nodes[s.to as usize],
            rel: s.rel,
        })
        .collect();
    let name = classify(&steps);
    found.push(name.clone());
    findings.cycles.push(Found { name, steps });
}

/// The anomaly class a cycle's edges make: by its rw edges (how many, whether adjacent), wr
/// edges, and whether it needs process or real-time edges.
pub fn classify(steps: &[Step]) -> String {
    let count = |rel: u8| steps.iter().filter(|s| s.rel == rel).count();
    let rw = count(RW);
    let adjacent_rw =
        (0..steps.len()).any(|i| steps[i].rel == RW && steps[(i + 1) % steps.len()].rel == RW);
    let base = match rw {
        1 => "G-single",
        n if n >= 2 && adjacent_rw => "G2-item",
        n if n >= 2 => "G-nonadjacent",
        _ if count(WR) > 0 => "G1c",
        _ => "G0",
    };
    let suffix = if count(REALTIME) > 0 {
        "-realtime"
    } else if count(PROCESS) > 0 {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// rw-state of a path: bits 0-1 the number of rw edges (capped at 2), bit 2 "the last edge was
/// rw", bit 3 "the first edge was rw".
const STATES: usize = 16;

fn rw_count(state: u8) -> u8 {
    state & 3
}

struct Bfs {
    /// Visit stamps per (node, state) slot: equal to `stamp` when visited in this BFS.
    seen: Vec<u32>,
    stamp: u32,
    /// Per slot: the slot it was reached from and the relation used.
    parent: Vec<(u32, u8)>,
    queue: VecDeque<(u32, u32)>,
}

struct Outcome {
    steps: Option<Vec<Step>>,
    ran_out: bool,
}

impl Bfs {
    fn new(nodes: usize) -> Bfs {
        Bfs {
            seen: vec![0; nodes * STATES],
            stamp: 0,
            parent: vec![(0, 0); nodes * STATES],
            queue: VecDeque::new(),
        }
    }

    /// The shortest cycle (local ids) made of `free` edges and rw edges obeying `rule`, within
    /// the given components.
    fn shortest_cycle(
        &mut self,
        graph: &DepGraph,
        components: &[Vec<u32>],
        free: u8,
        rule: Rule,
        budget: u64,
    ) -> Outcome {
        let mut in_component = vec![u32::MAX; graph.node_count()];
        for (c, comp) in components.iter().enumerate() {
            for &v in comp {
                in_component[v as usize] = c as u32;
            }
        }
        // A cycle with rw edges can be turned so that it ends with one: start only at the targets
        // of rw edges, and close the cycle with an rw edge into the start. For a single rw edge,
        // the rest is a path of free edges from its target back to its source, which needs the
        // source's free component to be reachable: no later in reverse topological order.
        let free_component = (rule == Rule::SingleRw).then(|| graph.component_ids(free));
        let mut starts: Vec<u32> = Vec::new();
        for comp in components {
            for &v in comp {
                if matches!(rule, Rule::NoRw | Rule::Any) {
                    starts.push(v);
                    continue;
                }
                let (succ, rels) = graph.out(v);
                for (&w, &r) in succ.iter().zip(rels) {
                    let reachable = free_component
                        .as_ref()
                        .is_none_or(|ids| ids[v as usize] <= ids[w as usize]);
                    if r & RW != 0
                        && in_component[w as usize] == in_component[v as usize]
                        && reachable
                    {
                        starts.push(w);
                    }
                }
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut left = budget;
        let mut best: Option<Vec<Step>> = None;
        for start in starts {
            let limit = best.as_ref().map_or(usize::MAX, Vec::len);
            if limit <= 2 {
                break;
            }
            match self.search_from(graph, &in_component, start, free, rule, limit, &mut left) {
                Search::Found(steps) => best = Some(steps),
                Search::None => {}
                Search::RanOut => {
                    return Outcome {
                        steps: best,
                        ran_out: true,
                    };
                }
            }
        }
        Outcome {
            steps: best,
            ran_out: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn search_from(
        &mut self,
        graph: &DepGraph,
        in_component: &[u32],
        start: u32,
        free: u8,
        rule: Rule,
        shorter_than: usize,
        left: &mut u64,
    ) -> Search {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        let component = in_component[start as usize];
        let start_slot = start as usize * STATES;
        self.seen[start_slot] = self.stamp;
        self.queue.clear();
        self.queue.push_back((start_slot as u32, 0));
        while let Some((slot, depth)) = self.queue.pop_front() {
            // A cycle closed from here would have depth + 1 edges.
            if depth as usize + 1 >= shorter_than {
                return Search::None;
            }
            let v = slot / STATES as u32;
            let state = (slot % STATES as u32) as u8;
            let (succ, rels) = graph.out(v);
            for (&w, &r) in succ.iter().zip(rels) {
                if in_component[w as usize] != component {
                    continue;
                }
                if *left == 0 {
                    return Search::RanOut;
                }
                *left -= 1;
                let mut moves: [(u8, u8); 2] = [(0, 0); 2];
                let mut n = 0;
                if r & free != 0 {
                    moves[n] = (free_label(r & free), state & !4);
                    n += 1;
                }
                if r & RW != 0 && rule != Rule::NoRw {
                    let allowed = match rule {
                        // The one rw edge is the closing one.
                        Rule::SingleRw => w == start,
                        Rule::NonadjacentRw => state & 4 == 0,
                        _ => true,
                    };
                    if allowed {
                        let count = (rw_count(state) + 1).min(2);
                        let first = if depth == 0 { 8 } else { state & 8 };
                        moves[n] = (RW, count | 4 | first);
                        n += 1;
                    }
                }
                for &(label, next) in &moves[..n] {
                    let next_slot = w as usize * STATES + next as usize;
                    if w == start {
                        // Rules with rw edges close with one (see `shortest_cycle`).
                        let closes = matches!(rule, Rule::NoRw | Rule::Any) || label == RW;
                        if closes && accepts(rule, next) {
                            return Search::Found(self.path(slot, start, w, label));
                        }
                        continue;
                    }
                    if self.seen[next_slot] != self.stamp {
                        self.seen[next_slot] = self.stamp;
                        self.parent[next_slot] = (slot, label);
                        self.queue.push_back((next_slot as u32, depth + 1));
                    }
                }
            }
        }
        Search::None
    }

    /// The steps from the start to `slot`, then the closing edge to `to`.
    fn path(&self, mut slot: u32, start: u32, to: u32, closing: u8) -> Vec<Step> {
        let mut steps = vec![Step {
            from: slot / STATES as u32,
            to,
            rel: closing,
        }];
        let start_slot = start * STATES as u32;
        while slot != start_slot {
            let (prev, rel) = self.parent[slot as usize];
            steps.push(Step {
                from: prev / STATES as u32,
                to: slot / STATES as u32,
                rel,
            });
            slot = prev;
        }
        steps.reverse();
        steps
    }
}

enum Search {
    Found(Vec<Step>),
    None,
    RanOut,
}

fn accepts(rule: Rule, state: u8) -> bool {
    match rule {
        Rule::NoRw | Rule::Any => true,
        Rule::SingleRw => rw_count(state) == 1,
        Rule::NonadjacentRw => rw_count(state) >= 2 && state & 12 != 12,
        Rule::MultipleRw => rw_count(state) >= 2,
    }
}

/// The relation a free edge is explained by: data before process before real time.
fn free_label(rels: u8) -> u8 {
    [WW, WR, PROCESS, REALTIME]
        .into_iter()
        .find(|r| rels & r != 0)
        .unwrap_or(RW)
}
