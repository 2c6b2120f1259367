//! Client operation generators, request/response mapping, and which checkers apply.
//!
//! Will hold: `lin-kv`, `bank`, `list-append`, `vv-kv` and the other workloads: each generates
//! client operations, maps them to node requests and replies back to history operations, and
//! names the checkers its histories are judged by.
