//! Differential test: `linearizability::check` against a brute-force checker written here
//! independently, on thousands of small random histories per model.
//!
//! The brute force tries every order of the `ok` operations plus any subset of the `info` and
//! pending ones that respects real time (an `ok` operation that completed before another was
//! invoked comes first; `info` ones may take effect any time after their invocation), applying
//! each model's semantics to JSON values directly. Histories come from a simulated object with
//! random concurrent windows, crashes and failures; some have one result corrupted.

use checkers::linearizability::{ModelKind, Options, check};
use checkers::{History, Op, OpType, Process, Validity};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

const HISTORIES_PER_MODEL: usize = 4000;
const MAX_OPS: usize = 8;

// ---------------------------------------------------------------- brute force

#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Ok,
    Info,
    Pending,
}

/// An operation as the brute force sees it.
#[derive(Debug, Clone)]
struct BOp {
    invoke: usize,
    /// Position of the completion (ok or info); `usize::MAX` if none.
    complete: usize,
    end: End,
    f: String,
    /// The completion's value for ok operations, the invocation's otherwise.
    value: Value,
    /// The completion's `index`.
    index: u64,
}

fn brute_ops(h: &History) -> Vec<BOp> {
    let mut open: std::collections::HashMap<u64, usize> = Default::default();
    let mut ops: Vec<Option<BOp>> = Vec::new();
    for (pos, e) in h.ops.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            OpType::Invoke => {
                open.insert(p, ops.len());
                ops.push(Some(BOp {
                    invoke: pos,
                    complete: usize::MAX,
                    end: End::Pending,
                    f: e.f.clone(),
                    value: e.value.clone(),
                    index: e.index,
                }));
            }
            kind => {
                let i = open.remove(&p).expect("paired");
                match kind {
                    OpType::Fail => ops[i] = None,
                    OpType::Ok => {
                        let op = ops[i].as_mut().unwrap();
                        op.complete = pos;
                        op.end = End::Ok;
                        op.index = e.index;
                        if !e.value.is_null() {
                            op.value = e.value.clone();
                        }
                    }
                    _ => {
                        let op = ops[i].as_mut().unwrap();
                        op.complete = pos;
                        op.end = End::Info;
                        op.index = e.index;
                    }
                }
            }
        }
    }
    ops.into_iter().flatten().collect()
}

fn sorted(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by_key(|v| v.to_string());
    items
}

/// The possible states after `op` (certain: its result is known).
fn successors(model: ModelKind, state: &Value, op: &BOp, certain: bool) -> Vec<Value> {
    let v = &op.value;
    let one = |ok: bool, s: Value| if ok { vec![s] } else { vec![] };
    match model {
        ModelKind::Register | ModelKind::CasRegister => match op.f.as_str() {
            "read" => one(!certain || v.is_null() || v == state, state.clone()),
            "write" => vec![v.clone()],
            "cas" => one(state == &v[0], v[1].clone()),
            f => panic!("{f}"),
        },
        ModelKind::Kv => {
            let key = v[0].to_string();
            let current = state.get(&key).cloned().unwrap_or(Value::Null);
            let mut next = state.clone();
            let arg = &v[1];
            match op.f.as_str() {
                "read" => one(!certain || arg.is_null() || *arg == current, next),
                "write" => {
                    next[&key] = arg.clone();
                    vec![next]
                }
                "cas" => {
                    next[&key] = arg[1].clone();
                    one(current == arg[0], next)
                }
                f => panic!("{f}"),
            }
        }
        ModelKind::KvString => {
            let key = v[0].to_string();
            let current = state
                .get(&key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut next = state.clone();
            match op.f.as_str() {
                "get" => one(!certain || v[1].is_null() || v[1] == json!(current), next),
                "put" => {
                    next[&key] = v[1].clone();
                    vec![next]
                }
                "append" => {
                    next[&key] = json!(format!("{current}{}", v[1].as_str().unwrap()));
                    vec![next]
                }
                f => panic!("{f}"),
            }
        }
        ModelKind::MultiRegister => {
            let mut next = state.clone();
            for m in v.as_array().unwrap() {
                let key = m[1].as_str().unwrap();
                match m[0].as_str().unwrap() {
                    "r" | "read" => {
                        let current = next.get(key).cloned().unwrap_or(Value::Null);
                        if certain && !m[2].is_null() && m[2] != current {
                            return vec![];
                        }
                    }
                    _ => next[key] = m[2].clone(),
                }
            }
            vec![next]
        }
        ModelKind::Mutex => match op.f.as_str() {
            "acquire" => one(state == &json!(false), json!(true)),
            _ => one(state == &json!(true), json!(false)),
        },
        ModelKind::Set => {
            let items = state.as_array().unwrap().clone();
            match op.f.as_str() {
                "add" => {
                    let mut items = items;
                    if !items.contains(v) {
                        items.push(v.clone());
                    }
                    vec![Value::Array(sorted(items))]
                }
                _ => {
                    let read = v.as_array().map(|r| {
                        let mut r = sorted(r.clone());
                        r.dedup();
                        r
                    });
                    one(!certain || read.is_none_or(|r| r == items), state.clone())
                }
            }
        }
        ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
            let items = state.as_array().unwrap().clone();
            match op.f.as_str() {
                "enqueue" => {
                    let mut items = items;
                    items.push(v.clone());
                    if model == ModelKind::UnorderedQueue {
                        items = sorted(items);
                    }
                    vec![Value::Array(items)]
                }
                _ if !certain => {
                    // Took some element (any for unordered, the head for FIFO).
                    let candidates: Vec<usize> = if model == ModelKind::FifoQueue {
                        (0..items.len().min(1)).collect()
                    } else {
                        (0..items.len()).collect()
                    };
                    candidates
                        .into_iter()
                        .map(|i| {
                            let mut rest = items.clone();
                            rest.remove(i);
                            Value::Array(rest)
                        })
                        .collect()
                }
                _ if v.is_null() => one(items.is_empty(), state.clone()),
                _ => {
                    let at = if model == ModelKind::FifoQueue {
                        (items.first() == Some(v)).then_some(0)
                    } else {
                        items.iter().position(|x| x == v)
                    };
                    match at {
                        Some(i) => {
                            let mut rest = items;
                            rest.remove(i);
                            vec![Value::Array(rest)]
                        }
                        None => vec![],
                    }
                }
            }
        }
    }
}

