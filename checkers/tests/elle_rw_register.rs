//! The rw-register checker on hand-built histories.

use checkers::elle::{ElleResult, Options, check_rw_register};
mod support;

use checkers::{OpType, Validity};
use serde_json::{Value, json};
use support::{Builder, assert_contains};

fn check(b: &Builder, opts: &Options) -> ElleResult {
    check_rw_register(&b.history(), opts).expect("well-formed")
}

fn explanation<'a>(r: &'a ElleResult, kind: &str) -> &'a str {
    r.anomalies[kind][0]["explanation"].as_str().unwrap()
}

#[test]
fn serial_history_is_valid() {
    let mut b = Builder::default();
    b.txn(0, json!([["w", "x", 1], ["r", "x", 1]]))
        .txn(1, json!([["r", "x", 1], ["w", "x", 2], ["r", "y", null]]))
        .txn(0, json!([["r", "x", 2], ["w", "y", 7]]));
    let wfr = Options {
        writes_follow_reads: true,
        ..Options::default()
    };
    for opts in [Options::default(), wfr] {
        let r = check(&b, &opts);
        assert_eq!(r.validity, Validity::Valid, "{}", r.explain());
    }
}

#[test]
fn g1c_and_g_single_and_g2_item() {
    let mut b = Builder::default();
    b.invoke(0, json!([["w", "x", 1], ["r", "y", 1]]))
        .invoke(1, json!([["w", "y", 1], ["r", "x", 1]]))
        .ok(0, json!([["w", "x", 1], ["r", "y", 1]]))
        .ok(1, json!([["w", "y", 1], ["r", "x", 1]]));
    let r = check(&b, &Options::default());
    assert_eq!(r.anomaly_types, vec!["G1c"], "{}", r.explain());
    assert_contains(
        explanation(&r, "G1c"),
        &["read x = 1, which T", "wrote", "circular information flow"],
    );

    let mut b = Builder::default();
    b.invoke(0, json!([["w", "x", 1], ["w", "y", 1]]))
        .invoke(1, json!([["r", "x", null], ["r", "y", 1]]))
        .ok(0, json!([["w", "x", 1], ["w", "y", 1]]))
        .ok(1, json!([["r", "x", null], ["r", "y", 1]]));
    let r = check(&b, &Options::default());
    assert_eq!(r.anomaly_types, vec!["G-single"], "{}", r.explain());
    assert_contains(
        explanation(&r, "G-single"),
        &[
            "read the initial (null) state of x, which",
            "overwrote with 1",
            "read y = 1",
        ],
    );

    let mut b = Builder::default();
    b.invoke(0, json!([["r", "x", null], ["w", "y", 1]]))
        .invoke(1, json!([["r", "y", null], ["w", "x", 1]]))
        .ok(0, json!([["r", "x", null], ["w", "y", 1]]))
        .ok(1, json!([["r", "y", null], ["w", "x", 1]]));
    let r = check(&b, &Options::default());
    assert_eq!(r.anomaly_types, vec!["G2-item"], "{}", r.explain());
    let si = check_rw_register(&b.history(), &Options::models(&["snapshot-isolation"])).unwrap();
    assert_eq!(si.validity, Validity::Valid);
}

#[test]
fn lost_update_needs_writes_follow_reads() {
    let mut b = Builder::default();
    b.txn(0, json!([["w", "x", 1]]))
        .invoke(1, json!([["r", "x", 1], ["w", "x", 2]]))
        .invoke(2, json!([["r", "x", 1], ["w", "x", 3]]))
        .ok(1, json!([["r", "x", 1], ["w", "x", 2]]))
        .ok(2, json!([["r", "x", 1], ["w", "x", 3]]));
    let without = check(&b, &Options::models(&["serializable"]));
    assert_eq!(without.validity, Validity::Valid, "{}", without.explain());
    let with = check(
        &b,
        &Options {
            writes_follow_reads: true,
            ..Options::models(&["serializable"])
        },
    );
    assert_eq!(with.anomaly_types, vec!["G2-item"], "{}", with.explain());
    assert_contains(
        explanation(&with, "G2-item"),
        &[
            "read x = 1, which T",
            "overwrote with",
            "read x = 1 and then wrote",
        ],
    );
}

#[test]
fn stale_read_is_g_single_realtime() {
    let mut b = Builder::default();
    b.txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", null]]));
    let r = check(&b, &Options::default());
    assert_eq!(
        r.anomaly_types,
        vec!["G-single-realtime"],
        "{}",
        r.explain()
    );
    assert_contains(
        explanation(&r, "G-single-realtime"),
        &["completed (op 1", "read the initial (null) state of x"],
    );
}

