//! `verity serve [DIR] [--bind 127.0.0.1:8080]`: an index of every stored run, newest first,
//! linking to each run's report, history, results and node logs.
//!
//! Only files inside DIR are served: the request path is percent-decoded, any `..` segment is
//! refused, and the resolved file (symlinks followed) must still lie inside DIR; everything else
//! is a 404. A run without a `report.html` gets one rendered on the fly (nothing is written).

use crate::cli::ServeArgs;
use crate::exit::{self, Failure};
use crate::report;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const INDEX_TEMPLATE: &str = include_str!("report/serve_index.html");
/// Pages are self-contained: nothing may be fetched from anywhere.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
/// Runs are looked for this many directory levels below DIR (`<system>-<workload>/<stamp>`).
const MAX_DEPTH: usize = 3;

/// What the index needs from a run's history, cached by the file's size and modification time.
#[derive(Debug, Clone, Default)]
struct HistoryFacts {
    invocations: usize,
    faults: BTreeMap<String, usize>,
}

/// A history file's facts, keyed by its path and valid while its size and mtime are unchanged.
type FactsCache = HashMap<PathBuf, (u64, Option<SystemTime>, HistoryFacts)>;

struct ServerState {
    root: PathBuf,
    facts: Mutex<FactsCache>,
}

/// Starts the server and blocks until it stops.
pub fn run(args: &ServeArgs) -> Result<i32, Failure> {
    let root = std::fs::canonicalize(&args.dir)
        .map_err(|e| Failure::bad_arguments(format!("cannot serve {}: {e}", args.dir.display())))?;
    if !root.is_dir() {
        return Err(Failure::bad_arguments(format!(
            "cannot serve {}: not a directory",
            args.dir.display()
        )));
    }
    let addr: SocketAddr = args
        .bind
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Failure::bad_arguments(format!(
                "--bind: expected an address like 127.0.0.1:8080, got {:?}",
                args.bind
            ))
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("starting the server runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::bad_arguments(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::internal(format!("listening: {e}")))?;
        // The first line is the URL, so scripts (and tests) can bind port 0 and read it.
        println!("verity serve: http://{local}/ serving {}", root.display());
        if !local.ip().is_loopback() {
            eprintln!(
                "verity serve: warning: listening on {local}, which is reachable from other machines"
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(root))
            .await
            .map_err(|e| Failure::internal(format!("serving: {e}")))?;
        Ok(exit::VALID)
    })
}

/// The whole application: every path goes through one handler.
pub fn router(root: PathBuf) -> Router {
    let state = Arc::new(ServerState {
        root,
        facts: Mutex::new(HashMap::new()),
    });
    Router::new().fallback(handle).with_state(state)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "css" => "text/css; charset=utf-8",
        "jsonl" | "log" | "sh" | "edn" | "txt" | "md" | "tsv" | "csv" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

fn respond(body: Vec<u8>, content_type: &'static str, head: bool) -> Response {
    let length = body.len();
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn handle(State(state): State<Arc<ServerState>>, method: Method, uri: Uri) -> Response {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET only\n").into_response();
    }
    let raw = uri.path().to_string();
    let served = tokio::task::spawn_blocking(move || serve_path(&state, &raw)).await;
    match served {
        Ok(Some((body, kind))) => respond(body, kind, head),
        Ok(None) => not_found(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    }
}

/// The body and content type for a request path, or `None` for a 404.
fn serve_path(state: &ServerState, raw: &str) -> Option<(Vec<u8>, &'static str)> {
    // `/index.html` is the index unless DIR holds a file of that name.
    if raw == "/" || (raw == "/index.html" && resolve(&state.root, raw).is_none()) {
        let html = index_html(state).ok()?;
        return Some((html.into_bytes(), "text/html; charset=utf-8"));
    }
    if let Some(file) = resolve(&state.root, raw) {
        if file.is_file() {
            let body = std::fs::read(&file).ok()?;
            return Some((body, content_type(&file)));
        }
        return None;
    }
    // A run stored before reports existed: draw its report now.
    let parent = raw.strip_suffix(report::REPORT_FILE)?;
    let dir = resolve(&state.root, parent)?;
    if dir.is_dir() && dir.join("history.jsonl").is_file() {
        let html = report::render_run_dir(&dir, None).ok()?;
        return Some((html.into_bytes(), "text/html; charset=utf-8"));
    }
    None
}

/// Decodes `%XX` escapes; `None` for malformed escapes, NUL, or text that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// The existing path inside `root` that a request path names, or `None` if it names nothing
/// there: `..` segments, backslashes and anything resolving (through symlinks) outside `root`
/// are refused.
pub fn resolve(root: &Path, raw_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(raw_path)?;
    if decoded.contains('\\') {
        return None;
    }
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return None,
            s => relative.push(s),
        }
    }
    let canonical_root = std::fs::canonicalize(root).ok()?;
    let resolved = std::fs::canonicalize(canonical_root.join(&relative)).ok()?;
    resolved.starts_with(&canonical_root).then_some(resolved)
}

/// Percent-encodes a relative path for an `href`, segment by segment.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for (i, part) in path.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in part.as_os_str().to_string_lossy().bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[derive(Debug, Serialize)]
struct Link {
    label: String,
    href: String,
}

#[derive(Debug, Serialize)]
struct RunRow {
    sort_key: String,
    time: String,
    path: String,
    system: String,
    workload: String,
    mode: String,
    seed: String,
    bugs: String,
    verdict: &'static str,
    ops: String,
    faults: String,
    report: String,
    latest: bool,
    links: Vec<Link>,
}

