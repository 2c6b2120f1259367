//! The node contract: synchronous handlers in, effects out.
//!
//! A node never touches sockets, threads, clocks or OS randomness. Each handler gets a
//! [`Context`] holding everything nondeterministic (clocks, RNG, the disk as it was synced) and
//! collects what the node wants done as [`Effect`]s, which the runtime (simulator or process)
//! carries out in order. Because a sync effect precedes the sends that follow it, "persist
//! before answering" is expressed by effect order.

use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Node identifiers are short strings: `n1`, `n2`, ...
pub type NodeId = String;

/// Identifies a client request until the node replies to it.
pub type RequestId = u64;

/// A timer's name, chosen by the node. Setting a timer that is already set replaces it.
pub type TimerKey = u64;

/// How long until a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Delay {
    /// Exactly this many nanoseconds.
    Fixed(u64),
    /// Uniform in `[min, max]` nanoseconds, sampled by the runtime's seeded RNG.
    Jitter { min: u64, max: u64 },
}

/// A peer message body as JSON text: serialized once by [`Context::send`], parsed once by the
/// receiving node, so no intermediate [`Value`] is built on the hot path.
#[derive(Debug, Clone, PartialEq)]
pub struct Body(String);

impl Body {
    /// `message` as JSON text (`null` if it cannot be serialized, which our types never do).
    pub fn of(message: &impl Serialize) -> Body {
        Body(serde_json::to_string(message).unwrap_or_else(|_| "null".to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.0).map_err(|e| e.to_string())
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The body's `type` (empty if none), for message traces.
    pub fn kind(&self) -> String {
        message_kind(&self.0)
    }
}

/// The `type` of a JSON message body (empty if none or not JSON), without building a [`Value`].
pub fn message_kind(body: &str) -> String {
    // Fast path: bodies serialized from our message types start with `type` (after the
    // `msg_id` the runtime splices in), so most of the time no scan of the whole body is needed.
    let mut rest = body.strip_prefix('{').unwrap_or_default();
    if let Some(after) = rest.strip_prefix("\"msg_id\":") {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        rest = after[digits..].strip_prefix(',').unwrap_or_default();
    }
    if let Some(after) = rest.strip_prefix("\"type\":\"")
        && let Some(end) = after.find(['"', '\\'])
        && after.as_bytes()[end] == b'"'
    {
        return after[..end].to_string();
    }
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Cow<'a, str>,
    }
    serde_json::from_str::<Kind>(body)
        .map(|k| k.kind.into_owned())
        .unwrap_or_default()
}

/// A peer message on the wire, Maelstrom's shape `{"src", "dest", "body"}`: the same bytes in
/// the simulator and between processes. The body stays JSON text until the receiver parses it.
#[derive(Debug, serde::Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    #[serde(borrow)]
    pub dest: Cow<'a, str>,
    #[serde(borrow)]
    pub body: &'a RawValue,
}

impl<'a> Envelope<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Encodes a message from `src` to `dest`. The body gets the sender's next `msg_id` unless
    /// it has one (spliced into the text: the body is a JSON object by the node contract).
    pub fn encode(src: &str, dest: &str, body: &Body, next_msg_id: &mut u64) -> Vec<u8> {
        let text = body.as_str();
        let mut out = Vec::with_capacity(text.len() + src.len() + dest.len() + 48);
        out.extend_from_slice(b"{\"src\":");
        let _ = serde_json::to_writer(&mut out, src);
        out.extend_from_slice(b",\"dest\":");
        let _ = serde_json::to_writer(&mut out, dest);
        out.extend_from_slice(b",\"body\":");
        match text.strip_prefix('{') {
            Some(rest) if !text.contains("\"msg_id\"") => {
                *next_msg_id += 1;
                out.extend_from_slice(format!("{{\"msg_id\":{}", next_msg_id).as_bytes());
                if !rest.trim_start().starts_with('}') {
                    out.push(b',');
                }
                out.extend_from_slice(rest.as_bytes());
            }
            _ => out.extend_from_slice(text.as_bytes()),
        }
        out.push(b'}');
        out
    }
}

