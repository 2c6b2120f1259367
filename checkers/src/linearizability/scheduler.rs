//! Runs the keys' searches on all cores, fairly: each key runs for a slice of steps and goes back
//! to the end of the queue, so an intractable key cannot starve a cheap one. The first refuted
//! key stops everyone; so does the deadline.

use super::machine::Machine;
use super::search::{Progress, Search, SearchReport};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Steps per slice: a few milliseconds, so deadlines and refutations are noticed quickly.
const SLICE: u64 = 50_000;

/// A search that can be run a slice at a time.
pub(crate) trait Resumable: Send {
    fn run(&mut self, steps: u64) -> Progress;
    fn report(&self) -> SearchReport;
}

impl<M: Machine> Resumable for Search<M> {
    fn run(&mut self, steps: u64) -> Progress {
        Search::run(self, steps)
    }

    fn report(&self) -> SearchReport {
        Search::report(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyVerdict {
    Valid,
    Invalid,
    /// Out of time (the deadline passed while it was unfinished).
    OutOfTime,
    OutOfMemory,
    /// Not finished because another key was refuted.
    Stopped,
}

pub(crate) struct KeyOutcome {
    pub verdict: KeyVerdict,
    pub report: SearchReport,
}

pub(crate) struct Run {
    pub threads: usize,
    pub deadline: Option<Instant>,
}

struct Shared {
    queue: Mutex<VecDeque<(usize, Box<dyn Resumable>)>>,
    finished: Mutex<Vec<(usize, KeyOutcome)>>,
    stop: AtomicBool,
    refuted: AtomicBool,
    deadline: Option<Instant>,
}

impl Run {
    /// Runs every search to an outcome; outcomes are in the order of `searches`.
    pub(crate) fn run(&self, searches: Vec<Box<dyn Resumable>>) -> Vec<KeyOutcome> {
        let keys = searches.len();
        let shared = Shared {
            queue: Mutex::new(searches.into_iter().enumerate().collect()),
            finished: Mutex::new(Vec::with_capacity(keys)),
            stop: AtomicBool::new(false),
            refuted: AtomicBool::new(false),
            deadline: self.deadline,
        };
        let workers = self.threads.min(keys).max(1);
        if workers == 1 {
            work(&shared);
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|| work(&shared));
                }
            });
        }
        let refuted = shared.refuted.load(Ordering::Relaxed);
        let mut finished = shared.finished.into_inner().expect("no worker panicked");
        for (key, search) in shared.queue.into_inner().expect("no worker panicked") {
            let verdict = if refuted {
                KeyVerdict::Stopped
            } else {
                KeyVerdict::OutOfTime
            };
            finished.push((
                key,
                KeyOutcome {
                    verdict,
                    report: search.report(),
                },
            ));
        }
        finished.sort_by_key(|&(key, _)| key);
        finished.into_iter().map(|(_, outcome)| outcome).collect()
    }
}

fn work(shared: &Shared) {
    loop {
        if shared.deadline.is_some_and(|d| Instant::now() >= d) {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Some((key, mut search)) = shared.queue.lock().expect("queue").pop_front() else {
            // Keys still running elsewhere are requeued by their workers, which carry on.
            return;
        };
        let verdict = match search.run(SLICE) {
            Progress::Running => {
                shared.queue.lock().expect("queue").push_back((key, search));
                continue;
            }
            Progress::Valid => KeyVerdict::Valid,
            Progress::Invalid => {
                shared.refuted.store(true, Ordering::Relaxed);
                shared.stop.store(true, Ordering::Relaxed);
                KeyVerdict::Invalid
            }
            Progress::OutOfMemory => KeyVerdict::OutOfMemory,
        };
        let report = search.report();
        drop(search);
        shared
            .finished
            .lock()
            .expect("finished")
            .push((key, KeyOutcome { verdict, report }));
    }
}
