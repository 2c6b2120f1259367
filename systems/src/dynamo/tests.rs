//! The dynamo store on a small deterministic cluster driver: fixed latency, directed cuts,
//! crashes with synced disks; each test drives client requests and inspects replicas.

use super::object::Object;
use super::ring::Ring;
use super::server::DynamoNode;
use crate::node::{Body, Clocks, Context, Delay, DiskImage, Effect, Node, NodeConfig, RequestId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const MS: u64 = 1_000_000;

enum Action {
    Deliver { from: usize, body: Body },
    Timer { key: u64, generation: u64 },
    Request { id: RequestId, body: Value },
}

struct Slot {
    id: String,
    node: Option<DynamoNode>,
    rng: ChaCha8Rng,
    synced: DiskImage,
    staged: DiskImage,
    timers: BTreeMap<u64, u64>,
    incarnation: u64,
}

struct Cluster {
    now: u64,
    ids: Vec<String>,
    bugs: Vec<String>,
    slots: Vec<Slot>,
    queue: BTreeMap<(u64, u64), (usize, u64, Action)>,
    sequence: u64,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(usize, usize)>,
    next_request: RequestId,
    replies: BTreeMap<RequestId, Value>,
    /// Wall-clock offsets per node (ns), for the `lww` bug.
    skew: Vec<i64>,
}

impl Cluster {
    fn new(bugs: &[&str]) -> Cluster {
        let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
        let mut cluster = Cluster {
            now: 0,
            slots: ids
                .iter()
                .enumerate()
                .map(|(i, id)| Slot {
                    id: id.clone(),
                    node: None,
                    rng: ChaCha8Rng::seed_from_u64(i as u64),
                    synced: DiskImage::new(),
                    staged: DiskImage::new(),
                    timers: BTreeMap::new(),
                    incarnation: 0,
                })
                .collect(),
            ids,
            bugs,
            queue: BTreeMap::new(),
            sequence: 0,
            cut: BTreeSet::new(),
            next_request: 0,
            replies: BTreeMap::new(),
            skew: vec![0; 5],
        };
        for i in 0..5 {
            cluster.start(i);
        }
        cluster
    }

    fn index(&self, id: &str) -> usize {
        self.ids.iter().position(|n| n == id).unwrap()
    }

    fn start(&mut self, i: usize) {
        let config = NodeConfig {
            id: self.ids[i].clone(),
            nodes: self.ids.clone(),
            bugs: self.bugs.clone(),
        };
        self.slots[i].node = Some(DynamoNode::new(config));
        self.call(i, |n, ctx| n.on_start(ctx));
    }

    fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.staged.clear();
        slot.timers.clear();
        slot.incarnation += 1;
    }

    fn push(&mut self, at: u64, node: usize, action: Action) {
        self.sequence += 1;
        let incarnation = self.slots[node].incarnation;
        self.queue
            .insert((at, self.sequence), (node, incarnation, action));
    }

    fn call(&mut self, i: usize, f: impl FnOnce(&mut DynamoNode, &mut Context)) {
        let now = self.now;
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let peers: Vec<String> = self
            .ids
            .iter()
            .filter(|n| **n != slot.id)
            .cloned()
            .collect();
        let clocks = Clocks {
            wall_clock_ns: now as i64 + self.skew[i],
            monotonic_ns: now,
            epsilon_ns: 0,
        };
        let disk = slot.synced.clone();
        let mut ctx = Context::new(&slot.id, &peers, clocks, &mut slot.rng, &disk);
        f(node, &mut ctx);
        for effect in ctx.into_effects() {
            match effect {
                Effect::Send { dest, body } => {
                    let to = self.index(&dest);
                    if !self.cut.contains(&(i, to)) {
                        self.push(now + MS, to, Action::Deliver { from: i, body });
                    }
                }
                Effect::Reply { request, body } => {
                    self.replies.insert(request, body);
                }
                Effect::SetTimer { key, delay } => {
                    let after = match delay {
                        Delay::Fixed(ns) => ns,
                        Delay::Jitter { min, .. } => min,
                    };
                    self.sequence += 1;
                    let generation = self.sequence;
                    self.slots[i].timers.insert(key, generation);
                    self.push(now + after, i, Action::Timer { key, generation });
                }
                Effect::CancelTimer { key } => {
                    self.slots[i].timers.remove(&key);
                }
                Effect::DiskWrite { file, bytes } => {
                    self.slots[i].staged.insert(file, bytes);
                }
                Effect::DiskSync => {
                    let staged = std::mem::take(&mut self.slots[i].staged);
                    self.slots[i].synced.extend(staged);
                }
                Effect::Trace { .. } => {}
            }
        }
    }

    fn run_for(&mut self, ns: u64) {
        let until = self.now + ns;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), (node, incarnation, action)) = entry.remove_entry();
            self.now = at;
            if self.slots[node].incarnation != incarnation || self.slots[node].node.is_none() {
                continue;
            }
            match action {
                Action::Deliver { from, body } => {
                    let from_id = self.ids[from].clone();
                    self.call(node, |n, ctx| {
                        n.on_message_json(ctx, &from_id, body.as_str())
                    });
                }
                Action::Timer { key, generation } => {
                    if self.slots[node].timers.get(&key) == Some(&generation) {
                        self.slots[node].timers.remove(&key);
                        self.call(node, |n, ctx| n.on_timer(ctx, key));
                    }
                }
                Action::Request { id, body } => {
                    self.call(node, |n, ctx| n.on_client_request(ctx, id, body));
                }
            }
        }
        self.now = until;
    }

    /// Sends a client request to node `i` and runs until it is answered (or a second passes).
    fn request(&mut self, i: usize, body: Value) -> Value {
        self.next_request += 1;
        let id = self.next_request;
        self.push(self.now + MS, i, Action::Request { id, body });
        for _ in 0..1000 {
            if let Some(reply) = self.replies.remove(&id) {
                return reply;
            }
            self.run_for(MS);
        }
        panic!("no reply to request {id}");
    }

    fn write(&mut self, i: usize, key: i64, value: i64, context: Value) -> Value {
        self.request(
            i,
            json!({"type": "write", "key": key, "value": value, "context": context}),
        )
    }

    fn read(&mut self, i: usize, key: i64) -> Value {
        self.request(i, json!({"type": "read", "key": key}))
    }

    /// Cuts every link between the two groups, both ways.
    fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    fn object(&self, i: usize, key: i64) -> Object {
        self.slots[i].node.as_ref().unwrap().object(&json!(key))
    }
}

