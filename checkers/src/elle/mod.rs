//! Elle-style transactional consistency checking (Kingsbury & Alvaro, "Elle: Inferring Isolation
//! Anomalies from Experimental Observations").
//!
//! Histories are Elle's: `f` is `txn`, the value a list of micro-operations `[f, key, v]`.
//! The list-append checker infers each key's version order from its reads (the longest read of a
//! key is its order, and every read must be a prefix of it), builds a dependency graph over the
//! transactions that may have committed (`ok` and `info`) with write-write, write-read and
//! read-write (anti-dependency) edges, plus process and real-time edges, finds its strongly
//! connected components and, inside each, the smallest cycle of every anomaly class (G0, G1c,
//! G-single, G-nonadjacent, G2-item, and their `-process` / `-realtime` forms; see `cycles`).
//! Anomalies without cycles are found directly: G1a (aborted read), G1b (intermediate read),
//! internal inconsistency, incompatible orders, duplicated elements, garbage reads (values nobody
//! appended), future reads and lost updates.
//!
//! The rw-register checker (micro-operations `r` and `w`) knows less about version orders: the
//! initial state precedes every write, and, optionally, a transaction that read one version and
//! then wrote another orders them; it finds G1a, G1b, internal inconsistency, garbage reads and
//! the same cycle classes.
//!
//! The verdict follows Elle: a history is invalid when it shows an anomaly that one of the
//! requested consistency models (default: strict serializable) forbids; `not` / `also_not` name
//! the models the anomalies rule out (see `models`).
//!
//! Semantics: `fail` transactions did not happen (their appends must never be read); `info`
//! transactions (and invocations that never completed) may or may not have happened — their
//! appends count once observed, their reads are unknown. A committed read whose value is `null`
//! carries no information.

mod anomalies;
mod cycles;
mod explain;
mod graph;
pub(crate) mod history;
pub mod models;
mod register;
mod version_order;

use crate::error::InputError;
use crate::history::History;
use crate::verdict::Validity;
use history::{Outcome, Txns};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Anomalies that make the verdict unknown rather than invalid.
const UNKNOWN_ANOMALIES: [&str; 2] = ["cycle-search-timeout", "empty-transaction-graph"];

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The models the history must satisfy; an anomaly any of them forbids makes it invalid.
    /// Friendly names, e.g. `strict-serializable`, `serializable`, `snapshot-isolation`,
    /// `repeatable-read`, `read-committed` (see [`models::known_models`]).
    pub consistency_models: Vec<String>,
    /// Edge visits allowed per anomaly class and strongly connected component when searching for
    /// the smallest cycle; past it the search reports the best cycle found so far and a
    /// `cycle-search-timeout`. Deterministic, unlike a time limit.
    pub cycle_search_budget: u64,
    /// How many anomalies of each type are kept in the result (all are counted).
    pub max_reported: usize,
    /// rw-register only: assume that within a transaction writes follow reads, so reading `v1`
    /// and then writing `v2` to a key orders `v1` before `v2` (Elle's `wfr-keys?`). Sound for
    /// systems that at least prevent dirty reads; off by default, as in Elle.
    pub writes_follow_reads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            consistency_models: vec!["strict-serializable".into()],
            cycle_search_budget: 20_000_000,
            max_reported: 16,
            writes_follow_reads: false,
        }
    }
}

impl Options {
    /// Checks against these models, with the default budgets.
    pub fn models(models: &[&str]) -> Options {
        Options {
            consistency_models: models.iter().map(|m| m.to_string()).collect(),
            ..Options::default()
        }
    }
}

/// Sizes of what was checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub txns: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub keys: usize,
    pub edges: usize,
    /// Strongly connected components with more than one transaction.
    pub cyclic_components: usize,
    pub largest_component: usize,
    pub elapsed: Duration,
}

/// The verdict and its evidence, shaped like Elle's result map.
#[derive(Debug, Clone)]
pub struct ElleResult {
    pub validity: Validity,
    /// The reportable anomaly types found, sorted.
    pub anomaly_types: Vec<String>,
    /// Per type, up to `max_reported` anomalies: each an object with an `explanation`; cycles
    /// also carry `cycle` (the transactions) and `steps`.
    pub anomalies: BTreeMap<String, Vec<Value>>,
    /// Per type, how many were found.
    pub anomaly_counts: BTreeMap<String, usize>,
    /// The weakest consistency models the anomalies rule out.
    pub not: Vec<String>,
    /// The stronger models they rule out as well.
    pub also_not: Vec<String>,
    pub stats: Stats,
}

