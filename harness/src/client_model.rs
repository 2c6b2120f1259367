//! Jepsen's client semantics, shared by both runtimes: a logical worker runs one operation at a
//! time; an `info` completion retires its process (a fresh id replaces it); the next operation
//! follows a leader hint, or moves on from a node that did not answer; final reads that do not
//! succeed are retried a few times.

use checkers::OpType;
use serde_json::Value;
use workloads::{Completion, Invocation};

/// Attempts per final read (a read can fail with "not leader" and be retried at the leader).
pub const FINAL_READ_ATTEMPTS: u32 = 5;

/// The operation a worker is waiting on.
pub struct Pending {
    pub request: u64,
    pub invocation: Invocation,
    /// For a final read: how many more attempts it gets if this one does not succeed.
    pub final_attempts_left: Option<u32>,
}

/// One logical client thread.
pub struct Worker {
    pub process: u64,
    /// Index of the node it talks to.
    pub node: usize,
    pub pending: Option<Pending>,
}

impl Worker {
    /// After `pending` completed as `completion`: retires the process on `info`, routes the next
    /// operation (`reply` is the node's answer, `None` when it did not answer), and returns the
    /// final read to retry, if any.
    pub fn finish(
        &mut self,
        pending: Pending,
        completion: &Completion,
        reply: Option<&Value>,
        node_ids: &[String],
        concurrency: u64,
    ) -> Option<(Invocation, u32)> {
        if completion.retires_process() {
            self.process += concurrency;
        }
        match reply {
            Some(body) => {
                if let Some(hint) = body.get("leader").and_then(Value::as_str)
                    && let Some(idx) = node_ids.iter().position(|id| id == hint)
                {
                    self.node = idx;
                }
            }
            None => self.node = (self.node + 1) % node_ids.len().max(1),
        }
        match pending.final_attempts_left {
            Some(left) if left > 0 && completion.kind != OpType::Ok => {
                Some((pending.invocation, left))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> Vec<String> {
        vec!["n1".into(), "n2".into(), "n3".into()]
    }

    fn pending(final_attempts_left: Option<u32>) -> Pending {
        Pending {
            request: 1,
            invocation: Invocation {
                f: "read".into(),
                value: json!([0, null]),
            },
            final_attempts_left,
        }
    }

    fn completion(kind: OpType) -> Completion {
        Completion {
            kind,
            value: json!([0, null]),
            error: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn info_retires_the_process_and_silence_moves_to_the_next_node() {
        let mut w = Worker {
            process: 2,
            node: 2,
            pending: None,
        };
        let retry = w.finish(pending(None), &completion(OpType::Info), None, &ids(), 10);
        assert_eq!((w.process, w.node), (12, 0));
        assert!(retry.is_none());
    }

    #[test]
    fn a_leader_hint_routes_the_next_operation_and_failed_final_reads_retry() {
        let mut w = Worker {
            process: 1,
            node: 0,
            pending: None,
        };
        let not_leader = json!({"type": "error", "code": 11, "leader": "n3"});
        let retry = w.finish(
            pending(Some(2)),
            &completion(OpType::Fail),
            Some(&not_leader),
            &ids(),
            10,
        );
        assert_eq!((w.process, w.node), (1, 2));
        assert_eq!(retry.map(|(_, left)| left), Some(2));
        let ok = json!({"type": "read_ok", "value": 1});
        assert!(
            w.finish(
                pending(Some(2)),
                &completion(OpType::Ok),
                Some(&ok),
                &ids(),
                10
            )
            .is_none()
        );
        assert!(
            w.finish(
                pending(Some(0)),
                &completion(OpType::Fail),
                Some(&ok),
                &ids(),
                10
            )
            .is_none()
        );
    }
}