/// Something the node wants the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A one-way, unordered, at-most-once datagram to a peer. `body` holds `type` and payload.
    Send {
        dest: NodeId,
        body: Body,
    },
    /// The answer to a client request: see [`crate::protocol`] for the reply shapes.
    Reply {
        request: RequestId,
        body: Value,
    },
    SetTimer {
        key: TimerKey,
        delay: Delay,
    },
    CancelTimer {
        key: TimerKey,
    },
    /// Stage a file's new contents; lost on a crash unless a later `DiskSync` made it durable.
    DiskWrite {
        file: String,
        bytes: Vec<u8>,
    },
    /// Make every staged write durable (fsync + rename in real mode).
    DiskSync,
    /// A note for the trace (message diagrams, node logs).
    Trace {
        event: String,
        data: Value,
    },
}

/// A node's durable storage as the runtime hands it over: file name → contents.
pub type DiskImage = BTreeMap<String, Vec<u8>>;

/// What the runtime knows at the moment a handler runs.
pub struct Context<'a> {
    id: &'a str,
    peers: &'a [NodeId],
    wall_clock_ns: i64,
    monotonic_ns: u64,
    epsilon_ns: u64,
    rng: &'a mut ChaCha8Rng,
    disk: &'a DiskImage,
    effects: Vec<Effect>,
}

/// Clock and configuration readings for one handler call.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    /// The node's own wall clock: skewed by the nemesis (offset and drift).
    pub wall_clock_ns: i64,
    /// Never skewed; starts at 0 when the run starts.
    pub monotonic_ns: u64,
    /// TrueTime uncertainty ε.
    pub epsilon_ns: u64,
}

impl<'a> Context<'a> {
    pub fn new(
        id: &'a str,
        peers: &'a [NodeId],
        clocks: Clocks,
        rng: &'a mut ChaCha8Rng,
        disk: &'a DiskImage,
    ) -> Self {
        Context {
            id,
            peers,
            wall_clock_ns: clocks.wall_clock_ns,
            monotonic_ns: clocks.monotonic_ns,
            epsilon_ns: clocks.epsilon_ns,
            rng,
            disk,
            effects: Vec::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Every other node of the cluster.
    pub fn peers(&self) -> &[NodeId] {
        self.peers
    }

    /// Cluster size, this node included.
    pub fn cluster_size(&self) -> usize {
        self.peers.len() + 1
    }

    /// The node's wall clock (ns since the epoch of the run); may be skewed or drifting.
    pub fn wall_clock_ns(&self) -> i64 {
        self.wall_clock_ns
    }

    /// A monotonic clock, never skewed (ns).
    pub fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns
    }

    /// TrueTime: `[earliest, latest]` = the wall clock ± ε.
    pub fn truetime(&self) -> TrueTime {
        let eps = self.epsilon_ns as i64;
        TrueTime {
            earliest: self.wall_clock_ns - eps,
            latest: self.wall_clock_ns + eps,
        }
    }

    pub fn epsilon_ns(&self) -> u64 {
        self.epsilon_ns
    }

    /// This node's seeded random stream.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// A file's durable contents (what was synced before the last crash, plus later syncs).
    pub fn disk_read(&self, file: &str) -> Option<&[u8]> {
        self.disk.get(file).map(Vec::as_slice)
    }

    pub fn send(&mut self, dest: &str, body: &impl Serialize) {
        let body = Body::of(body);
        self.effects.push(Effect::Send {
            dest: dest.to_string(),
            body,
        });
    }

    pub fn reply(&mut self, request: RequestId, body: Value) {
        self.effects.push(Effect::Reply { request, body });
    }

    pub fn set_timer(&mut self, key: TimerKey, delay: Delay) {
        self.effects.push(Effect::SetTimer { key, delay });
    }

    pub fn cancel_timer(&mut self, key: TimerKey) {
        self.effects.push(Effect::CancelTimer { key });
    }

    pub fn disk_write(&mut self, file: &str, bytes: Vec<u8>) {
        self.effects.push(Effect::DiskWrite {
            file: file.to_string(),
            bytes,
        });
    }

    pub fn disk_sync(&mut self) {
        self.effects.push(Effect::DiskSync);
    }

    pub fn trace(&mut self, event: &str, data: Value) {
        self.effects.push(Effect::Trace {
            event: event.to_string(),
            data,
        });
    }

    /// The effects collected so far, in order; the runtime calls this after the handler.
    pub fn into_effects(self) -> Vec<Effect> {
        self.effects
    }
}

/// A TrueTime interval: the true time is within `[earliest, latest]` while clocks stay within ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrueTime {
    pub earliest: i64,
    pub latest: i64,
}

