//! The `verity` binary as a user runs it: output lines, explanations, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn verity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .output()
        .expect("verity runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> String {
    repo().join("examples").join(name).display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verity-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn check_prints_one_line_per_file_and_explains_the_failure() {
    let valid = example("cas-register-valid.jsonl");
    let invalid = example("cas-register-invalid.jsonl");
    let o = verity(&["check", "--model", "cas-register", &valid, &invalid]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(first[0], valid);
    assert_eq!(first[1], "valid");
    assert!(
        first[2].parse::<u64>().is_ok(),
        "milliseconds: {}",
        first[2]
    );
    let second: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(second[1], "invalid");
    // The explanation names the read of 4 (index 7) that cannot be linearized.
    let explanation = lines[2..].join("\n");
    assert!(explanation.contains('7'), "{explanation}");
}

#[test]
fn check_exit_codes_follow_jepsen() {
    let valid = example("cas-register-valid.jsonl");
    assert_eq!(
        verity(&["check", "--model", "cas-register", &valid])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        verity(&["check", "--model", "no-such-model", &valid])
            .status
            .code(),
        Some(254)
    );
    assert_eq!(
        verity(&["check", "/no/such/file.jsonl"]).status.code(),
        Some(254)
    );
    assert_eq!(verity(&["check"]).status.code(), Some(254), "missing FILE");
    assert_eq!(verity(&["frobnicate"]).status.code(), Some(254));
}

#[test]
fn malformed_input_names_the_file_and_line() {
    let bad = temp("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
         {\"process\":0,\"type\":\"okay\",\"f\":\"read\",\"value\":1}\n",
    )
    .unwrap();
    let o = verity(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    let out = stdout(&o);
    assert!(out.contains("bad.jsonl:2"), "{out}");
    assert!(out.contains("type"), "{out}");
}

#[test]
fn json_output_has_the_shared_result_shape() {
    let invalid = example("cas-register-invalid.jsonl");
    let o = verity(&["check", "--json", "--model", "cas-register", &invalid]);
    let out = stdout(&o);
    let json_start = out.find('{').unwrap();
    let v: serde_json::Value = serde_json::from_str(&out[json_start..]).unwrap();
    assert_eq!(v["valid"], false);
}

#[test]
fn convert_round_trips_through_edn() {
    let valid = example("cas-register-valid.jsonl");
    let edn = temp("valid.edn");
    let back = temp("valid-again.jsonl");
    assert_eq!(
        verity(&["convert", &valid, edn.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let text = std::fs::read_to_string(&edn).unwrap();
    assert!(text.contains(":type :ok"), "{text}");
    assert_eq!(
        verity(&["convert", edn.to_str().unwrap(), back.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let a = checkers::History::read(Path::new(&valid), None).unwrap();
    let b = checkers::History::read(&back, None).unwrap();
    assert_eq!(a, b);
    let o = verity(&["check", "--model", "cas-register", edn.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn list_names_every_raft_bug_and_its_nemesis() {
    let out = stdout(&verity(&["list"]));
    for bug in ["stale-read", "forget-vote", "commit-old-term"] {
        assert!(out.contains(bug), "{out}");
    }
    assert!(out.contains("exposed by --nemesis"));
    assert!(out.contains("lin-kv"));
}

#[test]
fn test_command_exit_code_and_summary() {
    let dir = temp("results");
    let o = verity(&[
        "test",
        "raft",
        "--seed",
        "2",
        "--time-limit",
        "5",
        "--results",
        dir.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("verdict: VALID"), "{out}");
    assert!(out.contains("linearizability"), "{out}");
    assert!(dir.join("latest").join("history.jsonl").exists());
    let o = verity(&["test", "raft", "--nodes", "0", "--no-store"]);
    assert_eq!(o.status.code(), Some(254), "bad arguments exit 254");
}

#[test]
fn check_runs_other_checkers_by_name() {
    // Write skew: each transaction misses the other's append.
    let skew = temp("skew.jsonl");
    std::fs::write(
        &skew,
        r#"{"process":0,"type":"invoke","f":"txn","value":[["append","x",1],["r","y",null]]}
{"process":1,"type":"invoke","f":"txn","value":[["append","y",1],["r","x",null]]}
{"process":0,"type":"ok","f":"txn","value":[["append","x",1],["r","y",[]]]}
{"process":1,"type":"ok","f":"txn","value":[["append","y",1],["r","x",[]]]}
{"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}
{"process":0,"type":"ok","f":"txn","value":[["r","x",[1]],["r","y",[1]]]}
"#,
    )
    .unwrap();
    let path = skew.to_str().unwrap();
    let o = verity(&["check", "--checker", "list-append", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("G2-item"), "{}", stdout(&o));
    // Snapshot isolation allows write skew.
    let o = verity(&[
        "check",
        "--checker",
        "list-append",
        "--consistency-models",
        "snapshot-isolation",
        path,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = verity(&["check", "--json", "--checker", "list-append", path]);
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    assert_eq!(v["anomaly_types"], serde_json::json!(["G2-item"]));
    assert_eq!(
        verity(&["check", "--checker", "nope", path]).status.code(),
        Some(254)
    );
    assert_eq!(
        verity(&[
            "check",
            "--checker",
            "list-append",
            "--consistency-models",
            "bogus",
            path
        ])
        .status
        .code(),
        Some(254)
    );
}

/// A stored run's node logs can be checked again offline.
#[test]
fn check_log_agreement_reads_a_runs_node_logs() {
    let results = temp("log-agreement-runs");
    let results_s = results.display().to_string();
    let mut dirs = Vec::new();
    for bug in [&["--bug", "commit-old-term"][..], &[]] {
        let mut argv = vec![
            "test",
            "raft",
            "--time-limit",
            "20",
            "--nemesis",
            "leader-churn",
            "--nemesis-interval",
            "0.3",
            "--seed",
            "1",
            "--results",
            &results_s,
        ];
        argv.extend_from_slice(bug);
        verity(&argv);
        dirs.push(std::fs::canonicalize(results.join("latest")).unwrap());
    }
    let buggy = dirs[0].display().to_string();
    let correct = dirs[1].join("node-logs").display().to_string();
    let o = verity(&["check", "--checker", "log-agreement", &buggy, &correct]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with(&format!("{buggy}\tinvalid\t")), "{out}");
    assert!(out.contains(&format!("{correct}\tvalid\t")), "{out}");
    assert!(out.contains("a committed entry was lost"), "{out}");
    let missing = verity(&["check", "--checker", "log-agreement", "/nonexistent/run"]);
    assert_eq!(missing.status.code(), Some(254));
    assert!(stdout(&missing).contains("cannot read the directory"));
    let _ = std::fs::remove_dir_all(&results);
}
