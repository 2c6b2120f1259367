//! Which consistency models an anomaly rules out, and which anomalies a model forbids.
//!
//! Three small tables, after Adya's "Weak Consistency", Bailis et al.'s "Highly Available
//! Transactions", Cerone et al.'s "A Framework for Transactional Consistency Models with Atomic
//! Visibility" and Elle's own extensions (the `-process` / `-realtime` "strong session" and
//! "strong" variants). Names are Elle's friendly model and anomaly names.
//!
//! - [`IMPLIES`]: model A → models it implies (a history satisfying A satisfies them too);
//! - [`FORBIDS`]: model → the anomalies it forbids directly (what weaker models forbid is
//!   inherited through `IMPLIES`);
//! - [`ANOMALY_IMPLIES`]: anomaly → anomalies it is an instance of (G0 is also G1c, ...).
//!
//! One deliberate difference from Elle: every anti-dependency (rw) edge we infer is on a single
//! item (there are no predicate reads), so G-single and G-nonadjacent are item anomalies and imply
//! G2-item, as Elle's `-item` variants do. Hence G-single rules out repeatable read too.

use std::collections::{BTreeSet, VecDeque};

/// Model → the weaker models it implies.
pub const IMPLIES: &[(&str, &[&str])] = &[
    ("read-committed", &["read-uncommitted"]),
    ("cursor-stability", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("causal-cerone", &["read-atomic"]),
    ("prefix", &["causal-cerone"]),
    ("parallel-snapshot-isolation", &["causal-cerone"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "serializable",
        &[
            "repeatable-read",
            "snapshot-isolation",
            "update-serializable",
        ],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-read-committed"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strict-serializable",
        &[
            "serializable",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
];

/// Model → anomalies it forbids directly.
pub const FORBIDS: &[(&str, &[&str])] = &[
    // Adya's PL-1. Duplicated elements and reads of values nobody wrote cannot occur in any
    // Adya history, so even the weakest model forbids them.
    (
        "read-uncommitted",
        &["G0", "duplicate-elements", "garbage-read"],
    ),
    ("read-committed", &["G1"]),
    ("cursor-stability", &["G1", "lost-update"]),
    ("monotonic-view", &["G1"]),
    ("monotonic-snapshot-read", &["G1"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1"]),
    ("update-serializable", &["G1"]),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    ("causal-cerone", &["internal", "G1a"]),
    ("prefix", &["internal", "G1a"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("snapshot-isolation", &["internal", "G1", "G-nonadjacent"]),
    ("serializable", &["internal", "G1", "G2"]),
    ("strong-session-read-uncommitted", &["G0-process"]),
    ("strong-session-read-committed", &["G1c-process"]),
    ("strong-read-uncommitted", &["G0-realtime"]),
    ("strong-read-committed", &["G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
];

/// Anomaly → the anomalies it is also an instance of.
pub const ANOMALY_IMPLIES: &[(&str, &[&str])] = &[
    // Adya: a ww-only cycle is also a ww+wr cycle. Processes are single-threaded, so a plain
    // cycle is trivially a -process one, and a -process one a -realtime one.
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    // G1 is the union of G1a, G1b and G1c.
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    // One rw edge is a special case of nonadjacent rw edges; all our rw edges are item edges.
    (
        "G-single",
        &["G-nonadjacent", "G-single-process", "G2-item"],
    ),
    (
        "G-single-process",
        &[
            "G-nonadjacent-process",
            "G-single-realtime",
            "G2-item-process",
        ],
    ),
    (
        "G-single-realtime",
        &["G-nonadjacent-realtime", "G2-item-realtime"],
    ),
    ("G-nonadjacent", &["G2-item", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-item-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-item-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    // Two committed reads that no single order of appends explains: someone read a state that
    // was never committed.
    ("incompatible-order", &["G1a"]),
    // Reading one's own later write is a trivial wr cycle.
    ("future-read", &["G1c"]),
    // Two transactions read the same version and both overwrote it: an item anti-dependency
    // cycle.
    ("lost-update", &["G2-item"]),
];

fn successors<'a>(table: &'a [(&str, &'a [&'a str])], name: &str) -> &'a [&'a str] {
    table
        .iter()
        .find(|(from, _)| *from == name)
        .map_or(&[], |(_, to)| *to)
}

fn predecessors<'a>(table: &[(&'a str, &[&str])], name: &str) -> Vec<&'a str> {
    table
        .iter()
        .filter(|(_, to)| to.contains(&name))
        .map(|(from, _)| *from)
        .collect()
}

/// Everything reachable from `start` (inclusive) following `next`.
fn closure<'a>(start: &[&'a str], next: impl Fn(&str) -> Vec<&'a str>) -> BTreeSet<&'a str> {
    let mut seen: BTreeSet<&str> = start.iter().copied().collect();
    let mut queue: VecDeque<&str> = start.iter().copied().collect();
    while let Some(x) = queue.pop_front() {
        for y in next(x) {
            if seen.insert(y) {
                queue.push_back(y);
            }
        }
    }
    seen
}

fn intern(name: &str) -> Option<&'static str> {
    IMPLIES
        .iter()
        .chain(FORBIDS)
        .chain(ANOMALY_IMPLIES)
        .flat_map(|(from, to)| std::iter::once(*from).chain(to.iter().copied()))
        .find(|n| *n == name)
}

/// Every model name this table knows.
pub fn known_models() -> BTreeSet<&'static str> {
    IMPLIES
        .iter()
        .flat_map(|(from, to)| std::iter::once(*from).chain(to.iter().copied()))
        .collect()
}

/// The anomalies `anomaly` is also an instance of, itself included.
pub fn implied_anomalies(anomalies: &[&str]) -> BTreeSet<&'static str> {
    let start: Vec<&'static str> = anomalies.iter().filter_map(|a| intern(a)).collect();
    closure(&start, |a| successors(ANOMALY_IMPLIES, a).to_vec())
}

/// The anomalies that must be absent for every model in `models` to hold: what they and the
/// models they imply forbid, and every anomaly that is an instance of one of those.
pub fn anomalies_prohibited_by(models: &[&str]) -> BTreeSet<&'static str> {
    let start: Vec<&'static str> = models.iter().filter_map(|m| intern(m)).collect();
    let models = closure(&start, |m| successors(IMPLIES, m).to_vec());
    let direct: Vec<&'static str> = models
        .iter()
        .flat_map(|m| successors(FORBIDS, m).iter().copied())
        .collect();
    closure(&direct, |a| predecessors(ANOMALY_IMPLIES, a))
}

