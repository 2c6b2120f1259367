//! The fault vocabulary and fault schedules, shared by both runtimes.
//!
//! A schedule is explicit data: a list of timed [`Fault`]s generated from a seed, so a run's
//! faults can be printed, stored, replayed and shrunk. Runtimes apply faults; every applied fault
//! is recorded in the history as an operation of process `"nemesis"`.

pub mod fault;
pub mod partition;
pub mod schedule;

pub use fault::{Fault, Grudge};
pub use schedule::{FaultKind, Schedule, ScheduleOptions, TimedFault};
