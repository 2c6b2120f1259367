//! End-to-end tests on the in-test cluster driver: elections, replication, crashes,
//! partitions, and the bug switches' characteristic failures.

use super::testkit::{Cluster, MS};
use crate::node::Node;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn write(key: i64, value: i64) -> Value {
    json!({"type": "write", "key": key, "value": value})
}

fn read(key: i64) -> Value {
    json!({"type": "read", "key": key})
}

fn cas(key: i64, from: i64, to: i64) -> Value {
    json!({"type": "cas", "key": key, "from": from, "to": to})
}

#[test]
fn serves_the_kv_protocol() {
    let mut cluster = Cluster::new(5, 1, &[]);
    assert_eq!(cluster.call(read(1))["code"], 20);
    assert_eq!(cluster.call(cas(1, 0, 1))["code"], 20);
    assert_eq!(cluster.call(write(1, 10)), json!({"type": "write_ok"}));
    assert_eq!(
        cluster.call(read(1)),
        json!({"type": "read_ok", "value": 10})
    );
    assert_eq!(cluster.call(cas(1, 10, 11)), json!({"type": "cas_ok"}));
    let failed = cluster.call(cas(1, 10, 12));
    assert_eq!(
        (failed["code"].clone(), failed["definite"].clone()),
        (json!(22), json!(true))
    );
    assert_eq!(cluster.call(read(1))["value"], 11);
    // String keys are distinct from integer keys with the same digits.
    let by_string = json!({"type": "write", "key": "1", "value": 5});
    assert_eq!(cluster.call(by_string)["type"], "write_ok");
    assert_eq!(cluster.call(read(1))["value"], 11);
    let malformed = cluster.call(json!({"type": "write", "key": 1}));
    assert_eq!(malformed["code"], 12);
}

#[test]
fn followers_answer_not_leader_with_a_hint() {
    let mut cluster = Cluster::new(5, 2, &[]);
    let leader = cluster.await_leader();
    cluster.run_for(100 * MS);
    let follower = (leader + 1) % 5;
    let id = cluster.request(follower, write(1, 1));
    cluster.run_for(MS);
    let reply = &cluster.replies[&id];
    assert_eq!(reply["code"], 11);
    assert_eq!(reply["definite"], true);
    assert_eq!(reply["leader"], format!("n{}", leader + 1));
}

#[test]
fn a_new_leader_keeps_acknowledged_writes() {
    let mut cluster = Cluster::new(5, 3, &[]);
    for k in 0..20 {
        assert_eq!(cluster.call(write(k, k * 10))["type"], "write_ok");
    }
    let old = cluster.await_leader();
    cluster.crash(old);
    let new = cluster.await_leader();
    assert_ne!(new, old);
    for k in 0..20 {
        assert_eq!(cluster.call(read(k))["value"], k * 10);
    }
    cluster.restart(old);
    cluster.call(write(99, 1));
    cluster.run_for(500 * MS);
    let commits: Vec<u64> = (0..5)
        .map(|i| cluster.node(i).raft().commit_index())
        .collect();
    assert!(commits.iter().all(|&c| c == commits[0]), "{commits:?}");
    assert_eq!(cluster.node(old).state()["kv_size"], 21);
}

#[test]
fn the_whole_cluster_restarts_from_disk() {
    let mut cluster = Cluster::new(3, 4, &[]);
    for k in 0..150 {
        cluster.call(write(k % 7, k));
    }
    let leader = cluster.await_leader();
    let term = cluster.node(leader).raft().term();
    for i in 0..3 {
        cluster.crash(i);
    }
    for i in 0..3 {
        cluster.restart(i);
        assert!(cluster.node(i).raft().term() >= 1);
        assert!(cluster.node(i).raft().log().last_index() >= 150);
    }
    assert_eq!(cluster.call(read(3))["value"], 143);
    let leader = cluster.await_leader();
    assert!(cluster.node(leader).raft().term() > term);
}

