//! Exit codes, as Jepsen has them.

pub const VALID: i32 = 0;
pub const INVALID: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const BAD_ARGUMENTS: i32 = 254;
pub const INTERNAL_ERROR: i32 = 255;

/// An error that ends the command with a given exit code and message.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn bad_arguments(message: impl Into<String>) -> Self {
        Failure {
            code: BAD_ARGUMENTS,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Failure {
            code: INTERNAL_ERROR,
            message: message.into(),
        }
    }
}

impl From<checkers::InputError> for Failure {
    fn from(e: checkers::InputError) -> Self {
        Failure::bad_arguments(e.to_string())
    }
}
