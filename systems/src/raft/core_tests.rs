//! Handler-level tests of the consensus core: one node, hand-made messages, effects inspected.

use super::*;
use crate::node::{Clocks, DiskImage, Effect};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Records applied commands.
#[derive(Debug, Default)]
struct Recorder {
    applied: Vec<Value>,
}

impl StateMachine for Recorder {
    fn apply(&mut self, command: &Command) -> Value {
        let command = &command.to_value();
        self.applied.push(command.clone());
        json!({"applied": self.applied.len()})
    }

    fn reset(&mut self) {
        self.applied.clear();
    }
}

fn members() -> Vec<NodeId> {
    ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec()
}

/// One node's environment: its synced disk and the clock.
struct Env {
    disk: DiskImage,
    now: u64,
    rng: ChaCha8Rng,
}

impl Env {
    fn new() -> Env {
        Env {
            disk: DiskImage::new(),
            now: 1_000 * MS,
            rng: ChaCha8Rng::seed_from_u64(7),
        }
    }

    /// Runs a handler for node `n1`; synced writes reach the disk.
    fn run<R>(&mut self, f: impl FnOnce(&mut Context) -> R) -> (R, Vec<Effect>) {
        let peers: Vec<NodeId> = members().into_iter().skip(1).collect();
        let clocks = Clocks {
            wall_clock_ns: self.now as i64,
            monotonic_ns: self.now,
            epsilon_ns: 0,
        };
        let disk = self.disk.clone();
        let mut ctx = Context::new("n1", &peers, clocks, &mut self.rng, &disk);
        let result = f(&mut ctx);
        let effects = ctx.into_effects();
        let mut staged = Vec::new();
        for effect in &effects {
            match effect {
                Effect::DiskWrite { file, bytes } => staged.push((file.clone(), bytes.clone())),
                Effect::DiskSync => self.disk.extend(staged.drain(..)),
                _ => {}
            }
        }
        (result, effects)
    }
}

fn new_raft(faults: Faults) -> Raft<Recorder> {
    let mut config = RaftConfig::new("n1", &members());
    config.faults = faults;
    Raft::new(config, Recorder::default())
}

fn started(env: &mut Env, faults: Faults) -> Raft<Recorder> {
    let mut raft = new_raft(faults);
    env.run(|ctx| raft.on_start(ctx));
    raft
}

fn sends(effects: &[Effect]) -> Vec<(String, Message)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { dest, body } => {
                Some((dest.clone(), Message::parse_json(body.as_str()).unwrap()))
            }
            _ => None,
        })
        .collect()
}

/// Position of the first effect matching `pred`.
fn position(effects: &[Effect], pred: impl Fn(&Effect) -> bool) -> usize {
    effects.iter().position(pred).expect("effect present")
}

fn append(term: u64, prev: (u64, u64), entries: &[u64], leader_commit: u64) -> Value {
    Message::Append(Append {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries: entries
            .iter()
            .map(|&t| Entry::command(t, &json!({"term": t})))
            .collect(),
        leader_commit,
        seq: 1,
        sent_at: 0,
    })
    .to_body(None)
}

fn the_reply(effects: &[Effect]) -> AppendReply {
    match sends(effects).as_slice() {
        [(_, Message::AppendReply(r))] => r.clone(),
        other => panic!("expected one append reply, got {other:?}"),
    }
}

fn log_terms(raft: &Raft<Recorder>) -> Vec<u64> {
    (1..=raft.log().last_index())
        .map(|i| raft.log().term_at(i).unwrap())
        .collect()
}

#[test]
fn follower_rejects_a_mismatching_prev_log_term() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(2, (0, 0), &[1, 1, 2], 0)));
    // The leader of term 3 believes index 3 holds term 3.
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", append(3, (3, 3), &[3], 0)));
    let reply = the_reply(&effects);
    assert!(!reply.success);
    assert_eq!(reply.term, 3);
    assert_eq!(reply.conflict_index, 3, "skips the whole conflicting term");
    assert_eq!(log_terms(&raft), [1, 1, 2]);
    assert_eq!(raft.leader_hint(), Some("n3"));
    // Past the end of the log: retry from one past our last entry.
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", append(3, (9, 3), &[3], 0)));
    assert_eq!(the_reply(&effects).conflict_index, 4);
}

