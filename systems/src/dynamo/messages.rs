//! Peer messages. Each is a JSON body whose `type` names it; `op` ties replies to the
//! coordinator's pending operation.

use super::object::{Object, VersionVector};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Liveness probe; answered with `pong`. A peer is reachable while its pongs keep coming.
    Ping,
    Pong,
    /// A coordinator's write: merge this object for `key`, persist, acknowledge.
    Replicate {
        op: u64,
        key: Value,
        object: Object,
    },
    ReplicateOk {
        op: u64,
    },
    /// A coordinator's read: answer with the stored object (empty if none).
    Fetch {
        op: u64,
        key: Value,
    },
    FetchOk {
        op: u64,
        object: Object,
    },
    /// Read repair: merge this object (no answer).
    Repair {
        key: Value,
        object: Object,
    },
    /// Hinted handoff: a node outside the key's home replicas passes on what it holds.
    Handoff {
        key: Value,
        object: Object,
    },
    /// The home replica's context after merging: the hint is done once it covers ours.
    HandoffOk {
        key: Value,
        context: VersionVector,
    },
    /// Anti-entropy between home replicas: the sender's objects for the keys both replicate;
    /// the receiver answers (`reply: true`) with what the sender lacks.
    Sync {
        objects: Vec<(Value, Object)>,
        reply: bool,
    },
    /// A client request passed to another node to coordinate (`fwd` names it at the sender).
    Forward {
        fwd: u64,
        body: Value,
    },
    ForwardReply {
        fwd: u64,
        body: Value,
    },
}

impl Message {
    /// Parses a peer message body; unknown fields (`msg_id`, ...) are ignored.
    pub fn parse(body: Value) -> Result<Message, String> {
        serde_json::from_value(body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_rejects_malformed_bodies() {
        let msg = Message::Sync {
            objects: vec![(json!(3), Object::default())],
            reply: false,
        };
        let body = serde_json::to_value(&msg).unwrap();
        assert_eq!(body["type"], "sync");
        assert_eq!(Message::parse(body).unwrap(), msg);
        assert_eq!(
            Message::parse(json!({"type": "ping", "msg_id": 4})),
            Ok(Message::Ping)
        );
        assert!(Message::parse(json!({"type": "fetch_ok", "op": 1})).is_err());
        assert!(Message::parse(json!({"type": "nope"})).is_err());
    }
}
