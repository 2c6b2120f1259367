//! Unit tests of the simulator's mechanics with a toy node: crash semantics, grudges at
//! delivery time, pauses, and the client's info/fail mapping.

use super::*;
use checkers::History;
use serde_json::json;
use workloads::{CheckReport, Completion};

/// A toy node: `write` stages its value on disk (synced only when the value is even) and
/// answers; `ping` sends a message to every peer; it counts the pings it hears.
#[derive(Default)]
struct Toy {
    recovered: Option<Value>,
    pings_heard: u64,
    last_written: Option<Value>,
}

impl Node for Toy {
    fn on_start(&mut self, ctx: &mut Context) {
        self.recovered = ctx
            .disk_read("value")
            .and_then(|b| serde_json::from_slice(b).ok());
    }
    fn on_message(&mut self, _ctx: &mut Context, _from: &str, body: Value) {
        if body["type"] == "ping" {
            self.pings_heard += 1;
        }
    }
    fn on_client_request(&mut self, ctx: &mut Context, request: u64, body: Value) {
        match body["type"].as_str() {
            Some("write") => {
                let v = body["value"].clone();
                ctx.disk_write("value", serde_json::to_vec(&v).unwrap());
                if v.as_u64().is_some_and(|n| n % 2 == 0) {
                    ctx.disk_sync();
                }
                self.last_written = Some(v);
                ctx.reply(request, json!({"type": "write_ok"}));
            }
            Some("ping") => {
                for p in ctx.peers().to_vec() {
                    ctx.send(&p, &json!({"type": "ping"}));
                }
                ctx.reply(request, json!({"type": "ping_ok"}));
            }
            _ => ctx.reply(
                request,
                json!({"type": "error", "code": 10, "definite": true}),
            ),
        }
    }
    fn on_timer(&mut self, _ctx: &mut Context, _key: TimerKey) {}
    fn state(&self) -> Value {
        json!({"recovered": self.recovered, "pings": self.pings_heard,
               "last_written": self.last_written})
    }
}

/// A workload that never generates load (tests drive the nodes directly).
struct Idle;

impl Workload for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }
    fn next_invocation(&mut self, _rng: &mut ChaCha8Rng) -> Invocation {
        Invocation {
            f: "ping".into(),
            value: Value::Null,
        }
    }
    fn request_body(&self, inv: &Invocation) -> Value {
        json!({"type": inv.f})
    }
    fn complete(&self, inv: &Invocation, outcome: &Outcome) -> Completion {
        workloads::outcome::error_completion(inv, outcome, false).unwrap_or(Completion {
            kind: OpType::Ok,
            value: inv.value.clone(),
            error: None,
            extra: Default::default(),
        })
    }
    fn final_invocations(&self) -> Vec<Invocation> {
        Vec::new()
    }
    fn check(&self, _h: &History) -> CheckReport {
        CheckReport {
            checkers: Vec::new(),
        }
    }
}

fn config(nodes: usize) -> SimConfig {
    SimConfig {
        system: "toy".into(),
        nodes,
        bugs: Vec::new(),
        seed: 1,
        time_limit_ns: SECOND,
        rate: 1.0,
        concurrency: 1,
        latency_dist: LatencyDist::Constant,
        mean_latency_ns: 10.0 * MS,
        loss: 0.0,
        duplication: 0.0,
        client_timeout_ns: SECOND,
        epsilon_ns: 0,
        quiet_ns: SECOND,
        nemesis: ScheduleOptions {
            kinds: Vec::new(),
            interval_ns: SECOND,
            duration_ns: SECOND,
            nodes: Vec::new(),
            clock_max_ms: 0,
            epsilon_ms: 0.0,
        },
    }
}

fn toy_sim(workload: &mut Idle, nodes: usize) -> Simulator<'_> {
    let factory: NodeFactory = Box::new(|_| Ok(Box::new(Toy::default())));
    let mut sim =
        Simulator::with_factory(config(nodes), factory, workload, Recorder::in_memory()).unwrap();
    for i in 0..nodes {
        sim.call_node(i, |n, ctx| n.on_start(ctx));
    }
    sim
}

fn client_request(sim: &mut Simulator, node: usize, body: Value) {
    sim.call_node(node, |n, ctx| n.on_client_request(ctx, 1, body));
}

fn state(sim: &Simulator, node: usize) -> Value {
    sim.nodes[node]
        .node
        .as_ref()
        .map(|n| n.state())
        .unwrap_or(Value::Null)
}

