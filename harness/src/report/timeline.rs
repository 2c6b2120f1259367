//! The timeline's data, as compact column-wise JSON the page's script draws a window of.
//!
//! A 100k-operation history must stay small, so every column is an array of small integers:
//! start times are deltas from the previous operation's start, strings (function names,
//! values, errors, nodes) are indices into tables, and times on nanosecond axes are stored in
//! microseconds.

use super::data::{Axis, ReportData};
use std::collections::HashMap;
use std::fmt::Write;

/// Operations shown around the first failure when the page opens.
const INITIAL_OPS: usize = 160;

/// Interns strings: each distinct string is written once.
#[derive(Default)]
struct Table {
    index: HashMap<String, usize>,
    items: Vec<String>,
}

impl Table {
    fn with_empty() -> Table {
        let mut t = Table::default();
        t.id("");
        t
    }

    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.items.len();
        self.index.insert(s.to_string(), i);
        self.items.push(s.to_string());
        i
    }

    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, s) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(out, s);
        }
        out.push(']');
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Appends `"name":[a,b,c]`.
fn column<T: std::fmt::Display>(out: &mut String, name: &str, values: impl Iterator<Item = T>) {
    let _ = write!(out, "\"{name}\":[");
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push_str("],");
}

/// The unit times are stored in, in axis ticks (ns per stored unit).
fn scale(axis: Axis) -> u64 {
    match axis {
        Axis::Nanos => 1000,
        Axis::Index => 1,
    }
}

/// The window the page opens on: about [`INITIAL_OPS`] operations around the first failure, or
/// the first ones when nothing failed. In axis ticks.
pub fn initial_view(data: &ReportData) -> (u64, u64) {
    let n = data.ops.len();
    if n == 0 {
        return (0, data.end.max(1));
    }
    let (lo, hi, must_show) = match &data.focus {
        Some(focus) => {
            let k = focus.op;
            let lo = k.saturating_sub(INITIAL_OPS / 2);
            let hi = (k + INITIAL_OPS / 2).min(n - 1);
            let op = &data.ops[k];
            (lo, hi, Some((op.start, op.end_or(data.end))))
        }
        None => (0, (INITIAL_OPS - 1).min(n - 1), None),
    };
    let mut t0 = data.ops[lo].start;
    let mut t1 = data.ops[hi].end.unwrap_or(data.ops[hi].start);
    if let Some((s, e)) = must_show {
        t0 = t0.min(s);
        t1 = t1.max(e);
    }
    if t1 <= t0 {
        t1 = t0 + 1;
    }
    let pad = (t1 - t0) / 25;
    (t0.saturating_sub(pad), t1 + pad)
}

