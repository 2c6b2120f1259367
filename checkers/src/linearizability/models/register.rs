//! Registers (plain, compare-and-set, and one per key) and the mutex: states that are one integer.

use super::{Meaning, Model, NULL_ID, Parser, Values, key_and_value};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterOp {
    Read(u32),
    Write(u32),
    Cas(u32, u32),
}

/// Reads `register`, `cas-register` and `kv` operations.
pub(crate) struct RegisterParser {
    pub values: Values,
    /// `cas` is allowed (cas-register, kv).
    pub cas: bool,
    /// Values are `[key, v]` (kv).
    pub keyed: bool,
}

impl Parser for RegisterParser {
    type Op = RegisterOp;

    fn parse(&mut self, f: &str, value: &Value, ok: bool) -> Result<Meaning<RegisterOp>, String> {
        let (key, v) = if self.keyed {
            let (k, v) = key_and_value(value)?;
            (k.clone(), v)
        } else {
            (Value::Null, value)
        };
        let op = match f {
            // A read that may not have happened, or returned nothing, tells nothing.
            "read" if !ok || v.is_null() => return Ok(Meaning::Nothing),
            "read" => RegisterOp::Read(self.values.intern(v)),
            "write" => RegisterOp::Write(self.values.intern(v)),
            "cas" if self.cas => match v.as_array().map(Vec::as_slice) {
                Some([old, new]) => {
                    RegisterOp::Cas(self.values.intern(old), self.values.intern(new))
                }
                _ => return Err(format!("expected [old, new] for cas, got {v}")),
            },
            _ => {
                let expected = if self.cas {
                    "read, write or cas"
                } else {
                    "read or write"
                };
                return Err(format!("unknown operation `{f}` (expected {expected})"));
            }
        };
        Ok(Meaning::On { key, op })
    }
}

/// A register holding a value id.
pub(crate) struct Register {
    pub values: Arc<Values>,
    pub init: u32,
}

impl Model for Register {
    type State = u32;
    type Op = RegisterOp;

    fn initial(&self) -> u32 {
        self.init
    }

    #[inline]
    fn step(&self, &state: &u32, op: &RegisterOp, alt: u32) -> Option<u32> {
        if alt > 0 {
            return None;
        }
        match *op {
            RegisterOp::Read(v) => (v == state).then_some(state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas(old, new) => (old == state).then_some(new),
        }
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    fn failure(&self, &state: &u32, op: &RegisterOp) -> String {
        let show = |id| self.values.show(id);
        match *op {
            RegisterOp::Read(v) => format!("can't read {} from register {}", show(v), show(state)),
            RegisterOp::Write(v) => format!("can't write {} (writes always succeed)", show(v)),
            RegisterOp::Cas(old, new) => format!(
                "can't CAS register {} from {} to {}",
                show(state),
                show(old),
                show(new)
            ),
        }
    }

    fn state_json(&self, &state: &u32) -> Value {
        self.values.get(state).clone()
    }
}

/// Optional writes and CASes whose new value no operation ever observes (by a read or as a CAS's
/// expected value) can be left out: a state nobody can observe is dominated by the state before
/// it, since only a write can follow it successfully. Returns which operations to keep.
pub(crate) fn observable(ops: &[(RegisterOp, bool)]) -> Vec<bool> {
    let mut observed = std::collections::HashSet::new();
    for (op, _) in ops {
        match *op {
            RegisterOp::Read(v) | RegisterOp::Cas(v, _) => {
                observed.insert(v);
            }
            RegisterOp::Write(_) => {}
        }
    }
    ops.iter()
        .map(|&(op, ok)| {
            ok || match op {
                RegisterOp::Read(_) => true,
                RegisterOp::Write(v) | RegisterOp::Cas(_, v) => observed.contains(&v),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexOp {
    Acquire,
    Release,
}

pub(crate) struct MutexParser;

impl Parser for MutexParser {
    type Op = MutexOp;

    fn parse(&mut self, f: &str, _value: &Value, _ok: bool) -> Result<Meaning<MutexOp>, String> {
        let op = match f {
            "acquire" => MutexOp::Acquire,
            "release" => MutexOp::Release,
            _ => {
                return Err(format!(
                    "unknown operation `{f}` (expected acquire or release)"
                ));
            }
        };
        Ok(Meaning::On {
            key: Value::Null,
            op,
        })
    }
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;

/// A lock: state 1 when held.
pub(crate) struct Mutex {
    pub locked: bool,
}

impl Mutex {
    /// `"unlocked"`, `false` or null; `"locked"` or `true`.
    pub(crate) fn parse_init(init: Option<&Value>) -> Result<bool, String> {
        match init {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
            Some(Value::Bool(true)) => Ok(true),
            Some(Value::String(s)) if s == "unlocked" => Ok(false),
            Some(Value::String(s)) if s == "locked" => Ok(true),
            Some(other) => Err(format!(
                "the mutex's initial state must be \"unlocked\", \"locked\", false or true; got {other}"
            )),
        }
    }
}

impl Model for Mutex {
    type State = u32;
    type Op = MutexOp;

    fn initial(&self) -> u32 {
        if self.locked { LOCKED } else { UNLOCKED }
    }

    #[inline]
    fn step(&self, &state: &u32, op: &MutexOp, alt: u32) -> Option<u32> {
        match (alt, op, state) {
            (0, MutexOp::Acquire, UNLOCKED) => Some(LOCKED),
            (0, MutexOp::Release, LOCKED) => Some(UNLOCKED),
            _ => None,
        }
    }

    fn failure(&self, _state: &u32, op: &MutexOp) -> String {
        match op {
            MutexOp::Acquire => "can't acquire the lock: it is held".into(),
            MutexOp::Release => "can't release the lock: it is not held".into(),
        }
    }

    fn state_json(&self, &state: &u32) -> Value {
        Value::from(if state == LOCKED {
            "locked"
        } else {
            "unlocked"
        })
    }
}

/// The initial value's id for registers: `null` by default.
pub(crate) fn register_init(values: &mut Values, init: Option<&Value>) -> u32 {
    init.map_or(NULL_ID, |v| values.intern(v))
}
