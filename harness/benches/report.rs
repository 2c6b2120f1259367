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
    let trace_mb = std::fs::metadata(dir.join("messages.jsonl")).map_or(0, |m| m.len()) as f64 / 1e6;
    let history_mb = std::fs::metadata(dir.join("history.jsonl")).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "case: {operations} operations, history.jsonl {history_mb:.1} MB, messages.jsonl {trace_mb:.1} MB (set up in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let history =
        checkers::History::read(&dir.join("history.jsonl"), Some(checkers::Format::Jsonl)).unwrap();
    println!("{:>28} {:>9} {:>9} {:>9}", "", "min ms", "median ms", "max ms");
    for (name, in_memory) in [("from the run directory", false), ("history in memory (run end)", true)] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            harness::report::write_run_report(&dir, in_memory.then_some(&history)).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!("{name:>28} {:>9.0} {:>9.0} {:>9.0}", times[0], times[2], times[4]);
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let data_start = html.find("id=\"timeline-data\">").unwrap_or(0);
    let data_len = html[data_start..].find("</script>").unwrap_or(0);
    println!(
        "report.html: {:.2} MB (timeline data {:.2} MB); counterexample drawn: {}",
        html.len() as f64 / 1e6,
        data_len as f64 / 1e6,
        html.contains("id=\"counterexample\"")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
