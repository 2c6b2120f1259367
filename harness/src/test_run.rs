//! `verity test`: run a system under a workload and a nemesis, record, check, store.

use crate::cli::{ModeArg, TestArgs};
use crate::exit::Failure;
use crate::recorder::Recorder;
use crate::run_store::{RunDir, git_commit};
use crate::sim::{SimConfig, SimOutcome, Simulator};
use checkers::{History, OpType, Validity};
use nemesis::{FaultKind, Schedule, ScheduleOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use workloads::{CheckReport, WorkloadOptions};

const SECOND: f64 = 1e9;

/// A finished run.
pub struct TestRun {
    pub config: SimConfig,
    pub workload: String,
    pub history: History,
    pub report: CheckReport,
    pub outcome: SimOutcome,
    pub mode: ModeArg,
    /// Real mode only: the relay's statistics and the nemesis's problems.
    pub real: Option<crate::real::RealReport>,
    pub run_dir: Option<PathBuf>,
    pub sim_time: Duration,
    pub check_time: Duration,
    /// The arguments that reproduce this run (after `verity`).
    pub repro: String,
}

impl TestRun {
    pub fn validity(&self) -> Validity {
        self.report.validity()
    }
}

fn positive_secs(name: &str, secs: f64) -> Result<u64, Failure> {
    if secs.is_finite() && secs > 0.0 {
        Ok((secs * SECOND) as u64)
    } else {
        Err(Failure::bad_arguments(format!(
            "--{name}: expected a positive number of seconds, got {secs}"
        )))
    }
}

fn probability(name: &str, p: f64) -> Result<f64, Failure> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Failure::bad_arguments(format!(
            "--{name}: expected a probability in [0, 1], got {p}"
        )))
    }
}

/// `10` or `2n` (2 per node).
pub fn parse_concurrency(s: &str, nodes: usize) -> Result<usize, Failure> {
    let bad = || {
        Failure::bad_arguments(format!(
            "--concurrency: expected a number or Nn (N per node), got {s:?}"
        ))
    };
    let n = match s.strip_suffix('n') {
        Some(per_node) => per_node.parse::<usize>().map_err(|_| bad())? * nodes,
        None => s.parse::<usize>().map_err(|_| bad())?,
    };
    if n == 0 {
        return Err(Failure::bad_arguments("--concurrency: must be at least 1"));
    }
    Ok(n)
}

/// Validates the arguments and turns them into a simulator configuration.
pub fn sim_config(args: &TestArgs, seed: u64) -> Result<SimConfig, Failure> {
    let info = systems::systems()
        .iter()
        .find(|s| s.name == args.system)
        .ok_or_else(|| {
            let names: Vec<_> = systems::systems().iter().map(|s| s.name).collect();
            Failure::bad_arguments(format!(
                "unknown system {:?}; known: {}",
                args.system,
                names.join(", ")
            ))
        })?;
    if !info.workloads.contains(&args.workload()) {
        return Err(Failure::bad_arguments(format!(
            "system {} does not run workload {:?}; it runs: {}",
            info.name,
            args.workload(),
            info.workloads.join(", ")
        )));
    }
    for bug in &args.bugs {
        if !info.bugs.iter().any(|b| b.name == bug) {
            let names: Vec<_> = info.bugs.iter().map(|b| b.name).collect();
            return Err(Failure::bad_arguments(format!(
                "--bug: system {} has no bug {bug:?}; its bugs: {}",
                info.name,
                names.join(", ")
            )));
        }
    }
    if args.nodes == 0 || args.nodes > 64 {
        return Err(Failure::bad_arguments("--nodes: expected 1 to 64"));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Failure::bad_arguments("--rate: expected a positive number"));
    }
    if !(args.latency.is_finite() && args.latency >= 0.0) {
        return Err(Failure::bad_arguments(
            "--latency: expected milliseconds ≥ 0",
        ));
    }
    let kinds = FaultKind::parse_list(&args.nemesis)
        .map_err(|e| Failure::bad_arguments(format!("--nemesis: {e}")))?;
    let latency_dist = args
        .latency_dist
        .parse()
        .map_err(|e: String| Failure::bad_arguments(format!("--latency-dist: {e}")))?;
    let time_limit_ns = positive_secs("time-limit", args.time_limit)?;
    let config = SimConfig {
        system: args.system.clone(),
        nodes: args.nodes,
        bugs: args.bugs.clone(),
        seed,
        time_limit_ns,
        rate: args.rate,
        concurrency: parse_concurrency(&args.concurrency, args.nodes)?,
        latency_dist,
        mean_latency_ns: args.latency * 1e6,
        loss: probability("loss", args.loss)?,
        duplication: probability("duplication", args.duplication)?,
        client_timeout_ns: positive_secs("client-timeout", args.client_timeout)?,
        epsilon_ns: (args.epsilon_ms.max(0.0) * 1e6) as u64,
        quiet_ns: positive_secs("quiet", args.quiet)?,
        nemesis: ScheduleOptions {
            kinds,
            interval_ns: positive_secs("nemesis-interval", args.nemesis_interval)?,
            duration_ns: time_limit_ns,
            nodes: (1..=args.nodes).map(|i| format!("n{i}")).collect(),
            clock_max_ms: clock_max_ms(args),
            epsilon_ms: args.epsilon_ms.max(0.0),
        },
    };
    Ok(config)
}

