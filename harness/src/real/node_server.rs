//! `verity node`: one sans-IO node behind an HTTP server on loopback.
//!
//! - `POST /peer`: one message envelope (`{"src", "dest", "body"}`) per request, answered 202
//!   before the node sees it; nothing is retried: peer messages are datagrams.
//! - `POST /client`: a client request body; the answer is the node's reply (or, after
//!   `--request-timeout`, an indefinite timeout error).
//! - `GET /admin/state`: the node's `state()`.
//! - `POST /admin/clock`: `{"offset_ms": f, "drift_ppm": f}` sets the node's wall clock to real
//!   time + offset + drift (drift accumulates from the moment of the call).
//!
//! One loop owns the node and runs its handlers one at a time. It takes whatever events are
//! queued, runs them, performs the disk syncs they asked for in one group commit, and only then
//! releases the sends and replies, so nothing that followed a sync leaves before it is durable.

use super::disk::DataDir;
use super::{monotonic_ns, unix_now_ns};
use crate::exit::Failure;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use clap::Args;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use systems::node::Envelope;
use systems::protocol::{self, code};
use systems::{Clocks, Context, Delay, Effect, Node, NodeConfig, NodeId, TimerKey};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// `verity node`: host one node of a bundled system (started by `verity test --mode real`).
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The system (see `verity list`).
    #[arg(long)]
    pub system: String,
    /// This node's id (`n1`, ...).
    #[arg(long)]
    pub id: String,
    /// Address to serve on; loopback only.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where to send each peer's messages: `n2=URL,n3=URL` (repeatable).
    #[arg(long, value_delimiter = ',', value_name = "ID=URL")]
    pub peers: Vec<String>,
    /// Directory of this node's durable files (kept across restarts).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Switch on a deliberate bug (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Seed of the node's random stream (timer jitter and whatever the node draws).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stream number within the seed.
    #[arg(long, default_value_t = 0)]
    pub rng_stream: u64,
    /// TrueTime uncertainty ε in ms.
    #[arg(long, default_value_t = 7.0)]
    pub epsilon_ms: f64,
    /// CLOCK_MONOTONIC reading (ns) at which the run started: the node's monotonic clock counts
    /// from it, so it agrees with the harness's and survives restarts. Default: now.
    #[arg(long, value_name = "NS")]
    pub epoch_monotonic_ns: Option<u64>,
    /// Seconds a client request waits for the node's reply before an indefinite timeout.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub request_timeout: f64,
    /// The harness's pid: the node exits when its parent is not (or no longer) this process.
    #[arg(long, value_name = "PID", hide = true)]
    pub parent_pid: Option<i32>,
}

/// Something for the node's loop to do.
enum Inbound {
    Peer {
        from: String,
        /// The body's JSON text: the node parses it.
        body: String,
    },
    Client {
        body: Value,
        reply: oneshot::Sender<Value>,
    },
    Timer {
        key: TimerKey,
        generation: u64,
    },
    State {
        reply: oneshot::Sender<Value>,
    },
    Clock {
        offset_ns: i64,
        drift_ppm: i64,
        reply: oneshot::Sender<Value>,
    },
}

/// Queued events beyond this are dropped (peer messages) or refused (clients): a flood must not
/// grow the node's memory without bound.
const QUEUE_CAPACITY: usize = 16_384;
/// Most events run between two group commits.
const MAX_BATCH: usize = 512;

/// The node's wall clock: real time, plus an offset, plus drift since the last setting.
#[derive(Debug, Clone, Copy, Default)]
struct WallClock {
    offset_ns: i64,
    drift_ppm: i64,
    drift_since_mono_ns: u64,
}

impl WallClock {
    fn skew_ns(&self, mono_ns: u64) -> i64 {
        let elapsed = mono_ns.saturating_sub(self.drift_since_mono_ns) as i128;
        self.offset_ns + (elapsed * self.drift_ppm as i128 / 1_000_000) as i64
    }
}

/// Exit codes of `verity node` besides 0.
mod node_exit {
    /// The disk could not be read or written: a real node would crash too.
    pub const DISK: i32 = 70;
    /// The parent harness is gone.
    pub const ORPHANED: i32 = 71;
}