fn home_and_fallbacks(key: i64) -> (Vec<usize>, Vec<usize>) {
    let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let list = Ring::new(&ids).preference_list(&key.to_string());
    let idx: Vec<usize> = list
        .iter()
        .map(|n| ids.iter().position(|m| m == n).unwrap())
        .collect();
    (idx[..3].to_vec(), idx[3..].to_vec())
}

#[test]
fn a_write_is_read_back_with_its_context() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    assert_eq!(c.write(0, 1, 10, Value::Null)["type"], "write_ok");
    let read = c.read(3, 1);
    assert_eq!(read["type"], "read_ok");
    assert_eq!(read["siblings"], json!([10]));
    assert_eq!(read["context"].as_object().unwrap().len(), 1);
    assert_eq!(
        c.read(2, 7),
        json!({"type": "read_ok", "siblings": [], "context": {}})
    );
    let bad = c.request(0, json!({"type": "write", "key": 1}));
    assert_eq!(
        (bad["code"].clone(), bad["definite"].clone()),
        (json!(12), json!(true))
    );
}

#[test]
fn concurrent_writes_are_siblings_until_a_covering_write() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    c.write(0, 1, 10, Value::Null);
    let ctx = c.read(1, 1)["context"].clone();
    c.write(1, 1, 20, ctx.clone());
    c.write(2, 1, 30, ctx);
    let read = c.read(4, 1);
    assert_eq!(read["siblings"], json!([20, 30]), "{read}");
    c.write(4, 1, 40, read["context"].clone());
    assert_eq!(c.read(0, 1)["siblings"], json!([40]));
}

#[test]
fn writes_are_coordinated_by_a_replica_of_the_key() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    let (home, fallbacks) = home_and_fallbacks(5);
    c.write(fallbacks[0], 5, 1, Value::Null);
    let object = c.object(home[0], 5);
    let minter = &object.siblings[0].dot.0;
    assert_eq!(*minter, format!("n{}", home[0] + 1));
    assert!(
        c.object(fallbacks[0], 5).is_empty(),
        "the forwarder stores nothing"
    );
}