/// The timeline's JSON (to embed in a `<script type="application/json">`).
pub fn timeline_json(data: &ReportData) -> String {
    let unit = scale(data.axis);
    let ops = &data.ops;
    let mut fs = Table::default();
    let mut strs = Table::with_empty();
    // What an operation was and how it ended, as one index: a history repeats few of these.
    let mut kinds: HashMap<(usize, u8, usize, usize), usize> = HashMap::new();
    let mut kind_list: Vec<(usize, u8, usize, usize)> = Vec::new();
    let mut kind_col = Vec::with_capacity(ops.len());
    let mut node_col = Vec::with_capacity(ops.len());
    for o in ops {
        let f = fs.id(o.f);
        let value = strs.id(&super::data::truncate(&o.value_text(), 300));
        let error = match o.error {
            Some(e) => strs.id(&super::data::truncate(&super::data::compact(e), 200)),
            None => 0,
        };
        let kind = (f, o.outcome.code(), value, error);
        let next = kind_list.len();
        let id = *kinds.entry(kind).or_insert(next);
        if id == next {
            kind_list.push(kind);
        }
        kind_col.push(id);
        node_col.push(match o.node {
            Some(n) => strs.id(n),
            None => 0,
        });
    }
    // Roughly 20 bytes per operation.
    let mut out = String::with_capacity(256 + ops.len() * 24);
    out.push('{');
    let _ = write!(
        out,
        "\"unit\":\"{}\",\"scale\":{unit},\"end\":{},\"lanes\":{},",
        match data.axis {
            Axis::Nanos => "ns",
            Axis::Index => "index",
        },
        data.end / unit,
        data.lanes
    );
    out.push_str("\"fs\":");
    fs.write_json(&mut out);
    out.push_str(",\"strs\":");
    strs.write_json(&mut out);
    out.push_str(",\"kinds\":[");
    for (i, (f, outcome, value, error)) in kind_list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{f},{outcome},{value},{error}]");
    }
    out.push_str("],");
    column(&mut out, "lane", ops.iter().map(|o| o.lane));
    // A lane's process changes only when one is retired: store the change, mostly 0.
    let mut lane_process = vec![0i64; data.lanes as usize];
    column(
        &mut out,
        "proc",
        ops.iter().map(|o| {
            let last = &mut lane_process[o.lane as usize];
            let d = o.process as i64 - *last;
            *last = o.process as i64;
            d
        }),
    );
    let mut prev = 0u64;
    column(
        &mut out,
        "start",
        ops.iter().map(|o| {
            let s = o.start / unit;
            let d = s - prev;
            prev = s;
            d
        }),
    );
    column(
        &mut out,
        "dur",
        ops.iter().map(|o| match o.end {
            Some(e) => (e / unit).saturating_sub(o.start / unit) as i64,
            None => -1,
        }),
    );
    column(&mut out, "kind", kind_col.into_iter());
    column(&mut out, "node", node_col.into_iter());
    let mut prev_index = 0u64;
    column(
        &mut out,
        "inv",
        ops.iter().map(|o| {
            // Invocation indices grow with starts except for orphan completions: signed deltas.
            let d = o.invoke_index as i64 - prev_index as i64;
            prev_index = o.invoke_index;
            d
        }),
    );
    column(
        &mut out,
        "cmp",
        ops.iter().map(|o| match o.complete_index {
            Some(c) => c as i64 - o.invoke_index as i64,
            None => -1,
        }),
    );
    out.push_str("\"windows\":[");
    for (i, w) in data.windows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "[{},{},\"{}\",",
            w.start / unit,
            w.end / unit,
            super::data::fault_class(&w.kind)
        );
        json_string(&mut out, &w.label);
        out.push(',');
        json_string(&mut out, &w.detail);
        out.push(']');
    }
    out.push_str("],\"markers\":[");
    for (i, m) in data.markers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},", m.time / unit);
        json_string(&mut out, &m.label);
        out.push(',');
        json_string(&mut out, &m.detail);
        out.push(']');
    }
    out.push_str("],");
    let (focus, prev_ok, related) = match &data.focus {
        Some(f) => (
            f.op as i64,
            f.previous_ok.map_or(-1, |p| p as i64),
            f.concurrent.clone(),
        ),
        None => (-1, -1, Vec::new()),
    };
    let _ = write!(out, "\"focus\":{focus},\"prevOk\":{prev_ok},");
    column(&mut out, "related", related.into_iter());
    let (v0, v1) = initial_view(data);
    let _ = write!(out, "\"view\":[{},{}]}}", v0 / unit, v1.div_ceil(unit));
    out
}

/// Makes JSON safe inside an HTML `<script>` element: no `<` can end it early.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::History;
    use serde_json::{Value, json};

    #[test]
    fn the_json_parses_and_round_trips_starts() {
        let lines = [
            json!({"index":0,"time":1000,"process":0,"type":"invoke","f":"write","value":1}),
            json!({"index":1,"time":3000,"process":1,"type":"invoke","f":"read","value":null}),
            json!({"index":2,"time":9000,"process":0,"type":"ok","f":"write","value":1}),
            json!({"index":3,"time":9500,"process":1,"type":"ok","f":"read","value":"</script>"}),
            json!({"index":4,"time":9900,"process":"nemesis","type":"info","f":"start-partition","value":null}),
        ];
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        let h = History::parse(&text.join("\n"), checkers::Format::Jsonl, "t").unwrap();
        let data = ReportData::build(&h, &json!({}));
        let j = script_safe(&timeline_json(&data));
        assert!(!j.contains('<'));
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["start"], json!([1, 2]));
        assert_eq!(v["dur"], json!([8, 6]));
        assert_eq!(v["cmp"], json!([2, 2]));
        assert_eq!(v["windows"][0][2], "partition");
        let kind = &v["kinds"][v["kind"][1].as_u64().unwrap() as usize];
        assert_eq!(
            v["strs"][kind[2].as_u64().unwrap() as usize],
            "null → </script>"
        );
        assert_eq!(v["fs"][kind[0].as_u64().unwrap() as usize], "read");
        assert_eq!(v["proc"], json!([0, 1]));
    }
}
