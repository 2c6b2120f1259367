//! Cycles in words: why each transaction precedes the next, and what the cycle means.

use super::anomalies::op_json;
use super::cycles::Step;
use super::graph::{PROCESS, REALTIME, RW, WR, WW, rel_name};
use super::history::{Atom, MopKind, Txns, show};
use super::version_order::{ListIndex, Observed};
use serde_json::{Map, Value, json};

/// Why `a` precedes `b` by a data relation: the facts as JSON fields, and a clause that
/// completes "`A` < `B`, because ...".
pub struct Reason {
    pub fields: Map<String, Value>,
    pub clause: String,
}

/// Explains data dependencies (ww, wr, rw) between two transactions.
pub trait DataExplainer {
    fn explain(
        &self,
        txns: &Txns<'_>,
        a: u32,
        b: u32,
        rel: u8,
        names: (&str, &str),
    ) -> Option<Reason>;
}

/// A JSON object from field pairs (the details of an explained edge).
pub(super) fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl DataExplainer for ListIndex<'_> {
    fn explain(
        &self,
        txns: &Txns<'_>,
        a: u32,
        b: u32,
        rel: u8,
        (na, nb): (&str, &str),
    ) -> Option<Reason> {
        let writer_of = |k: u32, v: usize| -> Option<u32> {
            self.keys[k as usize]
                .version_writers
                .get(v)
                .copied()
                .flatten()
                .map(|w| w.txn)
        };
        match rel {
            WW => txns.txns[b as usize].mops.iter().find_map(|mop| {
                if mop.kind != MopKind::Append {
                    return None;
                }
                let key = &self.keys[mop.key as usize];
                let (prev, unobserved) = match key.positions.get(&Atom::of(mop.value)) {
                    Some(0) => return None,
                    Some(&i) => (i as usize - 1, false),
                    None => (key.versions.len().checked_sub(1)?, true),
                };
                (writer_of(mop.key, prev) == Some(a)).then(|| {
                    let k = txns.key(mop.key);
                    let before = key.versions[prev];
                    let mut clause = format!(
                        "{nb} appended {} to {} after {na}'s append of {}",
                        show(mop.value),
                        show(k),
                        show(before)
                    );
                    if unobserved {
                        clause.push_str(&format!(
                            " (no read saw {}, so it came after every element read)",
                            show(mop.value)
                        ));
                    }
                    Reason {
                        fields: fields(&[
                            ("key", k.clone()),
                            ("value", before.clone()),
                            ("value'", mop.value.clone()),
                        ]),
                        clause,
                    }
                })
            }),
            WR => txns.txns[b as usize].mops.iter().find_map(|mop| {
                let list = mop.value.as_array().filter(|_| mop.kind == MopKind::Read)?;
                let key = &self.keys[mop.key as usize];
                let pos = key.observe(list).position().filter(|p| *p >= 0)? as usize;
                (writer_of(mop.key, pos) == Some(a)).then(|| {
                    let k = txns.key(mop.key);
                    let element = key.versions[pos];
                    Reason {
                        fields: fields(&[
                            ("key", k.clone()),
                            ("value", mop.value.clone()),
                            ("element", element.clone()),
                        ]),
                        clause: format!(
                            "{nb} read {} = {}, which includes {na}'s append of {}",
                            show(k),
                            show(mop.value),
                            show(element)
                        ),
                    }
                })
            }),
            RW => txns.txns[a as usize].mops.iter().find_map(|mop| {
                let list = mop.value.as_array().filter(|_| mop.kind == MopKind::Read)?;
                let key = &self.keys[mop.key as usize];
                let observed = key.observe(list);
                let next = (observed.position()? + 1) as usize;
                let element = if next < key.versions.len() {
                    (writer_of(mop.key, next) == Some(b)).then(|| key.versions[next])?
                } else {
                    let &(t, m) = key.unobserved.iter().find(|(t, _)| *t == b)?;
                    txns.txns[t as usize].mops[m as usize].value
                };
                let k = txns.key(mop.key);
                let what = if observed == Observed::Initial {
                    format!("{na} read the initial (empty) state of {}", show(k))
                } else {
                    format!("{na} read {} = {}", show(k), show(mop.value))
                };
                Some(Reason {
                    fields: fields(&[
                        ("key", k.clone()),
                        ("value", mop.value.clone()),
                        ("element", element.clone()),
                    ]),
                    clause: format!(
                        "{what}, which does not include {nb}'s append of {}",
                        show(element)
                    ),
                })
            }),
            _ => None,
        }
    }
}