#[test]
fn follower_truncates_a_conflicting_suffix_and_syncs_before_replying() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(2, (0, 0), &[1, 1, 2, 2], 1)));
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", append(3, (2, 1), &[3], 0)));
    let reply = the_reply(&effects);
    assert!(reply.success);
    assert_eq!(reply.match_index, 3);
    assert_eq!(log_terms(&raft), [1, 1, 3]);
    let sync = position(&effects, |e| matches!(e, Effect::DiskSync));
    let send = position(&effects, |e| matches!(e, Effect::Send { .. }));
    assert!(sync < send, "the new entries are durable before the ack");
    // The disk holds the truncated log.
    let mut reborn = new_raft(Faults::default());
    env.run(|ctx| reborn.on_start(ctx));
    assert_eq!(log_terms(&reborn), [1, 1, 3]);
}

#[test]
fn a_stale_append_does_not_truncate_later_entries() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(2, (0, 0), &[1, 2, 2], 0)));
    // A delayed duplicate of an earlier, shorter append from the same leader.
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n2", append(2, (0, 0), &[1], 0)));
    let reply = the_reply(&effects);
    assert!(reply.success);
    assert_eq!(
        reply.match_index, 1,
        "acknowledges only what the message proves"
    );
    assert_eq!(log_terms(&raft), [1, 2, 2]);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::DiskWrite { .. })),
        "nothing changed, nothing written"
    );
}

#[test]
fn follower_commits_up_to_what_the_append_proves() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(1, (0, 0), &[1, 1, 1, 1], 0)));
    // leader_commit 4, but this message only proves indices 1..=2 match.
    env.run(|ctx| raft.on_message(ctx, "n2", append(1, (1, 1), &[1], 4)));
    assert_eq!(raft.commit_index(), 2);
    assert_eq!(raft.machine().applied.len(), 2);
}

#[test]
fn grants_one_vote_per_term_and_persists_it_before_replying() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    let request = |term| {
        Message::RequestVote(RequestVote {
            term,
            last_log_index: 0,
            last_log_term: 0,
        })
        .to_body(None)
    };
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n2", request(5)));
    assert_eq!(
        sends(&effects),
        [(
            "n2".to_string(),
            Message::Vote(Vote {
                term: 5,
                granted: true
            })
        )]
    );
    let write = position(
        &effects,
        |e| matches!(e, Effect::DiskWrite { file, .. } if file == "raft.state"),
    );
    let sync = position(&effects, |e| matches!(e, Effect::DiskSync));
    let send = position(&effects, |e| matches!(e, Effect::Send { .. }));
    assert!(write < sync && sync < send);
    // Another candidate of the same term is refused; the same one again is granted.
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", request(5)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 5,
            granted: false
        })
    );
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n2", request(5)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 5,
            granted: true
        })
    );
    // After a crash the vote is remembered.
    let mut reborn = started(&mut env, Faults::default());
    assert_eq!((reborn.term(), reborn.voted_for()), (5, Some("n2")));
    let (_, effects) = env.run(|ctx| reborn.on_message(ctx, "n3", request(5)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 5,
            granted: false
        })
    );
}

#[test]
fn forget_vote_bug_votes_twice_after_a_restart() {
    let mut env = Env::new();
    let faults = Faults {
        forget_vote: true,
        ..Faults::default()
    };
    let mut raft = started(&mut env, faults);
    let request = Message::RequestVote(RequestVote {
        term: 5,
        last_log_index: 0,
        last_log_term: 0,
    });
    env.run(|ctx| raft.on_message(ctx, "n2", request.to_body(None)));
    let mut reborn = started(&mut env, faults);
    assert_eq!(reborn.term(), 0);
    let (_, effects) = env.run(|ctx| reborn.on_message(ctx, "n3", request.to_body(None)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 5,
            granted: true
        })
    );
}

