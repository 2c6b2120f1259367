//! Clients and the conductor of a real-mode run.
//!
//! The conductor mirrors the simulator's driver: Jepsen's process semantics (one operation at a
//! time per logical process; an `info` completion retires the process, which comes back as
//! `process + concurrency`), the stagger between invocations, leader-hint routing, the nemesis
//! schedule, and final reads with retries after the heal and the quiet period. Each operation's
//! HTTP call runs in its own tokio task (reqwest, no proxy, no retry); the conductor records the
//! history as operations are invoked and complete, with the harness's monotonic clock.

use super::faults::FaultApplier;
use super::monotonic_ns;
use super::progress::{Progress, Snapshot};
use crate::client_model::{FINAL_READ_ATTEMPTS, Pending, Worker};
use crate::exit::Failure;
use crate::recorder::{NewOp, Recorder};
use crate::sim::SimConfig;
use checkers::{OpType, Process};
use nemesis::Schedule;
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::time::Duration;
use systems::protocol::{self, code};
use tokio::sync::mpsc;
use workloads::{Invocation, Outcome, Workload};

const SECOND: u64 = 1_000_000_000;
/// How often the progress display is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How an HTTP call to a node ended.
#[derive(Debug)]
pub enum CallResult {
    /// The node answered with this body.
    Reply(Value),
    /// No answer within the client timeout: it may or may not have happened.
    Timeout,
    /// The connection was refused: the request certainly never reached the node.
    Refused,
    /// The connection broke after the request may have been sent: outcome unknown.
    Broken(String),
}

impl CallResult {
    /// The workload's view, with the same meaning the simulator gives it.
    fn outcome(&self) -> Outcome {
        match self {
            CallResult::Reply(body) => Outcome::Reply(body.clone()),
            CallResult::Timeout => Outcome::Timeout,
            CallResult::Refused => Outcome::Reply(protocol::definite_error(
                code::TEMPORARILY_UNAVAILABLE,
                "connection refused",
            )),
            CallResult::Broken(e) => Outcome::Reply(protocol::indefinite_error(code::CRASH, e)),
        }
    }
}

/// Calls a node's client API once.
pub async fn call(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &Value,
    timeout: Duration,
) -> CallResult {
    let response = match http.post(url).json(body).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return CallResult::Timeout,
        Err(e) if e.is_connect() => return CallResult::Refused,
        Err(e) => return CallResult::Broken(format!("connection lost: {e}")),
    };
    match response.bytes().await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(body) => CallResult::Reply(body),
            Err(_) => CallResult::Broken("unparsable reply".into()),
        },
        Err(e) if e.is_timeout() => CallResult::Timeout,
        Err(e) => CallResult::Broken(format!("reply cut off: {e}")),
    }
}

/// A client HTTP connection pool that never uses a proxy and never retries.
pub fn http_client(concurrency: usize) -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .no_proxy()
        .retry(reqwest::retry::never())
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency.max(1))
        .build()
        .map_err(|e| Failure::internal(format!("building the HTTP client: {e}")))
}

struct Completed {
    worker: usize,
    request: u64,
    result: CallResult,
}

/// Everything the conductor drives.
pub struct Setup<'a> {
    pub cfg: &'a SimConfig,
    pub ids: Vec<String>,
    /// Each node's base URL, by index.
    pub node_urls: Vec<String>,
    pub epoch_mono_ns: u64,
    pub schedule: Schedule,
    pub faults: FaultApplier,
    pub workload_rng: ChaCha8Rng,
}

struct Counts {
    invoked: u64,
    ok: u64,
    fail: u64,
    info: u64,
}

struct Conductor<'a, 'w> {
    cfg: &'a SimConfig,
    ids: Vec<String>,
    client_urls: Vec<reqwest::Url>,
    epoch_mono_ns: u64,
    workload: &'w mut dyn Workload,
    rng: ChaCha8Rng,
    recorder: Recorder,
    workers: Vec<Worker>,
    http: reqwest::Client,
    done_tx: mpsc::UnboundedSender<Completed>,
    next_request: u64,
    final_queue: Vec<(Invocation, u32)>,
    finals_started: bool,
    counts: Counts,
}