/// The `clock` nemesis's skew bound: as given, else ε for a system that assumes clocks within
/// it (a correct system must pass `--nemesis all`), else 200 ms.
pub fn clock_max_ms(args: &TestArgs) -> i64 {
    let assumes_epsilon = systems::systems()
        .iter()
        .any(|s| s.name == args.system && s.clocks_within_epsilon);
    args.clock_max_ms.unwrap_or(if assumes_epsilon {
        (args.epsilon_ms.max(0.0).floor() as i64).max(1)
    } else {
        200
    })
}

/// A repro command that replays the schedule at `path` (the seed alone no longer gives it).
fn repro_with_schedule(repro: &str, path: &std::path::Path) -> String {
    format!("{repro} --schedule {}", path.display())
}

/// The `verity` arguments that reproduce a run exactly.
pub fn repro_command(args: &TestArgs, seed: u64) -> String {
    let mut cmd = format!(
        "test {} --workload {} --mode {} --nodes {} --time-limit {} --rate {} --concurrency {} \
         --keys {} --nemesis {} --nemesis-interval {} --latency {} --latency-dist {} --loss {} \
         --duplication {} --client-timeout {} --epsilon-ms {} --clock-max-ms {} --quiet {} --seed {seed}",
        args.system,
        args.workload(),
        mode_name(args.mode),
        args.nodes,
        args.time_limit,
        args.rate,
        args.concurrency,
        args.keys,
        args.nemesis,
        args.nemesis_interval,
        args.latency,
        args.latency_dist,
        args.loss,
        args.duplication,
        args.client_timeout,
        args.epsilon_ms,
        clock_max_ms(args),
        args.quiet,
    );
    for bug in &args.bugs {
        cmd.push_str(&format!(" --bug {bug}"));
    }
    cmd
}

fn mode_name(mode: ModeArg) -> &'static str {
    match mode {
        ModeArg::Sim => "sim",
        ModeArg::Real => "real",
    }
}

/// Runs one test in the simulator or with real processes; stores it unless `--no-store`.
pub fn run(args: &TestArgs) -> Result<TestRun, Failure> {
    let schedule = match &args.schedule {
        Some(path) => Some(read_schedule(path)?),
        None => None,
    };
    run_with_schedule(args, schedule)
}

/// Reads a fault schedule (a run's `schedule.json`); errors name the file and what is wrong.
pub fn read_schedule(path: &std::path::Path) -> Result<Schedule, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_arguments(format!("--schedule {}: {e}", path.display())))?;
    let schedule: Schedule = serde_json::from_str(&text).map_err(|e| {
        Failure::bad_arguments(format!(
            "--schedule {}:{}: not a fault schedule: {e}",
            path.display(),
            e.line()
        ))
    })?;
    if schedule.faults.windows(2).any(|w| w[0].at_ns > w[1].at_ns) {
        return Err(Failure::bad_arguments(format!(
            "--schedule {}: faults must be in time order (\"at_ns\")",
            path.display()
        )));
    }
    Ok(schedule)
}