#[test]
fn refuses_a_candidate_with_an_older_log() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(2, (0, 0), &[1, 2], 0)));
    let request = Message::RequestVote(RequestVote {
        term: 3,
        last_log_index: 5,
        last_log_term: 1,
    });
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", request.to_body(None)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 3,
            granted: false
        })
    );
    assert_eq!(raft.term(), 3, "the higher term is adopted all the same");
}

#[test]
fn recovery_restores_term_vote_and_log() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    env.run(|ctx| raft.on_message(ctx, "n2", append(4, (0, 0), &[1, 1, 3, 4], 2)));
    assert_eq!(raft.machine().applied.len(), 2);
    let reborn = started(&mut env, Faults::default());
    assert_eq!(reborn.term(), 4);
    assert_eq!(log_terms(&reborn), [1, 1, 3, 4]);
    assert_eq!(
        reborn.commit_index(),
        0,
        "commitment is relearned from the leader"
    );
    assert!(reborn.machine().applied.is_empty());
    assert_eq!(reborn.role(), Role::Follower);
}

/// Makes `raft` leader of term `term` with a log of the given entry terms (before its no-op).
fn leader_with_log(env: &mut Env, faults: Faults, terms: &[u64], term: u64) -> Raft<Recorder> {
    let mut raft = started(env, faults);
    env.run(|ctx| raft.on_message(ctx, "n2", append(term - 1, (0, 0), terms, 0)));
    env.run(|ctx| raft.on_timer(ctx, raft.config().election_timer()));
    for voter in ["n2", "n3"] {
        let vote = Message::Vote(Vote {
            term,
            granted: true,
        });
        env.run(|ctx| raft.on_message(ctx, voter, vote.to_body(None)));
    }
    assert!(raft.is_leader());
    assert_eq!(raft.term(), term);
    raft
}

fn ack(term: u64, match_index: u64, seq: u64) -> Value {
    Message::AppendReply(AppendReply {
        term,
        success: true,
        match_index,
        conflict_index: 0,
        seq,
        sent_at: 0,
    })
    .to_body(None)
}

#[test]
fn a_new_leader_commits_old_entries_only_through_its_own_term() {
    let mut env = Env::new();
    // Entries 1..=2 from term 1; the leader of term 3 appends its no-op at 3.
    let mut raft = leader_with_log(&mut env, Faults::default(), &[1, 2], 3);
    assert_eq!(log_terms(&raft), [1, 2, 3]);
    // A majority stores index 2 (term 2) but not the no-op: figure 8 says wait.
    env.run(|ctx| raft.on_message(ctx, "n2", ack(3, 2, 1)));
    env.run(|ctx| raft.on_message(ctx, "n3", ack(3, 2, 1)));
    assert_eq!(raft.commit_index(), 0);
    // Once a majority stores the current-term no-op, everything before it commits too.
    env.run(|ctx| raft.on_message(ctx, "n2", ack(3, 3, 2)));
    env.run(|ctx| raft.on_message(ctx, "n3", ack(3, 3, 2)));
    assert_eq!(raft.commit_index(), 3);
    assert_eq!(raft.machine().applied.len(), 2, "the no-op is not applied");
}

#[test]
fn commit_old_term_bug_counts_replicas_of_old_entries() {
    let mut env = Env::new();
    let faults = Faults {
        commit_old_term: true,
        ..Faults::default()
    };
    let mut raft = leader_with_log(&mut env, faults, &[1, 2], 3);
    env.run(|ctx| raft.on_message(ctx, "n2", ack(3, 2, 1)));
    env.run(|ctx| raft.on_message(ctx, "n3", ack(3, 2, 1)));
    assert_eq!(raft.commit_index(), 2);
}

