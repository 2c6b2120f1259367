//! The supervisor: starts each node as a `verity node` process on a loopback port, keeps its
//! output in `node-logs/<id>.log`, kills it with SIGKILL and restarts it on the same port and data
//! directory, pauses it with SIGSTOP/SIGCONT, and sets its clock through `/admin/clock`.
//!
//! No orphans: every child is killed and reaped by [`Reaper`]'s `Drop` (normal end, error,
//! Ctrl-C, panic), and every child also asks the kernel for SIGKILL when the thread that spawned
//! it exits (`PR_SET_PDEATHSIG`, set by `verity node --parent-pid`), which covers a harness that is
//! itself SIGKILLed. Children must therefore be spawned from threads that live as long as the run
//! (the runtime's workers or the main thread), never from `spawn_blocking`, whose threads retire
//! when idle.

use super::monotonic_ns;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How to start one node (everything but what changes per incarnation).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub port: u16,
    /// `verity node` arguments.
    pub args: Vec<String>,
}

impl NodeSpec {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

type Children = Arc<Mutex<Vec<Option<Child>>>>;

/// Kills and reaps every child it knows of when dropped.
pub struct Reaper {
    children: Children,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_all(&self.children);
    }
}

fn lock(children: &Children) -> MutexGuard<'_, Vec<Option<Child>>> {
    children.lock().unwrap_or_else(|e| e.into_inner())
}

fn kill_all(children: &Children) {
    for child in lock(children).iter_mut().filter_map(Option::take) {
        reap(child);
    }
}

/// SIGKILL (which also ends a stopped process) and wait, so no zombie is left either.
fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub struct Supervisor {
    binary: PathBuf,
    specs: Vec<NodeSpec>,
    log_dir: PathBuf,
    children: Children,
    epoch_mono_ns: u64,
    http: reqwest::Client,
}

/// How long a node gets to answer `/admin/state` after being started.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Admin calls (state, clock) give up after this long: a paused node never answers.
const ADMIN_TIMEOUT: Duration = Duration::from_millis(500);

impl Supervisor {
    /// A supervisor of `specs`, and the guard that kills whatever it starts.
    pub fn new(
        binary: PathBuf,
        specs: Vec<NodeSpec>,
        log_dir: PathBuf,
        epoch_mono_ns: u64,
    ) -> std::io::Result<(Supervisor, Reaper)> {
        std::fs::create_dir_all(&log_dir)?;
        let children: Children = Arc::new(Mutex::new((0..specs.len()).map(|_| None).collect()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .retry(reqwest::retry::never())
            .timeout(ADMIN_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        let reaper = Reaper {
            children: children.clone(),
        };
        Ok((
            Supervisor {
                binary,
                specs,
                log_dir,
                children,
                epoch_mono_ns,
                http,
            },
            reaper,
        ))
    }

    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.specs[i].id))
    }

    fn note(&self, i: usize, text: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
        {
            let t = monotonic_ns().saturating_sub(self.epoch_mono_ns) as f64 / 1e6;
            let _ = writeln!(f, "{t:.3} [supervisor] {text}");
        }
    }