/// [`run`], replaying `schedule` (when given) instead of generating one from the seed. A stored
/// run keeps the schedule it used in `schedule.json`; a replayed one's repro command names it.
pub fn run_with_schedule(args: &TestArgs, schedule: Option<Schedule>) -> Result<TestRun, Failure> {
    if schedule.is_some() && args.mode == ModeArg::Real {
        return Err(Failure::bad_arguments(
            "--schedule and --shrink are for the simulator (--mode sim)",
        ));
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let config = sim_config(args, seed)?;
    let workload_opts = WorkloadOptions {
        keys: args.keys.max(1),
        nodes: args.nodes,
        ..WorkloadOptions::default()
    };
    let mut workload =
        workloads::build(args.workload(), &workload_opts).map_err(Failure::bad_arguments)?;
    let mut repro = repro_command(args, seed);
    let run_dir = if args.no_store {
        None
    } else {
        Some(
            RunDir::create(&args.results, &args.system, args.workload()).map_err(|e| {
                Failure::internal(format!(
                    "cannot create a run directory under {}: {e}",
                    args.results.display()
                ))
            })?,
        )
    };
    // The schedule the run uses, as data: replayed as given, or the seed's.
    let used_schedule = schedule
        .clone()
        .unwrap_or_else(|| crate::real::schedule_for(&config));
    if let Some(dir) = &run_dir {
        dir.write_json("schedule.json", &json!(used_schedule))
            .map_err(|e| Failure::internal(format!("writing schedule.json: {e}")))?;
        if schedule.is_some() {
            repro = repro_with_schedule(&repro, &dir.file("schedule.json"));
        }
    } else if let Some(path) = &args.schedule {
        repro = repro_with_schedule(&repro, path);
    }
    let recorder = match &run_dir {
        Some(dir) => {
            let mut test_json = serde_json::to_value(&config).unwrap_or(Value::Null);
            if let Some(obj) = test_json.as_object_mut() {
                obj.insert("workload".into(), json!(args.workload()));
                obj.insert("keys".into(), json!(args.keys));
                obj.insert("mode".into(), json!(mode_name(args.mode)));
                obj.insert("git_commit".into(), json!(git_commit()));
                obj.insert("command".into(), json!(format!("verity {repro}")));
                obj.insert("started".into(), json!(chrono::Utc::now().to_rfc3339()));
            }
            dir.write_json("test.json", &test_json)
                .and_then(|_| dir.write_repro(&repro))
                .map_err(|e| Failure::internal(format!("writing the run directory: {e}")))?;
            Recorder::to_file(&dir.file("history.jsonl"))
                .map_err(|e| Failure::internal(format!("creating history.jsonl: {e}")))?
        }
        None => Recorder::in_memory(),
    };

    let started = Instant::now();
    let (recorder, outcome, real) = match args.mode {
        ModeArg::Sim => {
            let mut sim = Simulator::new(config.clone(), workload.as_mut(), recorder)
                .map_err(Failure::bad_arguments)?;
            if let Some(schedule) = schedule {
                sim = sim.with_schedule(schedule);
            }
            if run_dir.is_some() {
                sim = sim.with_message_trace();
            }
            let (recorder, outcome) = sim.run();
            (recorder, outcome, None)
        }
        ModeArg::Real => {
            let dir = run_dir.as_ref().map(|d| d.path.as_path());
            let (recorder, outcome, report) = crate::real::run(
                &config,
                workload.as_mut(),
                recorder,
                dir,
                args.data_root.as_deref(),
            )?;
            (recorder, outcome, Some(report))
        }
    };
    let sim_time = started.elapsed();
    if let Some(e) = recorder.write_error() {
        return Err(Failure::internal(format!("writing history.jsonl: {e}")));
    }
    let history = recorder.into_history();

    let started = Instant::now();
    let mut report = workload.check(&history);
    report
        .checkers
        .extend(crate::invariants::log_agreement(&outcome, real.as_ref()));
    let check_time = started.elapsed();

    if let Some(dir) = &run_dir {
        dir.write_json("results.json", &report.to_json())
            .and_then(|_| dir.write_node_logs(&outcome.node_logs))
            .and_then(|_| dir.write_jsonl("messages.jsonl", &outcome.messages))
            .and_then(|_| match &real {
                Some(report) => dir.write_json("real.json", &json!(report)),
                None => Ok(()),
            })
            .map_err(|e| Failure::internal(format!("writing results: {e}")))?;
        // The report is for reading: failing to draw it must not hide the verdict.
        if let Err(e) = crate::report::write_run_report(&dir.path, Some(&history)) {
            eprintln!("verity: could not write report.html: {e}");
        }
    }
    Ok(TestRun {
        config,
        workload: args.workload().to_string(),
        history,
        report,
        outcome,
        mode: args.mode,
        real,
        run_dir: run_dir.map(|d| d.path),
        sim_time,
        check_time,
        repro,
    })
}

pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (std::process::id() as u64).rotate_left(32)) % 1_000_000_000
}

