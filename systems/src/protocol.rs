//! The client protocol: request and reply bodies, Maelstrom-shaped.
//!
//! A request body is `{"type": f, ...}`; a reply is `{"type": "<f>_ok", ...}` or
//! `{"type": "error", "code": C, "text": "...", "definite": bool}`. Error codes follow
//! Maelstrom's; `definite` says whether the operation certainly did not happen.

use serde_json::{Value, json};

/// Error codes (Maelstrom's numbering).
pub mod code {
    /// The request timed out: it may or may not have happened.
    pub const TIMEOUT: u64 = 0;
    pub const NOT_SUPPORTED: u64 = 10;
    /// Definitely not done now (e.g. not the leader); try again.
    pub const TEMPORARILY_UNAVAILABLE: u64 = 11;
    pub const MALFORMED_REQUEST: u64 = 12;
    /// Something went wrong and the outcome is unknown.
    pub const CRASH: u64 = 13;
    /// Definitely aborted.
    pub const ABORT: u64 = 14;
    pub const KEY_DOES_NOT_EXIST: u64 = 20;
    pub const PRECONDITION_FAILED: u64 = 22;
    pub const TXN_CONFLICT: u64 = 30;
}

/// A successful reply to a request of type `f`, with extra fields.
pub fn ok(f: &str, mut fields: Value) -> Value {
    let ty = Value::from(format!("{f}_ok"));
    match fields.as_object_mut() {
        Some(obj) => {
            obj.insert("type".into(), ty);
            fields
        }
        None => json!({ "type": ty }),
    }
}

/// The operation certainly did not happen.
pub fn definite_error(code: u64, text: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "text": text.into(), "definite": true})
}

/// The operation may or may not have happened.
pub fn indefinite_error(code: u64, text: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "text": text.into(), "definite": false})
}

/// "Not the leader" (definite), with a hint of who might be.
pub fn not_leader(hint: Option<&str>) -> Value {
    let mut v = definite_error(code::TEMPORARILY_UNAVAILABLE, "not leader");
    if let (Some(h), Some(obj)) = (hint, v.as_object_mut()) {
        obj.insert("leader".into(), Value::from(h));
    }
    v
}

/// Whether a reply is an error, and if so whether it is definite.
pub fn is_error(reply: &Value) -> Option<bool> {
    if reply.get("type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let definite = reply
        .get("definite")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| {
            !matches!(
                reply.get("code").and_then(Value::as_u64),
                Some(code::TIMEOUT) | Some(code::CRASH) | None
            )
        });
    Some(definite)
}
