//! What a report shows, computed from a history: operations paired into intervals and laid out
//! in lanes, fault windows and markers, counts, and the operation a checker blames first.

use checkers::{History, OpType, Process};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// What the time axis counts: nanoseconds since the test started, or (for histories without
/// timestamps, like most of Knossos's) positions in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Nanos,
    Index,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
    /// Invoked and never completed.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }

    /// The small integer the timeline's JavaScript decodes.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Pending => 3,
        }
    }

    fn from_completion(kind: OpType) -> Outcome {
        match kind {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            // An `invoke` cannot complete an operation; `pair` never passes one.
            OpType::Info | OpType::Invoke => Outcome::Info,
        }
    }
}

/// What an operation without a completion returned.
static NULL: Value = Value::Null;

/// One client operation: an invocation and its completion, as an interval. It borrows from
/// the history: a report of 100k operations should not copy them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOp<'h> {
    pub process: u64,
    /// The timeline row: processes that never overlap share a lane (a retired process's
    /// replacement takes its predecessor's lane).
    pub lane: u32,
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// On the report's axis.
    pub start: u64,
    /// `None` when the operation never completed.
    pub end: Option<u64>,
    pub outcome: Outcome,
    pub f: &'h str,
    pub invoke_value: &'h Value,
    /// The completion's value (null without a completion).
    pub value: &'h Value,
    pub error: Option<&'h Value>,
    pub node: Option<&'h str>,
}

impl ReportOp<'_> {
    /// The end used for drawing: a pending operation lasts until the history ends.
    pub fn end_or(&self, history_end: u64) -> u64 {
        self.end.unwrap_or(history_end).max(self.start)
    }

    pub fn latency(&self) -> Option<u64> {
        self.end.map(|e| e.saturating_sub(self.start))
    }

    /// `read [2,null] → [2,4]`, `write 3`, `cas [1,2]`: the result only when it adds something.
    pub fn value_text(&self) -> String {
        let invoked = compact(self.invoke_value);
        if self.value.is_null() || self.value == self.invoke_value {
            invoked
        } else {
            format!("{invoked} → {}", compact(self.value))
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "p{} {} {} ({})",
            self.process,
            self.f,
            self.value_text(),
            self.outcome.as_str()
        )
    }

    /// The key of a Jepsen `independent` value (`[key, v]`), for keyed checkers.
    pub fn key(&self) -> Option<&Value> {
        self.invoke_value.as_array().and_then(|a| a.first())
    }
}

/// A fault's class, which picks its colour.
pub fn fault_class(kind: &str) -> &'static str {
    match kind {
        "partition" => "partition",
        "kill" => "kill",
        "pause" => "pause",
        "clock" => "clock",
        "loss" | "latency" | "duplication" => "link",
        _ => "other",
    }
}

/// An interval during which a fault was in force.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// `partition`, `kill`, `pause`, `clock`, `loss`, ... (`fault` for Jepsen's bare start/stop).
    pub kind: String,
    pub label: String,
    pub detail: String,
    pub start: u64,
    pub end: u64,
    /// Nodes affected, when the fault names them.
    pub nodes: Vec<String>,
    /// The history index of the operation that opened it.
    pub index: u64,
}

/// A fault without a duration (or one the history never ends), drawn as a line.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultMarker {
    pub time: u64,
    pub label: String,
    pub detail: String,
    pub index: u64,
}

/// Event and operation counts for the header.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    pub events: usize,
    pub invoked: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub pending: usize,
    /// Nemesis operations by `f`.
    pub faults: BTreeMap<String, usize>,
}

impl Counts {
    pub fn faults_text(&self) -> String {
        if self.faults.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = self
            .faults
            .iter()
            .map(|(f, n)| format!("{f}×{n}"))
            .collect();
        parts.join(", ")
    }
}

/// The operation a checker blames first, and the ones it names next to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Focus {
    pub checker: String,
    /// Position in [`ReportData::ops`].
    pub op: usize,
    pub previous_ok: Option<usize>,
    /// Operations concurrent with the failing one (same key for keyed checkers).
    pub concurrent: Vec<usize>,
}