#[test]
fn non_cycle_anomalies() {
    let mut b = Builder::default();
    b.invoke(0, json!([["w", "x", 1]]))
        .event(0, OpType::Fail, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "y", 1], ["w", "y", 2]]))
        .txn(2, json!([["r", "x", 1], ["r", "y", 1], ["r", "z", 5]]))
        .txn(3, json!([["w", "q", 1], ["r", "q", 2]]));
    let r = check(&b, &Options::default());
    for kind in ["G1a", "G1b", "garbage-read", "internal"] {
        assert!(
            r.anomaly_types.contains(&kind.to_string()),
            "{kind}: {}",
            r.explain()
        );
    }
    assert_contains(
        explanation(&r, "G1a"),
        &["read x = 1, written by op 1, which failed"],
    );
    assert_contains(
        explanation(&r, "G1b"),
        &["read y = 1, which op 3 overwrote later"],
    );
    assert_contains(
        explanation(&r, "garbage-read"),
        &["no transaction ever wrote 5 to z"],
    );
    assert_contains(
        explanation(&r, "internal"),
        &["read q = 2, but its own earlier read or write"],
    );
}

#[test]
fn bad_input() {
    let mut b = Builder::default();
    b.txn(0, json!([["append", "x", 1]]));
    let e = check_rw_register(&b.history(), &Options::default()).unwrap_err();
    assert!(e.message.contains("is an `append`"), "{e}");
    let mut b = Builder::default();
    b.txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "x", 1]]));
    let e = check_rw_register(&b.history(), &Options::default()).unwrap_err();
    assert!(
        e.message
            .starts_with("op 3: writes 1 to key x, which op 1 also wrote"),
        "{e}"
    );
}

/// Soundness on random histories: whenever the checker says a register history is not
/// serializable, no serial order of its committed transactions explains its reads. (The
/// converse does not hold: register reads reveal too little of the version order.)
#[test]
fn invalid_verdicts_are_sound_against_brute_force() {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[derive(Clone)]
    enum Mop {
        Read(usize, Option<i64>),
        Write(usize, i64),
    }
    fn serializable(txns: &[Vec<Mop>], keys: usize) -> bool {
        fn go(txns: &[Vec<Mop>], used: &mut [bool], state: &mut Vec<Option<i64>>) -> bool {
            if used.iter().all(|u| *u) {
                return true;
            }
            for i in 0..txns.len() {
                if used[i] {
                    continue;
                }
                let saved = state.clone();
                let ok = txns[i].iter().all(|m| match *m {
                    Mop::Write(k, v) => {
                        state[k] = Some(v);
                        true
                    }
                    Mop::Read(k, v) => state[k] == v,
                });
                if ok {
                    used[i] = true;
                    if go(txns, used, state) {
                        return true;
                    }
                    used[i] = false;
                }
                *state = saved;
            }
            false
        }
        go(txns, &mut vec![false; txns.len()], &mut vec![None; keys])
    }

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut flagged, mut checked) = (0, 0);
    for _ in 0..3000 {
        let keys = rng.random_range(1..=2usize);
        let n = rng.random_range(2..=5usize);
        let mut next = 1i64;
        let mut txns: Vec<Vec<Mop>> = (0..n)
            .map(|_| {
                (0..rng.random_range(1..=3))
                    .map(|_| {
                        let k = rng.random_range(0..keys);
                        if rng.random_bool(0.5) {
                            Mop::Read(k, None)
                        } else {
                            next += 1;
                            Mop::Write(k, next)
                        }
                    })
                    .collect()
            })
            .collect();
        // Execute in order, each transaction reading a possibly stale snapshot.
        let mut states = vec![vec![None; keys]];
        for txn in &mut txns {
            let snapshot = if rng.random_bool(0.5) {
                states.len() - 1
            } else {
                rng.random_range(0..states.len())
            };
            let mut view = states[snapshot].clone();
            let mut latest = states.last().unwrap().clone();
            for m in txn.iter_mut() {
                match m {
                    Mop::Read(k, v) => *v = view[*k],
                    Mop::Write(k, v) => {
                        view[*k] = Some(*v);
                        latest[*k] = Some(*v);
                    }
                }
            }
            states.push(latest);
        }
        let mut b = Builder::default();
        for (t, mops) in txns.iter().enumerate() {
            let value = Value::Array(
                mops.iter()
                    .map(|m| match m {
                        Mop::Read(k, v) => json!(["r", format!("k{k}"), v]),
                        Mop::Write(k, v) => json!(["w", format!("k{k}"), v]),
                    })
                    .collect(),
            );
            b.invoke(t as u64, value.clone());
        }
        for (t, mops) in txns.iter().enumerate() {
            let value = Value::Array(
                mops.iter()
                    .map(|m| match m {
                        Mop::Read(k, v) => json!(["r", format!("k{k}"), v]),
                        Mop::Write(k, v) => json!(["w", format!("k{k}"), v]),
                    })
                    .collect(),
            );
            b.ok(t as u64, value);
        }
        let expected = serializable(&txns, keys);
        for wfr in [false, true] {
            let opts = Options {
                writes_follow_reads: wfr,
                ..Options::models(&["serializable"])
            };
            let r = check(&b, &opts);
            checked += 1;
            if r.validity == Validity::Invalid {
                flagged += 1;
                assert!(
                    !expected,
                    "flagged a serializable history:\n{}",
                    r.explain()
                );
            }
        }
    }
    println!(
        "rw-register soundness: {flagged} of {checked} checks flagged, all truly non-serializable"
    );
    assert!(flagged > 100);
}
