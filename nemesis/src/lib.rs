//! The fault vocabulary, fault schedules, and the real-mode fault mechanisms.
//!
//! Will hold: partitions (grudges), link faults, kill / restart, pause / resume, clock faults and
//! Byzantine behaviours, as explicit timed schedules generated from a seed.
