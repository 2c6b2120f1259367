//! report.html: written for every stored run and by `verity report` / `verity check --report`;
//! self-contained; showing the verdicts, the timeline data, the plots, the counterexample and
//! the message diagram; small and fast for 100k operations.

mod report_support;

use report_support::{repo, sim_run, temp_dir, verity};
use serde_json::Value;
use std::path::Path;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The embedded timeline data, parsed.
fn timeline_data(html: &str) -> Value {
    let open = "id=\"timeline-data\">";
    let at = html.find(open).expect("timeline data") + open.len();
    let len = html[at..].find("</script>").expect("end of timeline data");
    serde_json::from_str(&html[at..at + len]).expect("timeline data is JSON")
}

/// Nothing in the page can make the browser fetch anything.
fn assert_self_contained(html: &str) {
    for needle in [
        " src=",
        "<link rel=\"stylesheet\"",
        "@import",
        "url(http",
        "fetch(",
        "XMLHttpRequest",
        "<iframe",
    ] {
        assert!(!html.contains(needle), "the report contains {needle:?}");
    }
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
    // The only http(s) text is the SVG namespace.
    let outside_namespace = html
        .replace("http://www.w3.org/2000/svg", "")
        .replace("http-equiv", "");
    assert!(
        !outside_namespace.contains("http://") && !outside_namespace.contains("https://"),
        "a URL in the report"
    );
}

#[test]
fn every_stored_run_gets_a_self_contained_report() {
    let results = temp_dir("report-valid");
    let run = sim_run(&results, 3, 10);
    let html = read(&run.join("report.html"));
    assert_self_contained(&html);
    assert!(
        html.contains("id=\"verdict\">valid<"),
        "verdict in the header"
    );
    for section in [
        "id=\"summary\"",
        "id=\"timeline\"",
        "id=\"plots\"",
        "id=\"messages\"",
    ] {
        assert!(html.contains(section), "missing {section}");
    }
    assert!(!html.contains("id=\"counterexample\""));
    assert!(html.contains("verity test raft"), "the repro command");
    // One timeline entry per invocation, lanes and fault windows included.
    let history = read(&run.join("history.jsonl"));
    let invocations = history
        .lines()
        .filter(|l| l.contains("\"type\":\"invoke\""))
        .count();
    let data = timeline_data(&html);
    assert_eq!(data["lane"].as_array().unwrap().len(), invocations);
    assert!(data["lanes"].as_u64().unwrap() >= 10);
    assert!(!data["windows"].as_array().unwrap().is_empty());
    assert_eq!(data["focus"], -1);
    // `verity report` draws the same page again.
    std::fs::remove_file(run.join("report.html")).unwrap();
    let o = verity(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(run.join("report.html").is_file());
    let _ = std::fs::remove_dir_all(&results);
}

#[test]
fn an_invalid_run_draws_its_counterexample_and_opens_on_it() {
    let results = temp_dir("report-invalid");
    let run = sim_run(&results, 4, 10);
    let stale = report_support::make_invalid(&run);
    let html = read(&run.join("report.html"));
    assert_self_contained(&html);
    assert!(html.contains("id=\"verdict\">invalid<"));
    assert!(html.contains("id=\"counterexample\""));
    assert!(html.contains("<svg class=\"linear\""), "the drawing");
    assert!(html.contains("class=\"lin-fail\""), "the failing step");
    assert!(
        html.contains("<ol class=\"steps\">"),
        "the partial linearizations"
    );
    assert!(
        html.contains(&format!("op {stale} ")),
        "names the stale read"
    );
    assert!(html.contains("First failure"));
    // The timeline opens on a window that contains the failing operation.
    let data = timeline_data(&html);
    let focus = data["focus"].as_i64().unwrap();
    assert!(focus >= 0);
    let starts: Vec<i64> = data["start"]
        .as_array()
        .unwrap()
        .iter()
        .scan(0, |t, d| {
            *t += d.as_i64().unwrap();
            Some(*t)
        })
        .collect();
    let view = data["view"].as_array().unwrap();
    let start = starts[focus as usize];
    assert!(view[0].as_i64().unwrap() <= start && start <= view[1].as_i64().unwrap());
    // The message diagram is drawn around it, with a bounded number of arrows.
    let arrows = html.matches("<g class=\"msg ").count();
    assert!(arrows > 0 && arrows <= 240, "{arrows} arrows");
    assert!(html.contains("around op "));
    let _ = std::fs::remove_dir_all(&results);
}

#[test]
fn report_refuses_a_directory_that_is_not_a_run() {
    let dir = temp_dir("report-not-a-run");
    let o = verity(&["report", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a run directory"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_draws_the_report_of_an_imported_history() {
    let dir = temp_dir("report-check");
    let out = dir.join("imported.html");
    let example = repo().join("examples/cas-register-invalid.jsonl");
    let o = verity(&[
        "check",
        "--model",
        "cas-register",
        "--report",
        out.to_str().unwrap(),
        example.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let html = read(&out);
    assert_self_contained(&html);
    assert!(html.contains("id=\"counterexample\""));
    assert!(
        html.contains("read 4 from register 2"),
        "why the read fails"
    );
    assert!(html.contains("verity check --model cas-register"));
    // More than one file is refused: one report draws one history.
    let o = verity(&[
        "check",
        "--report",
        out.to_str().unwrap(),
        example.to_str().unwrap(),
        example.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(254));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_draws_a_jepsen_edn_history_without_timestamps() {
    let corpus = std::env::var_os("VERITY_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/corpus"));
    let edn = corpus.join("knossos/cas-register/bad/cas-failure.edn");
    if !edn.is_file() {
        assert!(
            std::env::var_os("VERITY_CORPUS").is_none(),
            "VERITY_CORPUS is set but {} is missing",
            edn.display()
        );
        eprintln!("note: the Knossos corpus is not here; skipping");
        return;
    }
    let dir = temp_dir("report-edn");
    let out = dir.join("edn.html");
    let o = verity(&[
        "check",
        "--model",
        "cas-register",
        "--init",
        "0",
        "--report",
        out.to_str().unwrap(),
        edn.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let html = read(&out);
    assert!(html.contains("id=\"counterexample\""));
    assert!(html.contains("carries no timestamps"));
    let data = timeline_data(&html);
    assert_eq!(data["unit"], "index");
    assert!(data["focus"].as_i64().unwrap() >= 0);
    // The nemesis's :start / :stop pairs are shaded.
    assert!(!data["windows"].as_array().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_report_of_100k_operations_is_under_5_mb() {
    let dir = temp_dir("report-100k");
    report_support::store_synthetic_run(&dir, 100_000, 2);
    let started = std::time::Instant::now();
    let o = verity(&["report", dir.to_str().unwrap()]);
    let elapsed = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let size = std::fs::metadata(dir.join("report.html")).unwrap().len();
    assert!(size < 5_000_000, "report.html is {size} bytes");
    // The 2 s target is measured by `cargo bench --bench report`; this bound only catches
    // something gone quadratic on a busy machine.
    assert!(elapsed.as_secs() < 15, "took {elapsed:?}");
    let html = read(&dir.join("report.html"));
    assert!(html.contains("id=\"counterexample\""));
    assert_eq!(
        timeline_data(&html)["lane"].as_array().unwrap().len(),
        100_000
    );
    let _ = std::fs::remove_dir_all(&dir);
}