impl TrueTime {
    /// `TT.after(t)`: `t` has certainly passed.
    pub fn after(&self, t: i64) -> bool {
        self.earliest > t
    }

    /// `TT.before(t)`: `t` has certainly not arrived.
    pub fn before(&self, t: i64) -> bool {
        self.latest < t
    }
}

/// A reference system's node. All handlers are synchronous and deterministic given the context.
pub trait Node {
    /// Called once when the node boots: fresh (empty disk) or after a crash (the synced disk,
    /// readable through [`Context::disk_read`]). In-memory state starts from scratch.
    fn on_start(&mut self, ctx: &mut Context);

    /// A message from a peer. `body` is the parsed JSON body (with `type`).
    fn on_message(&mut self, ctx: &mut Context, from: &str, body: Value);

    /// What the runtimes call with a peer message body as JSON text. The default parses it into
    /// a [`Value`] for [`Node::on_message`] (a body that is not JSON is dropped, like any
    /// corrupt datagram); a node on a hot path parses its own message types from the text.
    fn on_message_json(&mut self, ctx: &mut Context, from: &str, body: &str) {
        if let Ok(value) = serde_json::from_str(body) {
            self.on_message(ctx, from, value);
        }
    }

    /// A client request; the node answers it (eventually, or never) with `Context::reply`.
    fn on_client_request(&mut self, ctx: &mut Context, request: RequestId, body: Value);

    /// A timer set with `Context::set_timer` fired.
    fn on_timer(&mut self, ctx: &mut Context, key: TimerKey);

    /// A JSON snapshot of the node's state, for invariant checks and `/admin/state`.
    fn state(&self) -> Value;
}

/// How a node is configured when it is built.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Every node of the cluster, this one included, in a fixed order.
    pub nodes: Vec<NodeId>,
    /// Deliberate bug switches (`--bug NAME`).
    pub bugs: Vec<String>,
}

impl NodeConfig {
    pub fn has_bug(&self, name: &str) -> bool {
        self.bugs.iter().any(|b| b == name)
    }

    /// Every node except this one.
    pub fn peers(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| **n != self.id)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_carry_the_body_text_and_a_msg_id() {
        let mut next = 6;
        let body = Body::of(&json!({"type": "ping", "n": [1, 2]}));
        let bytes = Envelope::encode("n1", "n\"2", &body, &mut next);
        assert_eq!(next, 7);
        let whole: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            whole,
            json!({"src": "n1", "dest": "n\"2", "body": {"msg_id": 7, "type": "ping", "n": [1, 2]}})
        );
        let env = Envelope::parse(&bytes).unwrap();
        assert_eq!((env.src.as_ref(), env.dest.as_ref()), ("n1", "n\"2"));
        assert_eq!(message_kind(env.body.get()), "ping");
        // A body with its own msg_id keeps it; an empty object gets one; garbage is an error.
        let own = Body::of(&json!({"msg_id": 1, "type": "x"}));
        let bytes = Envelope::encode("a", "b", &own, &mut next);
        assert_eq!(next, 7);
        assert_eq!(Envelope::parse(&bytes).unwrap().body.get(), own.as_str());
        let empty = Envelope::encode("a", "b", &Body::of(&json!({})), &mut next);
        let empty: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(empty["body"], json!({"msg_id": 8}));
        assert!(Envelope::parse(b"{\"src\":1}").is_err());
        assert_eq!(message_kind("not json"), "");
        // The fast path and the full parse agree, wherever `type` is.
        for text in [
            r#"{"type":"a","x":1}"#,
            r#"{"msg_id":12,"type":"b"}"#,
            r#"{"x":{"type":"nested"},"type":"c"}"#,
            r#"{"type":"d\"e"}"#,
            r#"{"msg_id":1}"#,
        ] {
            let full: Value = serde_json::from_str(text).unwrap();
            let expected = full["type"].as_str().unwrap_or_default();
            assert_eq!(message_kind(text), expected, "{text}");
        }
    }
}