#[test]
fn an_isolated_leader_neither_commits_nor_reads_and_steps_down_on_heal() {
    let mut cluster = Cluster::new(5, 5, &[]);
    cluster.call(write(1, 1));
    let old = cluster.await_leader();
    cluster.isolate(old);
    let lost_write = cluster.request(old, write(1, 2));
    let lost_read = cluster.request(old, read(1));
    cluster.run_for(600 * MS);
    assert!(!cluster.replies.contains_key(&lost_write));
    assert!(
        !cluster.replies.contains_key(&lost_read),
        "not confirmed, not answered yet"
    );
    // The majority moves on.
    let others: Vec<usize> = (0..5).filter(|&i| i != old).collect();
    let new = *others
        .iter()
        .find(|&&i| cluster.node(i).raft().is_leader())
        .expect("the majority elected a leader");
    let id = cluster.request(new, write(1, 3));
    cluster.run_for(20 * MS);
    assert_eq!(cluster.replies[&id]["type"], "write_ok");
    cluster.run_for(600 * MS);
    // The unconfirmed read fails definitely after its timeout.
    assert_eq!(cluster.replies[&lost_read]["definite"], true);
    cluster.heal();
    cluster.run_for(300 * MS);
    // The old leader learns the new term, and when it applies the index its write held, finds
    // the new leader's entry there: the write definitely did not happen.
    assert_eq!(cluster.replies[&lost_write]["definite"], true);
    assert_eq!(cluster.replies[&lost_write]["code"], 14);
    assert_eq!(cluster.call(read(1))["value"], 3);
}

#[test]
fn stale_read_bug_answers_from_a_deposed_leader_and_from_followers() {
    for (bugs, buggy) in [(&["stale-read"][..], true), (&[][..], false)] {
        let mut cluster = Cluster::new(5, 6, bugs);
        cluster.call(write(1, 1));
        let old = cluster.await_leader();
        cluster.isolate(old);
        cluster.run_for(600 * MS);
        let new = (0..5)
            .find(|&i| i != old && cluster.node(i).raft().is_leader())
            .unwrap();
        let id = cluster.request(new, write(1, 2));
        cluster.run_for(20 * MS);
        assert_eq!(cluster.replies[&id]["type"], "write_ok");
        let id = cluster.request(old, read(1));
        cluster.run_for(20 * MS);
        let stale = cluster.replies.get(&id).is_some_and(|r| r["value"] == 1);
        assert_eq!(stale, buggy);
        let follower = (0..5).find(|&i| i != old && i != new).unwrap();
        let id = cluster.request(follower, read(1));
        cluster.run_for(MS);
        let answered_locally = cluster.replies[&id]["type"] == "read_ok";
        assert_eq!(answered_locally, buggy);
    }
}

/// Raft's safety properties, checked on a sample of states: one leader per term, and an
/// index once committed anywhere always holds the same entry (term) everywhere it commits.
#[derive(Default)]
struct Invariants {
    leaders_by_term: BTreeMap<u64, usize>,
    /// index → term of the entry committed there.
    committed: BTreeMap<u64, u64>,
    /// Per node: indices up to here were recorded (reset when its commit index drops).
    checked_up_to: BTreeMap<usize, u64>,
}

impl Invariants {
    fn check(&mut self, cluster: &Cluster) -> Result<(), String> {
        for (i, term) in cluster.leaders() {
            let leader = *self.leaders_by_term.entry(term).or_insert(i);
            if leader != i {
                return Err(format!(
                    "two leaders in term {term}: n{} and n{}",
                    leader + 1,
                    i + 1
                ));
            }
        }
        for i in 0..cluster.size() {
            let raft = cluster.node(i).raft();
            let checked = self.checked_up_to.entry(i).or_insert(0);
            if raft.commit_index() < *checked {
                *checked = 0;
            }
            for index in *checked + 1..=raft.commit_index() {
                let Some(term) = raft.log().term_at(index) else {
                    break;
                };
                let first = *self.committed.entry(index).or_insert(term);
                if first != term {
                    return Err(format!(
                        "index {index} committed with term {first}, now term {term} on n{}",
                        i + 1
                    ));
                }
                *checked = index;
            }
        }
        Ok(())
    }
}

/// Random crashes, restarts, partitions and client writes; returns the first violation.
fn chaos(seed: u64, bugs: &[&str]) -> Result<(), String> {
    let mut cluster = Cluster::new(5, seed, bugs);
    cluster.jitter = 3 * MS;
    cluster.loss = 0.05;
    cluster.duplication = 0.05;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut invariants = Invariants::default();
    for step in 0..400 {
        match rng.random_range(0..20) {
            0 => {
                let i = rng.random_range(0..5);
                if cluster.is_up(i) {
                    cluster.crash(i);
                } else {
                    cluster.restart(i);
                }
            }
            1 => {
                let i = rng.random_range(0..5);
                cluster.isolate(i);
            }
            2 => cluster.heal(),
            _ => {
                let i = rng.random_range(0..5);
                cluster.request(i, write(step % 3, step));
            }
        }
        cluster.run_for(rng.random_range(1..60) * MS);
        invariants.check(&cluster)?;
    }
    cluster.heal();
    for i in 0..5 {
        if !cluster.is_up(i) {
            cluster.restart(i);
        }
    }
    cluster.run_for(2_000 * MS);
    invariants.check(&cluster)?;
    let commits: Vec<u64> = (0..5)
        .map(|i| cluster.node(i).raft().commit_index())
        .collect();
    if commits.iter().any(|&c| c != commits[0]) {
        return Err(format!("no convergence after healing: {commits:?}"));
    }
    Ok(())
}