    /// Spawns node `i` (if it is not running) and waits until it answers.
    pub async fn start(&self, i: usize) -> Result<(), String> {
        if self.is_running(i) {
            return Ok(());
        }
        // A port taken between our probe and the node's bind is rare; try again a few times.
        let mut last_error = String::new();
        for _attempt in 0..3 {
            self.spawn(i)?;
            match self.wait_ready(i).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_error = e;
                    self.kill(i);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(last_error)
    }

    /// Spawns every node at once, then waits for each to answer (retrying one that failed).
    pub async fn start_all(&self) -> Result<(), String> {
        for i in 0..self.specs.len() {
            self.spawn(i)?;
        }
        for i in 0..self.specs.len() {
            if self.wait_ready(i).await.is_err() {
                self.kill(i);
                self.start(i).await?;
            }
        }
        Ok(())
    }

    fn spawn(&self, i: usize) -> Result<(), String> {
        let spec = &self.specs[i];
        self.note(i, "starting");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(|e| format!("opening {}: {e}", self.log_path(i).display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("node")
            .args(&spec.args)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C in the terminal reaches only the harness, which
            // then stops the nodes in order (and can record that it did).
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        if let Some(old) = lock(&self.children)[i].replace(child) {
            reap(old);
        }
        Ok(())
    }

    async fn wait_ready(&self, i: usize) -> Result<(), String> {
        let url = format!("{}/admin/state", self.specs[i].base_url());
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if !self.is_running(i) {
                return Err(format!(
                    "node {} exited during startup; its log ends:\n{}",
                    self.specs[i].id,
                    log_tail(&self.log_path(i), 10)
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "node {} did not answer within {} s; its log ends:\n{}",
                    self.specs[i].id,
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log_path(i), 10)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether node `i`'s process exists (paused counts as running).
    pub fn is_running(&self, i: usize) -> bool {
        let mut children = lock(&self.children);
        match children[i].as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                children[i] = None;
                drop(children);
                self.note(i, &format!("exited on its own: {status}"));
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    /// SIGKILL: memory, timers and unsynced writes are gone. Returns whether it was running.
    pub fn kill(&self, i: usize) -> bool {
        let child = lock(&self.children)[i].take();
        match child {
            Some(child) => {
                reap(child);
                self.note(i, "killed (SIGKILL)");
                true
            }
            None => false,
        }
    }

    fn signal(&self, i: usize, signal: nix::sys::signal::Signal) -> bool {
        let children = lock(&self.children);
        let Some(child) = children[i].as_ref() else {
            return false;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).is_ok()
    }

    /// SIGSTOP: the process freezes; connections to it queue in the kernel.
    pub fn pause(&self, i: usize) -> bool {
        let done = self.signal(i, nix::sys::signal::Signal::SIGSTOP);
        if done {
            self.note(i, "paused (SIGSTOP)");
        }
        done
    }

    pub fn resume(&self, i: usize) -> bool {
        let done = self.signal(i, nix::sys::signal::Signal::SIGCONT);
        if done {
            self.note(i, "resumed (SIGCONT)");
        }
        done
    }

    /// Sets node `i`'s clock skew: real time + `offset_ns` + drift at `drift_ppm` from now on.
    pub async fn set_clock(&self, i: usize, offset_ns: i64, drift_ppm: i64) -> bool {
        let url = format!("{}/admin/clock", self.specs[i].base_url());
        let body = json!({"offset_ms": offset_ns as f64 / 1e6, "drift_ppm": drift_ppm});
        matches!(self.http.post(url).json(&body).send().await,
                 Ok(r) if r.status().is_success())
    }

    /// Node `i`'s `state()`, if it answers.
    pub async fn state(&self, i: usize) -> Option<Value> {
        let url = format!("{}/admin/state", self.specs[i].base_url());
        let response = self.http.get(url).send().await.ok()?;
        response.json().await.ok()
    }

    /// Kills every node (the end of the run).
    pub fn stop_all(&self) {
        kill_all(&self.children);
    }
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loopback port that nothing listens on, outside the kernel's ephemeral range so that no
/// outgoing connection can be holding it when a killed node binds it again.
pub fn free_port(used: &[u16]) -> std::io::Result<u16> {
    let (ephemeral_low, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut parts = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999));
    let low = 10_000u16;
    let span = ephemeral_low.saturating_sub(low).max(1) as u64;
    // Start somewhere that depends on the process and time, so concurrent runs spread out.
    let start = (std::process::id() as u64 * 7919 + monotonic_ns() / 1000) % span;
    for k in 0..span.min(2000) {
        let port = low + ((start + k * 7) % span) as u16;
        if used.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // Fall back on a kernel-assigned port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Writes a header line into a fresh node log (so the log names the run it belongs to).
pub fn start_log(path: &Path, header: &str) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    writeln!(f, "{header}")
}
