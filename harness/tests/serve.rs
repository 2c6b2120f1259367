//! `verity serve`: the index lists runs newest first with their verdicts and links, files
//! inside DIR are served, and nothing outside it is: `..`, encoded traversal, absolute paths
//! and symlinks leading out all get 404. Requests are written by hand over TCP so that no
//! client library normalises the paths first.

mod report_support;

use clap::Parser;
use harness::cli::{Cli, Command as VerityCommand};
use report_support::{Served as Server, serve, temp_dir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Sends `GET <target>` exactly as written; returns the status code and the body.
fn get(server: &Server, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A hand-made run directory (no report.html: the server draws one on the fly).
fn fake_run(dir: &Path, started: &str, valid: bool) {
    write(
        &dir.join("test.json"),
        &format!(
            r#"{{"system":"raft","workload":"lin-kv","mode":"sim","seed":9,"bugs":[],"started":"{started}"}}"#
        ),
    );
    write(
        &dir.join("history.jsonl"),
        concat!(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":[1,1]}"#,
            "\n",
            r#"{"index":1,"time":1000000,"process":0,"type":"ok","f":"write","value":[1,1]}"#,
            "\n",
            r#"{"index":2,"time":2000000,"process":"nemesis","type":"info","f":"kill","value":["n2"]}"#,
            "\n",
            r#"{"index":3,"time":3000000,"process":1,"type":"invoke","f":"read","value":[1,null]}"#,
            "\n",
            r#"{"index":4,"time":4000000,"process":1,"type":"ok","f":"read","value":[1,1]}"#,
            "\n"
        ),
    );
    write(
        &dir.join("results.json"),
        &format!(r#"{{"valid":{valid},"linearizability":{{"valid":{valid}}}}}"#),
    );
    write(&dir.join("node-logs/n1.log"), "0 started\n");
}

#[test]
fn the_index_lists_runs_newest_first_and_links_their_files() {
    let root = temp_dir("serve-index");
    let results = root.join("results");
    fake_run(
        &results.join("raft-lin-kv/20260101T000000.000Z"),
        "2026-01-01T00:00:00+00:00",
        true,
    );
    fake_run(
        &results.join("raft-lin-kv/20260102T000000.000Z"),
        "2026-01-02T00:00:00+00:00",
        false,
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink("raft-lin-kv/20260102T000000.000Z", results.join("latest")).unwrap();
    let server = serve(&results);
    let (status, index) = get(&server, "/");
    assert_eq!(status, 200);
    // Newest first, each once (the `latest` symlink is not a second run).
    let newer = index.find("2026-01-02 00:00:00 UTC").expect("newer run");
    let older = index.find("2026-01-01 00:00:00 UTC").expect("older run");
    assert!(newer < older, "newest first");
    assert_eq!(index.matches("<tr class=\"run ").count(), 2);
    assert!(index.contains("<tr class=\"run invalid\">"));
    assert!(index.contains("<tr class=\"run valid\">"));
    assert!(index.contains("kill×1"), "faults");
    for link in [
        "report.html",
        "history.jsonl",
        "results.json",
        "node-logs",
        "n1.log",
    ] {
        assert!(index.contains(link), "a link to {link}");
    }
    // The files it links to.
    let run = "/raft-lin-kv/20260102T000000.000Z";
    let (status, body) = get(&server, &format!("{run}/history.jsonl"));
    assert_eq!(status, 200);
    assert!(body.contains("\"f\":\"write\""));
    assert_eq!(get(&server, &format!("{run}/results.json")).0, 200);
    assert_eq!(get(&server, &format!("{run}/node-logs/n1.log")).0, 200);
    // No report.html on disk: drawn on request.
    let (status, report) = get(&server, &format!("{run}/report.html"));
    assert_eq!(status, 200);
    assert!(report.contains("id=\"timeline\""));
    assert!(!Path::new(&format!("{}{run}/report.html", results.display())).exists());
    // `latest` is a symlink inside DIR: followed.
    assert_eq!(get(&server, "/latest/history.jsonl").0, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn nothing_outside_the_directory_is_served() {
    let root = temp_dir("serve-escape");
    let results = root.join("results");
    fake_run(
        &results.join("raft-lin-kv/run"),
        "2026-01-01T00:00:00+00:00",
        true,
    );
    write(&root.join("secret.txt"), "top secret\n");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("secret.txt"), results.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink(&root, results.join("outside")).unwrap();
        std::os::unix::fs::symlink("../../secret.txt", results.join("raft-lin-kv/relative"))
            .unwrap();
    }
    let server = serve(&results);
    let secret = root.join("secret.txt");
    let absolute = secret.to_str().unwrap();
    let attempts = [
        "/../secret.txt".to_string(),
        "/raft-lin-kv/../../secret.txt".to_string(),
        "/raft-lin-kv/run/../../../secret.txt".to_string(),
        "/%2e%2e/secret.txt".to_string(),
        "/%2E%2E%2Fsecret.txt".to_string(),
        "/raft-lin-kv/..%2f..%2fsecret.txt".to_string(),
        "/..%5csecret.txt".to_string(),
        "/%252e%252e/secret.txt".to_string(),
        "/.%2e/secret.txt".to_string(),
        "/secret.txt%00.html".to_string(),
        format!("/{absolute}"),
        format!("/{}", absolute.trim_start_matches('/')),
        format!("//{}", absolute.trim_start_matches('/')),
        "/etc/passwd".to_string(),
        "//etc/passwd".to_string(),
        "/escape.txt".to_string(),
        "/outside/secret.txt".to_string(),
        "/raft-lin-kv/relative".to_string(),
        "/nonexistent/report.html".to_string(),
        "/../report.html".to_string(),
    ];
    for target in &attempts {
        let (status, body) = get(&server, target);
        assert_eq!(status, 404, "{target} → {status}");
        assert!(!body.contains("top secret"), "{target} leaked the file");
    }
    // Absolute-form request targets name the same paths.
    let (status, body) = get(&server, &format!("http://{}/../secret.txt", server.addr));
    assert_ne!(status, 200);
    assert!(!body.contains("top secret"));
    // What is inside still works.
    assert_eq!(get(&server, "/raft-lin-kv/run/history.jsonl").0, 200);
    assert_eq!(get(&server, "/raft-lin-kv/./run/history.jsonl").0, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn serve_listens_on_loopback_by_default() {
    let cli = Cli::parse_from(["verity", "serve"]);
    let VerityCommand::Serve(args) = cli.command else {
        panic!("parsed as another command");
    };
    assert_eq!(args.bind, "127.0.0.1:8080");
    assert_eq!(args.dir, Path::new("results"));
}

#[test]
fn serve_refuses_a_missing_directory() {
    let o = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args([
            "serve",
            "/nonexistent/verity-results",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254));
}