fn when(txns: &Txns<'_>, pos: usize) -> String {
    let op = &txns.history.ops[pos];
    match op.time {
        Some(ns) => format!("op {}, at {:.6} s", op.index, ns as f64 / 1e9),
        None => format!("op {}", op.index),
    }
}

/// One step in words and as JSON.
fn explain_step(
    txns: &Txns<'_>,
    data: &dyn DataExplainer,
    step: Step,
    names: (&str, &str),
) -> (Value, String) {
    let (na, nb) = names;
    let (a, b) = (&txns.txns[step.from as usize], &txns.txns[step.to as usize]);
    let reason = match step.rel {
        PROCESS => Some(Reason {
            fields: fields(&[("process", Value::from(a.process))]),
            clause: format!("process {} executed {na} before {nb}", a.process),
        }),
        REALTIME => Some(Reason {
            fields: Map::new(),
            clause: format!(
                "{na} completed ({}) before {nb} was invoked ({})",
                when(txns, a.event()),
                when(txns, b.invoke)
            ),
        }),
        rel => data.explain(txns, step.from, step.to, rel, names),
    };
    let reason = reason.unwrap_or_else(|| Reason {
        fields: Map::new(),
        clause: format!("of a {} dependency", rel_name(step.rel)),
    });
    let mut object = Map::new();
    object.insert("type".into(), Value::from(rel_name(step.rel)));
    object.insert(
        "from".into(),
        Value::from(txns.txn_index(step.from as usize)),
    );
    object.insert("to".into(), Value::from(txns.txn_index(step.to as usize)));
    object.extend(reason.fields);
    let sentence = format!("{na} < {nb}, because {}", reason.clause);
    object.insert("explanation".into(), Value::from(sentence.clone()));
    (Value::Object(object), sentence)
}

/// What each class of cycle means.
pub fn describe_class(name: &str) -> String {
    let (base, suffix) = match name.strip_suffix("-realtime") {
        Some(base) => (
            base,
            "; it needs real-time order, so it rules out strict serializability",
        ),
        None => match name.strip_suffix("-process") {
            Some(base) => (
                base,
                "; it needs the order of operations within a process, so it rules out strong session guarantees",
            ),
            None => (name, ""),
        },
    };
    let what = match base {
        "G0" => "a cycle of write-write dependencies alone (dirty writes)",
        "G1c" => "a cycle of write-write and write-read dependencies (circular information flow)",
        "G-single" => "a cycle with exactly one read-write anti-dependency (read skew)",
        "G-nonadjacent" => {
            "a cycle with several read-write anti-dependencies, no two of them adjacent"
        }
        "G2-item" => {
            "a cycle with two or more read-write anti-dependencies, two of them adjacent (e.g. write skew)"
        }
        _ => "a dependency cycle",
    };
    format!("{what}{suffix}")
}

/// A found cycle as JSON: the transactions, the steps, and the whole story in words.
pub fn explain_cycle(
    txns: &Txns<'_>,
    data: &dyn DataExplainer,
    name: &str,
    steps: &[Step],
) -> Value {
    let names: Vec<String> = (1..=steps.len()).map(|i| format!("T{i}")).collect();
    let mut lines = vec!["Let:".to_string()];
    let mut cycle = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let op = op_json(txns, step.from);
        lines.push(format!("  {} = {}", names[i], op));
        cycle.push(op);
    }
    lines.push(String::new());
    lines.push("Then:".to_string());
    let mut step_json = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let pair = (names[i].as_str(), names[(i + 1) % steps.len()].as_str());
        let (json, sentence) = explain_step(txns, data, *step, pair);
        step_json.push(json);
        if i + 1 == steps.len() {
            lines.push(format!("  - However, {sentence}: a contradiction!"));
        } else {
            lines.push(format!("  - {sentence}."));
        }
    }
    let order: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .chain(std::iter::once("T1"))
        .collect();
    lines.push(String::new());
    lines.push(format!(
        "So {} is a cycle: {name}, {}.",
        order.join(" < "),
        describe_class(name)
    ));
    json!({
        "type": name,
        "cycle": cycle,
        "steps": step_json,
        "explanation": lines.join("\n"),
    })
}