/// Runs the load, the faults, the heal, the quiet period and the final reads; returns the
/// recorder and the run's end time (ns since the epoch). The load and the schedule start now
/// (the nodes are up), so history times also count the startup before it, like the node logs.
pub async fn conduct(
    setup: Setup<'_>,
    workload: &mut dyn Workload,
    recorder: Recorder,
) -> Result<(Recorder, u64), Failure> {
    let Setup {
        cfg,
        ids,
        node_urls,
        epoch_mono_ns,
        schedule,
        faults,
        workload_rng,
    } = setup;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut c = Conductor {
        cfg,
        client_urls: node_urls
            .iter()
            .map(|u| reqwest::Url::parse(&format!("{u}/client")))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::internal(format!("a node URL: {e}")))?,
        workers: (0..cfg.concurrency)
            .map(|w| Worker {
                process: w as u64,
                node: w % ids.len().max(1),
                pending: None,
            })
            .collect(),
        ids,
        epoch_mono_ns,
        workload,
        rng: workload_rng,
        recorder,
        http: http_client(cfg.concurrency)?,
        done_tx,
        next_request: 0,
        final_queue: Vec::new(),
        finals_started: false,
        counts: Counts {
            invoked: 0,
            ok: 0,
            fail: 0,
            info: 0,
        },
    };

    let t0 = c.now();
    // The nemesis: applies each fault at its time, in order, and reports when it is in force.
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel();
    let nemesis = {
        let faults = faults.clone();
        let timed = schedule.faults.clone();
        tokio::spawn(async move {
            for timed in timed {
                tokio::time::sleep_until(instant_at(epoch_mono_ns, t0 + timed.at_ns)).await;
                let applied = faults.apply(&timed.fault).await;
                if applied_tx.send((applied, monotonic_ns())).is_err() {
                    return;
                }
            }
        })
    };
    let _abort_nemesis = AbortOnDrop(nemesis);

    let time_limit = t0 + cfg.time_limit_ns;
    let finals_at = time_limit + cfg.quiet_ns;
    let hard_stop = finals_at + 10 * cfg.client_timeout_ns + 30 * SECOND;
    let mut next_generate = t0;
    let mut progress = Progress::new(finals_at);
    let mut progress_tick = tokio::time::interval(PROGRESS_EVERY);

    loop {
        if c.finals_started && c.final_queue.is_empty() && c.all_idle() {
            break;
        }
        let generating = next_generate < time_limit;
        tokio::select! {
            Some(done) = done_rx.recv() => c.complete(done),
            Some((fault, at)) = applied_rx.recv() => {
                c.recorder.record(NewOp {
                    time: at.saturating_sub(epoch_mono_ns),
                    process: Process::Nemesis,
                    kind: OpType::Info,
                    f: fault.name().to_string(),
                    value: fault.history_value(),
                    error: None,
                    node: None,
                    extra: Default::default(),
                });
            }
            _ = tokio::time::sleep_until(instant_at(epoch_mono_ns, next_generate)), if generating => {
                // Catch up on every invocation due by now: timers are coarser than the gaps.
                let now = c.now();
                while next_generate <= now && next_generate < time_limit {
                    c.generate();
                    let mean = SECOND as f64 / cfg.rate.max(1e-3);
                    let gap = c.rng.random_range(0.0..=2.0 * mean) as u64;
                    next_generate += gap.max(1);
                }
            }
            _ = tokio::time::sleep_until(instant_at(epoch_mono_ns, finals_at)), if !c.finals_started => {
                c.start_finals();
            }
            _ = tokio::time::sleep_until(instant_at(epoch_mono_ns, hard_stop)) => break,
            _ = progress_tick.tick() => {
                let now = c.now();
                let phase = if now < time_limit {
                    "load"
                } else if !c.finals_started {
                    "heal + quiet"
                } else {
                    "final reads"
                };
                progress.update(&Snapshot {
                    elapsed_ns: now,
                    phase,
                    invoked: c.counts.invoked,
                    ok: c.counts.ok,
                    fail: c.counts.fail,
                    info: c.counts.info,
                    faults: faults.active().describe(),
                });
            }
        }
    }
    progress.finish();
    let end = c.now();
    Ok((c.recorder, end))
}

