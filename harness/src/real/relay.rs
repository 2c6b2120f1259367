//! The relay: every peer message of a real-mode run passes through the harness, at
//! `POST /relay/<src>/<dst>`, which answers 202 at once (as a datagram send would return) and
//! then applies the simulator's link-fault model ([`Network`]): loss and duplication decided at
//! send time, latency as a sleep, and directed grudges checked at delivery. Each decision is
//! logged to `node-logs/relay.log`; with tracing on, every message's fate is kept for
//! `messages.jsonl` (the simulator's shape).

use super::monotonic_ns;
use crate::sim::MessageTrace;
use crate::sim::network::{Fate, Network};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::serve::ListenerExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Forwards to one destination in flight at once, at most; more are dropped (`overflow`), as a
/// full socket buffer would. Bounds the sockets held open towards a paused node.
const MAX_IN_FLIGHT_PER_DEST: usize = 256;
/// A forward not answered in this long is given up (`timeout`): the receiver is paused or
/// swamped. A paused receiver may still read it when it resumes, as a real one would.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(1);
/// Most relay-overhead samples kept for the statistics.
const MAX_SAMPLES: usize = 1 << 20;
/// Most message fates kept for `messages.jsonl`.
const MAX_TRACE: usize = 2_000_000;

/// The link model and its random stream, shared with the nemesis.
pub struct Links {
    pub net: Network,
    rng: ChaCha8Rng,
}

/// Counters of what the relay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RelayStats {
    pub received: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub cut: u64,
    /// The receiver refused the connection (killed).
    pub dead: u64,
    pub timeout: u64,
    pub overflow: u64,
    /// Time from the relay receiving a message to the receiver accepting it, minus the injected
    /// latency: the relay's own cost per hop, in microseconds.
    pub hop_overhead_us_p50: f64,
    pub hop_overhead_us_p99: f64,
    pub hop_overhead_us_mean: f64,
}

struct Inner {
    ids: Vec<String>,
    /// `http://127.0.0.1:PORT/peer` of each node, by index.
    peer_urls: Vec<reqwest::Url>,
    links: Mutex<Links>,
    http: reqwest::Client,
    epoch_mono_ns: u64,
    log: Mutex<BufWriter<File>>,
    trace: Option<Mutex<Vec<MessageTrace>>>,
    in_flight: Vec<AtomicUsize>,
    counters: Counters,
    overhead_us: Mutex<Vec<u32>>,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    cut: AtomicU64,
    dead: AtomicU64,
    timeout: AtomicU64,
    overflow: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A running relay. Cloning gives another handle to the same relay.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

/// What the relay needs to know when it starts.
pub struct RelaySetup {
    pub ids: Vec<String>,
    /// Each node's base URL (`http://127.0.0.1:PORT`), by index.
    pub node_urls: Vec<String>,
    pub net: Network,
    pub rng: ChaCha8Rng,
    pub epoch_mono_ns: u64,
    pub log_path: std::path::PathBuf,
    pub trace: bool,
}

#[derive(Deserialize)]
struct EnvelopeKind {
    #[serde(default)]
    body: BodyKind,
}

#[derive(Deserialize, Default)]
struct BodyKind {
    #[serde(rename = "type", default)]
    kind: String,
}

impl Relay {
    /// Binds `127.0.0.1:0` and serves until [`Relay::stop`] (or the runtime ends).
    pub async fn start(setup: RelaySetup) -> std::io::Result<(Relay, JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .retry(reqwest::retry::never())
            .tcp_nodelay(true)
            .timeout(FORWARD_TIMEOUT)
            .pool_max_idle_per_host(MAX_IN_FLIGHT_PER_DEST)
            .build()
            .map_err(std::io::Error::other)?;
        let nodes = setup.ids.len();
        let inner = Arc::new(Inner {
            // Parsed once: URL parsing per message would cost as much as the forward itself.
            peer_urls: setup
                .node_urls
                .iter()
                .map(|u| reqwest::Url::parse(&format!("{u}/peer")))
                .collect::<Result<_, _>>()
                .map_err(std::io::Error::other)?,
            ids: setup.ids,
            links: Mutex::new(Links {
                net: setup.net,
                rng: setup.rng,
            }),
            http,
            epoch_mono_ns: setup.epoch_mono_ns,
            log: Mutex::new(BufWriter::new(File::create(&setup.log_path)?)),
            trace: setup.trace.then(|| Mutex::new(Vec::new())),
            in_flight: (0..nodes).map(|_| AtomicUsize::new(0)).collect(),
            counters: Counters::default(),
            overhead_us: Mutex::new(Vec::new()),
        });
        let relay = Relay { inner, addr };
        let app = Router::new()
            .route("/relay/{src}/{dst}", post(relay_message))
            .with_state(relay.clone());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("verity: relay server error: {e}");
            }
        });
        Ok((relay, server))
    }

    /// The URL a node posts its messages for `dst` to.
    pub fn url(&self, src: &str, dst: &str) -> String {
        format!("http://{}/relay/{src}/{dst}", self.addr)
    }

    /// The link model, for the nemesis to change.
    pub fn links(&self) -> MutexGuard<'_, Links> {
        lock(&self.inner.links)
    }

    pub fn log(&self, line: &str) {
        let mut log = lock(&self.inner.log);
        let _ = writeln!(log, "{:.3} {line}", self.inner.now_ms());
    }

    pub fn stats(&self) -> RelayStats {
        let c = &self.inner.counters;
        let mut samples = lock(&self.inner.overhead_us).clone();
        samples.sort_unstable();
        let pct = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i.min(samples.len() - 1)] as f64
        };
        let mean = if samples.is_empty() {
            0.0
        } else {
            samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64
        };
        RelayStats {
            received: c.received.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            cut: c.cut.load(Ordering::Relaxed),
            dead: c.dead.load(Ordering::Relaxed),
            timeout: c.timeout.load(Ordering::Relaxed),
            overflow: c.overflow.load(Ordering::Relaxed),
            hop_overhead_us_p50: pct(0.5),
            hop_overhead_us_p99: pct(0.99),
            hop_overhead_us_mean: mean,
        }
    }

    /// Every message's fate so far (empty unless tracing), and the log flushed.
    pub fn finish(&self) -> Vec<MessageTrace> {
        let _ = lock(&self.inner.log).flush();
        match &self.inner.trace {
            Some(trace) => std::mem::take(&mut *lock(trace)),
            None => Vec::new(),
        }
    }
}

