//! The process runtime (`--mode real`): every node a `verity node` process on loopback, peer
//! messages through the harness's relay (the simulator's link-fault model), real SIGKILL /
//! SIGSTOP / clock faults, clients as tokio tasks. The same node structs, nemesis schedules,
//! workloads, checkers and run store as the simulator; only the runtime differs.
//!
//! - [`node_server`]: `verity node`, one node behind an HTTP server;
//! - [`disk`]: the node's files (write, fsync, rename);
//! - [`relay`]: the relay and its decisions;
//! - [`supervisor`]: starting, killing, pausing and restarting node processes, no orphans;
//! - [`faults`]: the nemesis schedule carried out on processes, relay and clocks;
//! - [`clients`]: the clients and the conductor of a run;
//! - [`progress`]: the progress display.

pub mod clients;
pub mod disk;
pub mod faults;
pub mod node_server;
pub mod progress;
pub mod relay;
pub mod supervisor;

use crate::exit::Failure;
use crate::recorder::Recorder;
use crate::sim::network::Network;
use crate::sim::{SimConfig, SimOutcome};
use faults::FaultApplier;
use nemesis::Schedule;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relay::{Relay, RelaySetup, RelayStats};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use supervisor::{NodeSpec, Supervisor};
use workloads::Workload;

/// CLOCK_MONOTONIC in ns: one clock for the harness and every node process, so run times agree
/// across processes and restarts.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Real wall-clock time in ns since the Unix epoch.
pub fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Named RNG streams, numbered as the simulator numbers them.
mod stream {
    pub const NETWORK: u64 = 1;
    pub const NEMESIS: u64 = 2;
    pub const WORKLOAD: u64 = 3;
    pub const NODE_BASE: u64 = 100;
}

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// What a real run reports besides the history and the simulator-shaped outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RealReport {
    pub relay: RelayStats,
    /// Problems the nemesis met (e.g. a node that would not restart).
    pub nemesis_errors: Vec<String>,
    /// Where the node logs (and, for a stored run, data directories) are.
    pub work_dir: PathBuf,
    pub wall_time: Duration,
}

/// The real-mode lines of the end-of-run summary.
pub fn summary_lines(report: &RealReport, wall_secs: f64, check_secs: f64) -> String {
    let r = &report.relay;
    let mut out = format!(
        "\nran {wall_secs:.1} s of real processes; relay: {} messages ({} delivered, {} lost, \
         {} duplicated, {} cut, {} to dead nodes, {} timed out, {} overflowed), \
         relay overhead per hop p50 {:.0} µs p99 {:.0} µs; checked in {check_secs:.3} s\n",
        r.received,
        r.delivered,
        r.lost,
        r.duplicated,
        r.cut,
        r.dead,
        r.timeout,
        r.overflow,
        r.hop_overhead_us_p50,
        r.hop_overhead_us_p99,
    );
    for e in &report.nemesis_errors {
        out.push_str(&format!("nemesis problem: {e}\n"));
    }
    out
}

/// The `verity` executable to start nodes with: this one, or, when running inside a test
/// binary, the `verity` next to it in the target directory.
fn verity_binary() -> Result<PathBuf, Failure> {
    let me = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("locating the verity binary: {e}")))?;
    if me.file_stem().is_some_and(|s| s == "verity") {
        return Ok(me);
    }
    let candidates = [me.parent(), me.parent().and_then(Path::parent)];
    candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join("verity"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Failure::internal(format!(
                "cannot find the verity binary next to {}; build it with `cargo build -p harness`",
                me.display()
            ))
        })
}