#[test]
fn a_leader_replicates_proposals_after_syncing_them() {
    let mut env = Env::new();
    let mut raft = leader_with_log(&mut env, Faults::default(), &[], 2);
    let (proposal, effects) = env.run(|ctx| raft.propose(ctx, json!({"x": 1})));
    let proposal = proposal.unwrap();
    assert_eq!((proposal.index, proposal.term), (2, 2));
    let sync = position(&effects, |e| matches!(e, Effect::DiskSync));
    let send = position(&effects, |e| matches!(e, Effect::Send { .. }));
    assert!(sync < send);
    let appends: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Append(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(appends.len(), 4);
    assert!(appends.iter().all(|a| {
        a.entries
            .last()
            .is_some_and(|e| e.command.as_ref().map(Command::to_value) == Some(json!({"x": 1})))
    }));
    // Two acks make a majority with the leader: applied, and the event names the proposal.
    env.run(|ctx| raft.on_message(ctx, "n2", ack(2, 2, 9)));
    env.run(|ctx| raft.on_message(ctx, "n4", ack(2, 2, 9)));
    let events = raft.take_events();
    assert!(events.contains(&Event::Applied {
        index: 2,
        term: 2,
        result: Some(json!({"applied": 1})),
    }));
}

#[test]
fn a_read_waits_for_a_majority_to_ack_a_later_message() {
    let mut env = Env::new();
    let mut raft = leader_with_log(&mut env, Faults::default(), &[], 2);
    // Commit the no-op with acks of the first round.
    for peer in ["n2", "n3", "n4", "n5"] {
        env.run(|ctx| raft.on_message(ctx, peer, ack(2, 1, 1)));
    }
    assert_eq!(raft.commit_index(), 1);
    let seq_before = raft.seq;
    let (id, effects) = env.run(|ctx| raft.read_index(ctx));
    let id = id.unwrap();
    assert_eq!(
        sends(&effects).len(),
        4,
        "the read triggers a heartbeat round"
    );
    raft.take_events();
    // Acks of messages sent before the read do not confirm it.
    env.run(|ctx| raft.on_message(ctx, "n2", ack(2, 1, seq_before)));
    env.run(|ctx| raft.on_message(ctx, "n3", ack(2, 1, seq_before)));
    assert!(raft.take_events().is_empty());
    env.run(|ctx| raft.on_message(ctx, "n2", ack(2, 1, seq_before + 1)));
    assert!(
        raft.take_events().is_empty(),
        "one ack plus the leader is no majority"
    );
    env.run(|ctx| raft.on_message(ctx, "n5", ack(2, 1, seq_before + 4)));
    assert_eq!(raft.take_events(), [Event::ReadReady { id }]);
}

#[test]
fn stepping_down_fails_pending_reads_and_reports_it() {
    let mut env = Env::new();
    let mut raft = leader_with_log(&mut env, Faults::default(), &[], 2);
    let (id, _) = env.run(|ctx| raft.read_index(ctx));
    raft.take_events();
    let newer = Message::AppendReply(AppendReply {
        term: 7,
        success: false,
        match_index: 0,
        conflict_index: 0,
        seq: 0,
        sent_at: 0,
    });
    env.run(|ctx| raft.on_message(ctx, "n2", newer.to_body(None)));
    assert_eq!(
        raft.take_events(),
        [
            Event::ReadFailed { id: id.unwrap() },
            Event::SteppedDown { term: 7 }
        ]
    );
    assert_eq!(raft.role(), Role::Follower);
    let (refused, _) = env.run(|ctx| raft.propose(ctx, json!(1)));
    assert_eq!(refused, Err(NotLeader { leader: None }));
}

#[test]
fn malformed_and_foreign_messages_are_ignored() {
    let mut env = Env::new();
    let mut raft = started(&mut env, Faults::default());
    for body in [
        json!(null),
        json!("raft_append"),
        json!({"type": "raft_append", "term": "x"}),
        json!({"type": "raft_vote", "term": u64::MAX, "granted": true, "extra": [1]}),
        json!({"type": "raft_append_reply", "term": 0, "success": true, "match_index": u64::MAX,
               "conflict_index": u64::MAX, "seq": 0, "sent_at": 0}),
    ] {
        env.run(|ctx| raft.on_message(ctx, "n2", body.clone()));
        env.run(|ctx| raft.on_message(ctx, "stranger", body));
    }
    // Absurd indices from a "leader" do not panic either.
    env.run(|ctx| raft.on_message(ctx, "n3", append(u64::MAX, (u64::MAX, 1), &[1], u64::MAX)));
    env.run(|ctx| raft.on_message(ctx, "n3", append(u64::MAX, (0, 0), &[1], u64::MAX)));
    assert_eq!(raft.commit_index(), 1);
}

#[test]
fn a_single_node_group_commits_on_its_own() {
    let mut env = Env::new();
    let mut config = RaftConfig::new("n1", &["n1".to_string()]);
    config.disk_prefix = "solo".into();
    let mut raft = Raft::new(config, Recorder::default());
    env.run(|ctx| raft.on_start(ctx));
    env.run(|ctx| raft.on_timer(ctx, 0));
    assert!(raft.is_leader());
    let (proposal, _) = env.run(|ctx| raft.propose(ctx, json!("x")));
    assert_eq!(proposal.unwrap().index, 2);
    assert_eq!(raft.commit_index(), 2);
    let (read, _) = env.run(|ctx| raft.read_index(ctx));
    assert!(
        raft.take_events()
            .contains(&Event::ReadReady { id: read.unwrap() })
    );
}

#[test]
fn group_tags_messages_and_timers_are_namespaced() {
    let mut env = Env::new();
    let mut config = RaftConfig::new("n1", &members());
    config.group = Some("shard-7".into());
    config.timer_base = 70;
    let mut raft = Raft::new(config, Recorder::default());
    env.run(|ctx| raft.on_start(ctx));
    assert!(!raft.owns_timer(0));
    let (owned, effects) = env.run(|ctx| raft.on_timer(ctx, 70));
    assert!(owned);
    let bodies: Vec<Value> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { body, .. } => Some(body.to_value()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 4);
    assert!(
        bodies
            .iter()
            .all(|b| b["group"] == "shard-7" && b["type"] == "raft_request_vote")
    );
}

#[test]
fn leases_hold_votes_back_and_expire() {
    let mut env = Env::new();
    let mut config = RaftConfig::new("n1", &members());
    config.leases = true;
    let mut raft = Raft::new(config, Recorder::default());
    env.run(|ctx| raft.on_start(ctx));
    env.run(|ctx| raft.on_message(ctx, "n2", append(1, (0, 0), &[1], 1)));
    // A candidate shows up right after we heard from the leader: ignored, term kept.
    let request = Message::RequestVote(RequestVote {
        term: 9,
        last_log_index: 10,
        last_log_term: 5,
    });
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", request.to_body(None)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 1,
            granted: false
        })
    );
    env.now += 200 * MS;
    let (_, effects) = env.run(|ctx| raft.on_message(ctx, "n3", request.to_body(None)));
    assert_eq!(
        sends(&effects)[0].1,
        Message::Vote(Vote {
            term: 9,
            granted: true
        })
    );

    // As leader: the lease starts with a majority's acks and runs out without them.
    let mut env = Env::new();
    let mut config = RaftConfig::new("n1", &members());
    config.leases = true;
    let mut raft = Raft::new(config, Recorder::default());
    env.run(|ctx| raft.on_start(ctx));
    env.now += 400 * MS;
    env.run(|ctx| raft.on_timer(ctx, 0));
    for voter in ["n2", "n3"] {
        let vote = Message::Vote(Vote {
            term: 1,
            granted: true,
        });
        env.run(|ctx| raft.on_message(ctx, voter, vote.to_body(None)));
    }
    assert!(raft.is_leader());
    assert!(!raft.has_lease(env.now));
    let sent_at = env.now;
    let ack_at = || {
        Message::AppendReply(AppendReply {
            term: 1,
            success: true,
            match_index: 1,
            conflict_index: 0,
            seq: 1,
            sent_at,
        })
        .to_body(None)
    };
    env.now += MS;
    for peer in ["n2", "n3"] {
        let body = ack_at();
        env.run(|ctx| raft.on_message(ctx, peer, body));
    }
    assert!(raft.has_lease(env.now));
    assert_eq!(raft.lease_expiry(), Some(sent_at + 135 * MS));
    assert!(!raft.has_lease(sent_at + 135 * MS));
    // Check-quorum: silence for a whole election timeout makes the leader step down.
    env.now += 400 * MS;
    env.run(|ctx| raft.on_timer(ctx, 1));
    assert_eq!(raft.role(), Role::Follower);
}