#[test]
fn chaos_keeps_raft_safe() {
    for seed in 0..12 {
        if let Err(violation) = chaos(seed, &[]) {
            panic!("seed {seed}: {violation}");
        }
    }
}

#[test]
fn chaos_catches_forgotten_votes() {
    let caught = (0..30).find(|&seed| chaos(seed, &["forget-vote"]).is_err());
    assert!(caught.is_some(), "forget-vote never broke an invariant");
}

/// The whole cluster loses power and comes back, except one node that stays cut off while the
/// others go on; then the partition heals.
fn cluster_restart_with_a_straggler(seed: u64, bugs: &[&str]) -> Result<(), String> {
    let mut cluster = Cluster::new(5, seed, bugs);
    let mut invariants = Invariants::default();
    // A few leader changes first, so the terms in the logs are well above 1.
    for k in 0..30 {
        cluster.call(write(k % 3, k));
        if k % 10 == 9 {
            let leader = cluster.await_leader();
            cluster.crash(leader);
            cluster.call(write(k % 3, k));
            cluster.restart(leader);
        }
    }
    for i in 0..5 {
        cluster.crash(i);
    }
    for i in 0..5 {
        cluster.restart(i);
    }
    let straggler = (seed % 5) as usize;
    cluster.isolate(straggler);
    for k in 0..30 {
        cluster.call(write(k % 3, 100 + k));
        invariants.check(&cluster)?;
    }
    cluster.run_for(1_000 * MS);
    cluster.heal();
    for _ in 0..100 {
        cluster.run_for(10 * MS);
        invariants.check(&cluster)?;
    }
    Ok(())
}

#[test]
fn forget_vote_bug_lets_terms_regress_and_lose_committed_entries() {
    assert_eq!(cluster_restart_with_a_straggler(1, &[]), Ok(()));
    // The straggler kept the old, higher terms; the others restarted counting from 0, so its
    // stale log looks newer and overwrites what they committed meanwhile.
    let violation = cluster_restart_with_a_straggler(1, &["forget-vote"]);
    assert!(violation.is_err_and(|v| v.contains("committed with term")));
}

/// Raft's figure 8, scripted: an entry of an old term reaches a majority under a later leader,
/// then a node holding a conflicting entry of a newer term wins an election.
fn figure_8(bugs: &[&str]) -> Result<(), String> {
    let mut cluster = Cluster::new(5, 8, bugs);
    let mut invariants = Invariants::default();
    cluster.call(write(1, 1));
    let first = cluster.await_leader();
    let holder = (first + 1) % 5;
    let others: Vec<usize> = (0..5).filter(|&i| i != first && i != holder).collect();
    // The first leader's entry reaches only `holder`, then the leader dies.
    for &i in &others {
        cluster.cut.insert((first, i));
    }
    cluster.request(first, write(1, 2));
    cluster.run_for(5 * MS);
    cluster.crash(first);
    cluster.reconnect(first);
    // A leader without the entry is elected, appends, and is silenced at once.
    cluster.isolate(holder);
    let stranded = loop {
        cluster.run_for(MS / 10);
        if let Some(&(i, _)) = cluster.leaders().first() {
            break i;
        }
    };
    cluster.silence(stranded);
    cluster.request(stranded, write(1, 3));
    cluster.run_for(MS);
    cluster.crash(stranded);
    cluster.reconnect(stranded);
    // `holder` wins with the remaining two and spreads the old entry.
    cluster.reconnect(holder);
    for _ in 0..100 {
        cluster.run_for(10 * MS);
        invariants.check(&cluster)?;
    }
    // `holder` dies; the stranded leader comes back with its newer-term entry.
    let winner = cluster.await_leader();
    cluster.crash(winner);
    cluster.restart(stranded);
    for _ in 0..100 {
        cluster.run_for(10 * MS);
        invariants.check(&cluster)?;
    }
    Ok(())
}

#[test]
fn commit_old_term_bug_loses_a_committed_entry_in_figure_8() {
    assert_eq!(figure_8(&[]), Ok(()));
    let violation = figure_8(&["commit-old-term"]);
    assert!(violation.is_err_and(|v| v.contains("committed with term")));
}