/// The models these anomalies rule out: `not` is the weakest of them, `also_not` the rest.
pub fn ruled_out(anomalies: &[&str]) -> (Vec<String>, Vec<String>) {
    let implied = implied_anomalies(anomalies);
    let direct: Vec<&'static str> = FORBIDS
        .iter()
        .filter(|(_, forbidden)| forbidden.iter().any(|a| implied.contains(a)))
        .map(|(model, _)| *model)
        .collect();
    let impossible = closure(&direct, |m| predecessors(IMPLIES, m));
    // The weakest: impossible models that imply no other impossible model.
    let weakest: BTreeSet<&str> = impossible
        .iter()
        .copied()
        .filter(|m| {
            let weaker = closure(&[m], |x| successors(IMPLIES, x).to_vec());
            !weaker.iter().any(|w| w != m && impossible.contains(w))
        })
        .collect();
    let not = weakest.iter().map(|m| m.to_string()).collect();
    let also_not = impossible
        .iter()
        .filter(|m| !weakest.contains(*m))
        .map(|m| m.to_string())
        .collect();
    (not, also_not)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_match_the_classic_results() {
        let (not, also) = ruled_out(&["G0"]);
        assert_eq!(not, vec!["read-uncommitted"]);
        assert!(also.contains(&"strict-serializable".to_string()));
        let (not, _) = ruled_out(&["G1a"]);
        assert_eq!(not, vec!["read-committed"]);
        let (not, also) = ruled_out(&["G-single"]);
        assert_eq!(not, vec!["consistent-view", "repeatable-read"]);
        assert!(also.contains(&"snapshot-isolation".to_string()));
        assert!(also.contains(&"serializable".to_string()));
        let (not, _) = ruled_out(&["G2-item"]);
        assert_eq!(not, vec!["repeatable-read"]);
        let (not, also) = ruled_out(&["G-single-realtime"]);
        assert_eq!(not, vec!["strong-snapshot-isolation"]);
        assert_eq!(also, vec!["strict-serializable"]);
        let (not, also) = ruled_out(&["G2-item-realtime"]);
        assert_eq!(not, vec!["strict-serializable"]);
        assert!(also.is_empty());
        let (not, _) = ruled_out(&["G0-process"]);
        assert_eq!(not, vec!["strong-session-read-uncommitted"]);
        let (not, _) = ruled_out(&["internal"]);
        assert_eq!(not, vec!["read-atomic"]);
    }

    #[test]
    fn serializable_prohibits_data_cycles_but_not_realtime_ones() {
        let p = anomalies_prohibited_by(&["serializable"]);
        for a in ["G0", "G1a", "G1b", "G1c", "G-single", "G2-item", "internal"] {
            assert!(p.contains(a), "{a}");
        }
        for a in ["G0-realtime", "G-single-realtime", "G2-item-process"] {
            assert!(!p.contains(a), "{a}");
        }
        let strict = anomalies_prohibited_by(&["strict-serializable"]);
        for a in ["G-single-realtime", "G2-item-process", "G0-realtime"] {
            assert!(strict.contains(a), "{a}");
        }
        assert!(known_models().contains("snapshot-isolation"));
    }
}