/// Aborts a task when dropped (the run ended, maybe early: an error or an interrupt).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The tokio instant at `at_ns` of run time.
pub fn instant_at(epoch_mono_ns: u64, at_ns: u64) -> tokio::time::Instant {
    let now = monotonic_ns().saturating_sub(epoch_mono_ns);
    let base = tokio::time::Instant::now();
    if at_ns >= now {
        base + Duration::from_nanos(at_ns - now)
    } else {
        base.checked_sub(Duration::from_nanos(now - at_ns))
            .unwrap_or(base)
    }
}

impl Conductor<'_, '_> {
    fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.epoch_mono_ns)
    }

    fn all_idle(&self) -> bool {
        self.workers.iter().all(|w| w.pending.is_none())
    }

    /// Invokes the next workload operation on a random free process, if any.
    fn generate(&mut self) {
        let free: Vec<usize> = (0..self.workers.len())
            .filter(|w| self.workers[*w].pending.is_none())
            .collect();
        if let Some(&w) = free.choose(&mut self.rng) {
            let process = self.workers[w].process;
            let invocation = self.workload.next_invocation_for(process, &mut self.rng);
            self.invoke(w, invocation, None);
        }
    }

    fn invoke(&mut self, w: usize, invocation: Invocation, final_attempts_left: Option<u32>) {
        self.next_request += 1;
        let request = self.next_request;
        let now = self.now();
        let worker = &mut self.workers[w];
        let node = worker.node;
        self.recorder.record(NewOp {
            time: now,
            process: Process::Client(worker.process),
            kind: OpType::Invoke,
            f: invocation.f.clone(),
            value: invocation.value.clone(),
            error: None,
            node: Some(self.ids[node].clone()),
            extra: Default::default(),
        });
        self.counts.invoked += 1;
        let body = self.workload.request_body(&invocation);
        worker.pending = Some(Pending {
            request,
            invocation,
            final_attempts_left,
        });
        let http = self.http.clone();
        let url = self.client_urls[node].clone();
        let timeout = Duration::from_nanos(self.cfg.client_timeout_ns);
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let result = call(&http, url, &body, timeout).await;
            let _ = done.send(Completed {
                worker: w,
                request,
                result,
            });
        });
    }

    fn complete(&mut self, done: Completed) {
        let now = self.now();
        let concurrency = self.cfg.concurrency as u64;
        let worker = &mut self.workers[done.worker];
        if worker.pending.as_ref().map(|p| p.request) != Some(done.request) {
            return;
        }
        let Some(pending) = worker.pending.take() else {
            return;
        };
        let outcome = done.result.outcome();
        let completion = self.workload.complete(&pending.invocation, &outcome);
        self.workload
            .observe(worker.process, &pending.invocation, &completion);
        self.recorder.record(NewOp {
            time: now,
            process: Process::Client(worker.process),
            kind: completion.kind,
            f: pending.invocation.f.clone(),
            value: completion.value.clone(),
            error: completion.error.clone(),
            node: Some(self.ids[worker.node].clone()),
            extra: completion.extra.clone(),
        });
        match completion.kind {
            OpType::Ok => self.counts.ok += 1,
            OpType::Fail => self.counts.fail += 1,
            _ => self.counts.info += 1,
        }
        let reply = match &done.result {
            CallResult::Reply(body) => Some(body),
            CallResult::Timeout | CallResult::Refused | CallResult::Broken(_) => None,
        };
        if let Some(retry) = worker.finish(pending, &completion, reply, &self.ids, concurrency) {
            self.final_queue.push(retry);
        }
        if self.finals_started {
            self.start_final_read(done.worker);
        }
    }

    fn start_finals(&mut self) {
        self.finals_started = true;
        self.final_queue = self
            .workload
            .final_invocations()
            .into_iter()
            .rev()
            .map(|inv| (inv, FINAL_READ_ATTEMPTS))
            .collect();
        for w in 0..self.workers.len() {
            self.start_final_read(w);
        }
    }

    fn start_final_read(&mut self, w: usize) {
        if self.workers[w].pending.is_some() {
            return;
        }
        if let Some((inv, attempts)) = self.final_queue.pop() {
            self.invoke(w, inv, Some(attempts.saturating_sub(1)));
        }
    }
}