#[test]
fn sloppy_quorum_writes_reach_home_replicas_by_hinted_handoff() {
    for (bugs, handed_off) in [(vec![], true), (vec!["no-handoff"], false)] {
        let mut c = Cluster::new(&bugs);
        c.run_for(10 * MS);
        let (home, fallbacks) = home_and_fallbacks(3);
        c.partition(&home, &fallbacks);
        c.run_for(500 * MS);
        let reply = c.write(fallbacks[0], 3, 99, Value::Null);
        assert_eq!(
            reply["type"], "write_ok",
            "both fallbacks accept it: {reply}"
        );
        assert_eq!(c.read(fallbacks[1], 3)["siblings"], json!([99]));
        assert!(c.object(home[0], 3).is_empty());
        assert_eq!(
            c.slots[fallbacks[0]]
                .node
                .as_ref()
                .unwrap()
                .hints(&json!(3))
                .len(),
            3
        );
        c.cut.clear();
        c.run_for(2000 * MS);
        let read = c.read(home[0], 3);
        if handed_off {
            assert_eq!(read["siblings"], json!([99]), "{bugs:?}");
            for &h in &home {
                assert_eq!(c.object(h, 3).values(), vec![json!(99)]);
            }
            assert!(
                c.slots[fallbacks[0]]
                    .node
                    .as_ref()
                    .unwrap()
                    .hints(&json!(3))
                    .is_empty()
            );
        } else {
            assert_eq!(read["siblings"], json!([]), "{bugs:?}");
        }
    }
}

#[test]
fn anti_entropy_repairs_a_replica_that_missed_writes() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    let (home, fallbacks) = home_and_fallbacks(2);
    // The third home replica misses the write, and the fallbacks are unreachable too.
    let lagging = home[2];
    let others: Vec<usize> = (0..5).filter(|&i| i != lagging).collect();
    c.partition(&[lagging], &others);
    c.partition(&fallbacks, &home);
    c.run_for(500 * MS);
    assert_eq!(c.write(home[0], 2, 7, Value::Null)["type"], "write_ok");
    assert!(c.object(lagging, 2).is_empty());
    c.cut.clear();
    c.run_for(1500 * MS);
    assert_eq!(c.object(lagging, 2).values(), vec![json!(7)]);
}

#[test]
fn a_read_never_answers_with_less_than_its_session_saw() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    c.write(0, 4, 1, Value::Null);
    let ahead = json!({"n9": 3});
    let reply = c.request(1, json!({"type": "read", "key": 4, "after": ahead}));
    assert_eq!(reply["code"], 11);
    assert_eq!(reply["definite"], true);
    let ctx = c.read(1, 4)["context"].clone();
    let reply = c.request(2, json!({"type": "read", "key": 4, "after": ctx}));
    assert_eq!(reply["siblings"], json!([1]));
}

#[test]
fn reads_can_name_their_coordinator() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    c.write(0, 1, 5, Value::Null);
    let reply = c.request(0, json!({"type": "read", "key": 1, "node": "n4"}));
    assert_eq!(reply["siblings"], json!([5]));
}

#[test]
fn stored_objects_survive_a_crash() {
    let mut c = Cluster::new(&[]);
    c.run_for(10 * MS);
    let (home, _) = home_and_fallbacks(6);
    c.write(home[0], 6, 42, Value::Null);
    for &h in &home {
        c.crash(h);
        c.start(h);
    }
    c.run_for(100 * MS);
    assert_eq!(c.read(home[0], 6)["siblings"], json!([42]));
    // New writes after the restart do not reuse a dot.
    let ctx = json!({});
    c.write(home[0], 6, 43, ctx);
    assert_eq!(c.read(home[1], 6)["siblings"], json!([42, 43]));
}

#[test]
fn the_bugs_break_what_they_should() {
    // lww: of two concurrent writes, only the one with the newer wall clock survives.
    let mut c = Cluster::new(&["lww"]);
    c.skew = vec![0, -1_000_000_000, 0, 0, 0];
    c.run_for(10 * MS);
    let (home, _) = home_and_fallbacks(1);
    c.write(home[0], 1, 10, Value::Null);
    c.write(home[0], 1, 20, json!({}));
    assert_eq!(c.read(0, 1)["siblings"].as_array().unwrap().len(), 1);

    // drop-context: a write with a context that covers 10 does not replace it.
    let mut c = Cluster::new(&["drop-context"]);
    c.run_for(10 * MS);
    c.write(0, 1, 10, Value::Null);
    let ctx = c.read(0, 1)["context"].clone();
    c.write(0, 1, 20, ctx);
    assert_eq!(c.read(0, 1)["siblings"], json!([10, 20]));

    // client-ids: two blind writes by the same client get the same dot; one value is lost.
    let mut c = Cluster::new(&["client-ids"]);
    c.run_for(10 * MS);
    for v in [10, 20] {
        let body = json!({"type": "write", "key": 1, "value": v, "context": null, "client": "c1"});
        assert_eq!(c.request(0, body)["type"], "write_ok");
    }
    assert_eq!(c.read(0, 1)["siblings"], json!([20]));
}
