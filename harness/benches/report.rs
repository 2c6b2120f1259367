//! Report benchmark: the report of a 100k-operation run (200k history events, a 1M-message
//! trace, one stale read near the middle) must be generated in under 2 s and weigh under 5 MB.

#[path = "../tests/report_support/mod.rs"]
mod report_support;

use std::time::Instant;

fn main() {
    let operations = 100_000;
    let dir = report_support::temp_dir("report-bench");
    let started = Instant::now();
    report_support::store_synthetic_run(&dir, operations, 10);
    let trace_mb =
        std::fs::metadata(dir.join("messages.jsonl")).map_or(0, |m| m.len()) as f64 / 1e6;
    let history_mb =
        std::fs::metadata(dir.join("history.jsonl")).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "case: {operations} operations, history.jsonl {history_mb:.1} MB, messages.jsonl {trace_mb:.1} MB (set up in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let history =
        checkers::History::read(&dir.join("history.jsonl"), Some(checkers::Format::Jsonl)).unwrap();
    println!(
        "{:>28} {:>9} {:>9} {:>9}",
        "", "min ms", "median ms", "max ms"
    );
    for (name, in_memory) in [
        ("from the run directory", false),
        ("history in memory (run end)", true),
    ] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            harness::report::write_run_report(&dir, in_memory.then_some(&history)).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name:>28} {:>9.0} {:>9.0} {:>9.0}",
            times[0], times[2], times[4]
        );
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let part = |open: &str, close: &str| {
        html.find(open)
            .map_or(0, |at| html[at..].find(close).unwrap_or(0)) as f64
            / 1e6
    };
    println!(
        "report.html: {:.2} MB: timeline data {:.2} MB, latency {:.2} MB, throughput {:.2} MB, \
         counterexample {:.2} MB, messages {:.2} MB",
        html.len() as f64 / 1e6,
        part("id=\"timeline-data\">", "</script>"),
        part("<svg class=\"plot latency\"", "</svg>"),
        part("<svg class=\"plot throughput\"", "</svg>"),
        part("<section id=\"counterexample\"", "</section>"),
        part("<svg class=\"messages\"", "</svg>"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
