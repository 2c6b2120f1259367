//! Shrinking a failing run's fault schedule: the fewest faults that still break the system.
//!
//! A schedule is explicit data and a simulated run is deterministic given its seed and its
//! schedule, so shrinking is a search over subsets of the schedule's faults (Zeller's ddmin:
//! drop chunks of faults, keep any smaller schedule that still fails, refine the chunks). The
//! final heal is always kept: it is what lets the final reads judge the run. Removing a fault
//! never leaves a dangling one: a heal, restart or resume of nothing in force does nothing.

use crate::cli::{ModeArg, TestArgs};
use crate::exit::Failure;
use crate::test_run::{self, TestRun};
use checkers::Validity;
use nemesis::{Schedule, TimedFault};
use std::time::{Duration, Instant};

/// At most this many simulations per shrink.
pub const MAX_RUNS: usize = 400;

/// The checkers that judge safety; `stats` and `availability` judge liveness, which removing
/// faults changes on its own.
pub fn safety_failures(run: &TestRun) -> Vec<String> {
    run.report
        .checkers
        .iter()
        .filter(|c| c.validity == Validity::Invalid)
        .filter(|c| c.name != "stats" && c.name != "availability")
        .map(|c| c.name.clone())
        .collect()
}

/// What shrinking found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// Faults before the final heal, originally and now.
    pub original_faults: usize,
    pub schedule: Schedule,
    pub minimal_faults: usize,
    /// Simulations run (the original one included).
    pub runs: usize,
    pub elapsed: Duration,
    /// Whether the search ended because it ran out of runs (the result still fails, but may
    /// not be minimal).
    pub budget_exhausted: bool,
}

/// Shrinks the schedule of the run `args` describes (`--seed` required, the simulator only).
/// `Ok(None)` when that run is not invalid: there is nothing to shrink.
fn check_mode(args: &TestArgs) -> Result<(), Failure> {
    if args.mode != ModeArg::Sim {
        return Err(Failure::bad_arguments(
            "--shrink needs the simulator: a real run does not replay",
        ));
    }
    Ok(())
}

pub fn shrink(args: &TestArgs) -> Result<Option<Shrunk>, Failure> {
    check_mode(args)?;
    let Some(seed) = args.seed else {
        return Err(Failure::bad_arguments("--shrink needs --seed"));
    };
    let mut quiet = args.clone();
    quiet.no_store = true;
    quiet.seed = Some(seed);
    let started = Instant::now();
    let original = match &args.schedule {
        Some(path) => test_run::read_schedule(path)?,
        None => crate::real::schedule_for(&test_run::sim_config(args, seed)?),
    };
    let heal_at = original.faults.iter().map(|f| f.at_ns).max().unwrap_or(0);
    let (faults, heal): (Vec<TimedFault>, Vec<TimedFault>) = original
        .faults
        .iter()
        .cloned()
        .partition(|f| f.at_ns < heal_at);
    let mut runs = 0;
    let mut fails = |faults: &[TimedFault]| -> Result<bool, Failure> {
        runs += 1;
        let mut all = faults.to_vec();
        all.extend(heal.iter().cloned());
        let run = test_run::run_with_schedule(&quiet, Some(Schedule { faults: all }))?;
        Ok(!safety_failures(&run).is_empty())
    };
    if !fails(&faults)? {
        return Ok(None);
    }
    let (minimal, budget_exhausted) = ddmin(faults.clone(), &mut fails)?;
    let mut schedule = minimal.clone();
    schedule.extend(heal.iter().cloned());
    Ok(Some(Shrunk {
        original_faults: faults.len(),
        minimal_faults: minimal.len(),
        schedule: Schedule { faults: schedule },
        runs,
        elapsed: started.elapsed(),
        budget_exhausted,
    }))
}

