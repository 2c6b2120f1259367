//! The linearizability counterexample, drawn: the operations concurrent with the one that
//! cannot be linearized, the longest partial linearizations threaded through them (in the
//! manner of Knossos's linear.svg), the model state after each step, and why the next operation
//! fails.

use super::data::{ReportData, compact, truncate};
use super::svg::{esc, time_label};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// At most this many operations are drawn.
const MAX_DRAWN: usize = 32;
const WIDTH: f64 = 1000.0;
/// Where bars start: the row labels are to their left.
const BAR_LEFT: f64 = 330.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 24.0;
const TOP: f64 = 42.0;

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub op: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathView {
    pub number: usize,
    pub start_state: String,
    pub omitted: usize,
    pub steps: Vec<Step>,
    pub failing: String,
    pub failure: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CounterexampleView {
    pub checker: String,
    pub model: String,
    pub key: Option<String>,
    pub op: String,
    pub op_index: u64,
    pub previous_ok: Option<String>,
    pub concurrent: Vec<String>,
    pub concurrent_total: usize,
    pub svg: String,
    pub paths: Vec<PathView>,
}

/// `op 14 · p3 read [2,null] → [2,4] (ok)` from a checker's operation object.
fn describe(op: &Value) -> String {
    let f = op.get("f").and_then(Value::as_str).unwrap_or("?");
    let invoked = op.get("invoke_value").cloned().unwrap_or(Value::Null);
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    let text = if value.is_null() || value == invoked {
        compact(&invoked)
    } else {
        format!("{} → {}", compact(&invoked), compact(&value))
    };
    let kind = op.get("type").and_then(Value::as_str).unwrap_or("ok");
    let process = op.get("process").map(compact).unwrap_or_default();
    let index = op.get("index").map(compact).unwrap_or_default();
    format!("op {index} · p{process} {f} {text} ({kind})")
}

fn index_of(op: &Value) -> Option<u64> {
    op.get("index").and_then(Value::as_u64)
}

/// Every checker result that carries a counterexample (`op` and `final_paths`).
pub fn counterexamples(data: &ReportData, results: &Value) -> Vec<CounterexampleView> {
    let Some(checkers) = results.as_object() else {
        return Vec::new();
    };
    checkers
        .iter()
        .filter(|(_, r)| r.get("op").is_some() && r.get("final_paths").is_some())
        .map(|(name, r)| view(data, name, r))
        .collect()
}

fn view(data: &ReportData, checker: &str, result: &Value) -> CounterexampleView {
    let op_json = &result["op"];
    let failing = index_of(op_json).and_then(|i| data.op_by_index(i));
    let key = result.get("key");
    let concurrent = failing
        .map(|f| data.concurrent_with(f, key))
        .unwrap_or_default();
    let paths: Vec<PathView> = result["final_paths"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .enumerate()
                .map(|(n, p)| {
                    let states = p["states"].as_array().cloned().unwrap_or_default();
                    let steps = p["ops"]
                        .as_array()
                        .map(|ops| {
                            ops.iter()
                                .zip(states.iter().chain(std::iter::repeat(&Value::Null)))
                                .map(|(op, state)| Step {
                                    op: describe(op),
                                    state: truncate(&compact(state), 200),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    PathView {
                        number: n + 1,
                        start_state: truncate(&compact(&p["start_state"]), 200),
                        omitted: p["omitted"].as_u64().unwrap_or(0) as usize,
                        steps,
                        failing: describe(&p["failing_op"]),
                        failure: p["failure"].as_str().unwrap_or("").to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let svg = failing
        .map(|f| draw(data, f, result, &concurrent))
        .unwrap_or_default();
    CounterexampleView {
        checker: checker.to_string(),
        model: result["model"].as_str().unwrap_or("").to_string(),
        key: key.map(compact),
        op: describe(op_json),
        op_index: index_of(op_json).unwrap_or(0),
        previous_ok: result
            .get("previous_ok")
            .filter(|p| !p.is_null())
            .map(describe),
        concurrent_total: concurrent.len(),
        concurrent: concurrent
            .iter()
            .take(MAX_DRAWN)
            .map(|&i| {
                let o = &data.ops[i];
                format!(
                    "op {} · p{} {} {} ({})",
                    o.complete_index.unwrap_or(o.invoke_index),
                    o.process,
                    o.f,
                    o.value_text(),
                    o.outcome.as_str()
                )
            })
            .collect(),
        svg,
        paths,
    }
}

/// The operations around the failing one, one row each, on an axis of event order (every
/// invocation and completion gets one step, as in Knossos's linear.svg: what matters is which
/// operations overlap, not by how much), with the first (longest) partial linearization
/// threaded through them: numbered points with the state after each, ending in a cross.
fn draw(data: &ReportData, failing: usize, result: &Value, concurrent: &[usize]) -> String {
    let first_path = result["final_paths"].get(0);
    let path_ops: Vec<usize> = first_path
        .and_then(|p| p["ops"].as_array())
        .map(|ops| {
            ops.iter()
                .filter_map(|o| index_of(o).and_then(|i| data.op_by_index(i)))
                .collect()
        })
        .unwrap_or_default();
    let previous_ok = result
        .get("previous_ok")
        .and_then(index_of)
        .and_then(|i| data.op_by_index(i));
    // Most telling first: the failing operation, the path, the previous ok, then the rest.
    let mut chosen: Vec<usize> = vec![failing];
    for &i in path_ops
        .iter()
        .chain(previous_ok.iter())
        .chain(concurrent.iter())
    {
        if chosen.len() >= MAX_DRAWN {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.sort_by_key(|&i| (data.ops[i].start, data.ops[i].invoke_index));

    // Event order: operations that never completed end after every drawn event.
    let mut events: Vec<u64> = chosen
        .iter()
        .flat_map(|&i| [Some(data.ops[i].start), data.ops[i].end])
        .flatten()
        .collect();
    events.sort_unstable();
    events.dedup();
    let slots = events.len() as f64 + 1.0;
    let rank = |t: u64| events.partition_point(|&e| e < t) as f64;
    let end_rank = |i: usize| data.ops[i].end.map_or(slots - 0.5, rank);
    let slot_w = (WIDTH - BAR_LEFT - RIGHT) / slots;
    let x_of = |r: f64| BAR_LEFT + (r + 0.5) * slot_w;
    let row_y = |i: usize| TOP + chosen.iter().position(|&c| c == i).unwrap_or(0) as f64 * ROW;
    let height = TOP + chosen.len() as f64 * ROW + 30.0;
    let bottom = TOP + chosen.len() as f64 * ROW - ROW / 2.0;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="linear" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="The operations around the failing one" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        out,
        r#"<text class="legend" x="8" y="16">One row per operation; left to right, the order in which operations were invoked and completed (not to scale). Red band: the failing operation's interval.</text>"#
    );
    // The failing operation's interval across every row: what overlaps it is concurrent.
    let (f0, f1) = (
        x_of(rank(data.ops[failing].start)) - slot_w * 0.4,
        x_of(end_rank(failing)) + slot_w * 0.4,
    );
    let _ = write!(
        out,
        r#"<rect class="failing-band" x="{f0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
        TOP - ROW / 2.0,
        f1 - f0,
        bottom - TOP + ROW / 2.0
    );
    for (n, &i) in chosen.iter().enumerate() {
        let o = &data.ops[i];
        let y = row_y(i);
        if n % 2 == 1 {
            let _ = write!(
                out,
                r#"<rect class="row-bg" x="0" y="{:.1}" width="{WIDTH}" height="{ROW}"/>"#,
                y - ROW / 2.0
            );
        }
        let class = if i == failing {
            "op failing"
        } else if Some(i) == previous_ok {
            "op previous"
        } else {
            "op"
        };
        let x0 = x_of(rank(o.start)) - slot_w * 0.4;
        let x1 = x_of(end_rank(i)) + slot_w * 0.4;
        let label = truncate(
            &format!(
                "op {} · p{} {} {}",
                o.complete_index.unwrap_or(o.invoke_index),
                o.process,
                o.f,
                o.value_text()
            ),
            46,
        );
        let _ = write!(
            out,
            r#"<g class="{class} {outcome}"><text class="op-label" x="8" y="{:.1}">{}</text><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="14" rx="3"/>"#,
            y + 4.0,
            esc(&label),
            y - 7.0,
            (x1 - x0).max(3.0),
            outcome = o.outcome.as_str()
        );
        if o.end.is_none() {
            let _ = write!(
                out,
                r#"<path class="open-end" d="M{x1:.1} {:.1}l6 7-6 7z"/>"#,
                y - 7.0
            );
        }
        let when = match o.end {
            Some(e) => format!(
                "{} to {}",
                time_label(data.axis, o.start as f64, 1.0),
                time_label(data.axis, e as f64, 1.0)
            ),
            None => format!(
                "{}, never completed",
                time_label(data.axis, o.start as f64, 1.0)
            ),
        };
        let _ = write!(
            out,
            "<title>{} · {}</title></g>",
            esc(&o.describe()),
            esc(&when)
        );
    }
    // Thread the first path: a point inside each operation's interval, in order.
    if let Some(path) = first_path {
        let states: Vec<String> = path["states"]
            .as_array()
            .map(|s| s.iter().map(|v| truncate(&compact(v), 24)).collect())
            .unwrap_or_default();
        let eps = 0.2;
        let mut prev = f64::MIN;
        let mut points: Vec<(f64, f64, Option<String>)> = Vec::new();
        for (n, &i) in path_ops.iter().enumerate() {
            if !chosen.contains(&i) {
                continue;
            }
            let lo = rank(data.ops[i].start);
            let r = (prev + eps).max(lo).min(end_rank(i) + 0.3);
            prev = r;
            let state = states.get(n).cloned().unwrap_or_default();
            points.push((x_of(r), row_y(i), Some(state)));
        }
        let r = (prev + eps)
            .max(rank(data.ops[failing].start))
            .min(end_rank(failing) + 0.3);
        points.push((x_of(r), row_y(failing), None));
        // The reason is written on the failing row, left of its bar where the row is empty,
        // or right of it when the bar starts too far left.
        let why = first_path
            .and_then(|p| p["failure"].as_str())
            .unwrap_or("cannot be linearized here");
        let why_short = truncate(why, 60);
        let why_width = why_short.chars().count() as f64 * 6.6;
        let bar_start = x_of(rank(data.ops[failing].start)) - slot_w * 0.4;
        let bar_end = x_of(end_rank(failing)) + slot_w * 0.4;
        let (reason_x, reason_anchor) = if bar_start - 14.0 - why_width >= BAR_LEFT {
            (bar_start - 14.0, "end")
        } else if bar_end + 14.0 + why_width <= WIDTH {
            (bar_end + 14.0, "start")
        } else {
            (BAR_LEFT, "start")
        };
        if points.len() > 1 {
            let d: Vec<String> = points
                .iter()
                .map(|(x, y, _)| format!("{x:.1} {y:.1}"))
                .collect();
            let _ = write!(out, r#"<path class="linearization" d="M{}"/>"#, d.join("L"));
        }
        for (n, (x, y, state)) in points.iter().enumerate() {
            match state {
                Some(state) => {
                    let _ = write!(
                        out,
                        r#"<g class="lin-point"><circle cx="{x:.1}" cy="{y:.1}" r="8"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="state" x="{:.1}" y="{:.1}">⇒ {}</text></g>"#,
                        y + 3.5,
                        n + 1,
                        x + 11.0,
                        y + 4.0,
                        esc(state)
                    );
                }
                None => {
                    let reason_y = if reason_x == BAR_LEFT && reason_anchor == "start" {
                        y + ROW * 0.9
                    } else {
                        y + 4.0
                    };
                    let _ = write!(
                        out,
                        r#"<g class="lin-fail"><circle cx="{x:.1}" cy="{y:.1}" r="8"/><path d="M{:.1} {:.1}l8 8m0-8l-8 8"/><text class="why" x="{reason_x:.1}" y="{reason_y:.1}" text-anchor="{reason_anchor}">{}</text><title>{}</title></g>"#,
                        x - 4.0,
                        y - 4.0,
                        esc(&why_short),
                        esc(why)
                    );
                }
            }
        }
    }
    let first = events.first().copied().unwrap_or(0) as f64;
    let last = events.last().copied().unwrap_or(0) as f64;
    let _ = write!(
        out,
        r#"<text class="tick" x="{BAR_LEFT}" y="{:.1}">{}</text><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text></svg>"#,
        height - 8.0,
        esc(&time_label(data.axis, first, last - first)),
        WIDTH - RIGHT,
        height - 8.0,
        esc(&time_label(data.axis, last, last - first)),
    );
    out
}
