//! Shared by the report, serve and browser tests and the report benchmark: stored runs (valid
//! and made invalid), and large synthetic histories.
#![allow(dead_code)]

use checkers::linearizability::{self, ModelKind, Options};
use checkers::{History, Op, OpType, Process, Validity};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn verity(args: &[&str]) -> Output {
    Command::new(verity_bin())
        .args(args)
        .output()
        .expect("verity runs")
}

/// The binary under test: Cargo names it for integration tests; benchmarks find it beside
/// themselves.
pub fn verity_bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_verity") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("verity"))
        .expect("target dir")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory under the system temp dir, unique to this process and name.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `verity test raft` (simulated) into `results`; returns the run directory.
pub fn sim_run(results: &Path, seed: u64, secs: u32) -> PathBuf {
    let o = verity(&[
        "test",
        "raft",
        "--seed",
        &seed.to_string(),
        "--time-limit",
        &secs.to_string(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "verity test failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::canonicalize(results.join("latest")).expect("results/latest")
}

fn lin_check(history: &History) -> Validity {
    linearizability::check(history, &Options::new(ModelKind::Kv))
        .map(|r| r.validity)
        .unwrap_or(Validity::Unknown)
}

/// Makes a stored valid run invalid the way a stale read would: one `ok` read in the middle of
/// the run is changed to return another value the key has held, and the run is checked and
/// reported again. Returns the history index of the changed read.
pub fn make_invalid(run: &Path) -> u64 {
    let path = run.join("history.jsonl");
    let mut history = History::read(&path, Some(checkers::Format::Jsonl)).unwrap();
    let reads: Vec<usize> = (0..history.ops.len())
        .filter(|&i| {
            let op = &history.ops[i];
            op.kind == OpType::Ok && op.f == "read" && !op.value[1].is_null()
        })
        .collect();
    let mut changed = None;
    'search: for &i in &reads[reads.len() / 2..] {
        let old = history.ops[i].value[1].as_u64().unwrap_or(0);
        for delta in 1..5 {
            let mut candidate = history.clone();
            candidate.ops[i].value[1] = json!((old + delta) % 5);
            if lin_check(&candidate) == Validity::Invalid {
                history = candidate;
                changed = Some(history.ops[i].index);
                break 'search;
            }
        }
    }
    let changed = changed.expect("some read can be made stale");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    checkers::history::jsonl::write(&history, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    let workload = workloads::build("lin-kv", &workloads::WorkloadOptions::default()).unwrap();
    let results = workload.check(&history).to_json();
    assert_eq!(results["valid"], json!(false));
    std::fs::write(
        run.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    let o = verity(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    changed
}

/// A small deterministic generator (SplitMix64), so synthetic histories need no RNG crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn op(
    index: u64,
    time: u64,
    process: Process,
    kind: OpType,
    f: &str,
    value: Value,
    node: Option<String>,
) -> Op {
    Op {
        index,
        time: Some(time),
        process,
        kind,
        f: f.into(),
        value,
        error: None,
        node,
        extra: Default::default(),
    }
}

/// A linearizable lin-kv history of `ops` operations (`2 × ops` events) by 10 processes over 5
/// keys, with partitions and kills every few seconds: each operation takes effect at a random
/// moment inside its interval, and values are computed in that order.
pub fn synthetic_history(ops: usize, seed: u64) -> History {
    const PROCESSES: u64 = 10;
    const MS: u64 = 1_000_000;
    let mut rng = Rng::new(seed);
    struct Planned {
        process: u64,
        start: u64,
        end: u64,
        point: u64,
        f: &'static str,
        key: u64,
        arg: Value,
        info: bool,
        node: String,
    }
    let mut planned = Vec::with_capacity(ops);
    let mut clock: Vec<u64> = (0..PROCESSES).map(|p| p * MS / 3).collect();
    let mut ids: Vec<u64> = (0..PROCESSES).collect();
    for n in 0..ops {
        let slot = n % PROCESSES as usize;
        let start = clock[slot] + rng.below(3 * MS);
        let info = rng.below(400) == 0;
        let latency = if info {
            1000 * MS
        } else {
            MS / 2 + rng.below(4 * MS) + rng.below(40 * MS) * (rng.below(10) == 0) as u64
        };
        let end = start + latency;
        let key = rng.below(5);
        let (f, arg) = match rng.below(4) {
            0 | 1 => ("read", Value::Null),
            2 => ("write", json!(rng.below(5))),
            _ => ("cas", json!([rng.below(5), rng.below(5)])),
        };
        planned.push(Planned {
            process: ids[slot],
            start,
            end,
            point: start + rng.below(latency.max(1)),
            f,
            key,
            arg,
            info,
            node: format!("n{}", 1 + rng.below(5)),
        });
        clock[slot] = end;
        if info {
            ids[slot] += PROCESSES;
        }
    }
    // Apply in linearization order to learn what each read saw and whether each cas succeeded.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].point);
    let mut state = [
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ];
    let mut outcome: Vec<(OpType, Value)> = vec![(OpType::Ok, Value::Null); planned.len()];
    for i in order {
        let p = &planned[i];
        let cell = &mut state[p.key as usize];
        outcome[i] = match p.f {
            "read" => (OpType::Ok, json!([p.key, cell.clone()])),
            "write" => {
                *cell = p.arg.clone();
                (OpType::Ok, json!([p.key, p.arg]))
            }
            _ => {
                if *cell == p.arg[0] {
                    *cell = p.arg[1].clone();
                    (OpType::Ok, json!([p.key, p.arg]))
                } else {
                    (OpType::Fail, json!([p.key, p.arg]))
                }
            }
        };
        if p.info {
            outcome[i].0 = OpType::Info;
        }
    }
    // Events in time order: invocations, completions, and a fault every five seconds.
    let mut events: Vec<(u64, u8, Op)> = Vec::with_capacity(planned.len() * 2 + 64);
    for (i, p) in planned.iter().enumerate() {
        let process = Process::Client(p.process);
        events.push((
            p.start,
            1,
            op(
                0,
                p.start,
                process,
                OpType::Invoke,
                p.f,
                json!([p.key, p.arg]),
                Some(p.node.clone()),
            ),
        ));
        let (kind, value) = outcome[i].clone();
        events.push((
            p.end,
            0,
            op(0, p.end, process, kind, p.f, value, Some(p.node.clone())),
        ));
    }
    let end = planned.iter().map(|p| p.end).max().unwrap_or(0);
    let mut t = 5_000 * MS;
    let mut n = 0;
    while t + 3_000 * MS < end {
        let (start_f, stop_f, value) = if n % 2 == 0 {
            (
                "start-partition",
                "stop-partition",
                json!({"shape": "random-halves", "grudge": {"n1": ["n3"], "n3": ["n1"]}}),
            )
        } else {
            ("kill", "restart", json!(["n2"]))
        };
        let stop_value = if n % 2 == 0 {
            Value::Null
        } else {
            json!(["n2"])
        };
        events.push((
            t,
            2,
            op(0, t, Process::Nemesis, OpType::Info, start_f, value, None),
        ));
        let t2 = t + 2_000 * MS;
        events.push((
            t2,
            2,
            op(
                0,
                t2,
                Process::Nemesis,
                OpType::Info,
                stop_f,
                stop_value,
                None,
            ),
        ));
        t += 5_000 * MS;
        n += 1;
    }
    events.sort_by_key(|(time, rank, _)| (*time, *rank));
    let ops = events
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut o))| {
            o.index = i as u64;
            o
        })
        .collect();
    History::new(ops)
}

/// Changes the `ok` read nearest the middle that can be made non-linearizable; returns its
/// index.
pub fn inject_stale_read(history: &mut History) -> u64 {
    let middle = history.ops.len() / 2;
    for i in middle..history.ops.len() {
        let o = &history.ops[i];
        if o.kind == OpType::Ok && o.f == "read" && !o.value[1].is_null() {
            let old = o.value[1].as_u64().unwrap_or(0);
            // A value no one wrote cannot be linearized, whatever the concurrency.
            history.ops[i].value[1] = json!(old + 100);
            return history.ops[i].index;
        }
    }
    panic!("no ok read to change");
}

/// Writes a message trace like the simulator's: `per_op` messages per client operation,
/// between five nodes, sorted by send time, some lost.
pub fn synthetic_messages(history: &History, per_op: usize, path: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut lines: Vec<(u64, String)> = Vec::new();
    for o in history.ops.iter().filter(|o| o.kind == OpType::Invoke) {
        let t = o.time.unwrap_or(0);
        for k in 0..per_op {
            let sent = t + rng.below(2_000_000);
            let from = 1 + rng.below(5);
            let to = 1 + (from + rng.below(4)) % 5;
            let (delivered, fate) = if rng.below(30) == 0 {
                ("null".to_string(), if k % 2 == 0 { "lost" } else { "cut" })
            } else {
                (
                    (sent + 200_000 + rng.below(3_000_000)).to_string(),
                    "delivered",
                )
            };
            let kind = if k % 2 == 0 {
                "raft_append"
            } else {
                "raft_append_reply"
            };
            lines.push((
                sent,
                format!(
                    r#"{{"sent_ns":{sent},"delivered_ns":{delivered},"from":"n{from}","to":"n{to}","type":"{kind}","fate":"{fate}"}}"#
                ),
            ));
        }
        if lines.len() > 200_000 {
            flush_sorted(&mut lines, &mut out, Some(t.saturating_sub(10_000_000)));
        }
    }
    flush_sorted(&mut lines, &mut out, None);
    out.flush().unwrap();
}

/// Writes the lines sent before `upto` (all when `None`) in order, keeping the rest.
fn flush_sorted(lines: &mut Vec<(u64, String)>, out: &mut impl Write, upto: Option<u64>) {
    lines.sort_by_key(|(t, _)| *t);
    let cut = upto.map_or(lines.len(), |u| lines.partition_point(|(t, _)| *t < u));
    for (_, line) in lines.drain(..cut) {
        writeln!(out, "{line}").unwrap();
    }
}

/// Stores a synthetic run (history, results, test.json, a message trace) in `dir`, the way a
/// simulated run is stored, made invalid by one stale read. Returns the changed read's index.
pub fn store_synthetic_run(dir: &Path, ops: usize, messages_per_op: usize) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut history = synthetic_history(ops, 7);
    let stale = inject_stale_read(&mut history);
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl")).unwrap());
    checkers::history::jsonl::write(&history, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    let workload = workloads::build("lin-kv", &workloads::WorkloadOptions::default()).unwrap();
    let results = workload.check(&history).to_json();
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let test = json!({
        "system": "synthetic", "workload": "lin-kv", "mode": "sim", "seed": 7, "nodes": 5,
        "bugs": [], "nemesis": {"nodes": ["n1", "n2", "n3", "n4", "n5"]},
        "command": "(synthetic history: no command reproduces it)",
        "started": "2026-01-01T00:00:00+00:00"
    });
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
    if messages_per_op > 0 {
        synthetic_messages(&history, messages_per_op, &dir.join("messages.jsonl"), 11);
    }
    stale
}

/// A running `verity serve`, stopped when dropped.
pub struct Served {
    child: std::process::Child,
    /// `127.0.0.1:PORT`, as printed.
    pub addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `verity serve DIR --bind 127.0.0.1:0` and waits for the address it prints.
pub fn serve(dir: &Path) -> Served {
    use std::io::Read;
    let mut child = Command::new(verity_bin())
        .args(["serve", dir.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("verity serve starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    Served { child, addr }
}