/// `verity test ... --seed N --shrink`: the run as usual; if it is invalid, its schedule shrunk,
/// and the minimal failing run stored (its repro replays the shrunk schedule). The exit code is
/// the original run's verdict.
pub fn run_cmd(args: &TestArgs) -> Result<i32, Failure> {
    check_mode(args)?;
    if args.seeds.is_some() {
        return Err(Failure::bad_arguments(
            "--shrink works on one run: give --seed, not --seeds",
        ));
    }
    let mut args = args.clone();
    args.seed = Some(args.seed.unwrap_or_else(test_run::random_seed));
    let run = test_run::run(&args)?;
    print!("{}", test_run::summary(&run));
    let verdict = run.validity();
    if verdict != Validity::Invalid {
        println!("shrink: the run is {verdict}; nothing to shrink");
        return Ok(verdict.exit_code());
    }
    let Some(shrunk) = shrink(&args)? else {
        println!("shrink: only stats or availability failed; the schedule is left as it is");
        return Ok(verdict.exit_code());
    };
    println!(
        "shrink: {} faults → {} in {} simulations ({:.1} s){}",
        shrunk.original_faults,
        shrunk.minimal_faults,
        shrunk.runs,
        shrunk.elapsed.as_secs_f64(),
        if shrunk.budget_exhausted {
            " — stopped at the run budget, may not be minimal"
        } else {
            ""
        }
    );
    for f in shrunk.schedule.faults.iter().take(shrunk.minimal_faults) {
        println!(
            "  {:>9.3} s  {} {}",
            f.at_ns as f64 / 1e9,
            f.fault.name(),
            f.fault.history_value()
        );
    }
    if !args.no_store {
        let minimal = test_run::run_with_schedule(&args, Some(shrunk.schedule))?;
        println!(
            "minimal run: {} ({})",
            minimal
                .run_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            safety_failures(&minimal).join(", ")
        );
        println!("reproduce:   verity {}", minimal.repro);
    }
    Ok(verdict.exit_code())
}

/// Zeller's ddmin over complements: the smallest subset found of `items` for which `fails`
/// holds (it holds for `items`). Returns it and whether [`MAX_RUNS`] cut the search short.
fn ddmin<T: Clone>(
    mut items: Vec<T>,
    fails: &mut impl FnMut(&[T]) -> Result<bool, Failure>,
) -> Result<(Vec<T>, bool), Failure> {
    let mut tried = 1;
    // A bug that needs no fault at all is worth knowing at once.
    if !items.is_empty() {
        tried += 1;
        if fails(&[])? {
            return Ok((Vec::new(), false));
        }
    }
    let mut chunks = 2;
    while items.len() >= 2 {
        let size = items.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..items.len()).step_by(size) {
            if tried >= MAX_RUNS {
                return Ok((items, true));
            }
            let end = (start + size).min(items.len());
            let complement: Vec<T> = items[..start]
                .iter()
                .chain(&items[end..])
                .cloned()
                .collect();
            tried += 1;
            if fails(&complement)? {
                items = complement;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= items.len() {
                break;
            }
            chunks = (chunks * 2).min(items.len());
        }
    }
    if items.len() == 1 && tried < MAX_RUNS && fails(&[])? {
        items.clear();
    }
    Ok((items, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_faults_that_matter() {
        // Fails when both 3 and 7 are present.
        let mut calls = 0;
        let mut fails = |xs: &[u32]| -> Result<bool, Failure> {
            calls += 1;
            Ok(xs.contains(&3) && xs.contains(&7))
        };
        let (min, cut) = ddmin((0..20).collect(), &mut fails).unwrap();
        assert_eq!(min, vec![3, 7]);
        assert!(!cut);
        assert!(calls < 60, "{calls} calls");
        // Needing nothing at all is found at once.
        let (min, _) = ddmin(vec![1, 2, 3], &mut |_: &[u32]| Ok(true)).unwrap();
        assert!(min.is_empty());
        // One fault that matters.
        let (min, _) = ddmin((0..9).collect(), &mut |xs: &[u32]| Ok(xs.contains(&8))).unwrap();
        assert_eq!(min, vec![8]);
    }
}
