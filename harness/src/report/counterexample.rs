//! The linearizability counterexample, drawn: the operations concurrent with the one that
//! cannot be linearized, the longest partial linearizations threaded through them (in the
//! manner of Knossos's linear.svg), the model state after each step, and why the next operation
//! fails.

use super::data::{ReportData, compact, truncate};
use super::svg::{esc, ticks, time_label};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

/// At most this many operations are drawn.
const MAX_DRAWN: usize = 32;
const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 30.0;
const TOP: f64 = 56.0;

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

/// The operations around the failing one as bars per process, and the first (longest) partial
/// linearization threaded through them as numbered points with the state after each.
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
    let fail_op = &data.ops[failing];
    let fail_end = fail_op.end_or(data.end);
    let t0 = chosen.iter().map(|&i| data.ops[i].start).min().unwrap_or(0);
    let natural_end = chosen
        .iter()
        .filter_map(|&i| data.ops[i].end)
        .max()
        .unwrap_or(fail_end)
        .max(fail_end);
    // Operations that never completed would stretch the picture: cut them a little after.
    let span = (fail_end.max(natural_end) - t0).max(1) as f64;
    let t1 = (natural_end as f64).min(fail_end as f64 + span * 0.25);
    let (t0f, t1f) = (t0 as f64 - span * 0.03, t1 + span * 0.03);
    let x_of = |t: f64| LEFT + (t - t0f) / (t1f - t0f) * (WIDTH - LEFT - RIGHT);

    let processes: BTreeSet<u64> = chosen.iter().map(|&i| data.ops[i].process).collect();
    let lanes: Vec<u64> = processes.into_iter().collect();
    let lane_y = |p: u64| TOP + lanes.iter().position(|&q| q == p).unwrap_or(0) as f64 * LANE;
    let height = TOP + lanes.len() as f64 * LANE + 34.0;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="linear" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="The operations around the failing one" xmlns="http://www.w3.org/2000/svg">"#
    );
    let axis_y = height - 22.0;
    for t in ticks(t0f.max(0.0), t1f, 8.0) {
        let x = x_of(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{axis_y:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP - 14.0,
            axis_y + 14.0,
            esc(&time_label(data.axis, t, t1f - t0f))
        );
    }
    for &p in &lanes {
        let y = lane_y(p);
        let _ = write!(
            out,
            r#"<text class="lane-label" x="{:.1}" y="{:.1}" text-anchor="end">p{p}</text>"#,
            LEFT - 8.0,
            y + 4.0
        );
    }
    for &i in &chosen {
        let o = &data.ops[i];
        let y = lane_y(o.process);
        let x0 = x_of(o.start as f64);
        let open_ended = o.end.is_none_or(|e| e as f64 > t1);
        let x1 = x_of(o.end.map_or(t1, |e| (e as f64).min(t1))).max(x0 + 3.0);
        let class = if i == failing {
            "op failing"
        } else if Some(i) == previous_ok {
            "op previous"
        } else {
            "op"
        };
        let label = truncate(&format!("{} {}", o.f, o.value_text()), 60);
        let _ = write!(
            out,
            r#"<g class="{class} {outcome}"><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="16" rx="3"/>"#,
            y - 8.0,
            x1 - x0,
            outcome = o.outcome.as_str()
        );
        if open_ended {
            let _ = write!(
                out,
                r#"<path class="open-end" d="M{x1:.1} {:.1}l6 8-6 8z"/>"#,
                y - 8.0
            );
        }
        // The label sits above the bar when the bar is too short to hold it.
        let label_width = label.chars().count() as f64 * 6.2;
        let fits = (x1 - x0) > label_width + 8.0;
        let (lx, ly, anchor) = if fits {
            (x0 + 4.0, y + 4.0, "start")
        } else if x0 + label_width > WIDTH - 4.0 {
            // Near the right edge the label ends where the bar does.
            (x1, y - 11.0, "end")
        } else {
            (x0, y - 11.0, "start")
        };
        let _ = write!(
            out,
            r#"<text class="op-label{}" x="{lx:.1}" y="{ly:.1}" text-anchor="{anchor}">{}</text><title>{}</title></g>"#,
            if fits { " inside" } else { "" },
            esc(&label),
            esc(&o.describe())
        );
    }
    // Thread the first path: a point inside each operation's interval, in order.
    if let Some(path) = first_path {
        let states: Vec<String> = path["states"]
            .as_array()
            .map(|s| s.iter().map(|v| truncate(&compact(v), 24)).collect())
            .unwrap_or_default();
        let eps = (t1f - t0f) * 0.012;
        let mut prev = f64::MIN;
        let mut points: Vec<(f64, f64, String, bool)> = Vec::new();
        for (n, &i) in path_ops.iter().enumerate() {
            if !chosen.contains(&i) {
                continue;
            }
            let o = &data.ops[i];
            let hi = o.end.map_or(t1, |e| e as f64).min(t1);
            let t = (prev + eps).max(o.start as f64).min(hi.max(o.start as f64));
            prev = t;
            let state = states.get(n).cloned().unwrap_or_default();
            points.push((x_of(t), lane_y(o.process), state, false));
        }
        let t = (prev + eps)
            .max(fail_op.start as f64)
            .min(fail_end as f64);
        points.push((x_of(t), lane_y(fail_op.process), String::new(), true));
        if points.len() > 1 {
            let d: Vec<String> = points
                .iter()
                .map(|(x, y, _, _)| format!("{x:.1} {y:.1}"))
                .collect();
            let _ = write!(
                out,
                r#"<path class="linearization" d="M{}"/>"#,
                d.join("L")
            );
        }
        for (n, (x, y, state, is_fail)) in points.iter().enumerate() {
            if *is_fail {
                let _ = write!(
                    out,
                    r#"<g class="lin-fail"><circle cx="{x:.1}" cy="{y:.1}" r="8"/><path d="M{:.1} {:.1}l8 8m0-8l-8 8"/><title>{}</title></g>"#,
                    x - 4.0,
                    y - 4.0,
                    esc(first_path
                        .and_then(|p| p["failure"].as_str())
                        .unwrap_or("cannot be linearized here"))
                );
            } else {
                let _ = write!(
                    out,
                    r#"<g class="lin-point"><circle cx="{x:.1}" cy="{y:.1}" r="8"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="state" x="{:.1}" y="{:.1}">⇒ {}</text></g>"#,
                    y + 3.5,
                    n + 1,
                    x + 10.0,
                    y + 20.0,
                    esc(state)
                );
            }
        }
    }
    let _ = write!(
        out,
        r#"<text class="legend" x="{LEFT}" y="16">failing op outlined in red · previous ok op in blue · numbered points: the longest partial linearization, with the state after each step</text></svg>"#
    );
    out
}
