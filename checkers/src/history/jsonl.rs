//! The native format: JSON Lines, one operation object per line.

use super::{History, Op};
use crate::error::InputError;
use serde_json::Value;
use std::io::Write;

/// Parses JSON Lines; blank lines are allowed, anything else that is not an operation is an error.
pub fn parse(text: &str, source: &str) -> Result<History, InputError> {
    let mut ops = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            InputError::new(
                source,
                Some(line_no),
                format!("expected a JSON object: {e}"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(InputError::new(
                source,
                Some(line_no),
                format!("expected a JSON object, got {}", kind_of(&value)),
            ));
        };
        let op = Op::from_map(map, ops.len() as u64)
            .map_err(|m| InputError::new(source, Some(line_no), m))?;
        ops.push(op);
    }
    Ok(History { ops })
}

/// One operation as one JSON line (without the newline).
pub fn to_line(op: &Op) -> String {
    Value::Object(op.to_map()).to_string()
}

/// Writes a whole history as JSON Lines.
pub fn write(history: &History, out: &mut impl Write) -> std::io::Result<()> {
    for op in &history.ops {
        writeln!(out, "{}", to_line(op))?;
    }
    Ok(())
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
