//! Regression hunting: the same test over a range of seeds (`verity test ... --seeds 1..1000`).
//!
//! Simulated runs are deterministic, so a sweep runs every seed without storing it, on as many
//! threads as there are cores, and then runs each failing seed once more with the run store on:
//! the stored run is byte for byte the one that failed, with its report and `repro.sh`.

use crate::cli::{ModeArg, TestArgs};
use crate::exit::Failure;
use crate::test_run::{self, TestRun};
use checkers::Validity;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// At most this many failing seeds are stored (each is also listed with its repro command).
pub const MAX_STORED: usize = 10;

/// Parses `A..B` (inclusive, as `A..=B`) or `N` (seeds 1 to N).
pub fn parse_seeds(text: &str) -> Result<RangeInclusive<u64>, Failure> {
    let bad = |why: &str| {
        Failure::bad_arguments(format!(
            "--seeds {text:?}: {why} (expected `A..B`, both inclusive, or `N` for 1..N)"
        ))
    };
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad("not a number"));
    let range = match text.split_once("..") {
        Some((a, b)) => number(a)?..=number(b.trim_start_matches('='))?,
        None => 1..=number(text)?,
    };
    if range.is_empty() {
        return Err(bad("the range is empty"));
    }
    Ok(range)
}

/// One seed's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedResult {
    pub seed: u64,
    pub validity: Validity,
    /// The checkers that were not valid.
    pub failing: Vec<String>,
    pub operations: usize,
}

/// What a sweep found.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Every seed, in seed order.
    pub results: Vec<SeedResult>,
    /// The stored run directories of the first failing seeds.
    pub stored: Vec<(u64, PathBuf)>,
}

impl Sweep {
    pub fn validity(&self) -> Validity {
        self.results
            .iter()
            .fold(Validity::Valid, |v, r| v.combine(r.validity))
    }

    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> {
        self.results
            .iter()
            .filter(|r| r.validity != Validity::Valid)
    }
}

fn seed_result(seed: u64, run: &TestRun) -> SeedResult {
    SeedResult {
        seed,
        validity: run.validity(),
        failing: run
            .report
            .checkers
            .iter()
            .filter(|c| c.validity != Validity::Valid)
            .map(|c| format!("{} {}", c.name, c.validity.as_str()))
            .collect(),
        operations: run.history.ops.len(),
    }
}

/// Bad options fail once, before any thread starts.
fn validate(args: &TestArgs, seeds: &RangeInclusive<u64>) -> Result<(), Failure> {
    if args.mode != ModeArg::Sim {
        return Err(Failure::bad_arguments(
            "--seeds sweeps the simulator only (real runs are not reproducible from a seed)",
        ));
    }
    if args.seed.is_some() {
        return Err(Failure::bad_arguments(
            "give either --seed or --seeds, not both",
        ));
    }
    test_run::sim_config(args, *seeds.start())?;
    workloads::build(args.workload(), &Default::default()).map_err(Failure::bad_arguments)?;
    Ok(())
}

