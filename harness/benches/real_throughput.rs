//! Real-mode throughput: the highest rate a 3-node and a 5-node raft sustain on loopback without
//! faults (no injected latency either), with client latency p50/p99 and the relay's share.
//!
//! For each cluster size the offered rate climbs a ladder; a rate is sustained when at least
//! 90% of it completes and under 1% of operations time out. The relay's share is its own cost
//! per hop (receipt to the receiver's 202, measured inside the relay) times the two relay hops
//! on a write's or a read-index read's critical path (leader → follower, follower → leader),
//! over the client's median latency.
//!
//! Each ladder runs twice: with the data directories on the disk (write, fsync, rename, as
//! always) and on a tmpfs (`/dev/shm`), where kills are just as real but fsync is free: on a
//! shared machine the disk's fsync latency swings with everyone else's I/O, and the tmpfs
//! ladder shows what the runtime itself sustains.
//!
//! `cargo bench -p harness --bench real_throughput` (or `make bench-real`). Each step is a
//! 5-second run; the whole bench takes about five minutes.

use checkers::OpType;
use clap::Parser;
use harness::cli::{Cli, Command};
use std::collections::BTreeMap;

const LADDER: &[f64] = &[250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0];
const SECONDS: f64 = 5.0;

#[derive(Clone, Copy)]
struct Step {
    offered: f64,
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    timeouts: f64,
    hop_p50_us: f64,
    hop_p99_us: f64,
    valid: bool,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn step(nodes: usize, rate: f64, data_root: Option<&str>) -> Step {
    let (nodes_s, seconds_s, rate_s) = (nodes.to_string(), SECONDS.to_string(), rate.to_string());
    let mut argv = vec![
        "verity",
        "test",
        "raft",
        "--mode",
        "real",
        "--nodes",
        &nodes_s,
        "--time-limit",
        &seconds_s,
        "--rate",
        &rate_s,
        "--concurrency",
        "10n",
        "--nemesis",
        "none",
        "--latency",
        "0",
        "--quiet",
        "0.5",
        "--seed",
        "1",
        "--no-store",
    ];
    if let Some(root) = data_root {
        argv.extend(["--data-root", root]);
    }
    let Command::Test(args) = Cli::parse_from(argv).command else {
        unreachable!()
    };
    let run = harness::test_run::run(&args).unwrap_or_else(|f| panic!("{}", f.message));
    // Latencies of operations invoked during the load phase (not the final reads).
    let mut invoked: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let (mut completed, mut timeouts) = (0u64, 0u64);
    let first = run
        .history
        .ops
        .iter()
        .filter_map(|o| o.time)
        .min()
        .unwrap_or(0);
    let load_end = first + (SECONDS * 1e9) as u64;
    for op in run.history.ops.iter().filter(|o| o.is_client()) {
        let process = format!("{:?}", op.process);
        let time = op.time.unwrap_or(0);
        if op.kind == OpType::Invoke {
            invoked.insert(process, time);
            continue;
        }
        let Some(start) = invoked.remove(&process) else {
            continue;
        };
        if start > load_end {
            continue;
        }
        completed += 1;
        if op.kind == OpType::Info || op.error.as_ref().is_some_and(|e| e == "timeout") {
            timeouts += 1;
        } else {
            latencies.push((time - start) as f64 / 1e6);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let relay = &run.real.as_ref().expect("a real run").relay;
    Step {
        offered: rate,
        achieved: completed as f64 / SECONDS,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        timeouts: timeouts as f64 / completed.max(1) as f64,
        hop_p50_us: relay.hop_overhead_us_p50,
        hop_p99_us: relay.hop_overhead_us_p99,
        valid: run.validity() == checkers::Validity::Valid,
    }
}

fn main() {
    println!(
        "raft, lin-kv, --mode real, no faults, no injected latency, {SECONDS} s per step, \
         concurrency 10 per node"
    );
    let tmpfs = std::path::Path::new("/dev/shm")
        .is_dir()
        .then_some("/dev/shm");
    let placements = [("disk", None), ("tmpfs", tmpfs)];
    for nodes in [3, 5] {
        for (place, root) in placements {
            if place == "tmpfs" && root.is_none() {
                continue;
            }
            ladder(nodes, place, root);
        }
    }
}

/// Climbs the ladder until a rate is not sustained; prints each step and the best one.
fn ladder(nodes: usize, place: &str, root: Option<&str>) {
    println!("\n{nodes} nodes, data on {place}");
    println!(
        "{:>8} {:>9} {:>8} {:>8} {:>9} {:>10} {:>10} {:>11} {:>6}",
        "offered",
        "achieved",
        "p50 ms",
        "p99 ms",
        "timeouts",
        "hop p50µs",
        "hop p99µs",
        "relay share",
        "valid"
    );
    let mut best: Option<Step> = None;
    let mut peak: Option<Step> = None;
    let mut target_met = false;
    for &rate in LADDER {
        let s = step(nodes, rate, root);
        let share = 2.0 * s.hop_p50_us / 1e3 / s.p50_ms;
        println!(
            "{:>8.0} {:>9.0} {:>8.2} {:>8.2} {:>8.2}% {:>10.0} {:>10.0} {:>10.0}% {:>6}",
            s.offered,
            s.achieved,
            s.p50_ms,
            s.p99_ms,
            s.timeouts * 100.0,
            s.hop_p50_us,
            s.hop_p99_us,
            share * 100.0,
            s.valid
        );
        target_met |= s.achieved >= 1000.0 && s.p99_ms < 50.0 && s.timeouts < 0.01;
        let sustained = s.achieved >= 0.9 * s.offered && s.timeouts < 0.01;
        if s.timeouts < 0.01 && peak.as_ref().is_none_or(|p| s.achieved > p.achieved) {
            peak = Some(s);
        }
        if !sustained {
            break;
        }
        best = Some(s);
    }
    match best {
        Some(s) => println!(
            "{nodes} nodes ({place}): highest rate sustained {:.0} ops/s (offered {:.0}), \
             p50 {:.2} ms, p99 {:.2} ms",
            s.achieved, s.offered, s.p50_ms, s.p99_ms
        ),
        None => println!("{nodes} nodes ({place}): none of the ladder's rates sustained"),
    }
    if let Some(p) = peak {
        println!(
            "{nodes} nodes ({place}): peak throughput {:.0} ops/s (offered {:.0}), p50 {:.2} ms, \
             p99 {:.2} ms",
            p.achieved, p.offered, p.p50_ms, p.p99_ms
        );
    }
    if nodes == 3 {
        println!(
            "target (≥ 1000 ops/s with p99 < 50 ms, 3 nodes, {place}): {}",
            if target_met { "met" } else { "not met" }
        );
    }
}
