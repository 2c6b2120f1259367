//! From paired operations to one search per key (P-compositionality: a history is linearizable
//! if and only if each key's sub-history is).

use super::ModelKind;
use super::budget::MemoryBudget;
use super::machine::{Direct, Interned, Machine};
use super::models::{
    self, FifoQueue, KvString, KvStringParser, Meaning, Model, MultiRegister, MultiRegisterParser,
    Mutex, MutexParser, Parser, QueueParser, Register, RegisterParser, Set, SetParser,
    UnorderedQueue, Values,
};
use super::prepare::{Paired, SOURCE};
use super::scheduler::Resumable;
use super::search::{CallSpec, Search};
use crate::error::InputError;
use crate::history::History;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One key's operations; operation ids in its search are indices into `ops`.
pub(crate) struct KeyOps {
    /// `null` for models that are one object.
    pub key: Value,
    pub ops: Vec<Paired>,
}

pub(crate) struct Prepared {
    pub keys: Vec<KeyOps>,
    pub searches: Vec<Box<dyn Resumable>>,
}

/// Model operations grouped by key, keys in order of first appearance.
struct Grouped<O> {
    keys: Vec<Value>,
    ops: Vec<Vec<(Paired, O)>>,
}

fn group<P: Parser>(
    history: &History,
    paired: &[Paired],
    parser: &mut P,
) -> Result<Grouped<P::Op>, InputError> {
    let mut index: HashMap<Value, usize> = HashMap::new();
    let mut grouped = Grouped {
        keys: Vec::new(),
        ops: Vec::new(),
    };
    for p in paired {
        let event = &history.ops[p.value_event(history)];
        let f = &history.ops[p.invoke].f;
        let meaning = parser
            .parse(f, &event.value, p.outcome.is_ok())
            .map_err(|m| InputError::new(SOURCE, None, format!("op {} ({f}): {m}", event.index)))?;
        if let Meaning::On { key, op } = meaning {
            let slot = *index.entry(key).or_insert_with_key(|key| {
                grouped.keys.push(key.clone());
                grouped.ops.push(Vec::new());
                grouped.keys.len() - 1
            });
            grouped.ops[slot].push((*p, op));
        }
    }
    Ok(grouped)
}

fn init_error(message: String) -> InputError {
    InputError::new("<init>", None, message)
}

/// Builds every key's search with `machine` making each key's model machine.
fn searches<O, Mach: Machine + 'static>(
    grouped: Grouped<O>,
    budget: &Arc<MemoryBudget>,
    mut machine: impl FnMut(Vec<O>) -> Mach,
) -> Prepared {
    let mut prepared = Prepared {
        keys: Vec::with_capacity(grouped.keys.len()),
        searches: Vec::with_capacity(grouped.keys.len()),
    };
    for (key, ops) in grouped.keys.into_iter().zip(grouped.ops) {
        let (paired, model_ops): (Vec<Paired>, Vec<O>) = ops.into_iter().unzip();
        let calls: Vec<CallSpec> = paired
            .iter()
            .map(|p| CallSpec {
                invoke: p.invoke,
                ret: if p.outcome.is_ok() { p.complete } else { None },
            })
            .collect();
        prepared
            .searches
            .push(Box::new(Search::new(machine(model_ops), &calls, budget)));
        prepared.keys.push(KeyOps { key, ops: paired });
    }
    prepared
}

fn interned<M: Model>(grouped: Grouped<M::Op>, budget: &Arc<MemoryBudget>, model: M) -> Prepared {
    let model = Arc::new(model);
    searches(grouped, budget, |ops| {
        Interned::new(Arc::clone(&model), ops)
    })
}

/// Parses the history for `kind` and builds one search per key.
pub(crate) fn prepare(
    history: &History,
    paired: &[Paired],
    kind: ModelKind,
    init: Option<&Value>,
    budget: &Arc<MemoryBudget>,
) -> Result<Prepared, InputError> {
    Ok(match kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            let mut parser = RegisterParser {
                values: Values::default(),
                cas: kind != ModelKind::Register,
                keyed: kind == ModelKind::Kv,
            };
            let mut grouped = group(history, paired, &mut parser)?;
            for ops in &mut grouped.ops {
                let kinds: Vec<_> = ops.iter().map(|(p, op)| (*op, p.outcome.is_ok())).collect();
                let mut keep = models::observable(&kinds).into_iter();
                ops.retain(|_| keep.next().unwrap_or(true));
            }
            let init = models::register_init(&mut parser.values, init);
            let model = Arc::new(Register {
                values: Arc::new(parser.values),
                init,
            });
            searches(grouped, budget, |ops| Direct::new(Arc::clone(&model), ops))
        }
        ModelKind::Mutex => {
            let locked = Mutex::parse_init(init).map_err(init_error)?;
            let grouped = group(history, paired, &mut MutexParser)?;
            let model = Arc::new(Mutex { locked });
            searches(grouped, budget, |ops| Direct::new(Arc::clone(&model), ops))
        }
        ModelKind::KvString => {
            let init = KvString::parse_init(init).map_err(init_error)?;
            let mut grouped = group(history, paired, &mut KvStringParser)?;
            for ops in &mut grouped.ops {
                models::link_gets(ops);
            }
            interned(grouped, budget, KvString { init })
        }
        ModelKind::MultiRegister => {
            let mut parser = MultiRegisterParser::new(init);
            let grouped = group(history, paired, &mut parser)?;
            let init = parser.initial(init);
            let model = MultiRegister {
                values: Arc::new(parser.values),
                key_names: parser.key_names,
                init,
            };
            interned(grouped, budget, model)
        }
        ModelKind::Set => {
            let mut parser = SetParser {
                values: Values::default(),
            };
            let grouped = group(history, paired, &mut parser)?;
            let items =
                models::initial_items(&mut parser.values, init, "set").map_err(init_error)?;
            interned(grouped, budget, Set::new(Arc::new(parser.values), items))
        }
        ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
            let mut parser = QueueParser {
                values: Values::default(),
            };
            let grouped = group(history, paired, &mut parser)?;
            let items =
                models::initial_items(&mut parser.values, init, "queue").map_err(init_error)?;
            let values = Arc::new(parser.values);
            if kind == ModelKind::FifoQueue {
                interned(
                    grouped,
                    budget,
                    FifoQueue {
                        values,
                        init: items,
                    },
                )
            } else {
                interned(grouped, budget, UnorderedQueue::new(values, items))
            }
        }
    })
}
