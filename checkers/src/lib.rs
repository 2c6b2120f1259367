//! The history model and every checker of verity.
//!
//! No async and no I/O beyond reading files: checkers take a [`history::History`] and return a
//! three-valued verdict ([`verdict::Validity`]) with details a human can read.

pub mod bank;
pub mod elle;
pub mod error;
pub mod external_consistency;
pub mod history;
pub mod linearizability;
pub mod log_agreement;
pub mod registry;
pub mod stats;
pub mod verdict;
pub mod version_vectors;

pub use error::InputError;
pub use history::{Format, History, Op, OpType, Process};
pub use verdict::Validity;