impl ElleResult {
    /// `{"valid": true|false|"unknown", "anomaly_types": [...], "anomalies": {...},
    /// "anomaly_counts": {...}, "not": [...], "also_not": [...], "stats": {...}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": self.validity.to_json(),
            "anomaly_types": self.anomaly_types,
            "anomalies": self.anomalies,
            "anomaly_counts": self.anomaly_counts,
            "not": self.not,
            "also_not": self.also_not,
            "stats": {
                "txns": self.stats.txns,
                "ok": self.stats.ok,
                "info": self.stats.info,
                "fail": self.stats.fail,
                "keys": self.stats.keys,
                "edges": self.stats.edges,
                "cyclic_components": self.stats.cyclic_components,
                "largest_component": self.stats.largest_component,
                "elapsed_ms": self.stats.elapsed.as_secs_f64() * 1e3,
            },
        })
    }

    /// A human-readable report: the verdict, the models ruled out, and the first few anomalies
    /// of each type explained.
    pub fn explain(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "{}: {} transactions ({} ok, {} info, {} fail) over {} keys",
            self.validity, s.txns, s.ok, s.info, s.fail, s.keys
        );
        if self.anomaly_types.is_empty() {
            out.push_str("; no anomalies found.\n");
            return out;
        }
        out.push_str(".\nAnomalies: ");
        let counts: Vec<String> = self
            .anomaly_types
            .iter()
            .map(|t| format!("{t} ({})", self.anomaly_counts.get(t).copied().unwrap_or(0)))
            .collect();
        out.push_str(&counts.join(", "));
        out.push('\n');
        if !self.not.is_empty() {
            out.push_str(&format!("Not {}", self.not.join(", ")));
            if !self.also_not.is_empty() {
                out.push_str(&format!("; also not {}", self.also_not.join(", ")));
            }
            out.push_str(".\n");
        }
        for t in &self.anomaly_types {
            for (i, anomaly) in self
                .anomalies
                .get(t)
                .into_iter()
                .flatten()
                .take(3)
                .enumerate()
            {
                out.push_str(&format!("\n{t} #{}:\n", i + 1));
                match anomaly.get("explanation").and_then(Value::as_str) {
                    Some(text) => out.push_str(text),
                    None => out.push_str(&anomaly.to_string()),
                }
                out.push('\n');
            }
        }
        out
    }
}

/// The history's transactions, refused when the dependency graph could not hold them.
fn transactions_within_limit(history: &History) -> Result<history::Txns<'_>, InputError> {
    let txns = history::transactions(history)?;
    if txns.txns.len() >= graph::MAX_NODES {
        return Err(history::input_error(format!(
            "{} transactions: at most {} are supported",
            txns.txns.len(),
            graph::MAX_NODES - 1
        )));
    }
    Ok(txns)
}

/// Checks a list-append history (micro-operations `r` and `append`).
///
/// Errors (source `<history>`, naming the op index): a client operation that is not a `txn`, a
/// malformed micro-operation, a `w` micro-operation, a committed read that is not a list, a value
/// appended twice to the same key, a process with two open invocations; an unknown consistency
/// model (source `<options>`).
pub fn check_list_append(history: &History, opts: &Options) -> Result<ElleResult, InputError> {
    let started = Instant::now();
    let prohibited = prohibited(opts)?;
    let txns = transactions_within_limit(history)?;
    let index = version_order::ListIndex::build(&txns)?;
    let mut sink = anomalies::Sink::new(opts.max_reported.max(1));
    anomalies::list_append(&txns, &index, &mut sink);
    let mut edges = graph::EdgeBuf::default();
    index.add_edges(&txns, &mut edges);
    let stats = cycle_anomalies(&txns, &index, edges, opts, &mut sink);
    Ok(finish(&txns, sink, &prohibited, stats, started))
}

/// Checks a read-write register history (micro-operations `r` and `w`; every value written at
/// most once per key; `null` is the initial state). See the `register` module for what can be
/// inferred about version orders.
///
/// Errors as for [`check_list_append`], with `append` (instead of `w`) rejected and a value
/// written twice (or `null` written) reported.
pub fn check_rw_register(history: &History, opts: &Options) -> Result<ElleResult, InputError> {
    let started = Instant::now();
    let prohibited = prohibited(opts)?;
    let txns = transactions_within_limit(history)?;
    let index = register::RegisterIndex::build(&txns, opts.writes_follow_reads)?;
    let mut sink = anomalies::Sink::new(opts.max_reported.max(1));
    index.anomalies(&txns, &mut sink);
    let mut edges = graph::EdgeBuf::default();
    index.add_edges(&txns, &mut edges);
    let stats = cycle_anomalies(&txns, &index, edges, opts, &mut sink);
    Ok(finish(&txns, sink, &prohibited, stats, started))
}

