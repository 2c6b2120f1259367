//! `bank`: transfers between accounts (which a sharded system spreads over its shards) and
//! read-only transactions that read every balance. Money is never created or destroyed, so
//! every read totals `accounts × INITIAL_BALANCE`, and no balance goes negative.
//!
//! History (the bank checker's shapes): `transfer` with value `{"from", "to", "amount", "id"}`
//! (`id` unique per transfer), and `read` whose `ok` value is `[["r", account, balance], ...]`.
//! Completions carry `commit_ts`; an ok transfer also carries `before` (the two accounts'
//! stored values it read) and an ok read `writers` (per account, the id of the transfer that
//! last wrote it, `null` when none).
//!
//! Requests: `{"type": "transfer", "from", "to", "amount", "initial", "id"}` and a read-only
//! `{"type": "txn", "txn": [["r", account, null], ...]}`; the system stores an account as
//! `{"balance": n, "by": id}` and a never-written account holds `initial`.
//!
//! Checks: the bank checker on every read; external consistency on the same history seen as
//! register transactions — a transfer reads both accounts' writers and writes its own id to
//! both, a read reads every account's writer — so timestamp order must explain exactly which
//! transfer each read saw; stats.

use crate::checks::{checker_result, stats_checkers};
use crate::list_append::commit_ts_extra;
use crate::outcome::{Completion, Invocation, Outcome, error_completion};
use crate::{CheckReport, Workload, WorkloadOptions};
use checkers::bank::{self, BankOptions};
use checkers::{History, Op, OpType, Process, external_consistency};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Every account's balance before any transfer.
pub const INITIAL_BALANCE: i64 = 10;
/// Transfers move 1 to this much.
pub const MAX_AMOUNT: i64 = 5;

pub struct Bank {
    accounts: u64,
    next_transfer: u64,
}

impl Bank {
    pub fn new(opts: WorkloadOptions) -> Self {
        Bank {
            accounts: opts.keys.max(2) as u64,
            next_transfer: 0,
        }
    }

    fn read_all(&self) -> Invocation {
        Invocation {
            f: "read".into(),
            value: Value::Null,
        }
    }

    fn account_names(&self) -> Vec<String> {
        (0..self.accounts).map(|a| a.to_string()).collect()
    }
}

/// The writer id recorded in a stored account value (`null` when never written).
fn writer(stored: &Value) -> Value {
    stored.get("by").cloned().unwrap_or(Value::Null)
}

impl Workload for Bank {
    fn name(&self) -> &'static str {
        "bank"
    }

    fn next_invocation(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        if rng.random_bool(0.5) {
            return self.read_all();
        }
        let from = rng.random_range(0..self.accounts);
        let to = (from + rng.random_range(1..self.accounts)) % self.accounts;
        self.next_transfer += 1;
        Invocation {
            f: "transfer".into(),
            value: json!({
                "from": from,
                "to": to,
                "amount": rng.random_range(1..=MAX_AMOUNT),
                "id": self.next_transfer,
            }),
        }
    }

    fn request_body(&self, inv: &Invocation) -> Value {
        match inv.f.as_str() {
            "transfer" => {
                let field = |name: &str| inv.value.get(name).cloned().unwrap_or(Value::Null);
                json!({
                    "type": "transfer",
                    "from": field("from"),
                    "to": field("to"),
                    "amount": field("amount"),
                    "id": field("id"),
                    "initial": INITIAL_BALANCE,
                })
            }
            _ => {
                let mops: Vec<Value> = (0..self.accounts).map(|a| json!(["r", a, null])).collect();
                json!({"type": "txn", "txn": mops})
            }
        }
    }

    fn complete(&self, inv: &Invocation, outcome: &Outcome) -> Completion {
        let read_only = inv.f == "read";
        if let Some(c) = error_completion(inv, outcome, read_only) {
            return c;
        }
        let Outcome::Reply(body) = outcome else {
            unreachable!("a timeout is an error completion");
        };
        let mut extra = commit_ts_extra(body);
        if !read_only {
            extra.insert(
                "before".into(),
                body.get("read").cloned().unwrap_or(json!([null, null])),
            );
            return Completion {
                kind: OpType::Ok,
                value: inv.value.clone(),
                error: None,
                extra,
            };
        }
        let mops = body.get("txn").and_then(Value::as_array);
        let mut balances = Vec::new();
        let mut writers = Vec::new();
        for m in mops.into_iter().flatten() {
            let stored = m.get(2).cloned().unwrap_or(Value::Null);
            let balance = match &stored {
                Value::Null => json!(INITIAL_BALANCE),
                other => other.get("balance").cloned().unwrap_or(Value::Null),
            };
            balances.push(json!(["r", m.get(1), balance]));
            writers.push(writer(&stored));
        }
        extra.insert("writers".into(), Value::Array(writers));
        Completion {
            kind: OpType::Ok,
            value: Value::Array(balances),
            error: None,
            extra,
        }
    }

    fn final_invocations(&self) -> Vec<Invocation> {
        vec![self.read_all()]
    }

    fn check(&self, history: &History) -> CheckReport {
        let mut checkers = Vec::new();
        let opts = BankOptions {
            total: Some(self.accounts as i64 * INITIAL_BALANCE),
            accounts: Some(self.account_names()),
            ..BankOptions::default()
        };
        checkers.push(checker_result("bank", bank::check(history, &opts), |r| {
            (r.validity, r.to_json(), r.explain())
        }));
        let as_txns = register_history(history, self.accounts);
        checkers.push(checker_result(
            "external-consistency",
            external_consistency::check(&as_txns),
            |r| (r.validity, r.to_json(), r.explain()),
        ));
        checkers.extend(stats_checkers(history));
        CheckReport { checkers }
    }
}