/// Runs the node until it is killed. Returns an exit code only on a startup problem.
pub fn run(args: &NodeArgs) -> Result<i32, Failure> {
    guard_against_orphaning(args.parent_pid)?;
    if !args.listen.ip().is_loopback() {
        return Err(Failure::bad_arguments(
            "--listen: verity nodes serve on loopback only",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("starting the runtime: {e}")))?;
    runtime.block_on(serve(args))
}

/// Dies with the harness: the kernel sends SIGKILL when the parent goes, and a parent that went
/// before this line ran is detected by comparing pids.
fn guard_against_orphaning(parent_pid: Option<i32>) -> Result<(), Failure> {
    let Some(expected) = parent_pid else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| Failure::internal(format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    if nix::unistd::getppid().as_raw() != expected {
        eprintln!("verity node: the harness (pid {expected}) is gone; exiting");
        std::process::exit(node_exit::ORPHANED);
    }
    Ok(())
}

/// Peer URLs, parsed once (not per message) and held to loopback.
fn parse_peers(args: &NodeArgs) -> Result<BTreeMap<NodeId, reqwest::Url>, Failure> {
    let mut peers = BTreeMap::new();
    for spec in args.peers.iter().filter(|p| !p.is_empty()) {
        let (id, url) = spec.split_once('=').ok_or_else(|| {
            Failure::bad_arguments(format!("--peers: expected ID=URL, got {spec:?}"))
        })?;
        if id == args.id {
            return Err(Failure::bad_arguments(format!(
                "--peers: {id} is this node itself"
            )));
        }
        let url = reqwest::Url::parse(url)
            .map_err(|e| Failure::bad_arguments(format!("--peers: {id}: {url:?}: {e}")))?;
        let loopback = match url.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if !loopback {
            return Err(Failure::bad_arguments(format!(
                "--peers: {id}: {url} is not on loopback"
            )));
        }
        peers.insert(id.to_string(), url);
    }
    Ok(peers)
}

/// `n2` before `n10`: the cluster order every node agrees on.
pub fn natural_order(ids: &mut [String]) {
    ids.sort_by(|a, b| (a.len(), a.as_str()).cmp(&(b.len(), b.as_str())));
}

async fn serve(args: &NodeArgs) -> Result<i32, Failure> {
    let peer_urls = parse_peers(args)?;
    let mut nodes: Vec<NodeId> = peer_urls.keys().cloned().collect();
    nodes.push(args.id.clone());
    natural_order(&mut nodes);
    let config = NodeConfig {
        id: args.id.clone(),
        nodes,
        bugs: args.bugs.clone(),
    };
    let peers = config.peers();
    let node = systems::build(&args.system, config).map_err(Failure::bad_arguments)?;
    let disk = DataDir::open(&args.data_dir).map_err(|e| {
        Failure::internal(format!(
            "opening the data directory {}: {e}",
            args.data_dir.display()
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::internal(format!("binding {}: {e}", args.listen)))?;
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let request_timeout = Duration::from_secs_f64(args.request_timeout.clamp(0.001, 3600.0));
    let app = Router::new()
        .route("/peer", post(peer_message))
        .route("/client", post(client_request))
        .route("/admin/state", get(admin_state))
        .route("/admin/clock", post(admin_clock))
        .with_state(ServerState {
            tx: tx.clone(),
            request_timeout,
        });
    // Small request/response exchanges: never let Nagle hold a reply back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("verity node: server error: {e}");
        }
    });
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    rng.set_stream(args.rng_stream);
    let http = reqwest::Client::builder()
        .no_proxy()
        .retry(reqwest::retry::never())
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| Failure::internal(format!("building the HTTP client: {e}")))?;
    let mut host = NodeHost {
        id: args.id.clone(),
        peers,
        node,
        rng,
        disk,
        staged: BTreeMap::new(),
        clock: WallClock::default(),
        epoch_mono_ns: args.epoch_monotonic_ns.unwrap_or_else(monotonic_ns),
        epsilon_ns: (args.epsilon_ms.max(0.0) * 1e6) as u64,
        timers: BTreeMap::new(),
        timer_generation: 0,
        pending_clients: BTreeMap::new(),
        next_request: 0,
        next_msg_id: 0,
        peer_urls,
        http,
        tx,
    };
    log_line(&format!(
        "{} listening on {} (data {})",
        host.id,
        args.listen,
        args.data_dir.display()
    ));
    host.run(rx).await;
    Ok(crate::exit::VALID)
}

#[derive(Clone)]
struct ServerState {
    tx: mpsc::Sender<Inbound>,
    request_timeout: Duration,
}

async fn peer_message(State(state): State<ServerState>, bytes: Bytes) -> StatusCode {
    let Ok(envelope) = Envelope::parse(&bytes) else {
        return StatusCode::BAD_REQUEST;
    };
    // A full queue drops the datagram, as an overloaded network would.
    let _ = state.tx.try_send(Inbound::Peer {
        from: envelope.src.into_owned(),
        body: envelope.body.get().to_string(),
    });
    StatusCode::ACCEPTED
}

async fn client_request(State(state): State<ServerState>, bytes: Bytes) -> Json<Value> {
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return Json(protocol::definite_error(
            code::MALFORMED_REQUEST,
            "the request body is not JSON",
        ));
    };
    let (reply, answer) = oneshot::channel();
    if state.tx.try_send(Inbound::Client { body, reply }).is_err() {
        return Json(protocol::definite_error(
            code::TEMPORARILY_UNAVAILABLE,
            "node overloaded",
        ));
    }
    match tokio::time::timeout(state.request_timeout, answer).await {
        Ok(Ok(body)) => Json(body),
        Ok(Err(_)) => Json(protocol::indefinite_error(code::CRASH, "request dropped")),
        Err(_) => Json(protocol::indefinite_error(
            code::TIMEOUT,
            "no reply in time",
        )),
    }
}

