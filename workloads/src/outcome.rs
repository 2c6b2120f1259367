//! Invocations, outcomes and completions, with Jepsen's process semantics.

use checkers::OpType;
use serde_json::{Map, Value, json};

/// An operation a client is about to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub f: String,
    pub value: Value,
}

/// What came back for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The node's reply body (`{"type": "<f>_ok", ...}` or `{"type": "error", ...}`).
    Reply(Value),
    /// No reply within the client's timeout.
    Timeout,
}

/// A history completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub kind: OpType,
    pub value: Value,
    pub error: Option<Value>,
    /// Extra fields recorded next to `value` (e.g. `commit_ts` for systems that assign commit
    /// timestamps).
    pub extra: Map<String, Value>,
}

impl Completion {
    /// Whether the process must be retired (its operation may still take effect).
    pub fn retires_process(&self) -> bool {
        self.kind == OpType::Info
    }
}

/// The uncertain outcome of an operation: `info`, unless the operation has no effect (a read),
/// in which case it certainly did not change anything and is recorded as `fail`.
pub fn uncertain(invocation: &Invocation, read_only: bool, error: Value) -> Completion {
    Completion {
        kind: if read_only {
            OpType::Fail
        } else {
            OpType::Info
        },
        value: invocation.value.clone(),
        error: Some(error),
        extra: Map::new(),
    }
}

/// Maps an error reply or a timeout to a completion: definite → `fail`; indefinite or timeout →
/// `info` (or `fail` for read-only operations). Returns `None` for a success reply.
pub fn error_completion(
    invocation: &Invocation,
    outcome: &Outcome,
    read_only: bool,
) -> Option<Completion> {
    match outcome {
        Outcome::Timeout => Some(uncertain(invocation, read_only, json!("timeout"))),
        Outcome::Reply(body) => {
            if body.get("type").and_then(Value::as_str) != Some("error") {
                return None;
            }
            let code = body.get("code").and_then(Value::as_u64);
            let definite = body
                .get("definite")
                .and_then(Value::as_bool)
                .unwrap_or(!matches!(code, Some(0) | Some(13) | None));
            let error = json!([
                error_name(code),
                body.get("text").cloned().unwrap_or(Value::Null)
            ]);
            Some(if definite {
                Completion {
                    kind: OpType::Fail,
                    value: invocation.value.clone(),
                    error: Some(error),
                    extra: Map::new(),
                }
            } else {
                uncertain(invocation, read_only, error)
            })
        }
    }
}

/// Maelstrom's error names.
pub fn error_name(code: Option<u64>) -> &'static str {
    match code {
        Some(0) => "timeout",
        Some(1) => "node-not-found",
        Some(10) => "not-supported",
        Some(11) => "temporarily-unavailable",
        Some(12) => "malformed-request",
        Some(13) => "crash",
        Some(14) => "abort",
        Some(20) => "key-does-not-exist",
        Some(21) => "key-already-exists",
        Some(22) => "precondition-failed",
        Some(30) => "txn-conflict",
        _ => "unknown-error",
    }
}