fn initial(model: ModelKind, init: &Option<Value>) -> Value {
    match model {
        ModelKind::Register | ModelKind::CasRegister => init.clone().unwrap_or(Value::Null),
        ModelKind::Kv | ModelKind::KvString => json!({}),
        ModelKind::MultiRegister => init.clone().unwrap_or(json!({})),
        ModelKind::Mutex => json!(init.as_ref() == Some(&json!("locked"))),
        _ => json!([]),
    }
}

/// Is there a linearization of `ops` where every op in `mandatory` is placed and the rest may be?
fn linearizable(model: ModelKind, init: &Option<Value>, ops: &[BOp], mandatory: &[bool]) -> bool {
    fn dfs(
        model: ModelKind,
        ops: &[BOp],
        mandatory: &[bool],
        placed: u32,
        state: &Value,
        dead: &mut HashSet<(u32, String)>,
    ) -> bool {
        if (0..ops.len()).all(|i| !mandatory[i] || placed & (1 << i) != 0) {
            return true;
        }
        if dead.contains(&(placed, state.to_string())) {
            return false;
        }
        for i in 0..ops.len() {
            if placed & (1 << i) != 0 {
                continue;
            }
            // Every mandatory op that completed before this one was invoked must come first.
            let blocked = (0..ops.len())
                .any(|j| mandatory[j] && placed & (1 << j) == 0 && ops[j].complete < ops[i].invoke);
            if blocked {
                continue;
            }
            let certain = ops[i].end == End::Ok;
            for next in successors(model, state, &ops[i], certain) {
                if dfs(model, ops, mandatory, placed | 1 << i, &next, dead) {
                    return true;
                }
            }
        }
        dead.insert((placed, state.to_string()));
        false
    }
    dfs(
        model,
        ops,
        mandatory,
        0,
        &initial(model, init),
        &mut HashSet::new(),
    )
}

/// `None` if linearizable; else the index of the earliest ok completion such that the history up
/// to it has no linearization (ops invoked before it that complete later may, or may not, be
/// placed with their final meaning).
fn brute_force(model: ModelKind, init: &Option<Value>, h: &History) -> Option<u64> {
    let ops = brute_ops(h);
    let all_ok: Vec<bool> = ops.iter().map(|o| o.end == End::Ok).collect();
    if linearizable(model, init, &ops, &all_ok) {
        return None;
    }
    let mut completions: Vec<&BOp> = ops.iter().filter(|o| o.end == End::Ok).collect();
    completions.sort_by_key(|o| o.complete);
    for c in completions {
        let prefix: Vec<BOp> = ops
            .iter()
            .filter(|o| o.invoke < c.complete)
            .cloned()
            .collect();
        let mandatory: Vec<bool> = prefix
            .iter()
            .map(|o| o.end == End::Ok && o.complete <= c.complete)
            .collect();
        if !linearizable(model, init, &prefix, &mandatory) {
            return Some(c.index);
        }
    }
    panic!("a non-linearizable history has a non-linearizable prefix");
}

