//! Simulator benchmark: 5 raft nodes, 60 simulated seconds, 200 ops/s, every fault.
//! Reports the wall time of the simulation and of the check separately.

use clap::Parser;
use harness::cli::{Cli, Command};

fn main() {
    let seeds: Vec<u64> = (1..=5).collect();
    println!("case: raft, 5 nodes, 60 s simulated, 200 ops/s, concurrency 2n, --nemesis all");
    println!(
        "{:>5} {:>9} {:>10} {:>9} {:>9} {:>10} {:>8}",
        "seed", "ops", "messages", "sim ms", "check ms", "speed-up", "verdict"
    );
    let (mut sim_total, mut check_total) = (0.0, 0.0);
    for seed in &seeds {
        let cli = Cli::parse_from([
            "verity",
            "test",
            "raft",
            "--nodes",
            "5",
            "--time-limit",
            "60",
            "--rate",
            "200",
            "--nemesis",
            "all",
            "--no-store",
            "--seed",
            &seed.to_string(),
        ]);
        let Command::Test(args) = cli.command else {
            unreachable!()
        };
        let run = harness::test_run::run(&args).unwrap_or_else(|f| panic!("{}", f.message));
        let sim_ms = run.sim_time.as_secs_f64() * 1e3;
        let check_ms = run.check_time.as_secs_f64() * 1e3;
        sim_total += sim_ms;
        check_total += check_ms;
        let simulated_ms = run.outcome.end_ns as f64 / 1e6;
        println!(
            "{seed:>5} {:>9} {:>10} {sim_ms:>9.1} {check_ms:>9.1} {:>9.0}× {:>8}",
            run.history.ops.len(),
            run.outcome.messages_sent,
            simulated_ms / sim_ms,
            run.validity().as_str()
        );
    }
    let n = seeds.len() as f64;
    println!(
        "mean: simulation {:.1} ms (target < 600 ms), check {:.1} ms, whole run {:.1} ms (target < 2000 ms)",
        sim_total / n,
        check_total / n,
        (sim_total + check_total) / n
    );
}
