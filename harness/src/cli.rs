//! Command-line definitions (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "verity", version, about = "A Jepsen-style correctness harness")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check recorded histories (JSON Lines or Jepsen EDN).
    Check(CheckArgs),
    /// Convert a history between JSON Lines and Jepsen EDN (by the output's extension).
    Convert(ConvertArgs),
    /// Run a bundled system under a workload and a nemesis, record and check the history.
    Test(TestArgs),
    /// List systems, workloads, nemeses and bugs.
    List,
    /// Host one node of a bundled system over HTTP (started by `verity test --mode real`).
    Node(crate::real::node_server::NodeArgs),
    /// Write a stored run's report.html (timeline, plots, counterexample, messages).
    Report(ReportArgs),
    /// Serve stored runs and their reports over HTTP (loopback by default).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (results/<system>-<workload>/<timestamp>, or results/latest).
    pub run_dir: PathBuf,
    /// Where to write the report (default: RUN_DIR/report.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The directory of stored runs.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// Address to listen on; anything but loopback exposes the results to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// The deterministic simulator (virtual time).
    Sim,
    /// Real OS processes on loopback.
    Real,
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The system under test (see `verity list`).
    pub system: String,
    /// The client workload (default: the system's first, e.g. lin-kv for raft).
    #[arg(long)]
    pub workload: Option<String>,
    #[arg(long, value_enum, default_value = "sim")]
    pub mode: ModeArg,
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Seconds of client load (simulated seconds in sim mode).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub time_limit: f64,
    /// Client operations per second, across all processes.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Logical client processes: a number, or `Nn` for N per node.
    #[arg(long, default_value = "2n")]
    pub concurrency: String,
    /// Number of keys.
    #[arg(long, default_value_t = 5)]
    pub keys: usize,
    /// Faults: a comma list of partition, kill, pause, clock, loss, crash, leader-churn,
    /// clock-beyond-epsilon;
    /// or `all` (the first five) / `none`.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Mean seconds between fault operations.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub nemesis_interval: f64,
    /// Master seed (random when omitted; always printed and stored).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replay this fault schedule (JSON, as a run's `schedule.json`) instead of generating one
    /// from the seed; the seed still drives the network, the workload and the nodes.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// When the run is invalid, shrink its fault schedule to a minimal one that still fails
    /// (simulator only), and store that run too.
    #[arg(long)]
    pub shrink: bool,
    /// Sweep a range of seeds in the simulator: `A..B` (inclusive) or `N` (1..N). Runs them on
    /// every core, lists the failing ones with their repro command and stores the first few.
    #[arg(long, value_name = "RANGE", conflicts_with = "seed")]
    pub seeds: Option<String>,
    /// Switch on a deliberate bug (repeatable); see `verity list`.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Mean one-way message latency in ms.
    #[arg(long, default_value_t = 2.0, value_name = "MS")]
    pub latency: f64,
    /// Latency distribution: constant, uniform, exponential.
    #[arg(long, default_value = "exponential")]
    pub latency_dist: String,
    /// Baseline probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Baseline probability that a message is duplicated.
    #[arg(long, default_value_t = 0.0)]
    pub duplication: f64,
    /// Client request timeout in seconds (then the operation is `info`, or `fail` for reads).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub client_timeout: f64,
    /// TrueTime uncertainty ε in ms.
    #[arg(long, default_value_t = 7.0)]
    pub epsilon_ms: f64,
    /// The clock nemesis keeps every node's total skew (bumps, strobes, drift) within this, in
    /// ms. Default: 200, or ε (`--epsilon-ms`) for systems that assume clocks within ε
    /// (spanner; break the assumption with `--nemesis clock-beyond-epsilon`).
    #[arg(long)]
    pub clock_max_ms: Option<i64>,
    /// Seconds of quiet between the heal and the final reads.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub quiet: f64,
    /// Where runs are stored.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Do not store the run (print the verdict only).
    #[arg(long)]
    pub no_store: bool,
    /// Real mode: where the nodes' data directories go (default: `data/` in the run directory,
    /// or a temporary directory). On a tmpfs, kills stay real but fsync costs nothing.
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
}

impl TestArgs {
    /// The workload: as given, else the system's first (`verity list` shows them).
    pub fn workload(&self) -> &str {
        self.workload.as_deref().unwrap_or_else(|| {
            systems::systems()
                .iter()
                .find(|s| s.name == self.system)
                .and_then(|s| s.workloads.first().copied())
                .unwrap_or("lin-kv")
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    Jsonl,
    Edn,
}

impl FormatArg {
    pub fn to_format(self) -> Option<checkers::Format> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Jsonl => Some(checkers::Format::Jsonl),
            FormatArg::Edn => Some(checkers::Format::Edn),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The checker: linearizability (default), list-append, rw-register, external-consistency,
    /// bank, version-vectors, stats.
    #[arg(long, default_value = "linearizability")]
    pub checker: String,
    /// Linearizability model: register, cas-register, kv, kv-string, multi-register, mutex,
    /// set, unordered-queue, fifo-queue.
    #[arg(long, default_value = "cas-register")]
    pub model: String,
    /// list-append / rw-register: the consistency models the history must satisfy
    /// (comma-separated, e.g. serializable,snapshot-isolation).
    #[arg(long, default_value = "strict-serializable")]
    pub consistency_models: String,
    /// bank: the total every read must show (default: the first read's total).
    #[arg(long)]
    pub total: Option<i64>,
    /// Initial model state as JSON (e.g. 0, null, '{"x":0}', '"unlocked"').
    #[arg(long)]
    pub init: Option<String>,
    /// Input format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Give up (verdict unknown) after this many seconds per file.
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Give up (verdict unknown) before the search uses this much memory (e.g. 2G, 512M).
    #[arg(long, value_name = "BYTES")]
    pub memory_limit: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the full result objects as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the HTML report (timeline, plots, counterexample) of the history (one file).
    #[arg(long, value_name = "OUT.html")]
    pub report: Option<PathBuf>,
    /// History files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Input history.
    pub input: PathBuf,
    /// Output file: `.edn` writes Jepsen EDN, anything else JSON Lines.
    pub output: PathBuf,
}

/// Parses sizes like `1073741824`, `512M`, `2G`, `1.5GiB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("--memory-limit: expected a size like 512M or 2G, got {s:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("--memory-limit: unknown unit {other:?} in {s:?}")),
    };
    Ok((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5X").is_err());
    }
}