/// Runs queued events up to virtual time `until`.
fn run_until(sim: &mut Simulator, until: u64) {
    while sim.queue.peek().is_some_and(|Reverse(s)| s.at <= until) {
        let Reverse(next) = sim.queue.pop().unwrap();
        sim.now = next.at;
        sim.handle(next.event);
    }
    sim.now = until;
}

#[test]
fn a_crash_loses_unsynced_writes_and_a_restart_sees_synced_ones() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 1);
    client_request(&mut sim, 0, json!({"type": "write", "value": 2})); // synced
    client_request(&mut sim, 0, json!({"type": "write", "value": 3})); // staged only
    assert_eq!(state(&sim, 0)["last_written"], 3);
    sim.crash(0);
    assert_eq!(state(&sim, 0), Value::Null, "a crashed node has no memory");
    sim.restart(0);
    assert_eq!(
        state(&sim, 0)["recovered"],
        2,
        "the unsynced 3 is lost, the synced 2 kept"
    );
    assert_eq!(state(&sim, 0)["last_written"], Value::Null);
}

#[test]
fn grudges_are_checked_at_delivery_time() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 2);
    let cut_n2_from_n1 = Fault::StartPartition {
        shape: "test".into(),
        grudge: [("n2".to_string(), ["n1".to_string()].into())].into(),
    };
    // Sent while connected, cut before it arrives: lost.
    client_request(&mut sim, 0, json!({"type": "ping"}));
    sim.apply_fault(&cut_n2_from_n1);
    run_until(&mut sim, 50_000_000);
    assert_eq!(state(&sim, 1)["pings"], 0);
    // Sent while cut, healed before it arrives: delivered.
    client_request(&mut sim, 0, json!({"type": "ping"}));
    sim.apply_fault(&Fault::StopPartition);
    run_until(&mut sim, 100_000_000);
    assert_eq!(state(&sim, 1)["pings"], 1);
    // The cut is directed: n1 still hears n2.
    sim.apply_fault(&cut_n2_from_n1);
    client_request(&mut sim, 1, json!({"type": "ping"}));
    run_until(&mut sim, 150_000_000);
    assert_eq!(state(&sim, 0)["pings"], 1);
    let nemesis_ops = sim.recorder.into_history().ops;
    assert_eq!(
        nemesis_ops.len(),
        3,
        "every fault is recorded in the history"
    );
    assert_eq!(nemesis_ops[0].f, "start-partition");
    assert_eq!(nemesis_ops[0].process, Process::Nemesis);
}

#[test]
fn a_paused_node_holds_its_events_until_resumed() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 2);
    sim.apply_fault(&Fault::Pause {
        nodes: vec!["n2".into()],
    });
    client_request(&mut sim, 0, json!({"type": "ping"}));
    run_until(&mut sim, 500_000_000);
    assert_eq!(state(&sim, 1)["pings"], 0);
    sim.apply_fault(&Fault::Resume {
        nodes: vec!["n2".into()],
    });
    run_until(&mut sim, 500_000_001);
    assert_eq!(
        state(&sim, 1)["pings"],
        1,
        "the held message is delivered on resume"
    );
}

#[test]
fn messages_to_a_crashed_node_are_lost() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 2);
    client_request(&mut sim, 0, json!({"type": "ping"}));
    sim.crash(1);
    run_until(&mut sim, 50_000_000);
    sim.restart(1);
    run_until(&mut sim, 100_000_000);
    assert_eq!(state(&sim, 1)["pings"], 0);
}

#[test]
fn timeouts_retire_the_process_and_late_replies_are_ignored() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 1);
    sim.crash(0); // nothing will answer
    sim.invoke(
        0,
        Invocation {
            f: "write".into(),
            value: json!(1),
        },
        None,
    );
    run_until(&mut sim, 2 * SECOND);
    assert_eq!(
        sim.workers[0].process, 1,
        "an info completion retires the process"
    );
    let ops = sim.recorder.into_history().ops;
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1].kind, OpType::Info);
    assert_eq!(ops[1].error, Some(json!("timeout")));
}

#[test]
fn every_message_is_serialized_with_a_maelstrom_envelope() {
    let mut w = Idle;
    let mut sim = toy_sim(&mut w, 2);
    client_request(&mut sim, 0, json!({"type": "ping"}));
    let bytes = sim
        .queue
        .iter()
        .find_map(|Reverse(s)| match &s.event {
            Event::Deliver { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    let envelope: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(envelope["src"], "n1");
    assert_eq!(envelope["dest"], "n2");
    assert_eq!(envelope["body"]["type"], "ping");
    assert_eq!(envelope["body"]["msg_id"], 1);
}