/// The events of one key of a keyed model.
fn restrict_to_key(h: &History, key: &Value) -> History {
    History::new(
        h.ops
            .iter()
            .filter(|e| &e.value[0] == key)
            .cloned()
            .collect(),
    )
}

// ---------------------------------------------------------------- generator

struct Gen {
    rng: ChaCha8Rng,
    model: ModelKind,
}

fn event(process: u64, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index: 0,
        time: None,
        process: Process::Client(process),
        kind,
        f: f.into(),
        value,
        error: None,
        node: None,
        extra: Map::new(),
    }
}

/// An operation being simulated: its invocation and, once applied, its completion.
struct InFlight {
    process: u64,
    f: String,
    invoke_value: Value,
    /// `Some((ok, completion value))` once it took effect (or definitely failed).
    applied: Option<(bool, Value)>,
}

impl Gen {
    fn small(&mut self) -> Value {
        json!(self.rng.random_range(0..3))
    }

    fn key(&mut self) -> Value {
        match self.rng.random_range(0..3) {
            0 => json!("a"),
            1 => json!("b"),
            _ => json!(1),
        }
    }

    /// A new operation's f and invocation value.
    fn invocation(&mut self) -> (String, Value) {
        let r = self.rng.random_range(0..3);
        let (f, v) = match self.model {
            ModelKind::Register => {
                if r == 0 {
                    ("read", Value::Null)
                } else {
                    ("write", self.small())
                }
            }
            ModelKind::CasRegister => match r {
                0 => ("read", Value::Null),
                1 => ("write", self.small()),
                _ => ("cas", json!([self.small(), self.small()])),
            },
            ModelKind::Kv => {
                let k = self.key();
                match r {
                    0 => ("read", json!([k, null])),
                    1 => ("write", json!([k, self.small()])),
                    _ => ("cas", json!([k, [self.small(), self.small()]])),
                }
            }
            ModelKind::KvString => {
                let k = if self.rng.random_bool(0.5) {
                    json!("a")
                } else {
                    json!("b")
                };
                let s = ["x", "y", "xy"][self.rng.random_range(0..3)];
                match r {
                    0 => ("get", json!([k, null])),
                    1 => ("put", json!([k, s])),
                    _ => ("append", json!([k, s])),
                }
            }
            ModelKind::MultiRegister => {
                let n = self.rng.random_range(1..3);
                let micros: Vec<Value> = (0..n)
                    .map(|_| {
                        let k = if self.rng.random_bool(0.5) { "x" } else { "y" };
                        if self.rng.random_bool(0.5) {
                            json!([
                                if self.rng.random_bool(0.5) {
                                    "r"
                                } else {
                                    "read"
                                },
                                k,
                                null
                            ])
                        } else {
                            json!(["w", k, self.small()])
                        }
                    })
                    .collect();
                ("txn", Value::Array(micros))
            }
            ModelKind::Mutex => {
                if self.rng.random_bool(0.5) {
                    ("acquire", Value::Null)
                } else {
                    ("release", Value::Null)
                }
            }
            ModelKind::Set => {
                if r == 0 {
                    ("read", Value::Null)
                } else {
                    ("add", self.small())
                }
            }
            ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
                if r == 0 {
                    ("dequeue", Value::Null)
                } else {
                    ("enqueue", self.small())
                }
            }
        };
        (f.to_string(), v)
    }

    /// Applies an operation to the true state: (took effect, completion value).
    fn apply(&mut self, state: &mut Value, f: &str, v: &Value) -> (bool, Value) {
        let op = BOp {
            invoke: 0,
            complete: 0,
            end: End::Ok,
            f: f.into(),
            value: v.clone(),
            index: 0,
        };
        match (self.model, f) {
            (ModelKind::Register | ModelKind::CasRegister, "read") => (true, state.clone()),
            (ModelKind::Kv, "read") => {
                let cur = state.get(v[0].to_string()).cloned().unwrap_or(Value::Null);
                (true, json!([v[0], cur]))
            }
            (ModelKind::KvString, "get") => {
                let cur = state.get(v[0].to_string()).cloned().unwrap_or(json!(""));
                (true, json!([v[0], cur]))
            }
            (ModelKind::MultiRegister, _) => {
                let mut filled = Vec::new();
                for m in v.as_array().unwrap() {
                    let k = m[1].as_str().unwrap();
                    if m[0] == "w" {
                        state[k] = m[2].clone();
                        filled.push(m.clone());
                    } else {
                        let cur = state.get(k).cloned().unwrap_or(Value::Null);
                        filled.push(json!([m[0], k, cur]));
                    }
                }
                (true, Value::Array(filled))
            }
            (ModelKind::Set, "read") => {
                let mut items = state.as_array().unwrap().clone();
                // Any order: the checker must compare sets.
                items.reverse();
                (true, Value::Array(items))
            }
            (ModelKind::UnorderedQueue | ModelKind::FifoQueue, "dequeue") => {
                let items = state.as_array_mut().unwrap();
                if items.is_empty() {
                    return (true, Value::Null);
                }
                let i = if self.model == ModelKind::FifoQueue {
                    0
                } else {
                    self.rng.random_range(0..items.len())
                };
                (true, items.remove(i))
            }
            _ => match successors(self.model, state, &op, true).pop() {
                Some(next) => {
                    *state = next;
                    (true, v.clone())
                }
                None => (false, v.clone()),
            },
        }
    }

    /// A wrong result for an ok completion, if the operation has one.
    fn corrupt(&mut self, f: &str, v: &Value) -> Option<Value> {
        Some(match (self.model, f) {
            (ModelKind::Register | ModelKind::CasRegister, "read") => self.small(),
            (ModelKind::Kv, "read") => json!([v[0], self.small()]),
            (ModelKind::KvString, "get") => {
                let wrong = ["", "x", "yx", "xyx"][self.rng.random_range(0..4)];
                json!([v[0], wrong])
            }
            (ModelKind::MultiRegister, _) => {
                let mut micros = v.as_array().unwrap().clone();
                let reads: Vec<usize> =
                    (0..micros.len()).filter(|&i| micros[i][0] != "w").collect();
                let &i = reads.get(self.rng.random_range(0..reads.len().max(1)))?;
                micros[i][2] = self.small();
                Value::Array(micros)
            }
            (ModelKind::Set, "read") => {
                let mut items = v.as_array().cloned().unwrap_or_default();
                if items.is_empty() || self.rng.random_bool(0.5) {
                    items.push(self.small());
                } else {
                    items.pop();
                }
                Value::Array(items)
            }
            (ModelKind::UnorderedQueue | ModelKind::FifoQueue, "dequeue") => {
                if self.rng.random_bool(0.2) {
                    Value::Null
                } else {
                    self.small()
                }
            }
            _ => return None,
        })
    }

    /// Changes one result: an ok value to a different one, or a failed operation to ok.
    fn corrupt_one(&mut self, events: &mut [Op]) {
        let candidates: Vec<usize> = (0..events.len())
            .filter(|&i| matches!(events[i].kind, OpType::Ok | OpType::Fail))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.random_range(0..candidates.len())];
        if events[i].kind == OpType::Fail {
            if events[i].f != "read" {
                events[i].kind = OpType::Ok;
            }
            return;
        }
        let (f, v) = (events[i].f.clone(), events[i].value.clone());
        for _ in 0..4 {
            match self.corrupt(&f, &v) {
                Some(bad) if bad != v => {
                    events[i].value = bad;
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// A random history of at most `MAX_OPS` operations, and the initial state to check it with.
    fn history(&mut self) -> (History, Option<Value>) {
        let init = match self.model {
            ModelKind::Register | ModelKind::CasRegister if self.rng.random_bool(0.5) => {
                Some(json!(0))
            }
            ModelKind::MultiRegister if self.rng.random_bool(0.5) => Some(json!({"x": 0, "y": 1})),
            ModelKind::Mutex if self.rng.random_bool(0.3) => Some(json!("locked")),
            _ => None,
        };
        let mut state = initial(self.model, &init);
        let total = self.rng.random_range(1..=MAX_OPS);
        let slots = self.rng.random_range(1..=4usize);
        let mut next_process = slots as u64;
        let mut processes: Vec<u64> = (0..slots as u64).collect();
        let mut flying: Vec<Option<InFlight>> = (0..slots).map(|_| None).collect();
        let mut events = Vec::new();
        let mut started = 0;
        while started < total || flying.iter().any(Option::is_some) {
            let s = self.rng.random_range(0..slots);
            match flying[s].take() {
                None if started < total => {
                    let (f, v) = self.invocation();
                    events.push(event(processes[s], OpType::Invoke, &f, v.clone()));
                    started += 1;
                    flying[s] = Some(InFlight {
                        process: processes[s],
                        f,
                        invoke_value: v,
                        applied: None,
                    });
                }
                None => {}
                Some(mut op) => match (&op.applied, self.rng.random_range(0..10)) {
                    (None, 0) => {
                        // Crashed before taking effect: info, or never completed.
                        if self.rng.random_bool(0.5) {
                            events.push(event(
                                op.process,
                                OpType::Info,
                                &op.f,
                                op.invoke_value.clone(),
                            ));
                        }
                        processes[s] = next_process;
                        next_process += 1;
                    }
                    (None, 1) => {
                        events.push(event(
                            op.process,
                            OpType::Fail,
                            &op.f,
                            op.invoke_value.clone(),
                        ));
                    }
                    (None, _) => {
                        let v = op.invoke_value.clone();
                        op.applied = Some(self.apply(&mut state, &op.f, &v));
                        flying[s] = Some(op);
                    }
                    (Some(_), 0) => {
                        // Took effect, then crashed.
                        events.push(event(
                            op.process,
                            OpType::Info,
                            &op.f,
                            op.invoke_value.clone(),
                        ));
                        processes[s] = next_process;
                        next_process += 1;
                    }
                    (Some(_), r) if r < 5 => flying[s] = Some(op),
                    (Some((ok, v)), _) => {
                        let kind = if *ok { OpType::Ok } else { OpType::Fail };
                        events.push(event(op.process, kind, &op.f, v.clone()));
                    }
                },
            }
        }
        if self.rng.random_bool(0.6) {
            self.corrupt_one(&mut events);
        }
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        (History::new(events), init)
    }
}

fn differential(model: ModelKind, seed: u64) {
    let mut generator = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        model,
    };
    let (mut valid, mut invalid, mut with_info) = (0, 0, 0);
    for n in 0..HISTORIES_PER_MODEL {
        let (h, init) = generator.history();
        let mut opts = Options::new(model);
        opts.init = init.clone();
        opts.threads = Some(1 + n % 2);
        let result = check(&h, &opts).unwrap_or_else(|e| panic!("{e}\n{h:#?}"));
        let expected = brute_force(model, &init, &h);
        let shown = || {
            let lines: Vec<String> = h
                .ops
                .iter()
                .map(checkers::history::jsonl::to_line)
                .collect();
            format!(
                "model {model}, init {init:?}\n{}\n{}",
                lines.join("\n"),
                result.explain()
            )
        };
        if h.ops.iter().any(|e| e.kind == OpType::Info) {
            with_info += 1;
        }
        match expected {
            None => {
                valid += 1;
                assert_eq!(result.validity, Validity::Valid, "{}", shown());
            }
            Some(_) => {
                invalid += 1;
                assert_eq!(result.validity, Validity::Invalid, "{}", shown());
                let c = result.counterexample.as_ref().unwrap();
                // The reported key's own earliest non-linearizable prefix.
                let first = match &c.key {
                    Some(key) => brute_force(model, &init, &restrict_to_key(&h, key)),
                    None => expected,
                };
                assert_eq!(Some(c.op.index), first, "first op\n{}", shown());
                assert!(!c.final_paths.is_empty(), "{}", shown());
            }
        }
    }
    println!(
        "{model}: {valid} valid, {invalid} invalid ({with_info} with info ops) of {HISTORIES_PER_MODEL}"
    );
    let meaningful = HISTORIES_PER_MODEL / 10;
    assert!(
        valid >= meaningful && invalid >= meaningful,
        "{model}: {valid} valid, {invalid} invalid"
    );
    assert!(with_info >= meaningful, "{model}: {with_info} with info");
}

#[test]
fn register() {
    differential(ModelKind::Register, 1);
}

#[test]
fn cas_register() {
    differential(ModelKind::CasRegister, 2);
}

#[test]
fn kv() {
    differential(ModelKind::Kv, 3);
}

#[test]
fn kv_string() {
    differential(ModelKind::KvString, 4);
}

#[test]
fn multi_register() {
    differential(ModelKind::MultiRegister, 5);
}

#[test]
fn mutex() {
    differential(ModelKind::Mutex, 6);
}

#[test]
fn set() {
    differential(ModelKind::Set, 7);
}

#[test]
fn unordered_queue() {
    differential(ModelKind::UnorderedQueue, 8);
}

#[test]
fn fifo_queue() {
    differential(ModelKind::FifoQueue, 9);
}
