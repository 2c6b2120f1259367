//! Input errors that name the file, the line and what was expected.

use std::fmt;

/// An error in a history or other input: where it is and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file, or a label such as `<stdin>` or `<memory>`.
    pub source: String,
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// What was expected and what was found.
    pub message: String,
}

impl InputError {
    pub fn new(source: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        InputError {
            source: source.into(),
            line,
            message: message.into(),
        }
    }

    /// The same error, attributed to another source (e.g. when a parser ran on a string).
    pub fn in_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.source, line, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for InputError {}