/// Everything the report draws, in the history's terms.
#[derive(Debug, Clone)]
pub struct ReportData<'h> {
    pub axis: Axis,
    /// Sorted by start (invocation order).
    pub ops: Vec<ReportOp<'h>>,
    pub lanes: u32,
    pub windows: Vec<FaultWindow>,
    pub markers: Vec<FaultMarker>,
    /// The last time in the history (on the axis).
    pub end: u64,
    pub counts: Counts,
    pub focus: Option<Focus>,
}

/// JSON without spaces; strings as themselves when they are the whole value.
pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A short form of a value for labels: compact JSON cut to `max` characters.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

impl<'h> ReportData<'h> {
    /// Builds the report's view of a history; `results` is the `results.json` object whose
    /// checkers may name a failing operation.
    pub fn build(history: &'h History, results: &Value) -> ReportData<'h> {
        let axis = if !history.ops.is_empty() && history.ops.iter().all(|o| o.time.is_some()) {
            Axis::Nanos
        } else {
            Axis::Index
        };
        let at = |op: &checkers::Op| match axis {
            Axis::Nanos => op.time.unwrap_or(0),
            Axis::Index => op.index,
        };
        let end = history.ops.iter().map(at).max().unwrap_or(0);
        let mut counts = Counts {
            events: history.ops.len(),
            ..Counts::default()
        };
        let mut ops: Vec<ReportOp<'h>> = Vec::with_capacity(history.ops.len() / 2 + 1);
        let mut open: HashMap<u64, usize> = HashMap::new();
        let mut faults = FaultTracker::default();
        let mut pending_nemesis_invoke: Option<&'h checkers::Op> = None;
        for op in &history.ops {
            let time = at(op);
            let process = match op.process {
                Process::Client(p) => p,
                Process::Nemesis => {
                    // Jepsen records a fault as an invocation and a completion; the completion
                    // says what was done, so the invocation is only kept if it is alone.
                    if op.kind == OpType::Invoke {
                        if let Some(prev) = pending_nemesis_invoke.replace(op) {
                            faults.apply(prev, at(prev));
                            *counts.faults.entry(prev.f.clone()).or_default() += 1;
                        }
                    } else {
                        pending_nemesis_invoke = None;
                        faults.apply(op, time);
                        *counts.faults.entry(op.f.clone()).or_default() += 1;
                    }
                    continue;
                }
            };
            if op.kind == OpType::Invoke {
                counts.invoked += 1;
                open.insert(process, ops.len());
                ops.push(ReportOp {
                    process,
                    lane: 0,
                    invoke_index: op.index,
                    complete_index: None,
                    start: time,
                    end: None,
                    outcome: Outcome::Pending,
                    f: &op.f,
                    invoke_value: &op.value,
                    value: &NULL,
                    error: None,
                    node: op.node.as_deref(),
                });
                continue;
            }
            let outcome = Outcome::from_completion(op.kind);
            let slot = match open.remove(&process) {
                Some(i) => i,
                None => {
                    // A completion without an invocation: show it as an instant.
                    counts.invoked += 1;
                    ops.push(ReportOp {
                        process,
                        lane: 0,
                        invoke_index: op.index,
                        complete_index: None,
                        start: time,
                        end: None,
                        outcome,
                        f: &op.f,
                        invoke_value: &op.value,
                        value: &NULL,
                        error: None,
                        node: op.node.as_deref(),
                    });
                    ops.len() - 1
                }
            };
            let entry = &mut ops[slot];
            entry.complete_index = Some(op.index);
            entry.end = Some(time.max(entry.start));
            entry.outcome = outcome;
            entry.value = &op.value;
            entry.error = op.error.as_ref();
            if entry.node.is_none() {
                entry.node = op.node.as_deref();
            }
        }
        if let Some(prev) = pending_nemesis_invoke {
            faults.apply(prev, at(prev));
            *counts.faults.entry(prev.f.clone()).or_default() += 1;
        }
        for op in &ops {
            match op.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Info => counts.info += 1,
                Outcome::Pending => counts.pending += 1,
            }
        }
        // History order is invocation order, except for orphan completions; keep it stable.
        ops.sort_by_key(|o| (o.start, o.invoke_index));
        let lanes = assign_lanes(&mut ops, end);
        let (windows, markers) = faults.finish(end);
        let mut data = ReportData {
            axis,
            ops,
            lanes,
            windows,
            markers,
            end,
            counts,
            focus: None,
        };
        data.focus = find_focus(&data, results);
        data
    }