/// The bank history as register transactions over the accounts' writer ids (see the module
/// documentation); times, processes, `commit_ts` and nemesis operations are kept.
pub fn register_history(history: &History, accounts: u64) -> History {
    let mut invoked: std::collections::BTreeMap<u64, Value> = Default::default();
    let ops = history
        .ops
        .iter()
        .map(|op| {
            let Process::Client(process) = op.process else {
                return op.clone();
            };
            let value = match op.kind {
                OpType::Invoke => {
                    let v = invocation_txn(op, accounts);
                    invoked.insert(process, v.clone());
                    v
                }
                OpType::Ok => completion_txn(op, accounts),
                _ => invoked.remove(&process).unwrap_or(Value::Null),
            };
            Op {
                f: "txn".into(),
                value,
                ..op.clone()
            }
        })
        .collect();
    History::new(ops)
}

fn invocation_txn(op: &Op, accounts: u64) -> Value {
    match op.f.as_str() {
        "transfer" => {
            let (from, to, id) = (&op.value["from"], &op.value["to"], &op.value["id"]);
            json!([
                ["r", from, null],
                ["r", to, null],
                ["w", from, id],
                ["w", to, id]
            ])
        }
        _ => Value::Array((0..accounts).map(|a| json!(["r", a, null])).collect()),
    }
}

fn completion_txn(op: &Op, accounts: u64) -> Value {
    match op.f.as_str() {
        "transfer" => {
            let (from, to, id) = (&op.value["from"], &op.value["to"], &op.value["id"]);
            let before = op.extra.get("before");
            let read = |i: usize| before.and_then(|b| b.get(i)).map_or(Value::Null, writer);
            json!([
                ["r", from, read(0)],
                ["r", to, read(1)],
                ["w", from, id],
                ["w", to, id]
            ])
        }
        _ => {
            let writers = op.extra.get("writers").and_then(Value::as_array);
            Value::Array(
                (0..accounts)
                    .map(|a| {
                        let w = writers
                            .and_then(|w| w.get(a as usize))
                            .cloned()
                            .unwrap_or(Value::Null);
                        json!(["r", a, w])
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn bank() -> Bank {
        Bank::new(WorkloadOptions {
            keys: 4,
            ..Default::default()
        })
    }

    #[test]
    fn transfers_are_between_distinct_accounts_with_unique_ids() {
        let mut w = bank();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let inv = w.next_invocation(&mut rng);
            if inv.f == "transfer" {
                assert_ne!(inv.value["from"], inv.value["to"]);
                assert!(ids.insert(inv.value["id"].as_u64().unwrap()));
                let body = w.request_body(&inv);
                assert_eq!(body["initial"], INITIAL_BALANCE);
            } else {
                assert_eq!(w.request_body(&inv)["txn"].as_array().unwrap().len(), 4);
            }
        }
        assert!(!ids.is_empty());
    }

    #[test]
    fn reads_become_balances_and_writers() {
        let w = bank();
        let read = w.read_all();
        let reply = json!({"type": "txn_ok", "commit_ts": 77, "txn": [
            ["r", 0, null], ["r", 1, {"balance": 7, "by": 3}],
            ["r", 2, {"balance": 13, "by": 3}], ["r", 3, null]]});
        let c = w.complete(&read, &Outcome::Reply(reply));
        assert_eq!(
            c.value,
            json!([["r", 0, 10], ["r", 1, 7], ["r", 2, 13], ["r", 3, 10]])
        );
        assert_eq!(c.extra["writers"], json!([null, 3, 3, null]));
        assert_eq!(c.extra["commit_ts"], 77);
    }

    #[test]
    fn the_register_view_explains_what_each_read_saw() {
        let w = bank();
        let t = json!({"from": 1, "to": 2, "amount": 3, "id": 3});
        let lines = [
            json!({"process": 0, "type": "invoke", "f": "transfer", "value": t, "time": 1}),
            json!({"process": 0, "type": "ok", "f": "transfer", "value": t, "time": 2,
                   "commit_ts": 100, "before": [null, null]}),
            json!({"process": 1, "type": "invoke", "f": "read", "value": null, "time": 3}),
            json!({"process": 1, "type": "ok", "f": "read", "time": 4, "commit_ts": 150,
                   "value": [["r", 0, 10], ["r", 1, 7], ["r", 2, 13], ["r", 3, 10]],
                   "writers": [null, 3, 3, null]}),
        ];
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        let history = checkers::history::jsonl::parse(&text.join("\n"), "<t>").unwrap();
        let report = w.check(&history);
        assert_eq!(
            report.validity(),
            checkers::Validity::Valid,
            "{:?}",
            report.to_json()
        );
        let view = register_history(&history, 4);
        assert_eq!(
            view.ops[1].value,
            json!([["r", 1, null], ["r", 2, null], ["w", 1, 3], ["w", 2, 3]])
        );
        // A read at a timestamp below the transfer's that saw it contradicts timestamp order.
        let mut stale = lines.clone();
        stale[3]["commit_ts"] = json!(50);
        let text: Vec<String> = stale.iter().map(Value::to_string).collect();
        let history = checkers::history::jsonl::parse(&text.join("\n"), "<t>").unwrap();
        assert_eq!(w.check(&history).validity(), checkers::Validity::Invalid);
    }
}
