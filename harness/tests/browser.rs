//! The reports and the serve index in a real browser: headless Chromium, driven over the
//! DevTools protocol (on a pipe, so no extra crates), opens a valid report, an invalid one, an
//! imported one and the `verity serve` index; any console error, uncaught exception or failed
//! load fails the test; the pages must show what they promise (the timeline drawn, the
//! counterexample present in the invalid one); screenshots go to `target/screenshots/`.
//!
//! Without Chromium the test is skipped with a note, unless `VERITY_REQUIRE_BROWSER` or `CI`
//! is set, in which case it fails (`.ci/run` installs Debian's `chromium`).

mod report_support;

use report_support::{repo, sim_run, temp_dir, verity};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const WIDTH: u64 = 1400;
const HEIGHT: u64 = 900;
const WAIT: Duration = Duration::from_secs(60);

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VERITY_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Kills a child process we started when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DevTools protocol session over Chromium's `--remote-debugging-pipe` (fd 3 in, fd 4 out,
/// messages separated by NUL bytes), reached through two FIFOs.
struct Browser {
    to_browser: std::fs::File,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Problems the page reported: console errors, exceptions, failed loads.
    problems: Vec<String>,
    _process: Reaper,
}

impl Browser {
    fn launch(chromium: &Path, scratch: &Path) -> Browser {
        let commands = scratch.join("cdp-in");
        let replies = scratch.join("cdp-out");
        for fifo in [&commands, &replies] {
            let status = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(status.success(), "mkfifo {}", fifo.display());
        }
        let profile = scratch.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--window-size={WIDTH},{HEIGHT}"),
        ];
        let script = format!(
            "exec \"$0\" \"$@\" 3<'{}' 4>'{}'",
            commands.display(),
            replies.display()
        );
        let process = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(chromium)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let process = Reaper(process);
        // The shell opens the command FIFO first, then the reply FIFO: open them in that order.
        let to_browser = std::fs::OpenOptions::new()
            .write(true)
            .open(&commands)
            .unwrap();
        let reader = std::fs::File::open(&replies).unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop_if(|b| *b == 0);
                        if let Ok(v) = serde_json::from_slice::<Value>(&message)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        Browser {
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: None,
            problems: Vec::new(),
            _process: process,
        }
    }

    /// Notes the problems an event reports.
    fn observe(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let kind = params["type"].as_str().unwrap_or("");
                if kind == "error" || kind == "assert" {
                    self.problems
                        .push(format!("console.{kind}: {}", params["args"]));
                }
            }
            Some("Runtime.exceptionThrown") => self.problems.push(format!(
                "uncaught exception: {}",
                params["exceptionDetails"]
            )),
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.problems.push(format!(
                    "{} error: {} {}",
                    params["entry"]["source"], params["entry"]["text"], params["entry"]["url"]
                ));
            }
            _ => {}
        }
    }

    fn next_message(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from_browser.recv_timeout(left) {
            Ok(v) => {
                self.observe(&v);
                v
            }
            Err(RecvTimeoutError::Timeout) => panic!("the browser did not answer in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("the browser exited"),
        }
    }

    /// Sends a command (to the page session once attached) and waits for its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser.write_all(&bytes).unwrap();
        self.to_browser.flush().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let reply = self.next_message(deadline);
            if reply["id"] == json!(id) {
                assert!(
                    reply.get("error").is_none(),
                    "{method} failed: {}",
                    reply["error"]
                );
                return reply["result"].clone();
            }
        }
    }

    /// Opens a tab and attaches to it, with console and log events on.
    fn open_tab(&mut self) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        self.session = attached["sessionId"].as_str().map(str::to_string);
        self.call("Runtime.enable", json!({}));
        self.call("Log.enable", json!({}));
        self.call("Page.enable", json!({}));
        self.resize(HEIGHT);
    }

    fn resize(&mut self, height: u64) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Navigates and waits for the load event.
    fn visit(&mut self, url: &str) {
        self.problems.clear();
        let reply = self.call("Page.navigate", json!({"url": url}));
        assert!(
            reply.get("errorText").is_none(),
            "cannot open {url}: {}",
            reply["errorText"]
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let event = self.next_message(deadline);
            if event["method"] == "Page.loadEventFired" {
                break;
            }
        }
        // Late console messages (if any) arrive with the next replies; one round trip flushes.
        self.eval("1");
    }

    /// Evaluates an expression in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Saves a PNG of the whole page (up to `max_height` pixels) or of one element.
    fn screenshot(&mut self, path: &Path, selector: Option<&str>, max_height: u64) {
        let clip = match selector {
            Some(sel) => {
                let rect = self.eval(&format!(
                    "(() => {{ const r = document.querySelector({sel:?}).getBoundingClientRect(); \
                     return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()"
                ));
                let n = |i: usize| rect[i].as_f64().unwrap_or(0.0);
                json!({"x": n(0), "y": n(1), "width": n(2).max(1.0),
                       "height": n(3).clamp(1.0, max_height as f64), "scale": 1})
            }
            None => {
                let height = self
                    .eval("document.documentElement.scrollHeight")
                    .as_u64()
                    .unwrap_or(HEIGHT)
                    .min(max_height);
                json!({"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
            }
        };
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "clip": clip, "captureBeyondViewport": true}),
        );
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).unwrap();
    }

    fn assert_no_problems(&self, page: &str) {
        assert!(
            self.problems.is_empty(),
            "{page}: the browser reported:\n{}",
            self.problems.join("\n")
        );
    }

    fn close(mut self) {
        self.session = None;
        self.next_id += 1;
        let message = json!({"id": self.next_id, "method": "Browser.close", "params": {}});
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        let _ = self.to_browser.write_all(&bytes);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn reports_and_the_index_work_in_a_real_browser() {
    let Some(chromium) = find_chromium() else {
        let required = std::env::var_os("VERITY_REQUIRE_BROWSER").is_some()
            || std::env::var_os("CI").is_some();
        assert!(
            !required,
            "Chromium is required (VERITY_REQUIRE_BROWSER or CI is set) but not installed"
        );
        eprintln!("note: chromium is not installed; skipping the browser test");
        return;
    };
    let scratch = temp_dir("browser");
    let results = scratch.join("results");
    let valid = sim_run(&results, 1, 20);
    let invalid = sim_run(&results, 2, 20);
    report_support::make_invalid(&invalid);
    let imported = scratch.join("imported.html");
    let o = verity(&[
        "check",
        "--model",
        "cas-register",
        "--report",
        imported.to_str().unwrap(),
        repo()
            .join("examples/cas-register-invalid.jsonl")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let shots = screenshots_dir();
    let server = report_support::serve(&results);
    let base = format!("http://{}", server.addr);

    let mut browser = Browser::launch(&chromium, &scratch);
    browser.open_tab();

    // First, that a page's errors are seen at all.
    browser.visit(
        "data:text/html,<p>planted</p><script>console.error('planted');no_such_function()</script>",
    );
    assert!(
        browser.problems.len() >= 2,
        "planted errors went unseen: {:?}",
        browser.problems
    );

    // A valid run, from disk.
    browser.visit(&format!("file://{}", valid.join("report.html").display()));
    browser.assert_no_problems("valid report");
    assert_eq!(
        browser.eval("document.getElementById('verdict').textContent"),
        "valid"
    );
    let boxes = browser.eval("document.querySelectorAll('#tl-svg rect.op').length");
    assert!(boxes.as_u64().unwrap() > 50, "timeline boxes: {boxes}");
    assert_eq!(
        browser.eval("!!document.getElementById('counterexample')"),
        false
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('svg.plot').length"),
        2
    );
    // Paging and hovering draw without errors.
    let before = browser.eval("document.getElementById('tl-status').textContent");
    browser.eval("document.getElementById('tl-next').click()");
    let after = browser.eval("document.getElementById('tl-status').textContent");
    assert_ne!(before, after, "paging moves the window");
    browser.eval("document.getElementById('tl-prev').click()");
    let hovered = browser.eval(
        "(() => { const r = document.querySelector('#tl-svg rect.op'); \
         r.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: 200, clientY: 300})); \
         return !document.getElementById('tooltip').hidden && \
                document.getElementById('tooltip').textContent; })()",
    );
    assert!(
        hovered.as_str().is_some_and(|t| t.contains("invoked")),
        "tooltip: {hovered}"
    );
    browser.eval("document.querySelector('#tooltip').hidden = true");
    browser.screenshot(&shots.join("report-valid.png"), None, 6000);
    browser.screenshot(
        &shots.join("report-valid-timeline.png"),
        Some("#timeline"),
        2000,
    );
    browser.assert_no_problems("valid report, after paging and hovering");

    // An invalid run: the counterexample is there and the timeline opens on the failure.
    browser.visit(&format!("file://{}", invalid.join("report.html").display()));
    browser.assert_no_problems("invalid report");
    assert_eq!(
        browser.eval("document.getElementById('verdict').textContent"),
        "invalid"
    );
    assert_eq!(
        browser.eval("!!document.getElementById('counterexample')"),
        true
    );
    assert_eq!(
        browser.eval("!!document.querySelector('#counterexample svg.linear')"),
        true
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#tl-svg rect.op.focus').length"),
        1,
        "the failing operation is in the first window"
    );
    assert_eq!(
        browser.eval("!!document.querySelector('#messages svg')"),
        true
    );
    browser.screenshot(&shots.join("report-invalid.png"), None, 8000);
    browser.screenshot(
        &shots.join("report-invalid-timeline.png"),
        Some("#timeline"),
        2000,
    );
    browser.screenshot(
        &shots.join("report-invalid-counterexample.png"),
        Some("#counterexample"),
        3000,
    );
    browser.screenshot(
        &shots.join("report-invalid-messages.png"),
        Some("#messages"),
        3000,
    );

    // An imported history checked by `verity check --report`.
    browser.visit(&format!("file://{}", imported.display()));
    browser.assert_no_problems("imported report");
    assert_eq!(
        browser.eval("!!document.getElementById('counterexample')"),
        true
    );
    browser.screenshot(&shots.join("report-imported.png"), None, 4000);

    // 100k operations: the page opens on the failure and pages without trouble.
    let big = scratch.join("big");
    report_support::store_synthetic_run(&big, 100_000, 2);
    let o = verity(&["report", big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    browser.visit(&format!("file://{}", big.join("report.html").display()));
    browser.assert_no_problems("100k-operation report");
    assert_eq!(
        browser.eval("document.body.getAttribute('data-timeline-ready')"),
        "100000"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#tl-svg rect.op.focus').length"),
        1
    );
    let paged = browser.eval(
        "(() => { const t = performance.now(); \
         for (let i = 0; i < 20; i++) document.getElementById('tl-next').click(); \
         document.getElementById('tl-zoom-out').click(); \
         return performance.now() - t; })()",
    );
    assert!(
        paged.as_f64().unwrap() < 10_000.0,
        "paging 20 times took {paged} ms"
    );
    browser.eval("document.getElementById('tl-focus').click()");
    browser.assert_no_problems("100k-operation report, paged");
    browser.screenshot(&shots.join("report-100k.png"), None, 5000);

    // Edge cases: one operation that never completes, and faults without any operation.
    for (name, lines) in [
        (
            "pending",
            vec![
                r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"start-partition","value":null}"#,
                r#"{"index":1,"time":5000,"process":0,"type":"invoke","f":"write","value":1}"#,
                r#"{"index":2,"time":9000,"process":"nemesis","type":"info","f":"stop-partition","value":null}"#,
            ],
        ),
        (
            "faults-only",
            vec![
                r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#,
                r#"{"index":1,"time":7000,"process":"nemesis","type":"info","f":"restart","value":["n1"]}"#,
            ],
        ),
    ] {
        let history = scratch.join(format!("{name}.jsonl"));
        std::fs::write(&history, lines.join("\n") + "\n").unwrap();
        let page = scratch.join(format!("{name}.html"));
        let o = verity(&[
            "check",
            "--model",
            "register",
            "--report",
            page.to_str().unwrap(),
            history.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {o:?}");
        browser.visit(&format!("file://{}", page.display()));
        browser.assert_no_problems(name);
        browser.eval("document.getElementById('tl-next').click(); document.getElementById('tl-zoom-out').click()");
        browser.assert_no_problems(name);
    }

    // A Jepsen EDN history from the Knossos corpus (no timestamps, many concurrent ops).
    let corpus = std::env::var_os("VERITY_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/corpus"));
    let edn = corpus.join("knossos/cas-register/bad/cas-failure.edn");
    if edn.is_file() {
        let edn_report = scratch.join("edn.html");
        let o = verity(&[
            "check",
            "--model",
            "cas-register",
            "--init",
            "0",
            "--report",
            edn_report.to_str().unwrap(),
            edn.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        browser.visit(&format!("file://{}", edn_report.display()));
        browser.assert_no_problems("EDN report");
        assert_eq!(
            browser.eval("!!document.getElementById('counterexample')"),
            true
        );
        assert_eq!(
            browser.eval("document.querySelectorAll('#tl-svg rect.op.focus').length"),
            1
        );
        browser.screenshot(
            &shots.join("report-edn-timeline.png"),
            Some("#timeline"),
            2000,
        );
        browser.screenshot(
            &shots.join("report-edn-counterexample.png"),
            Some("#counterexample"),
            3000,
        );
    }

    // The serve index, then a report through the server.
    browser.visit(&format!("{base}/"));
    browser.assert_no_problems("serve index");
    let rows = browser.eval("document.querySelectorAll('#runs tr.run').length");
    assert_eq!(rows, 2, "one row per run");
    assert_eq!(
        browser.eval("document.querySelectorAll('#runs tr.run.invalid').length"),
        1
    );
    browser.screenshot(&shots.join("serve-index.png"), None, 2000);
    let href = browser.eval("document.querySelector('#runs tr.run.invalid a').href");
    browser.visit(href.as_str().unwrap());
    browser.assert_no_problems("served report");
    assert_eq!(
        browser.eval("!!document.getElementById('counterexample')"),
        true
    );
    browser.close();
    let _ = std::fs::remove_dir_all(&scratch);
}