/// The one-screen summary printed at the end of a run.
pub fn summary(run: &TestRun) -> String {
    let cfg = &run.config;
    let mut out = String::new();
    let bugs = if cfg.bugs.is_empty() {
        String::new()
    } else {
        format!(" · bug {}", cfg.bugs.join(","))
    };
    out.push_str(&format!(
        "verity test {} · {} · {} · seed {} · {} nodes · {} s{bugs}\n",
        cfg.system,
        run.workload,
        mode_name(run.mode),
        cfg.seed,
        cfg.nodes,
        cfg.time_limit_ns as f64 / SECOND
    ));
    let (mut ok, mut fail, mut info, mut invokes) = (0, 0, 0, 0);
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &run.history.ops {
        if op.is_client() {
            match op.kind {
                OpType::Invoke => invokes += 1,
                OpType::Ok => ok += 1,
                OpType::Fail => fail += 1,
                OpType::Info => info += 1,
            }
        } else {
            *faults.entry(op.f.as_str()).or_default() += 1;
        }
    }
    out.push_str(&format!(
        "history: {} operations ({invokes} invoked: {ok} ok, {fail} fail, {info} info)\n",
        run.history.ops.len()
    ));
    let fault_list: Vec<String> = faults.iter().map(|(f, n)| format!("{f}×{n}")).collect();
    out.push_str(&format!(
        "faults:  {}\n",
        if fault_list.is_empty() {
            "none".to_string()
        } else {
            fault_list.join(", ")
        }
    ));
    let width = run
        .report
        .checkers
        .iter()
        .map(|c| c.name.len() + 1)
        .max()
        .unwrap_or(0)
        .max(16);
    for c in &run.report.checkers {
        let note = match c.name.as_str() {
            "availability" => format!(
                "ok share {:.1}%",
                c.result["ok_share"].as_f64().unwrap_or(0.0) * 100.0
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {:<width$} {:<8} {note}\n",
            c.name,
            c.validity.as_str()
        ));
    }
    for c in &run.report.checkers {
        if c.validity != Validity::Valid && !c.explanation.is_empty() {
            out.push_str(&format!(
                "\n{} — {}:\n{}\n",
                c.name,
                c.validity,
                c.explanation.trim_end()
            ));
        }
    }
    let simulated = run.outcome.end_ns as f64 / SECOND;
    let wall = run.sim_time.as_secs_f64();
    match &run.real {
        None => out.push_str(&format!(
            "\nsimulated {simulated:.1} s in {wall:.3} s ({:.0}× real time), {} messages; checked in {:.3} s\n",
            simulated / wall.max(1e-9),
            run.outcome.messages_sent,
            run.check_time.as_secs_f64()
        )),
        Some(real) => out.push_str(&crate::real::summary_lines(
            real,
            wall,
            run.check_time.as_secs_f64(),
        )),
    }
    let verdict = run.validity();
    out.push_str(&format!("verdict: {}\n", verdict.as_str().to_uppercase()));
    if let Some(dir) = &run.run_dir {
        out.push_str(&format!("run:     {}\n", dir.display()));
    }
    if verdict != Validity::Valid {
        out.push_str(&format!("reproduce: verity {}\n", run.repro));
    }
    out
}
