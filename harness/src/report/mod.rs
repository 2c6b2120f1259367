//! `report.html`: one self-contained page (inline CSS, JS and SVG; no network fetches) from
//! which a reviewer can understand a run: header and verdicts, a timeline of every operation
//! with fault windows, latency and throughput plots, the counterexample drawn, and for
//! simulated runs a message sequence diagram around the first failure.
//!
//! Everything the page shows is computed here; the script only draws the visible window of the
//! timeline from compact embedded data, so a 100k-operation history stays small and fast.

pub mod counterexample;
pub mod data;
pub mod messages;
pub mod plots;
pub mod svg;
pub mod timeline;

use checkers::History;
use data::ReportData;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

const TEMPLATE: &str = include_str!("report.html");
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// The file name reports are stored under in a run directory.
pub const REPORT_FILE: &str = "report.html";

/// A link to a file next to the report.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub label: String,
    pub href: String,
}

/// Who ran what: the header's facts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunMeta {
    pub title: String,
    pub system: String,
    pub workload: String,
    pub mode: String,
    pub seed: Option<String>,
    pub bugs: Vec<String>,
    pub started: Option<String>,
    pub git_commit: Option<String>,
    /// Every other option, already formatted.
    pub options: Vec<(String, String)>,
    /// The command that reproduces the run.
    pub repro: Option<String>,
    /// Where the history came from.
    pub source: String,
}

/// Everything a report is drawn from.
pub struct ReportInput<'a> {
    pub meta: RunMeta,
    pub history: &'a History,
    /// `results.json`'s shape: `{"valid": ..., "<checker>": {"valid": ..., ...}, ...}`.
    pub results: &'a Value,
    /// The simulator's message trace, when there is one.
    pub messages: Option<PathBuf>,
    /// The nodes, for the message diagram's lifelines.
    pub nodes: Vec<String>,
    pub links: Vec<Link>,
}

#[derive(Debug, Serialize)]
struct CheckerView {
    name: String,
    verdict: &'static str,
    summary: String,
    details: String,
}

#[derive(Debug, Serialize)]
struct FaultKindView {
    class: &'static str,
    label: String,
}

#[derive(Serialize)]
struct Page<'a> {
    meta: &'a RunMeta,
    verdict: &'static str,
    checkers: Vec<CheckerView>,
    counts: &'a data::Counts,
    faults_text: String,
    fault_kinds: Vec<FaultKindView>,
    links: &'a [Link],
    axis_note: Option<&'static str>,
    timeline_json: String,
    plots: Option<plots::Plots>,
    counterexamples: Vec<counterexample::CounterexampleView>,
    messages: Option<messages::MessagesView>,
    focus_text: Option<String>,
    style: &'static str,
    script: &'static str,
    generated: String,
}

/// `true` / `false` / `"unknown"` as the words the page colours.
fn verdict_word(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "valid",
        Value::Bool(false) => "invalid",
        _ => "unknown",
    }
}

/// A one-line summary of a checker's result, for the verdict table.
fn checker_summary(name: &str, r: &Value) -> String {
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        return e.to_string();
    }
    let stats = &r["stats"];
    if r.get("model").is_some() && stats.is_object() {
        let mut s = format!(
            "model {}, {} operations in {} key{}, {:.1} ms",
            r["model"].as_str().unwrap_or("?"),
            stats["operations"],
            stats["keys"],
            if stats["keys"].as_u64() == Some(1) {
                ""
            } else {
                "s"
            },
            stats["elapsed_ms"].as_f64().unwrap_or(0.0)
        );
        if let Some(cause) = r.get("cause").and_then(Value::as_str) {
            s.push_str(&format!("; gave up: out of {cause}"));
        }
        if let Some(op) = r.get("op") {
            s.push_str(&format!(
                "; op {} cannot be linearized",
                data::compact(&op["index"])
            ));
        }
        return s;
    }
    if name == "availability" || r.get("ok_share").is_some() {
        return format!(
            "{:.1}% of operations ok ({} of {})",
            r["ok_share"].as_f64().unwrap_or(0.0) * 100.0,
            r["ok"],
            r["total"]
        );
    }
    if r.get("by_f").is_some() {
        let mut parts = vec![format!(
            "{} operations: {} ok, {} fail, {} info",
            r["count"], r["ok"], r["fail"], r["info"]
        )];
        if let Some(never) = r.get("never_ok").filter(|v| !v.is_null()) {
            parts.push(format!("never ok: {}", data::compact(never)));
        }
        return parts.join("; ");
    }
    if let Some(anomalies) = r.get("anomaly_types") {
        return format!("anomalies: {}", data::compact(anomalies));
    }
    if r.get("indices_checked").is_some() {
        return match r.get("explanation").and_then(Value::as_str) {
            Some(e) => format!("{e} ({} disagreeing indices)", r["disagreement_count"]),
            None => format!(
                "{} log indices applied; every replica applied the same entry at each ({} reports)",
                r["indices_checked"], r["reports"]
            ),
        };
    }
    r.get("explanation")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The checkers in a results object, in order.
