//! From a history of events to operations: each client invocation paired with its completion.

use crate::error::InputError;
use crate::history::{History, OpType, Process};
use std::collections::HashMap;

pub(crate) const SOURCE: &str = "<history>";

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It took effect within its interval.
    Ok,
    /// It may have taken effect at any time after its invocation (an `info` completion).
    Info,
    /// It never completed: like `Info`.
    Pending,
}

impl Outcome {
    /// Whether the search must linearize it.
    pub(crate) fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

/// One client operation, by its events' positions in `History::ops`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paired {
    pub invoke: usize,
    /// The completion event (`ok` or `info`); `None` when pending.
    pub complete: Option<usize>,
    pub outcome: Outcome,
}

impl Paired {
    /// The event whose value says what the operation did: the completion of an `ok` operation,
    /// else the invocation (an `info` completion may not know the result).
    pub(crate) fn value_event(&self, history: &History) -> usize {
        match (self.outcome, self.complete) {
            (Outcome::Ok, Some(c)) if !history.ops[c].value.is_null() => c,
            _ => self.invoke,
        }
    }
}

/// Pairs invocations with completions in history order. `fail` operations are dropped; nemesis
/// events are ignored. Errors: a process invoking while its previous invocation is open, a
/// completion with no open invocation, or a completion whose `f` differs from its invocation's.
pub(crate) fn pair(history: &History) -> Result<Vec<Paired>, InputError> {
    let mut ops: Vec<Option<Paired>> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (pos, op) in history.ops.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        match op.kind {
            OpType::Invoke => {
                if let Some(&slot) = open.get(&process) {
                    let earlier = &history.ops[ops[slot].expect("open ops are kept").invoke];
                    return Err(InputError::new(
                        SOURCE,
                        None,
                        format!(
                            "op {}: process {process} invokes `{}` while its invocation at op {} \
                             has not completed (a process runs one operation at a time)",
                            op.index, op.f, earlier.index
                        ),
                    ));
                }
                open.insert(process, ops.len());
                ops.push(Some(Paired {
                    invoke: pos,
                    complete: None,
                    outcome: Outcome::Pending,
                }));
            }
            OpType::Ok | OpType::Fail | OpType::Info => {
                let Some(slot) = open.remove(&process) else {
                    return Err(InputError::new(
                        SOURCE,
                        None,
                        format!(
                            "op {}: process {process} completes `{}` ({}) without an open invocation",
                            op.index,
                            op.f,
                            op.kind.as_str()
                        ),
                    ));
                };
                let entry = ops[slot].as_mut().expect("open ops are kept");
                let invocation = &history.ops[entry.invoke];
                if invocation.f != op.f {
                    return Err(InputError::new(
                        SOURCE,
                        None,
                        format!(
                            "op {}: process {process} completes `{}` but invoked `{}` at op {}",
                            op.index, op.f, invocation.f, invocation.index
                        ),
                    ));
                }
                match op.kind {
                    OpType::Fail => ops[slot] = None,
                    kind => {
                        entry.complete = Some(pos);
                        entry.outcome = if kind == OpType::Ok {
                            Outcome::Ok
                        } else {
                            Outcome::Info
                        };
                    }
                }
            }
        }
    }
    Ok(ops.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use serde_json::{Map, Value};

    fn ev(process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index: 0,
            time: None,
            process,
            kind,
            f: f.into(),
            value: Value::Null,
            error: None,
            node: None,
            extra: Map::new(),
        }
    }

    fn history(events: Vec<Op>) -> History {
        History::new(
            events
                .into_iter()
                .enumerate()
                .map(|(i, mut o)| {
                    o.index = i as u64 + 100;
                    o
                })
                .collect(),
        )
    }

    #[test]
    fn pairs_drop_fails_and_keep_info_and_pending() {
        use OpType::*;
        let c = Process::Client;
        let h = history(vec![
            ev(c(1), Invoke, "write"),
            ev(Process::Nemesis, Info, "start"),
            ev(c(2), Invoke, "read"),
            ev(c(1), Fail, "write"),
            ev(c(2), Info, "read"),
            ev(c(3), Invoke, "write"),
            ev(c(4), Invoke, "read"),
            ev(c(4), Ok, "read"),
        ]);
        let paired = pair(&h).unwrap();
        let shape: Vec<_> = paired
            .iter()
            .map(|p| (p.invoke, p.complete, p.outcome))
            .collect();
        assert_eq!(
            shape,
            vec![
                (2, Some(4), Outcome::Info),
                (5, None, Outcome::Pending),
                (6, Some(7), Outcome::Ok)
            ]
        );
    }

    #[test]
    fn two_open_invocations_name_the_op() {
        use OpType::*;
        let c = Process::Client;
        let h = history(vec![ev(c(1), Invoke, "write"), ev(c(1), Invoke, "read")]);
        let err = pair(&h).unwrap_err();
        assert_eq!(err.source, SOURCE);
        assert!(err.message.starts_with("op 101:"), "{}", err.message);
        assert!(err.message.contains("op 100"), "{}", err.message);
    }

    #[test]
    fn stray_and_mismatched_completions_are_errors() {
        use OpType::*;
        let c = Process::Client;
        let stray = history(vec![ev(c(1), Ok, "read")]);
        assert!(
            pair(&stray)
                .unwrap_err()
                .message
                .contains("without an open invocation")
        );
        let mismatch = history(vec![ev(c(1), Invoke, "read"), ev(c(1), Ok, "write")]);
        assert!(
            pair(&mismatch)
                .unwrap_err()
                .message
                .contains("invoked `read`")
        );
    }
}