/// Runs one test with real processes. `run_dir`: where node logs and data directories go (a
/// temporary directory, removed afterwards, when `None`); `data_root`: where the data
/// directories go instead, if given (a fresh subdirectory, removed afterwards).
pub fn run(
    cfg: &SimConfig,
    workload: &mut dyn Workload,
    recorder: Recorder,
    run_dir: Option<&Path>,
    data_root: Option<&Path>,
) -> Result<(Recorder, SimOutcome, RealReport), Failure> {
    let binary = verity_binary()?;
    let unique = format!("verity-real-{}-{}", std::process::id(), monotonic_ns());
    let data_dir = data_root.map(|root| root.join(&unique));
    let (work_dir, temporary) = match run_dir {
        Some(dir) => (dir.to_path_buf(), false),
        None => (std::env::temp_dir().join(&unique), true),
    };
    let data_dir = data_dir.unwrap_or_else(|| work_dir.join("data"));
    // One thread for relay, clients and nemesis: on two cores shared with the nodes, handing
    // work between threads costs more than it gains (measured with the real_throughput bench).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("starting the runtime: {e}")))?;
    let signals = interrupts();
    RUN_ACTIVE.store(true, Ordering::SeqCst);
    // An interrupt drops the run where it stands: the reaper kills the nodes, and the history
    // recorded so far is already on disk.
    let result = runtime.block_on(async {
        tokio::select! {
            result = run_async(cfg, workload, recorder, &work_dir, &data_dir, binary, run_dir.is_some()) => result,
            signal = interrupted(signals) => Err(Failure::internal(format!(
                "interrupted by {signal}: every node was stopped; the history so far is kept"
            ))),
        }
    });
    RUN_ACTIVE.store(false, Ordering::SeqCst);
    // Stop every leftover task (timers, strobes, forwards) before the directory goes.
    runtime.shutdown_timeout(Duration::from_secs(2));
    let mut result = result;
    if temporary {
        // The checkers read the nodes' own reports from their logs: keep those before the
        // directory goes.
        if let Ok((_, outcome, _)) = &mut result {
            outcome.node_logs = read_node_logs(&work_dir.join("node-logs"), &cfg.node_ids());
        }
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    if data_root.is_some() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

async fn run_async(
    cfg: &SimConfig,
    workload: &mut dyn Workload,
    recorder: Recorder,
    work_dir: &Path,
    data_dir: &Path,
    binary: PathBuf,
    trace_messages: bool,
) -> Result<(Recorder, SimOutcome, RealReport), Failure> {
    let started = std::time::Instant::now();
    let io = |what: &str, e: std::io::Error| Failure::internal(format!("{what}: {e}"));
    let ids = cfg.node_ids();
    let log_dir = work_dir.join("node-logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| io("creating node-logs", e))?;
    let epoch = monotonic_ns();

    let mut ports = Vec::new();
    for _ in &ids {
        ports.push(supervisor::free_port(&ports).map_err(|e| io("finding a free port", e))?);
    }
    let node_urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let net = Network::new(
        cfg.nodes,
        cfg.latency_dist,
        cfg.mean_latency_ns,
        cfg.loss,
        cfg.duplication,
    );
    let (relay, relay_server) = Relay::start(RelaySetup {
        ids: ids.clone(),
        node_urls: node_urls.clone(),
        net,
        rng: stream_rng(cfg.seed, stream::NETWORK),
        epoch_mono_ns: epoch,
        log_path: log_dir.join("relay.log"),
        trace: trace_messages,
    })
    .await
    .map_err(|e| io("starting the relay", e))?;
    let _stop_relay = clients::AbortOnDrop(relay_server);

    let specs = node_specs(cfg, &ports, &relay, data_dir, epoch);
    for spec in &specs {
        let header = format!(
            "# node {} of a {}-node {} run, seed {}, port {}",
            spec.id, cfg.nodes, cfg.system, cfg.seed, spec.port
        );
        supervisor::start_log(&log_dir.join(format!("{}.log", spec.id)), &header)
            .map_err(|e| io("creating a node log", e))?;
    }
    // `_reaper` kills every node however this function ends (return, error or panic).
    let (supervisor, _reaper) =
        Supervisor::new(binary, specs, log_dir.clone(), epoch).map_err(|e| io("supervisor", e))?;
    let supervisor = Arc::new(supervisor);
    supervisor
        .start_all()
        .await
        .map_err(|e| Failure::internal(format!("starting the nodes: {e}")))?;

    let schedule = schedule_for(cfg);
    let faults = FaultApplier::new(supervisor.clone(), relay.clone(), epoch);
    let setup = clients::Setup {
        cfg,
        ids: ids.clone(),
        node_urls,
        epoch_mono_ns: epoch,
        schedule: schedule.clone(),
        faults: faults.clone(),
        workload_rng: stream_rng(cfg.seed, stream::WORKLOAD),
    };
    let (recorder, end_ns) = clients::conduct(setup, workload, recorder).await?;

    let mut final_states = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let state = supervisor.state(i).await.unwrap_or(Value::Null);
        final_states.insert(id.clone(), state);
    }
    supervisor.stop_all();
    let messages = relay.finish();
    let stats = relay.stats();
    let outcome = SimOutcome {
        schedule,
        end_ns,
        messages_sent: stats.received,
        messages_delivered: stats.delivered,
        // The nodes wrote their own logs into node-logs/ already.
        node_logs: BTreeMap::new(),
        final_states,
        messages,
    };
    let report = RealReport {
        relay: stats,
        nemesis_errors: faults.errors(),
        work_dir: work_dir.to_path_buf(),
        wall_time: started.elapsed(),
    };
    Ok((recorder, outcome, report))
}

/// Each node's log lines (`<dir>/<id>.log`); a missing log is an empty one.
fn read_node_logs(dir: &Path, ids: &[String]) -> BTreeMap<String, Vec<String>> {
    ids.iter()
        .map(|id| {
            let text = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();
            (id.clone(), text.lines().map(str::to_string).collect())
        })
        .collect()
}

/// The fault schedule of a run: the one the simulator would use for the same configuration.
pub fn schedule_for(cfg: &SimConfig) -> Schedule {
    Schedule::generate(&cfg.nemesis, &mut stream_rng(cfg.seed, stream::NEMESIS))
}

/// How to start each node of `cfg`: on `ports[i]`, sending to its peers through `relay`, keeping
/// its files in `data_dir/<id>`, counting monotonic time from `epoch_mono_ns`.
pub fn node_specs(
    cfg: &SimConfig,
    ports: &[u16],
    relay: &Relay,
    data_dir: &Path,
    epoch_mono_ns: u64,
) -> Vec<NodeSpec> {
    let ids = cfg.node_ids();
    ids.iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (id, port))| {
            let peers: Vec<String> = ids
                .iter()
                .filter(|p| *p != id)
                .map(|p| format!("{p}={}", relay.url(id, p)))
                .collect();
            let mut args = vec![
                "--system".to_string(),
                cfg.system.clone(),
                "--id".into(),
                id.clone(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--peers".into(),
                peers.join(","),
                "--data-dir".into(),
                data_dir.join(id).display().to_string(),
                "--seed".into(),
                cfg.seed.to_string(),
                "--rng-stream".into(),
                (stream::NODE_BASE + i as u64).to_string(),
                "--epsilon-ms".into(),
                (cfg.epsilon_ns as f64 / 1e6).to_string(),
                "--epoch-monotonic-ns".into(),
                epoch_mono_ns.to_string(),
            ];
            for bug in &cfg.bugs {
                args.push("--bug".into());
                args.push(bug.clone());
            }
            NodeSpec {
                id: id.clone(),
                port: *port,
                args,
            }
        })
        .collect()
}

/// Whether a real run is going on: a signal then stops the run (and its nodes) in order;
/// otherwise it ends the process as the default action would.
static RUN_ACTIVE: AtomicBool = AtomicBool::new(false);

/// The signals that stop a run, as seen by a thread of their own. Tokio's handlers, once
/// installed, stay for the life of the process, so the thread also carries out the default
/// action (exit) when no run is going on, e.g. during the check after a run.
fn interrupts() -> tokio::sync::watch::Receiver<Option<&'static str>> {
    static SENDER: OnceLock<tokio::sync::watch::Sender<Option<&'static str>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, _) = tokio::sync::watch::channel(None);
            let sender = tx.clone();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("verity-signals".into())
                .spawn(move || watch_signals(sender, ready_tx));
            // Wait until the handlers are installed, so no signal slips through in between.
            if spawned.is_ok() {
                let _ = ready_rx.recv_timeout(Duration::from_secs(5));
            }
            tx
        })
        .subscribe()
}

fn watch_signals(
    sender: tokio::sync::watch::Sender<Option<&'static str>>,
    ready: std::sync::mpsc::Sender<()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        let _ = ready.send(());
        loop {
            let (name, exit_code) = tokio::select! {
                _ = int.recv() => ("SIGINT", 130),
                _ = term.recv() => ("SIGTERM", 143),
                _ = hup.recv() => ("SIGHUP", 129),
            };
            if RUN_ACTIVE.load(Ordering::SeqCst) {
                sender.send_replace(Some(name));
            } else {
                eprintln!("verity: {name}");
                std::process::exit(exit_code);
            }
        }
    });
}

/// Resolves with the signal's name on Ctrl-C, SIGTERM or SIGHUP during the run.
async fn interrupted(
    mut signals: tokio::sync::watch::Receiver<Option<&'static str>>,
) -> &'static str {
    loop {
        if let Some(name) = *signals.borrow_and_update() {
            return name;
        }
        if signals.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