    /// The position of the operation whose completion (or, failing that, invocation) has this
    /// history index.
    pub fn op_by_index(&self, index: u64) -> Option<usize> {
        self.ops
            .iter()
            .position(|o| o.complete_index == Some(index))
            .or_else(|| self.ops.iter().position(|o| o.invoke_index == index))
    }

    /// Positions of operations overlapping `[start, end]` in time, optionally on one key.
    pub fn overlapping(&self, start: u64, end: u64, key: Option<&Value>) -> Vec<usize> {
        // Sorted by start: nothing after the first start beyond `end` can overlap.
        let upto = self.ops.partition_point(|o| o.start <= end);
        (0..upto)
            .filter(|&i| {
                let o = &self.ops[i];
                o.end_or(self.end) >= start && key.is_none_or(|k| o.key() == Some(k))
            })
            .collect()
    }
}

impl ReportData<'_> {
    /// Operations that overlap `op` in time and could have taken effect (not `fail`), on the
    /// same key when there is one; at most [`MAX_CONCURRENT`], the closest in start time.
    pub fn concurrent_with(&self, op: usize, key: Option<&Value>) -> Vec<usize> {
        let target = &self.ops[op];
        let mut concurrent: Vec<usize> = self
            .overlapping(target.start, target.end_or(self.end), key)
            .into_iter()
            .filter(|&i| i != op && self.ops[i].outcome != Outcome::Fail)
            .collect();
        if concurrent.len() > MAX_CONCURRENT {
            concurrent.sort_by_key(|&i| self.ops[i].start.abs_diff(target.start));
            concurrent.truncate(MAX_CONCURRENT);
            concurrent.sort_unstable();
        }
        concurrent
    }
}

/// Gives each process a lane: processes sorted by first invocation take the lowest lane whose
/// previous process had finished for good, so lanes stay few and stable across the whole run.
fn assign_lanes(ops: &mut [ReportOp], history_end: u64) -> u32 {
    let mut span: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for o in ops.iter() {
        let e = o.end_or(history_end);
        span.entry(o.process)
            .and_modify(|(first, last)| {
                *first = (*first).min(o.start);
                *last = (*last).max(e);
            })
            .or_insert((o.start, e));
    }
    let mut order: Vec<(u64, u64, u64)> = span.iter().map(|(&p, &(f, l))| (f, p, l)).collect();
    order.sort_unstable();
    let mut busy: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    let mut free: BTreeSet<u32> = BTreeSet::new();
    let mut next_lane = 0u32;
    let mut lane_of: HashMap<u64, u32> = HashMap::new();
    for (first, process, last) in order {
        while let Some(&Reverse((until, lane))) = busy.peek() {
            if until >= first {
                break;
            }
            busy.pop();
            free.insert(lane);
        }
        let lane = free.pop_first().unwrap_or_else(|| {
            next_lane += 1;
            next_lane - 1
        });
        busy.push(Reverse((last, lane)));
        lane_of.insert(process, lane);
    }
    // Number lanes by the smallest process that used each, so the first rows read p0, p1, ...
    let mut smallest = vec![u64::MAX; next_lane as usize];
    for (&process, &lane) in &lane_of {
        smallest[lane as usize] = smallest[lane as usize].min(process);
    }
    let mut by_process: Vec<u32> = (0..next_lane).collect();
    by_process.sort_by_key(|&lane| smallest[lane as usize]);
    let mut renumber = vec![0u32; next_lane as usize];
    for (new, &old) in by_process.iter().enumerate() {
        renumber[old as usize] = new as u32;
    }
    for o in ops.iter_mut() {
        o.lane = lane_of
            .get(&o.process)
            .map_or(0, |&lane| renumber[lane as usize]);
    }
    next_lane
}

