//! The node contract (sans-IO) and every bundled reference system.
//!
//! Will hold: the `Node` trait with its context and effects, and the reference systems
//! (raft, multi-paxos, zab, spanner, crdb, kafka, dynamo, pbft, pow, pos, evm). Node code never
//! touches sockets, threads, clocks or OS randomness: everything comes through the context.
