//! Jepsen EDN import and export (placeholder, being written).
use super::History;
use crate::error::InputError;

pub fn parse_history(_text: &str, source: &str) -> Result<History, InputError> {
    Err(InputError::new(source, None, "EDN import not implemented yet"))
}