/// A poisoned lock only means another task panicked mid-update of plain data: keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn now_ns(&self) -> u64 {
        monotonic_ns().saturating_sub(self.epoch_mono_ns)
    }

    fn now_ms(&self) -> f64 {
        self.now_ns() as f64 / 1e6
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }

    fn set_fate(&self, trace: Option<usize>, fate: &'static str, delivered_ns: Option<u64>) {
        if let (Some(t), Some(traces)) = (trace, &self.trace)
            && let Some(m) = lock(traces).get_mut(t)
            && m.delivered_ns.is_none()
        {
            m.fate = fate;
            m.delivered_ns = delivered_ns;
        }
    }
}

async fn relay_message(
    State(relay): State<Relay>,
    Path((src, dst)): Path<(String, String)>,
    bytes: Bytes,
) -> StatusCode {
    let inner = &relay.inner;
    let (Some(from), Some(to)) = (inner.index(&src), inner.index(&dst)) else {
        return StatusCode::NOT_FOUND;
    };
    let received_ns = inner.now_ns();
    bump(&inner.counters.received);
    let fate = {
        let mut links = lock(&inner.links);
        let Links { net, rng } = &mut *links;
        net.send(rng)
    };
    let kind = serde_json::from_slice::<EnvelopeKind>(&bytes)
        .map(|e| e.body.kind)
        .unwrap_or_default();
    let trace = inner.trace.as_ref().and_then(|traces| {
        let mut traces = lock(traces);
        (traces.len() < MAX_TRACE).then(|| {
            traces.push(MessageTrace {
                sent_ns: received_ns,
                delivered_ns: None,
                from: src.clone(),
                to: dst.clone(),
                kind: kind.clone(),
                fate: "lost",
            });
            traces.len() - 1
        })
    });
    let delays = match fate {
        Fate::Lost => {
            bump(&inner.counters.lost);
            relay.log(&format!("{src}->{dst} {kind} lost"));
            return StatusCode::ACCEPTED;
        }
        Fate::Deliver(delays) => delays,
    };
    if delays.len() > 1 {
        bump(&inner.counters.duplicated);
    }
    let shown: Vec<String> = delays
        .iter()
        .map(|d| format!("{:.3}ms", *d as f64 / 1e6))
        .collect();
    relay.log(&format!(
        "{src}->{dst} {kind} deliver after {}",
        shown.join(",")
    ));
    for delay in delays {
        let relay = relay.clone();
        let bytes = bytes.clone();
        let kind = kind.clone();
        tokio::spawn(async move {
            if delay > 0 {
                tokio::time::sleep(Duration::from_nanos(delay)).await;
            }
            forward(&relay, from, to, bytes, &kind, trace, received_ns, delay).await;
        });
    }
    StatusCode::ACCEPTED
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    relay: &Relay,
    from: usize,
    to: usize,
    bytes: Bytes,
    kind: &str,
    trace: Option<usize>,
    received_ns: u64,
    delay_ns: u64,
) {
    let inner = &relay.inner;
    let (src, dst) = (&inner.ids[from], &inner.ids[to]);
    if !lock(&inner.links).net.connected(from, to) {
        bump(&inner.counters.cut);
        inner.set_fate(trace, "cut", None);
        relay.log(&format!("{src}->{dst} {kind} cut"));
        return;
    }
    let slots = &inner.in_flight[to];
    if slots.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT_PER_DEST {
        slots.fetch_sub(1, Ordering::AcqRel);
        bump(&inner.counters.overflow);
        inner.set_fate(trace, "overflow", None);
        relay.log(&format!("{src}->{dst} {kind} overflow"));
        return;
    }
    let result = inner
        .http
        .post(inner.peer_urls[to].clone())
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await;
    slots.fetch_sub(1, Ordering::AcqRel);
    let now = inner.now_ns();
    match result {
        Ok(response) if response.status().is_success() => {
            bump(&inner.counters.delivered);
            inner.set_fate(trace, "delivered", Some(now));
            let overhead_us = now.saturating_sub(received_ns + delay_ns) / 1_000;
            let mut samples = lock(&inner.overhead_us);
            if samples.len() < MAX_SAMPLES {
                samples.push(overhead_us.min(u32::MAX as u64) as u32);
            }
        }
        Ok(response) => {
            bump(&inner.counters.dead);
            inner.set_fate(trace, "dead", None);
            relay.log(&format!(
                "{src}->{dst} {kind} refused {}",
                response.status()
            ));
        }
        Err(e) if e.is_timeout() => {
            bump(&inner.counters.timeout);
            inner.set_fate(trace, "timeout", None);
            relay.log(&format!("{src}->{dst} {kind} timeout"));
        }
        Err(_) => {
            bump(&inner.counters.dead);
            inner.set_fate(trace, "dead", None);
            relay.log(&format!("{src}->{dst} {kind} dead"));
        }
    }
}