/// What a nemesis operation does to the set of faults in force.
enum FaultAction {
    /// Opens a window of this kind (closed by the matching stop).
    Open(String),
    Close(String),
    /// Opens a per-node window (closed node by node).
    OpenNodes(&'static str),
    CloseNodes(&'static str),
    Marker,
}

fn classify(f: &str) -> FaultAction {
    match f {
        "start" => FaultAction::Open("fault".into()),
        "stop" => FaultAction::Close("fault".into()),
        "kill" | "crash" => FaultAction::OpenNodes("kill"),
        "restart" => FaultAction::CloseNodes("kill"),
        "pause" => FaultAction::OpenNodes("pause"),
        "resume" => FaultAction::CloseNodes("pause"),
        "clock-bump" | "clock-strobe" | "clock-drift" | "bump-clock" | "strobe-clock" => {
            FaultAction::OpenNodes("clock")
        }
        "clock-reset" | "reset-clock" => FaultAction::CloseNodes("clock"),
        _ => {
            if let Some(kind) = f.strip_prefix("start-") {
                FaultAction::Open(kind.to_string())
            } else if let Some(kind) = f.strip_prefix("stop-") {
                FaultAction::Close(kind.to_string())
            } else {
                FaultAction::Marker
            }
        }
    }
}

/// The nodes a fault names: a list of node names, or an object with a `node`.
fn fault_nodes(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::Object(m) => m
            .get("node")
            .and_then(Value::as_str)
            .map(|n| vec![n.to_string()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn fault_label(f: &str, kind: &str, value: &Value) -> String {
    let num = |k: &str| value.get(k).and_then(Value::as_f64);
    match kind {
        "partition" => match value.get("shape").and_then(Value::as_str) {
            Some(shape) => format!("partition ({shape})"),
            None => "partition".into(),
        },
        "loss" | "duplication" => match num("probability") {
            Some(p) => format!("{kind} p={p:.2}"),
            None => kind.into(),
        },
        "latency" => match num("extra_ms") {
            Some(ms) => format!("latency +{ms:.0} ms"),
            None => kind.into(),
        },
        "kill" | "pause" => format!("{kind} {}", fault_nodes(value).join(",")),
        "clock" => {
            let node = value.get("node").and_then(Value::as_str).unwrap_or("");
            if let Some(ppm) = num("ppm") {
                format!("clock drift {node} {ppm:+.0} ppm")
            } else if let Some(ms) = num("delta_ms") {
                let what = if f.contains("strobe") {
                    "strobe"
                } else {
                    "bump"
                };
                format!("clock {what} {node} {ms:+.0} ms")
            } else {
                format!("{f} {node}")
            }
        }
        "fault" if value.is_null() => "nemesis fault".into(),
        "fault" => truncate(&format!("nemesis: {}", compact(value)), 40),
        _ if value.is_null() => f.to_string(),
        _ => truncate(&format!("{f} {}", compact(value)), 40),
    }
}

fn fault_detail(op: &checkers::Op) -> String {
    let value = if op.value.is_null() {
        String::new()
    } else {
        format!(" {}", truncate(&compact(&op.value), 400))
    };
    format!("op {}: {}{value}", op.index, op.f)
}

struct OpenWindow {
    window: FaultWindow,
    /// Nodes still faulty; empty for faults that do not name nodes.
    remaining: BTreeSet<String>,
}

/// Turns nemesis operations, in order, into windows and markers.
#[derive(Default)]
struct FaultTracker {
    open: Vec<OpenWindow>,
    windows: Vec<FaultWindow>,
    markers: Vec<FaultMarker>,
}

impl FaultTracker {
    fn apply(&mut self, op: &checkers::Op, time: u64) {
        match classify(&op.f) {
            FaultAction::Open(kind) => {
                // A second start while one is in force changes nothing we can draw, but it may
                // say what the first did not (Jepsen logs `:start nil`, then what it started).
                match self.open.iter_mut().find(|w| w.window.kind == kind) {
                    Some(w) => {
                        if w.window.label == fault_label(&op.f, &kind, &Value::Null)
                            && !op.value.is_null()
                        {
                            w.window.label = fault_label(&op.f, &kind, &op.value);
                            w.window.detail = fault_detail(op);
                        }
                    }
                    None => self.open_window(op, time, &kind, Vec::new()),
                }
            }
            FaultAction::Close(kind) => self.close(&kind, &[], time),
            FaultAction::OpenNodes(kind) => {
                let nodes = fault_nodes(&op.value);
                if kind == "clock" {
                    self.open_window(op, time, kind, nodes);
                    return;
                }
                let already: BTreeSet<&String> = self
                    .open
                    .iter()
                    .filter(|w| w.window.kind == kind)
                    .flat_map(|w| w.remaining.iter())
                    .collect();
                let fresh: Vec<String> = nodes
                    .iter()
                    .filter(|n| !already.contains(n))
                    .cloned()
                    .collect();
                if nodes.is_empty() || !fresh.is_empty() {
                    self.open_window(op, time, kind, fresh);
                }
            }
            FaultAction::CloseNodes(kind) => {
                let nodes = fault_nodes(&op.value);
                self.close(kind, &nodes, time);
            }
            FaultAction::Marker => self.markers.push(FaultMarker {
                time,
                label: fault_label(&op.f, &op.f, &op.value),
                detail: fault_detail(op),
                index: op.index,
            }),
        }
    }

    fn open_window(&mut self, op: &checkers::Op, time: u64, kind: &str, nodes: Vec<String>) {
        if kind == "clock" {
            // A new clock fault on a node replaces the one in force there.
            self.close(kind, &nodes, time);
        }
        self.open.push(OpenWindow {
            window: FaultWindow {
                kind: kind.to_string(),
                label: fault_label(&op.f, kind, &op.value),
                detail: fault_detail(op),
                start: time,
                end: time,
                nodes: nodes.clone(),
                index: op.index,
            },
            remaining: nodes.into_iter().collect(),
        });
    }

    /// Closes windows of `kind`: all of them when `nodes` is empty, else those nodes' share.
    fn close(&mut self, kind: &str, nodes: &[String], time: u64) {
        let mut still_open = Vec::new();
        for mut w in std::mem::take(&mut self.open) {
            if w.window.kind == kind {
                if nodes.is_empty() || w.remaining.is_empty() {
                    w.remaining.clear();
                } else {
                    for n in nodes {
                        w.remaining.remove(n);
                    }
                }
                if w.remaining.is_empty() {
                    w.window.end = time;
                    self.windows.push(w.window);
                    continue;
                }
            }
            still_open.push(w);
        }
        self.open = still_open;
    }

    fn finish(mut self, end: u64) -> (Vec<FaultWindow>, Vec<FaultMarker>) {
        for w in std::mem::take(&mut self.open) {
            let mut window = w.window;
            window.end = end;
            self.windows.push(window);
        }
        self.windows.sort_by_key(|w| (w.start, w.index));
        self.markers.sort_by_key(|m| (m.time, m.index));
        (self.windows, self.markers)
    }
}

/// At most this many concurrent operations are named next to a failing one.
const MAX_CONCURRENT: usize = 60;

/// The first checker result that names an operation (`"op": {"index": ...}`) is the focus.
fn find_focus(data: &ReportData<'_>, results: &Value) -> Option<Focus> {
    let checkers = results.as_object()?;
    for (name, result) in checkers {
        let Some(index) = result
            .get("op")
            .and_then(|op| op.get("index"))
            .and_then(Value::as_u64)
        else {
            continue;
        };
        let Some(op) = data.op_by_index(index) else {
            continue;
        };
        let previous_ok = result
            .get("previous_ok")
            .and_then(|p| p.get("index"))
            .and_then(Value::as_u64)
            .and_then(|i| data.op_by_index(i));
        return Some(Focus {
            checker: name.clone(),
            op,
            previous_ok,
            concurrent: data.concurrent_with(op, result.get("key")),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn history(lines: &[Value]) -> History {
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        History::parse(&text.join("\n"), checkers::Format::Jsonl, "test").unwrap()
    }

    #[test]
    fn operations_are_paired_and_retired_processes_reuse_lanes() {
        let h = history(&[
            json!({"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}),
            json!({"index":1,"time":5,"process":1,"type":"invoke","f":"read","value":null}),
            json!({"index":2,"time":10,"process":0,"type":"info","f":"write","value":1}),
            json!({"index":3,"time":12,"process":1,"type":"ok","f":"read","value":1}),
            json!({"index":4,"time":20,"process":2,"type":"invoke","f":"read","value":null}),
            json!({"index":5,"time":30,"process":2,"type":"fail","f":"read","value":null}),
            json!({"index":6,"time":40,"process":1,"type":"invoke","f":"write","value":2}),
        ]);
        let d = ReportData::build(&h, &json!({}));
        assert_eq!(d.axis, Axis::Nanos);
        assert_eq!(d.ops.len(), 4);
        assert_eq!(d.lanes, 2);
        // Process 2 starts after process 0 was retired: it takes lane 0.
        assert_eq!(d.ops[0].lane, d.ops[2].lane);
        assert_eq!(d.ops[1].outcome, Outcome::Ok);
        assert_eq!(d.ops[1].value_text(), "null → 1");
        assert_eq!(d.ops[3].outcome, Outcome::Pending);
        assert_eq!(
            (d.counts.ok, d.counts.fail, d.counts.info, d.counts.pending),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn faults_become_windows_node_by_node_and_markers() {
        let h = history(&[
            json!({"index":0,"time":0,"process":"nemesis","type":"info","f":"kill","value":["n1","n3"]}),
            json!({"index":1,"time":5,"process":"nemesis","type":"info","f":"start-partition","value":{"shape":"bridge","grudge":{}}}),
            json!({"index":2,"time":10,"process":"nemesis","type":"info","f":"restart","value":["n1"]}),
            json!({"index":3,"time":15,"process":"nemesis","type":"info","f":"stop-partition","value":null}),
            json!({"index":4,"time":20,"process":"nemesis","type":"info","f":"restart","value":["n3"]}),
            json!({"index":5,"time":25,"process":"nemesis","type":"info","f":"stop-loss","value":null}),
            json!({"index":6,"time":30,"process":"nemesis","type":"info","f":"teleport","value":7}),
            json!({"index":7,"time":35,"process":"nemesis","type":"info","f":"pause","value":["n2"]}),
        ]);
        let d = ReportData::build(&h, &json!({}));
        let spans: Vec<(&str, u64, u64)> = d
            .windows
            .iter()
            .map(|w| (w.kind.as_str(), w.start, w.end))
            .collect();
        assert_eq!(
            spans,
            vec![("kill", 0, 20), ("partition", 5, 15), ("pause", 35, 35)]
        );
        assert_eq!(d.windows[1].label, "partition (bridge)");
        assert_eq!(d.markers.len(), 1);
        assert_eq!(d.markers[0].label, "teleport 7");
        assert_eq!(d.counts.faults["restart"], 2);
    }

    #[test]
    fn jepsen_fault_invocations_are_folded_into_their_completions() {
        let h = history(&[
            json!({"index":0,"process":"nemesis","type":"invoke","f":"start","value":null}),
            json!({"index":1,"process":"nemesis","type":"info","f":"start","value":"cut"}),
            json!({"index":2,"process":0,"type":"invoke","f":"read","value":null}),
            json!({"index":3,"process":0,"type":"ok","f":"read","value":0}),
            json!({"index":4,"process":"nemesis","type":"info","f":"stop","value":null}),
        ]);
        let d = ReportData::build(&h, &json!({}));
        assert_eq!(d.axis, Axis::Index);
        assert_eq!(d.windows.len(), 1);
        assert_eq!(d.windows[0].label, "nemesis: cut");
        assert_eq!((d.windows[0].start, d.windows[0].end), (1, 4));
        assert_eq!(d.counts.faults["start"], 1);
    }

    #[test]
    fn the_focus_is_the_operation_a_checker_names_with_its_concurrent_ops() {
        let h = history(&[
            json!({"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":[1,1]}),
            json!({"index":1,"time":10,"process":0,"type":"ok","f":"write","value":[1,1]}),
            json!({"index":2,"time":20,"process":1,"type":"invoke","f":"read","value":[1,null]}),
            json!({"index":3,"time":22,"process":2,"type":"invoke","f":"write","value":[1,2]}),
            json!({"index":4,"time":24,"process":3,"type":"invoke","f":"write","value":[9,2]}),
            json!({"index":5,"time":30,"process":1,"type":"ok","f":"read","value":[1,3]}),
        ]);
        let results = json!({"valid": false, "linearizability": {"valid": false, "key": 1,
            "op": {"index": 5}, "previous_ok": {"index": 1}}});
        let d = ReportData::build(&h, &results);
        let focus = d.focus.expect("a focus");
        assert_eq!(focus.checker, "linearizability");
        assert_eq!(d.ops[focus.op].complete_index, Some(5));
        assert_eq!(focus.previous_ok, Some(0));
        // The write on key 9 overlaps in time but not in key.
        let names: Vec<u64> = focus.concurrent.iter().map(|&i| d.ops[i].process).collect();
        assert_eq!(names, vec![2]);
    }
}
