//! Progress of a real-mode run: a bar (indicatif) when stdout is a terminal, otherwise a line on
//! stderr every few seconds (so stdout keeps only the summary).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between two plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Counters the display shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub elapsed_ns: u64,
    pub phase: &'static str,
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub faults: String,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    total_ns: u64,
    last_line: Option<Instant>,
    /// (when, completions) at the previous update, for the ops/s rate.
    window: (Instant, u64),
    rate: f64,
}

impl Progress {
    /// `total_ns`: the load phase's length (the bar's 100%).
    pub fn new(total_ns: u64) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let style =
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent:>3}% {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stdout())
                .with_style(style)
        });
        Progress {
            bar,
            total_ns: total_ns.max(1),
            last_line: None,
            window: (Instant::now(), 0),
            rate: 0.0,
        }
    }

    pub fn update(&mut self, s: &Snapshot) {
        let completed = s.ok + s.fail + s.info;
        let (since, before) = self.window;
        let dt = since.elapsed().as_secs_f64();
        if dt >= 1.0 {
            self.rate = completed.saturating_sub(before) as f64 / dt;
            self.window = (Instant::now(), completed);
        }
        let text = format!(
            "{} · {:.0} ops/s · ok {} fail {} info {} · faults: {}",
            s.phase, self.rate, s.ok, s.fail, s.info, s.faults
        );
        match &self.bar {
            Some(bar) => {
                let permille = (s.elapsed_ns.min(self.total_ns) * 1000 / self.total_ns).min(1000);
                bar.set_position(permille);
                bar.set_message(text);
            }
            None => {
                if self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
                    self.last_line = Some(Instant::now());
                    eprintln!("[{:>6.1} s] {text}", s.elapsed_ns as f64 / 1e9);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
