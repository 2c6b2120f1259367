//! Linearizability checker benchmark: `cargo bench -p checkers --bench linearizability`.
//!
//! Histories come from a seeded simulation of a register / key-value store / string store: each
//! of C processes runs operations back to back with random durations, every operation takes
//! effect at a random point of its interval, and a fraction crash (`info`, having taken effect or
//! not). Per case it prints the checking time (history generation excluded), operations per second,
//! the process's peak RSS while checking (VmHWM, reset before each case through
//! /proc/self/clear_refs, so it is per case; it includes the history itself), and the checker's own
//! estimate of its largest search. Set VERITY_CORPUS to the corpus root to time the Knossos corpus
//! elsewhere than shared/corpus.

use checkers::linearizability::{LinResult, ModelKind, Options, check};
use checkers::{History, Op, OpType, Process};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Store {
    /// One cas-register per key: read / write / cas over small integers.
    Registers,
    /// One string per key: get / put / append.
    Strings,
}

struct Spec {
    store: Store,
    ops: usize,
    keys: usize,
    processes: usize,
    info_rate: f64,
    seed: u64,
}

/// One simulated operation before it is written as events.
struct SimOp {
    process: u64,
    invoke_at: u64,
    complete_at: u64,
    effect_at: u64,
    f: &'static str,
    key: usize,
    arg: Value,
    /// Whether it completes at all: crashed ops complete as info or never.
    crashed: bool,
    takes_effect: bool,
}

fn event(process: u64, time: u64, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index: 0,
        time: Some(time),
        process: Process::Client(process),
        kind,
        f: f.into(),
        value,
        error: None,
        node: None,
        extra: Map::new(),
    }
}

fn simulate(spec: &Spec) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut sim = Vec::with_capacity(spec.ops);
    let mut clock: Vec<u64> = vec![0; spec.processes];
    let mut ids: Vec<u64> = (0..spec.processes as u64).collect();
    let mut next_id = spec.processes as u64;
    for n in 0..spec.ops {
        let slot = rng.random_range(0..spec.processes);
        let invoke_at = clock[slot] + rng.random_range(0..20);
        let complete_at = invoke_at + rng.random_range(1..100);
        let key = rng.random_range(0..spec.keys);
        let (f, arg) = match (spec.store, rng.random_range(0..4)) {
            (Store::Registers, 0 | 1) => ("read", Value::Null),
            (Store::Registers, 2) => ("write", json!(rng.random_range(0..5))),
            (Store::Registers, _) => (
                "cas",
                json!([rng.random_range(0..5), rng.random_range(0..5)]),
            ),
            (Store::Strings, 0 | 1) => ("get", Value::Null),
            (Store::Strings, 2) if rng.random_bool(0.1) => ("put", json!(format!("p{n};"))),
            (Store::Strings, _) => ("append", json!(format!("{n};"))),
        };
        let crashed = rng.random_bool(spec.info_rate);
        sim.push(SimOp {
            process: ids[slot],
            invoke_at,
            complete_at,
            effect_at: rng.random_range(invoke_at..complete_at),
            f,
            key,
            arg,
            crashed,
            takes_effect: !crashed || rng.random_bool(0.5),
        });
        clock[slot] = complete_at + 1;
        if crashed {
            ids[slot] = next_id;
            next_id += 1;
        }
    }
    // Apply effects in order of their linearization points to learn every result.
    let mut order: Vec<usize> = (0..sim.len()).collect();
    order.sort_by_key(|&i| sim[i].effect_at);
    let mut registers: HashMap<usize, Value> = HashMap::new();
    let mut strings: HashMap<usize, String> = HashMap::new();
    let mut results: Vec<(bool, Value)> = vec![(true, Value::Null); sim.len()];
    for i in order {
        let op = &sim[i];
        if !op.takes_effect {
            continue;
        }
        let key = json!(format!("k{}", op.key));
        results[i] = match op.f {
            "read" => {
                let v = registers.get(&op.key).cloned().unwrap_or(Value::Null);
                (true, json!([key, v]))
            }
            "write" => {
                registers.insert(op.key, op.arg.clone());
                (true, json!([key, op.arg]))
            }
            "cas" => {
                let current = registers.get(&op.key).cloned().unwrap_or(Value::Null);
                let ok = current == op.arg[0];
                if ok {
                    registers.insert(op.key, op.arg[1].clone());
                }
                (ok, json!([key, op.arg]))
            }
            "get" => (
                true,
                json!([key, strings.get(&op.key).cloned().unwrap_or_default()]),
            ),
            "put" => {
                strings.insert(op.key, op.arg.as_str().unwrap().to_string());
                (true, json!([key, op.arg]))
            }
            _ => {
                strings
                    .entry(op.key)
                    .or_default()
                    .push_str(op.arg.as_str().unwrap());
                (true, json!([key, op.arg]))
            }
        };
    }
    let mut timed: Vec<(u64, Op)> = Vec::with_capacity(sim.len() * 2);
    for (op, (ok, result)) in sim.iter().zip(results) {
        let key = json!(format!("k{}", op.key));
        let invoke_value = json!([key, op.arg]);
        timed.push((
            op.invoke_at * 2,
            event(
                op.process,
                op.invoke_at,
                OpType::Invoke,
                op.f,
                invoke_value.clone(),
            ),
        ));
        let completion = if op.crashed {
            // Half the crashed operations never complete at all.
            (op.process % 2 == 0)
                .then(|| event(op.process, op.complete_at, OpType::Info, op.f, invoke_value))
        } else if ok {
            Some(event(op.process, op.complete_at, OpType::Ok, op.f, result))
        } else {
            Some(event(
                op.process,
                op.complete_at,
                OpType::Fail,
                op.f,
                invoke_value,
            ))
        };
        if let Some(c) = completion {
            // Completions sort after invocations at the same instant.
            timed.push((op.complete_at * 2 + 1, c));
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    let ops = timed
        .into_iter()
        .enumerate()
        .map(|(i, (_, mut op))| {
            op.index = i as u64;
            op
        })
        .collect();
    History::new(ops)
}

/// Makes the `ok` read at about `fraction` of the history return a value nobody wrote.
fn corrupt_read_near(history: &mut History, fraction: f64) -> u64 {
    let from = (history.ops.len() as f64 * fraction) as usize;
    let op = history.ops[from..]
        .iter_mut()
        .find(|o| o.kind == OpType::Ok && o.f == "read")
        .expect("a read after the point");
    op.value[1] = json!(999_999);
    op.index
}

fn reset_peak_rss() {
    // "5" resets VmHWM (Linux ≥ 4.0); without it the peak is the process's so far.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Row {
    name: String,
    ops: usize,
    elapsed: Duration,
    verdict: String,
    peak_rss: Option<u64>,
    search_bytes: u64,
    configurations: u64,
}

fn print_header() {
    println!(
        "{:<44} {:>8} {:>10} {:>12} {:>9} {:>13} {:>12} {:>14}",
        "case", "ops", "ms", "ops/s", "verdict", "peak RSS MiB", "search MiB", "configurations"
    );
}

fn print_row(r: &Row) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{:<44} {:>8} {:>10.1} {:>12.0} {:>9} {:>13} {:>12.1} {:>14}",
        r.name,
        r.ops,
        secs * 1000.0,
        r.ops as f64 / secs.max(1e-9),
        r.verdict,
        r.peak_rss.map_or("?".into(), |b| format!("{:.1}", mib(b))),
        mib(r.search_bytes),
        r.configurations
    );
}