async fn admin_state(State(state): State<ServerState>) -> Result<Json<Value>, StatusCode> {
    let (reply, answer) = oneshot::channel();
    state
        .tx
        .send(Inbound::State { reply })
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    answer
        .await
        .map(Json)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

#[derive(Deserialize)]
struct ClockSetting {
    #[serde(default)]
    offset_ms: f64,
    #[serde(default)]
    drift_ppm: f64,
}

async fn admin_clock(
    State(state): State<ServerState>,
    Json(setting): Json<ClockSetting>,
) -> Result<Json<Value>, StatusCode> {
    if !(setting.offset_ms.is_finite() && setting.drift_ppm.is_finite()) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let (reply, answer) = oneshot::channel();
    let event = Inbound::Clock {
        offset_ns: (setting.offset_ms * 1e6) as i64,
        drift_ppm: setting.drift_ppm as i64,
        reply,
    };
    state
        .tx
        .send(event)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    answer
        .await
        .map(Json)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

/// A log line on stdout, which the supervisor keeps in `node-logs/<id>.log`.
fn log_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// What leaves the loop once the batch's syncs are durable.
enum Output {
    Send { url: reqwest::Url, bytes: Vec<u8> },
    Reply { request: u64, body: Value },
}

/// The node and everything its handlers need.
struct NodeHost {
    id: String,
    peers: Vec<NodeId>,
    node: Box<dyn Node>,
    rng: ChaCha8Rng,
    disk: DataDir,
    /// Written but not synced: lost if the process is killed.
    staged: BTreeMap<String, Vec<u8>>,
    clock: WallClock,
    epoch_mono_ns: u64,
    epsilon_ns: u64,
    timers: BTreeMap<TimerKey, (u64, JoinHandle<()>)>,
    timer_generation: u64,
    pending_clients: BTreeMap<u64, oneshot::Sender<Value>>,
    next_request: u64,
    next_msg_id: u64,
    peer_urls: BTreeMap<NodeId, reqwest::Url>,
    http: reqwest::Client,
    tx: mpsc::Sender<Inbound>,
}

/// One batch's collected work.
#[derive(Default)]
struct Batch {
    outputs: Vec<Output>,
    /// Files a `DiskSync` made durable-to-be, with their contents at that moment.
    to_sync: BTreeMap<String, Vec<u8>>,
}

impl NodeHost {
    async fn run(&mut self, mut rx: mpsc::Receiver<Inbound>) {
        let mut batch = Batch::default();
        self.call(&mut batch, |node, ctx| node.on_start(ctx));
        self.commit(batch).await;
        let mut events = Vec::with_capacity(MAX_BATCH);
        loop {
            if rx.recv_many(&mut events, MAX_BATCH).await == 0 {
                return; // every sender is gone: the server stopped
            }
            let mut batch = Batch::default();
            for event in events.drain(..) {
                self.handle(event, &mut batch);
            }
            self.commit(batch).await;
        }
    }

    fn monotonic(&self) -> u64 {
        monotonic_ns().saturating_sub(self.epoch_mono_ns)
    }

    fn handle(&mut self, event: Inbound, batch: &mut Batch) {
        match event {
            Inbound::Peer { from, body } => {
                self.call(batch, |node, ctx| node.on_message_json(ctx, &from, &body));
            }
            Inbound::Client { body, reply } => {
                self.next_request += 1;
                let request = self.next_request;
                self.pending_clients.insert(request, reply);
                self.call(batch, |node, ctx| {
                    node.on_client_request(ctx, request, body)
                });
            }
            Inbound::Timer { key, generation } => {
                if self.timers.get(&key).map(|(g, _)| *g) == Some(generation) {
                    self.timers.remove(&key);
                    self.call(batch, |node, ctx| node.on_timer(ctx, key));
                }
            }
            Inbound::State { reply } => {
                let _ = reply.send(self.node.state());
            }
            Inbound::Clock {
                offset_ns,
                drift_ppm,
                reply,
            } => {
                self.clock = WallClock {
                    offset_ns,
                    drift_ppm,
                    drift_since_mono_ns: self.monotonic(),
                };
                log_line(&format!(
                    "{:.3} clock offset {:.3} ms drift {drift_ppm} ppm",
                    self.monotonic() as f64 / 1e6,
                    offset_ns as f64 / 1e6
                ));
                let _ = reply.send(json!({"offset_ms": offset_ns as f64 / 1e6,
                                          "drift_ppm": drift_ppm}));
            }
        }
    }

    /// Runs one handler and files its effects into the batch, in order.
    fn call(&mut self, batch: &mut Batch, handler: impl FnOnce(&mut dyn Node, &mut Context)) {
        let mono = self.monotonic();
        let clocks = Clocks {
            wall_clock_ns: unix_now_ns() + self.clock.skew_ns(mono),
            monotonic_ns: mono,
            epsilon_ns: self.epsilon_ns,
        };
        let mut ctx = Context::new(
            &self.id,
            &self.peers,
            clocks,
            &mut self.rng,
            self.disk.image(),
        );
        handler(self.node.as_mut(), &mut ctx);
        for effect in ctx.into_effects() {
            self.apply(effect, batch, mono);
        }
    }

    fn apply(&mut self, effect: Effect, batch: &mut Batch, mono: u64) {
        match effect {
            Effect::Send { dest, body } => {
                let Some(url) = self.peer_urls.get(&dest) else {
                    log_line(&format!(
                        "{:.3} send to unknown node {dest}",
                        mono as f64 / 1e6
                    ));
                    return;
                };
                let bytes = Envelope::encode(&self.id, &dest, &body, &mut self.next_msg_id);
                batch.outputs.push(Output::Send {
                    url: url.clone(),
                    bytes,
                });
            }
            Effect::Reply { request, body } => {
                batch.outputs.push(Output::Reply { request, body });
            }
            Effect::SetTimer { key, delay } => {
                let after = match delay {
                    Delay::Fixed(ns) => ns,
                    Delay::Jitter { min, max } => self.rng.random_range(min..=max.max(min)),
                };
                self.timer_generation += 1;
                let generation = self.timer_generation;
                let tx = self.tx.clone();
                let task = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_nanos(after)).await;
                    let _ = tx.send(Inbound::Timer { key, generation }).await;
                });
                if let Some((_, old)) = self.timers.insert(key, (generation, task)) {
                    old.abort();
                }
            }
            Effect::CancelTimer { key } => {
                if let Some((_, old)) = self.timers.remove(&key) {
                    old.abort();
                }
            }
            Effect::DiskWrite { file, bytes } => {
                self.staged.insert(file, bytes);
            }
            Effect::DiskSync => {
                batch.to_sync.append(&mut self.staged);
            }
            Effect::Trace { event, data } => {
                log_line(&format!("{:.3} {event} {data}", mono as f64 / 1e6));
            }
        }
    }

    /// Makes the batch's syncs durable, then releases its sends and replies.
    async fn commit(&mut self, batch: Batch) {
        if !batch.to_sync.is_empty() {
            let files: Vec<(String, Vec<u8>)> = batch.to_sync.into_iter().collect();
            let dir = self.disk.path().to_path_buf();
            // The fsyncs run off the loop's thread so the server keeps accepting meanwhile.
            let written = tokio::task::spawn_blocking(move || {
                super::disk::write_durably(&dir, &files).map(|_| files)
            })
            .await;
            match written {
                Ok(Ok(files)) => self.disk.note_synced(files),
                Ok(Err(e)) => die_of_disk_error(&e.to_string()),
                Err(e) => die_of_disk_error(&e.to_string()),
            }
        }
        for output in batch.outputs {
            match output {
                Output::Send { url, bytes } => {
                    let request = self
                        .http
                        .post(url)
                        .header("content-type", "application/json")
                        .body(bytes);
                    // Fire and forget: a message that does not get through is lost.
                    tokio::spawn(async move {
                        let _ = request.send().await;
                    });
                }
                Output::Reply { request, body } => {
                    if let Some(client) = self.pending_clients.remove(&request) {
                        let _ = client.send(body);
                    }
                }
            }
        }
        // Clients that gave up (their handler timed out) need no reply any more.
        self.pending_clients.retain(|_, c| !c.is_closed());
    }
}

fn die_of_disk_error(error: &str) -> ! {
    eprintln!("verity node: disk error, crashing: {error}");
    std::process::exit(node_exit::DISK);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_offset_and_drift() {
        let clock = WallClock {
            offset_ns: -5_000_000,
            drift_ppm: 1000,
            drift_since_mono_ns: 1_000_000_000,
        };
        assert_eq!(clock.skew_ns(1_000_000_000), -5_000_000);
        assert_eq!(clock.skew_ns(2_000_000_000), -4_000_000);
    }

    #[test]
    fn natural_order_puts_n2_before_n10() {
        let mut ids: Vec<String> = ["n10", "n2", "n1"].iter().map(|s| s.to_string()).collect();
        natural_order(&mut ids);
        assert_eq!(ids, ["n1", "n2", "n10"]);
    }
}