#[derive(Serialize)]
struct IndexPage {
    root: String,
    runs: Vec<RunRow>,
    valid: usize,
    invalid: usize,
    unknown: usize,
}

/// Run directories under `root`: directories holding a `history.jsonl`, symlinks not followed
/// (so `latest` does not list its run twice).
fn find_runs(root: &Path) -> Vec<PathBuf> {
    let mut runs = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if dir.join("history.jsonl").is_file() {
            runs.push(dir.clone());
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    runs
}

/// Counts invocations and faults by reading the history's lines (fault lines only are parsed).
fn scan_history(path: &Path) -> HistoryFacts {
    use std::io::BufRead;
    let mut facts = HistoryFacts::default();
    let Ok(file) = std::fs::File::open(path) else {
        return facts;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if line.contains("\"process\":\"nemesis\"") {
            if line.contains("\"type\":\"invoke\"") {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(f) = v["f"].as_str()
            {
                *facts.faults.entry(f.to_string()).or_default() += 1;
            }
        } else if line.contains("\"type\":\"invoke\"") {
            facts.invocations += 1;
        }
    }
    facts
}

fn history_facts(state: &ServerState, path: &Path) -> HistoryFacts {
    let meta = std::fs::metadata(path).ok();
    let len = meta.as_ref().map_or(0, |m| m.len());
    let modified = meta.and_then(|m| m.modified().ok());
    if let Ok(cache) = state.facts.lock()
        && let Some((l, m, facts)) = cache.get(path)
        && *l == len
        && *m == modified
    {
        return facts.clone();
    }
    let facts = scan_history(path);
    if let Ok(mut cache) = state.facts.lock() {
        cache.insert(path.to_path_buf(), (len, modified, facts.clone()));
    }
    facts
}

fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn run_row(state: &ServerState, dir: &Path, latest: Option<&Path>) -> RunRow {
    let rel = dir.strip_prefix(&state.root).unwrap_or(dir);
    let href = encode_path(rel);
    let test = read_json(&dir.join("test.json"));
    let results = read_json(&dir.join("results.json"));
    let facts = history_facts(state, &dir.join("history.jsonl"));
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // Without a test.json, the group directory's name (`<system>-<workload>`) stands in.
    let group = rel
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (system, workload) = match (text(&test["system"]), text(&test["workload"])) {
        (s, w) if !s.is_empty() => (s, w),
        _ => (group, String::new()),
    };
    let started = text(&test["started"]);
    let modified = std::fs::metadata(dir.join("history.jsonl"))
        .and_then(|m| m.modified())
        .ok()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
    let sort_key = if started.is_empty() {
        modified.unwrap_or_default()
    } else {
        started
    };
    let time = chrono::DateTime::parse_from_rfc3339(&sort_key)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| sort_key.clone());
    let verdict = match results.get("valid") {
        Some(Value::Bool(true)) => "valid",
        Some(Value::Bool(false)) => "invalid",
        _ => "unknown",
    };
    let faults = if facts.faults.is_empty() {
        "none".to_string()
    } else {
        facts
            .faults
            .iter()
            .map(|(f, n)| format!("{f}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut links = Vec::new();
    for name in ["history.jsonl", "results.json", "test.json", "repro.sh"] {
        if dir.join(name).is_file() {
            links.push(Link {
                label: name
                    .trim_end_matches(".jsonl")
                    .trim_end_matches(".json")
                    .into(),
                href: format!("{href}/{name}"),
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("node-logs")) {
        let mut logs: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        logs.sort();
        for n in logs {
            links.push(Link {
                label: n.trim_end_matches(".log").to_string(),
                href: format!("{href}/node-logs/{}", encode_path(Path::new(&n))),
            });
        }
    }
    let bugs = test["bugs"]
        .as_array()
        .map(|b| b.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    RunRow {
        sort_key,
        time,
        path: rel.display().to_string(),
        system,
        workload,
        mode: text(&test["mode"]),
        seed: text(&test["seed"]),
        bugs,
        verdict,
        ops: facts.invocations.to_string(),
        faults,
        report: format!("{href}/{}", report::REPORT_FILE),
        latest: latest.is_some_and(|l| l == dir),
        links,
    }
}

fn index_html(state: &ServerState) -> Result<String, String> {
    let latest = std::fs::canonicalize(state.root.join("latest")).ok();
    let mut runs: Vec<RunRow> = find_runs(&state.root)
        .iter()
        .map(|dir| run_row(state, dir, latest.as_deref()))
        .collect();
    runs.sort_by(|a, b| b.sort_key.cmp(&a.sort_key).then(b.path.cmp(&a.path)));
    let count = |v: &str| runs.iter().filter(|r| r.verdict == v).count();
    let page = IndexPage {
        root: state.root.display().to_string(),
        valid: count("valid"),
        invalid: count("invalid"),
        unknown: count("unknown"),
        runs,
    };
    let mut env = minijinja::Environment::new();
    env.add_template("index.html", INDEX_TEMPLATE)
        .map_err(|e| e.to_string())?;
    env.get_template("index.html")
        .and_then(|t| t.render(minijinja::value::Serde(&page)))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2E/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%2"), None);
        assert_eq!(percent_decode("/a%00b"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }

    #[test]
    fn hrefs_are_encoded_per_segment() {
        assert_eq!(
            encode_path(Path::new("raft-lin-kv/2026 01")),
            "raft-lin-kv/2026%2001"
        );
    }
}