/// What a case must find: valid, invalid at this index, or (a stress case) anything.
enum Expect {
    Valid,
    InvalidAt(u64),
    Any,
}

fn run_case(name: &str, history: &History, mut opts: Options, expect: Expect) -> LinResult {
    let client_ops = history
        .ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke)
        .count();
    if let Ok(limit) = std::env::var("VERITY_BENCH_TIME_LIMIT_S") {
        opts.time_limit = Some(Duration::from_secs_f64(limit.parse().expect("seconds")));
    }
    reset_peak_rss();
    let started = Instant::now();
    let result = check(history, &opts).expect("well-formed history");
    let elapsed = started.elapsed();
    let verdict = result.validity.as_str().to_string();
    match expect {
        Expect::Any => {}
        Expect::Valid => assert_eq!(verdict, "valid", "{name}:\n{}", result.explain()),
        Expect::InvalidAt(index) => {
            assert_eq!(verdict, "invalid", "{name}");
            assert_eq!(
                result.counterexample.as_ref().unwrap().op.index,
                index,
                "{name}"
            );
        }
    }
    print_row(&Row {
        name: name.into(),
        ops: client_ops,
        elapsed,
        verdict,
        peak_rss: peak_rss_bytes(),
        search_bytes: result.stats.peak_search_bytes,
        configurations: result.stats.configurations,
    });
    result
}

fn corpus_root() -> PathBuf {
    std::env::var_os("VERITY_CORPUS").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")),
        PathBuf::from,
    )
}

