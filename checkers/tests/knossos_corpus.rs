//! The Knossos corpus: every file of EXPECTED.tsv checked with its model, with the expected
//! verdict and, for invalid files, the first operation that cannot be linearized.
//!
//! The corpus root is `$VERITY_CORPUS`, or `shared/corpus` beside the repository. If the variable
//! is set the corpus must exist; if it is not set and the corpus is absent, the test says so and
//! passes (a checkout without the shared data).

use checkers::linearizability::{ModelKind, Options, check};
use checkers::{History, Validity};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus_root() -> Option<PathBuf> {
    match std::env::var_os("VERITY_CORPUS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "VERITY_CORPUS={} is not a directory",
                dir.display()
            );
            Some(dir)
        }
        None => {
            let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
            if dir.is_dir() {
                Some(dir)
            } else {
                println!(
                    "note: no corpus at {} and VERITY_CORPUS unset; skipping",
                    dir.display()
                );
                None
            }
        }
    }
}

struct Row {
    path: String,
    model: ModelKind,
    init: Value,
    valid: bool,
    first_index: Option<u64>,
}

fn rows(root: &std::path::Path) -> Vec<Row> {
    let tsv = root.join("knossos/EXPECTED.tsv");
    let text = std::fs::read_to_string(&tsv).unwrap_or_else(|e| panic!("{}: {e}", tsv.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 5, "bad row: {line}");
            Row {
                path: cols[0].to_string(),
                model: cols[1].parse().unwrap(),
                // `0`, `{"x":0,"y":0}`, or a bare word such as `unlocked`.
                init: serde_json::from_str(cols[2]).unwrap_or_else(|_| Value::from(cols[2])),
                valid: match cols[3] {
                    "valid" => true,
                    "invalid" => false,
                    other => panic!("bad verdict {other}"),
                },
                first_index: cols[4].parse().ok(),
            }
        })
        .collect()
}

fn check_row(row: &Row, history: &History, init: Value) -> Duration {
    let mut opts = Options::new(row.model);
    opts.init = Some(init.clone());
    opts.time_limit = Some(Duration::from_secs(60));
    let started = Instant::now();
    let result = check(history, &opts).unwrap_or_else(|e| panic!("{}: {e}", row.path));
    let took = started.elapsed();
    let expected = if row.valid {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    assert_eq!(
        result.validity,
        expected,
        "{} (init {init}):\n{}",
        row.path,
        result.explain()
    );
    if let Some(index) = row.first_index {
        let c = result.counterexample.as_ref().unwrap();
        assert_eq!(
            c.op.index,
            index,
            "{} (init {init}):\n{}",
            row.path,
            result.explain()
        );
        assert!(!c.final_paths.is_empty(), "{}", row.path);
    }
    took
}

#[test]
fn every_corpus_file_gets_its_expected_verdict() {
    let Some(root) = corpus_root() else { return };
    let rows = rows(&root);
    assert!(rows.len() > 100, "only {} rows", rows.len());
    let (mut checked, mut invalid, mut total) = (0, 0, Duration::ZERO);
    for row in &rows {
        let path = root.join("knossos").join(&row.path);
        let history = History::read(&path, None).unwrap_or_else(|e| panic!("{e}"));
        total += check_row(row, &history, row.init.clone());
        // Knossos: "with initial value nil instead of 0, every cas-register verdict stays the same".
        if row.model == ModelKind::CasRegister {
            total += check_row(row, &history, Value::Null);
        }
        checked += 1;
        invalid += usize::from(!row.valid);
    }
    println!(
        "knossos corpus: {checked} files ({invalid} invalid) checked in {:.1} ms",
        total.as_secs_f64() * 1000.0
    );
}

#[test]
fn explanation_names_the_operation_and_the_reason() {
    let Some(root) = corpus_root() else { return };
    let cases = [
        (
            "cas-register/bad/bad-analysis.edn",
            ModelKind::CasRegister,
            Value::from(0),
            "op 14: process 21 read 2, invoked at op 13",
            "can't read 2 from register 0",
        ),
        (
            "mutex/bad/etcd.edn",
            ModelKind::Mutex,
            Value::from("unlocked"),
            "op 1119: process 0 acquire, invoked at op 1095",
            "can't acquire the lock: it is held",
        ),
    ];
    for (file, model, init, op, reason) in cases {
        let history = History::read(&root.join("knossos").join(file), None).unwrap();
        let mut opts = Options::new(model);
        opts.init = Some(init);
        let result = check(&history, &opts).unwrap();
        let text = result.explain();
        assert!(
            text.contains(op) && text.contains(reason),
            "{file}:\n{text}"
        );
        let json = result.to_json();
        assert_eq!(json["valid"], Value::Bool(false));
        let paths = json["final_paths"].as_array().unwrap();
        assert!(!paths.is_empty() && paths.len() <= 10);
        for path in paths {
            assert_eq!(path["failure"], Value::from(reason), "{file}");
            assert_eq!(
                path["ops"].as_array().unwrap().len(),
                path["states"].as_array().unwrap().len()
            );
        }
    }
}
