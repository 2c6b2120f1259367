//! Raft's peer messages. Each serializes to a JSON body whose `type` starts with `raft_`, so a
//! node hosting several groups (Spanner's shards) can route them by the optional `group` field
//! that [`super::core::Raft`] adds to every message it sends.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

/// A state-machine command as JSON text. Entries travel in many appends and sit in the log,
/// the disk image and the state machine's input: sharing the text (instead of a parsed
/// `Value`) makes copying an entry cheap and sending it a plain copy of bytes.
#[derive(Debug, Clone)]
pub struct Command(Arc<RawValue>);

impl Command {
    pub fn new(value: &Value) -> Command {
        let raw = serde_json::value::to_raw_value(value)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
        Command(Arc::from(raw))
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.0.get()).map_err(|e| e.to_string())
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Command) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Command, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Command(Arc::from(raw)))
    }
}

/// One log entry. The index is implicit (its position); `command` is `None` for the no-op a
/// leader appends when its term starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
}

impl Entry {
    pub fn noop(term: u64) -> Self {
        Entry {
            term,
            command: None,
        }
    }

    pub fn command(term: u64, command: &Value) -> Self {
        Entry {
            term,
            command: Some(Command::new(command)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestVote {
    pub term: u64,
    pub last_log_index: u64,
    pub last_log_term: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub term: u64,
    pub granted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Append {
    pub term: u64,
    pub prev_log_index: u64,
    pub prev_log_term: u64,
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
    /// The leader's send counter, echoed in the reply: an ack of a `seq` sent after a read
    /// arrived proves the leader was still leader then (read-index).
    pub seq: u64,
    /// The leader's monotonic clock at send time, echoed: the start of a lease interval.
    pub sent_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendReply {
    pub term: u64,
    pub success: bool,
    /// On success: the follower's log matches the leader's up to here.
    pub match_index: u64,
    /// On failure: where the leader should retry from (first index of the conflicting term, or
    /// one past the follower's last entry).
    pub conflict_index: u64,
    pub seq: u64,
    pub sent_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    #[serde(rename = "raft_request_vote")]
    RequestVote(RequestVote),
    #[serde(rename = "raft_vote")]
    Vote(Vote),
    #[serde(rename = "raft_append")]
    Append(Append),
    #[serde(rename = "raft_append_reply")]
    AppendReply(AppendReply),
}

impl Message {
    /// Parses a peer message body; unknown fields (`msg_id`, `group`, ...) are ignored.
    pub fn parse(body: Value) -> Result<Message, String> {
        // Dispatching on `type` by hand skips serde's buffering of internally tagged enums,
        // which shows up in profiles of long simulations.
        fn decode<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, String> {
            serde_json::from_value(body).map_err(|e| e.to_string())
        }
        let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "raft_request_vote" => decode(body).map(Message::RequestVote),
            "raft_vote" => decode(body).map(Message::Vote),
            "raft_append" => decode(body).map(Message::Append),
            "raft_append_reply" => decode(body).map(Message::AppendReply),
            other => Err(format!("unknown message type {other:?}")),
        }
    }

    /// Parses a peer message body from its JSON text, without an intermediate `Value`.
    pub fn parse_json(body: &str) -> Result<Message, String> {
        fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, String> {
            serde_json::from_str(body).map_err(|e| e.to_string())
        }
        match crate::node::message_kind(body).as_str() {
            "raft_request_vote" => decode(body).map(Message::RequestVote),
            "raft_vote" => decode(body).map(Message::Vote),
            "raft_append" => decode(body).map(Message::Append),
            "raft_append_reply" => decode(body).map(Message::AppendReply),
            other => Err(format!("unknown message type {other:?}")),
        }
    }

    /// The body to send, with `group` added when the sender belongs to a named group.
    pub fn to_body(&self, group: Option<&str>) -> Value {
        let mut body = serde_json::to_value(self).unwrap_or(Value::Null);
        if let (Some(group), Some(obj)) = (group, body.as_object_mut()) {
            obj.insert("group".into(), Value::from(group));
        }
        body
    }

    pub fn term(&self) -> u64 {
        match self {
            Message::RequestVote(m) => m.term,
            Message::Vote(m) => m.term,
            Message::Append(m) => m.term,
            Message::AppendReply(m) => m.term,
        }
    }
}

/// The `group` a peer message body is addressed to, if any.
pub fn group_of(body: &Value) -> Option<&str> {
    body.get("group").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_type_tag_and_group() {
        let msg = Message::Append(Append {
            term: 3,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry::noop(3), Entry::command(3, &json!({"type": "write"}))],
            leader_commit: 1,
            seq: 7,
            sent_at: 9,
        });
        let body = msg.to_body(Some("shard-1"));
        assert_eq!(body["type"], "raft_append");
        assert_eq!(group_of(&body), Some("shard-1"));
        assert_eq!(body["entries"][0], json!({"term": 3}));
        assert_eq!(Message::parse_json(&body.to_string()).unwrap(), msg);
        assert_eq!(Message::parse(body).unwrap(), msg);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            json!(null),
            json!({"type": "raft_vote"}),
            json!({"type": "raft_vote", "term": -1, "granted": true}),
            json!({"type": "nope", "term": 1}),
            json!({"type": "raft_append", "term": 1, "prev_log_index": 0, "prev_log_term": 0,
                   "entries": [{"term": "x"}], "leader_commit": 0, "seq": 0, "sent_at": 0}),
        ] {
            assert!(Message::parse_json(&body.to_string()).is_err());
            assert!(Message::parse(body).is_err());
        }
        assert!(Message::parse_json("{oops").is_err());
    }
}