fn corpus_case() {
    let root = corpus_root();
    let Ok(tsv) = std::fs::read_to_string(root.join("knossos/EXPECTED.tsv")) else {
        println!(
            "knossos corpus: not found under {}; skipped",
            root.display()
        );
        return;
    };
    let mut histories = Vec::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let init = serde_json::from_str(cols[2]).unwrap_or_else(|_| Value::from(cols[2]));
        let model: ModelKind = cols[1].parse().unwrap();
        match History::read(&root.join("knossos").join(cols[0]), None) {
            Ok(h) => histories.push((h, model, init, cols[3] == "valid")),
            Err(e) => {
                println!("knossos corpus: {e}; skipped");
                return;
            }
        }
    }
    reset_peak_rss();
    let mut checking = Duration::ZERO;
    let mut ops = 0;
    for (h, model, init, valid) in &histories {
        let mut opts = Options::new(*model);
        opts.init = Some(init.clone());
        let started = Instant::now();
        let result = check(h, &opts).expect("corpus parses");
        checking += started.elapsed();
        assert_eq!(result.validity.as_str() == "valid", *valid);
        ops += h.ops.iter().filter(|o| o.kind == OpType::Invoke).count();
    }
    print_row(&Row {
        name: format!("knossos corpus ({} files, checking only)", histories.len()),
        ops,
        elapsed: checking,
        verdict: "as expected".into(),
        peak_rss: peak_rss_bytes(),
        search_bytes: 0,
        configurations: 0,
    });
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters cases by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));
    println!(
        "threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    print_header();
    if wanted("corpus") {
        corpus_case();
    }
    let cases = [
        (
            "cas-register 1 key 10k ops C=10 info 1%",
            Store::Registers,
            10_000,
            1,
            10,
            0.01,
            ModelKind::CasRegister,
        ),
        (
            "kv 100 keys 100k ops C=20 info 1%",
            Store::Registers,
            100_000,
            100,
            20,
            0.01,
            ModelKind::Kv,
        ),
        (
            "kv 10 keys 100k ops C=20 info 1%",
            Store::Registers,
            100_000,
            10,
            20,
            0.01,
            ModelKind::Kv,
        ),
        (
            "kv 1 key 100k ops C=10 info 1%",
            Store::Registers,
            100_000,
            1,
            10,
            0.01,
            ModelKind::Kv,
        ),
        (
            "kv-string 50 keys 20k ops C=50",
            Store::Strings,
            20_000,
            50,
            50,
            0.0,
            ModelKind::KvString,
        ),
        (
            "kv-string 10 keys 20k ops C=50 info 1%",
            Store::Strings,
            20_000,
            10,
            50,
            0.01,
            ModelKind::KvString,
        ),
    ];
    for (name, store, ops, keys, processes, info_rate, model) in cases {
        if !wanted(name) {
            continue;
        }
        let spec = Spec {
            store,
            ops,
            keys,
            processes,
            info_rate,
            seed: 7,
        };
        let mut history = simulate(&spec);
        if model == ModelKind::CasRegister {
            // A single-register history: drop the key.
            for op in &mut history.ops {
                if op.value.is_array() {
                    op.value = op.value[1].clone();
                }
            }
        }
        run_case(name, &history, Options::new(model), Expect::Valid);
    }
    // VERITY_BENCH_CASE=registers|strings,OPS,KEYS,PROCESSES,INFO_RATE[,SEED] adds one case.
    if let Ok(custom) = std::env::var("VERITY_BENCH_CASE") {
        let f: Vec<&str> = custom.split(',').collect();
        let spec = Spec {
            store: if f[0] == "strings" {
                Store::Strings
            } else {
                Store::Registers
            },
            ops: f[1].parse().unwrap(),
            keys: f[2].parse().unwrap(),
            processes: f[3].parse().unwrap(),
            info_rate: f[4].parse().unwrap(),
            seed: f.get(5).map_or(7, |s| s.parse().unwrap()),
        };
        let model = if spec.store == Store::Strings {
            ModelKind::KvString
        } else {
            ModelKind::Kv
        };
        let history = simulate(&spec);
        run_case(
            &format!("custom {custom}"),
            &history,
            Options::new(model),
            Expect::Any,
        );
    }
    let name = "kv 1 key 10k ops C=10, violation at 98%";
    if wanted(name) {
        let spec = Spec {
            store: Store::Registers,
            ops: 10_000,
            keys: 1,
            processes: 10,
            info_rate: 0.0,
            seed: 11,
        };
        let mut history = simulate(&spec);
        let index = corrupt_read_near(&mut history, 0.98);
        run_case(
            name,
            &history,
            Options::new(ModelKind::Kv),
            Expect::InvalidAt(index),
        );
    }
    // Ten appends and gets in flight per key: concurrent appends can be ordered in factorially
    // many ways, and this is beyond the search today. It must stop within its budgets.
    let name = "kv-string 5 keys 20k ops C=50 (stress, 10 s, 512 MiB)";
    if wanted(name) {
        let spec = Spec {
            store: Store::Strings,
            ops: 20_000,
            keys: 5,
            processes: 50,
            info_rate: 0.0,
            seed: 7,
        };
        let mut opts = Options::new(ModelKind::KvString);
        opts.time_limit = Some(Duration::from_secs(10));
        opts.memory_limit = Some(512 << 20);
        let result = run_case(name, &simulate(&spec), opts, Expect::Any);
        assert_ne!(result.validity.as_str(), "invalid", "{name}");
    }
}