fn checker_views(results: &Value) -> Vec<CheckerView> {
    let Some(obj) = results.as_object() else {
        return Vec::new();
    };
    obj.iter()
        .filter(|(_, v)| v.get("valid").is_some())
        .map(|(name, r)| {
            let details = serde_json::to_string_pretty(r).unwrap_or_default();
            CheckerView {
                name: name.clone(),
                verdict: verdict_word(&r["valid"]),
                summary: checker_summary(name, r),
                details: data::truncate(&details, 20_000),
            }
        })
        .collect()
}

fn fault_kinds(data: &ReportData) -> Vec<FaultKindView> {
    let mut seen: Vec<FaultKindView> = Vec::new();
    for w in &data.windows {
        let class = data::fault_class(&w.kind);
        if !seen.iter().any(|k| k.class == class) {
            let label = match class {
                "link" => "link faults".to_string(),
                "other" => w.kind.clone(),
                c => c.to_string(),
            };
            seen.push(FaultKindView { class, label });
        }
    }
    seen
}

/// Renders the page.
pub fn render(input: &ReportInput) -> Result<String, String> {
    let data = ReportData::build(input.history, input.results);
    let verdict = verdict_word(input.results.get("valid").unwrap_or(&Value::Null));
    let focus_text = data.focus.as_ref().map(|f| {
        let op = &data.ops[f.op];
        format!(
            "{}: op {} ({})",
            f.checker,
            op.complete_index.unwrap_or(op.invoke_index),
            op.describe()
        )
    });
    let messages = input
        .messages
        .as_deref()
        .and_then(|path| messages::diagram(&data, path, &input.nodes));
    let page = Page {
        meta: &input.meta,
        verdict,
        checkers: checker_views(input.results),
        counts: &data.counts,
        faults_text: data.counts.faults_text(),
        fault_kinds: fault_kinds(&data),
        links: &input.links,
        axis_note: (data.axis == data::Axis::Index).then_some(
            "This history carries no timestamps: time is its event order, and latency and throughput cannot be measured.",
        ),
        timeline_json: timeline::script_safe(&timeline::timeline_json(&data)),
        plots: plots::plots(&data),
        counterexamples: counterexample::counterexamples(&data, input.results),
        messages,
        focus_text,
        style: STYLE,
        script: SCRIPT,
        generated: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| format!("report template: {e}"))?;
    let template = env
        .get_template("report.html")
        .map_err(|e| format!("report template: {e}"))?;
    template
        .render(minijinja::value::Serde(&page))
        .map_err(|e| format!("rendering the report: {e}"))
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// `time_limit_ns: 60000000000` → `time limit: 60 s`; nested objects flattened with dots.
fn format_options(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    const SHOWN_ELSEWHERE: [&str; 8] = [
        "system",
        "workload",
        "mode",
        "seed",
        "bugs",
        "command",
        "git_commit",
        "started",
    ];
    let Some(obj) = value.as_object() else {
        return;
    };
    for (k, v) in obj {
        if prefix.is_empty() && SHOWN_ELSEWHERE.contains(&k.as_str()) {
            continue;
        }
        let (name, text) = match (k.strip_suffix("_ns"), v.as_f64()) {
            (Some(stem), Some(ns)) => (stem.to_string(), svg::duration_label(ns)),
            _ => (k.clone(), String::new()),
        };
        let name = format!("{prefix}{}", name.replace('_', " "));
        if v.is_object() {
            format_options(&format!("{name}."), v, out);
            continue;
        }
        let text = if !text.is_empty() {
            text
        } else {
            match v {
                Value::Array(items) => items
                    .iter()
                    .map(data::compact)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => data::compact(other),
            }
        };
        out.push((name, text));
    }
}

/// The header facts of a stored run, from its `test.json` (absent for imported runs).
fn run_meta(dir: &Path, test: &Value) -> RunMeta {
    let s = |k: &str| test.get(k).filter(|v| !v.is_null()).map(data::compact);
    let mut options = Vec::new();
    format_options("", test, &mut options);
    let repro = s("command").or_else(|| {
        let script = std::fs::read_to_string(dir.join("repro.sh")).ok()?;
        let line = script.lines().find(|l| l.starts_with("exec "))?;
        Some(format!(
            "verity {}",
            line.split("} ")
                .nth(1)
                .unwrap_or(line)
                .trim_end_matches(" \"$@\"")
        ))
    });
    let system = s("system").unwrap_or_else(|| "?".into());
    let workload = s("workload").unwrap_or_else(|| "?".into());
    RunMeta {
        title: format!("{system} · {workload}"),
        system,
        workload,
        mode: s("mode").unwrap_or_else(|| "sim".into()),
        seed: s("seed"),
        bugs: test["bugs"]
            .as_array()
            .map(|b| b.iter().map(data::compact).collect())
            .unwrap_or_default(),
        started: s("started"),
        git_commit: s("git_commit"),
        options,
        repro,
        source: dir.display().to_string(),
    }
}

/// Links to the run's files that exist, relative to the report.
fn run_links(dir: &Path) -> Vec<Link> {
    let mut links = Vec::new();
    for name in [
        "history.jsonl",
        "results.json",
        "test.json",
        "messages.jsonl",
        "repro.sh",
    ] {
        if dir.join(name).is_file() {
            links.push(Link {
                label: name.to_string(),
                href: name.to_string(),
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("node-logs")) {
        let mut logs: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        logs.sort_by_key(|n| {
            let stem = n.trim_end_matches(".log");
            let digits = stem.trim_start_matches(|c: char| !c.is_ascii_digit());
            (
                stem.len() - digits.len(),
                digits.parse::<u64>().unwrap_or(0),
                n.clone(),
            )
        });
        for n in logs {
            links.push(Link {
                label: format!("node-logs/{n}"),
                href: format!("node-logs/{n}"),
            });
        }
    }
    links
}

/// Parses one chunk of JSON lines; `first` is the position of its first operation.
fn parse_chunk(chunk: &str, first: u64) -> Option<Vec<checkers::Op>> {
    let mut ops = Vec::new();
    for line in chunk.lines().filter(|l| !l.trim().is_empty()) {
        let map = serde_json::from_str::<serde_json::Map<String, Value>>(line).ok()?;
        ops.push(checkers::Op::from_map(map, first + ops.len() as u64).ok()?);
    }
    Some(ops)
}

/// Reads a run's `history.jsonl`, parsing chunks of it on every core: parsing 200k lines is
/// most of the time a report of 100k operations takes. Any problem falls back to the ordinary
/// reader, whose errors name the offending line.
pub fn read_history(path: &Path) -> Result<History, checkers::InputError> {
    let sequential = || History::read(path, Some(checkers::Format::Jsonl));
    let Ok(text) = std::fs::read_to_string(path) else {
        return sequential();
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || text.len() < (1 << 20) || text.starts_with('\u{feff}') {
        return History::parse(&text, checkers::Format::Jsonl, &path.display().to_string());
    }
    let mut bounds = vec![0];
    for k in 1..threads {
        let guess = (text.len() * k / threads).max(*bounds.last().unwrap_or(&0));
        let cut = text[guess..]
            .find('\n')
            .map_or(text.len(), |i| guess + i + 1);
        bounds.push(cut);
    }
    bounds.push(text.len());
    bounds.dedup();
    let chunks: Vec<&str> = bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    let mut firsts = Vec::with_capacity(chunks.len());
    let mut position = 0u64;
    for chunk in &chunks {
        firsts.push(position);
        position += chunk.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    }
    let parsed: Vec<Option<Vec<checkers::Op>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .zip(&firsts)
            .map(|(chunk, &first)| scope.spawn(move || parse_chunk(chunk, first)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut ops = Vec::with_capacity(position as usize);
    for chunk in parsed {
        match chunk {
            Some(chunk_ops) => ops.extend(chunk_ops),
            None => return sequential(),
        }
    }
    Ok(History::new(ops))
}

/// Renders the report of a stored run directory. `history` saves re-reading `history.jsonl`
/// when the caller has it in memory.
pub fn render_run_dir(dir: &Path, history: Option<&History>) -> Result<String, String> {
    let loaded;
    let history = match history {
        Some(h) => h,
        None => {
            loaded = read_history(&dir.join("history.jsonl"))
                .map_err(|e| format!("cannot read the run's history: {e}"))?;
            &loaded
        }
    };
    let test = read_json(&dir.join("test.json")).unwrap_or(Value::Null);
    let results = read_json(&dir.join("results.json")).unwrap_or_else(
        || serde_json::json!({"valid": "unknown", "note": "results.json is missing: the run was not checked"}),
    );
    let nodes = test["nemesis"]["nodes"]
        .as_array()
        .map(|n| n.iter().map(data::compact).collect())
        .unwrap_or_default();
    let trace = dir.join("messages.jsonl");
    let input = ReportInput {
        meta: run_meta(dir, &test),
        history,
        results: &results,
        messages: trace.is_file().then_some(trace),
        nodes,
        links: run_links(dir),
    };
    render(&input)
}

/// Writes `report.html` into a stored run directory; returns its path.
pub fn write_run_report(dir: &Path, history: Option<&History>) -> Result<PathBuf, String> {
    let html = render_run_dir(dir, history)?;
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, html).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// `verity report RUN_DIR [--out FILE]`.
pub fn run_cmd(args: &crate::cli::ReportArgs) -> Result<i32, crate::exit::Failure> {
    use crate::exit::{self, Failure};
    let dir = &args.run_dir;
    let history_path = dir.join("history.jsonl");
    if !history_path.is_file() {
        return Err(Failure::bad_arguments(format!(
            "{}: not a run directory (it has no history.jsonl)",
            dir.display()
        )));
    }
    let history = read_history(&history_path)?;
    let html = render_run_dir(dir, Some(&history)).map_err(Failure::internal)?;
    let out = args.out.clone().unwrap_or_else(|| dir.join(REPORT_FILE));
    std::fs::write(&out, html)
        .map_err(|e| Failure::internal(format!("writing {}: {e}", out.display())))?;
    println!("{}", out.display());
    Ok(exit::VALID)
}

/// The report of a history checked by `verity check` (imported from anywhere): `result` is the
/// linearizability result's JSON, `options` and `repro` describe the check.
pub fn render_check(
    history: &History,
    source: &Path,
    result: &Value,
    options: Vec<(String, String)>,
    repro: String,
) -> Result<String, String> {
    let mut results = serde_json::Map::new();
    results.insert(
        "valid".into(),
        result.get("valid").cloned().unwrap_or(Value::Null),
    );
    results.insert("linearizability".into(), result.clone());
    let results = Value::Object(results);
    let name = source.file_name().map_or_else(
        || source.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let model = result["model"].as_str().unwrap_or("?").to_string();
    let input = ReportInput {
        meta: RunMeta {
            title: format!("{name} · {model}"),
            system: name,
            workload: format!("{model} model"),
            mode: "imported history".into(),
            options,
            repro: Some(repro),
            source: source.display().to_string(),
            ..RunMeta::default()
        },
        history,
        results: &results,
        messages: None,
        nodes: Vec::new(),
        links: Vec::new(),
    };
    render(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parallel_reader_reads_what_the_ordinary_one_does() {
        let dir = std::env::temp_dir().join(format!("verity-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        // Big enough to be split, with blank lines and no indices (positions stand in).
        let mut text = String::new();
        for i in 0..20_000u64 {
            text.push_str(&format!(
                "{{\"time\":{i},\"process\":{},\"type\":\"invoke\",\"f\":\"read\",\"value\":[{i},null],\"note\":\"{}\"}}\n",
                i % 7,
                "x".repeat(40)
            ));
            if i % 1000 == 0 {
                text.push('\n');
            }
        }
        std::fs::write(&path, &text).unwrap();
        let fast = read_history(&path).unwrap();
        let slow = History::read(&path, Some(checkers::Format::Jsonl)).unwrap();
        assert_eq!(fast, slow);
        // A bad line: the error is the ordinary reader's, naming the line.
        std::fs::write(
            &path,
            text.replacen("\"type\":\"invoke\"", "\"type\":\"nope\"", 1),
        )
        .unwrap();
        let err = read_history(&path).unwrap_err().to_string();
        assert!(err.contains(":1"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_verdict_table_explains_log_agreement() {
        let valid = serde_json::json!({"valid": true, "indices_checked": 40, "reports": 9,
                                        "disagreement_count": 0, "disagreements": []});
        assert!(checker_summary("log-agreement", &valid).contains("40 log indices"));
        let invalid = serde_json::json!({"valid": false, "indices_checked": 40, "reports": 9,
                                          "disagreement_count": 3, "disagreements": [],
                                          "explanation": "log \"raft\" index 7: ..."});
        let text = checker_summary("log-agreement", &invalid);
        assert!(text.starts_with("log \"raft\" index 7") && text.contains("3 disagreeing"));
    }
}