/// Runs every seed of `seeds` with `args` (its `--seed` ignored), reporting each failure to
/// `on_failure` as it is found, then stores the first failing runs unless `--no-store`.
pub fn run(
    args: &TestArgs,
    seeds: RangeInclusive<u64>,
    mut on_failure: impl FnMut(&SeedResult),
) -> Result<Sweep, Failure> {
    validate(args, &seeds)?;
    // Seeds are handed out by position, so a range ending at u64::MAX cannot wrap around.
    let first = *seeds.start();
    let count = u128::from(*seeds.end() - first) + 1;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(usize::try_from(count).unwrap_or(usize::MAX));
    let next = AtomicU64::new(0);
    let last_position = *seeds.end() - first;
    let (tx, rx) = mpsc::channel::<Result<SeedResult, Failure>>();
    let mut results = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let position = next.fetch_add(1, Ordering::Relaxed);
                    if position > last_position || position == u64::MAX {
                        return;
                    }
                    let seed = first + position;
                    let mut one = args.clone();
                    one.seed = Some(seed);
                    one.no_store = true;
                    let outcome = test_run::run(&one).map(|run| seed_result(seed, &run));
                    let failed = outcome.is_err();
                    if tx.send(outcome).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for outcome in rx {
            match outcome {
                Ok(result) => {
                    if result.validity != Validity::Valid {
                        on_failure(&result);
                    }
                    results.push(result);
                }
                Err(failure) => {
                    // Stop handing out seeds; the running ones finish.
                    next.store(u64::MAX, Ordering::Relaxed);
                    results.clear();
                    return Err(failure);
                }
            }
        }
        Ok(())
    })?;
    results.sort_by_key(|r| r.seed);
    let mut stored = Vec::new();
    if !args.no_store {
        let failing: Vec<u64> = results
            .iter()
            .filter(|r| r.validity != Validity::Valid)
            .map(|r| r.seed)
            .take(MAX_STORED)
            .collect();
        for seed in failing {
            let mut one = args.clone();
            one.seed = Some(seed);
            let run = test_run::run(&one)?;
            if let Some(dir) = run.run_dir {
                stored.push((seed, dir));
            }
        }
    }
    Ok(Sweep { results, stored })
}

/// `verity test ... --seeds RANGE`: prints each failing seed as it is found, then a summary;
/// the exit code is the worst verdict (invalid, then unknown, then valid).
pub fn run_cmd(args: &TestArgs, seeds_text: &str) -> Result<i32, Failure> {
    let seeds = parse_seeds(seeds_text)?;
    validate(args, &seeds)?;
    let count = u128::from(seeds.end() - seeds.start()) + 1;
    let plural = if count == 1 { "" } else { "s" };
    let started = Instant::now();
    let (first, last) = (*seeds.start(), *seeds.end());
    println!(
        "sweeping {count} seed{plural}: verity {}",
        test_run::repro_command(args, first).replace(
            &format!(" --seed {first}"),
            &format!(" --seeds {first}..{last}")
        )
    );
    let sweep = run(args, seeds, |r| {
        println!(
            "  seed {:>6}  {:<8} {}",
            r.seed,
            r.validity.as_str(),
            r.failing.join(", ")
        );
    })?;
    let tally = |v: Validity| sweep.results.iter().filter(|r| r.validity == v).count();
    let operations: usize = sweep.results.iter().map(|r| r.operations).sum();
    println!(
        "{count} seed{plural} in {:.1} s ({operations} operations): {} valid, {} invalid, {} unknown",
        started.elapsed().as_secs_f64(),
        tally(Validity::Valid),
        tally(Validity::Invalid),
        tally(Validity::Unknown)
    );
    let failing: Vec<String> = sweep.failures().map(|r| r.seed.to_string()).collect();
    if !failing.is_empty() {
        let shown = failing.len().min(50);
        let more = if failing.len() > shown { ", ..." } else { "" };
        println!("failing seeds: {}{more}", failing[..shown].join(", "));
    }
    if let Some(first) = sweep.failures().next() {
        println!(
            "first failure, to reproduce: verity {}",
            test_run::repro_command(args, first.seed)
        );
    }
    for (seed, dir) in &sweep.stored {
        println!("stored seed {seed}: {}", dir.display());
    }
    Ok(sweep.validity().exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_inclusively_and_bad_ones_name_the_problem() {
        assert_eq!(parse_seeds("3..7").unwrap(), 3..=7);
        assert_eq!(parse_seeds("3..=7").unwrap(), 3..=7);
        assert_eq!(parse_seeds("20").unwrap(), 1..=20);
        for (text, why) in [
            ("7..3", "empty"),
            ("0", "empty"),
            ("x..3", "not a number"),
            ("", "not a number"),
        ] {
            let f = parse_seeds(text).unwrap_err();
            assert_eq!(f.code, crate::exit::BAD_ARGUMENTS);
            assert!(f.message.contains(why), "{text}: {}", f.message);
        }
    }
}