fn prohibited(opts: &Options) -> Result<BTreeSet<&'static str>, InputError> {
    let known = models::known_models();
    for m in &opts.consistency_models {
        if !known.contains(m.as_str()) {
            let names: Vec<&str> = known.iter().copied().collect();
            return Err(InputError::new(
                "<options>",
                None,
                format!(
                    "unknown consistency model `{m}` (expected one of: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let requested: Vec<&str> = opts.consistency_models.iter().map(String::as_str).collect();
    Ok(models::anomalies_prohibited_by(&requested))
}

/// Adds process and real-time edges, finds the cyclic components and their smallest cycles.
fn cycle_anomalies(
    txns: &Txns<'_>,
    data: &dyn explain::DataExplainer,
    mut edges: graph::EdgeBuf,
    opts: &Options,
    sink: &mut anomalies::Sink,
) -> Stats {
    graph::add_process_edges(txns, &mut edges);
    graph::add_realtime_edges(txns, &mut edges);
    let graph = edges.build(txns.txns.len());
    let components = graph.cyclic_components(graph::DATA | graph::PROCESS | graph::REALTIME);
    let mut local_of = vec![u32::MAX; graph.node_count()];
    for component in &components {
        let findings =
            cycles::search_scc(&graph, component, opts.cycle_search_budget, &mut local_of);
        for found in &findings.cycles {
            sink.push(&found.name, || {
                explain::explain_cycle(txns, data, &found.name, &found.steps)
            });
        }
        for class in &findings.timed_out {
            sink.push("cycle-search-timeout", || {
                json!({
                    "anomaly_spec_type": class,
                    "scc_size": component.len(),
                    "explanation": format!(
                        "the search for the smallest {class} cycle in a strongly connected \
                         component of {} transactions ran out of its budget ({} edge visits); \
                         the cycles reported for it may not be the smallest, and smaller classes \
                         may have been missed",
                        component.len(), opts.cycle_search_budget
                    ),
                })
            });
        }
    }
    let count = |o: Outcome| txns.txns.iter().filter(|t| t.outcome == o).count();
    Stats {
        txns: txns.txns.len(),
        ok: count(Outcome::Ok),
        info: count(Outcome::Info),
        fail: count(Outcome::Fail),
        keys: txns.keys.len(),
        edges: graph.edge_count(),
        cyclic_components: components.len(),
        largest_component: components.iter().map(Vec::len).max().unwrap_or(0),
        elapsed: Duration::ZERO,
    }
}

fn finish(
    txns: &Txns<'_>,
    mut sink: anomalies::Sink,
    prohibited: &BTreeSet<&'static str>,
    mut stats: Stats,
    started: Instant,
) -> ElleResult {
    if !txns.txns.iter().any(|t| t.outcome == Outcome::Ok) {
        sink.push(
            "empty-transaction-graph",
            || json!({"explanation": "no transaction committed, so there is nothing to check"}),
        );
    }
    let all_types: Vec<&str> = sink
        .found
        .keys()
        .map(String::as_str)
        .filter(|t| !UNKNOWN_ANOMALIES.contains(t))
        .collect();
    let (not, also_not) = models::ruled_out(&all_types);
    let reportable = |t: &str| prohibited.contains(t) || UNKNOWN_ANOMALIES.contains(&t);
    let validity = if sink.found.keys().any(|t| prohibited.contains(t.as_str())) {
        Validity::Invalid
    } else if sink.found.keys().any(|t| reportable(t)) {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut anomalies = BTreeMap::new();
    let mut anomaly_counts = BTreeMap::new();
    for (t, (count, list)) in sink.found {
        if reportable(&t) {
            anomaly_counts.insert(t.clone(), count);
            anomalies.insert(t, list);
        }
    }
    stats.elapsed = started.elapsed();
    ElleResult {
        validity,
        anomaly_types: anomalies.keys().cloned().collect(),
        anomalies,
        anomaly_counts,
        not,
        also_not,
        stats,
    }
}
