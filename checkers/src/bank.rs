//! The bank checker (Jepsen's): money moves between accounts but is never created or destroyed,
//! so every committed read of all balances sums to the same total, and no balance goes negative.
//!
//! History shape:
//!
//! - `f` = `"transfer"`, value `{"from": A, "to": B, "amount": N}` (accounts: strings or
//!   integers; `amount` a non-negative integer). Transfers are only validated: their effect is
//!   judged through the reads.
//! - `f` = `"read"`: the invocation's value is ignored (usually `null`); an `ok` completion's
//!   value holds every account's balance, either as a map `{"A": 10, "B": 90}` or as read
//!   micro-operations `[["r", "A", 10], ["r", "B", 90]]`. Balances are integers; a `null`
//!   balance is reported (`nil-balance`).
//!
//! Checks on every `ok` read: the balances sum to the expected total (given, else the first
//! `ok` read's sum), no balance is negative (unless allowed), and, when the accounts are given,
//! the read shows exactly those accounts. `fail` and `info` reads are ignored, as are nemesis
//! operations. Any other client `f` is an input error.

use crate::error::InputError;
use crate::history::{History, Op, OpType};
use crate::verdict::Validity;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const SOURCE: &str = "<history>";

/// What to check against.
#[derive(Debug, Clone)]
pub struct BankOptions {
    /// The total every read must show; `None` means the first `ok` read's total.
    pub total: Option<i64>,
    /// The accounts every read must show; `None` means any.
    pub accounts: Option<Vec<String>>,
    /// Whether balances may go negative (overdrafts allowed).
    pub allow_negative: bool,
    /// How many offending reads of each kind are kept in the result (all are counted).
    pub max_reported: usize,
}

impl Default for BankOptions {
    fn default() -> Self {
        BankOptions {
            total: None,
            accounts: None,
            allow_negative: false,
            max_reported: 16,
        }
    }
}

/// The verdict and the offending reads.
#[derive(Debug, Clone)]
pub struct BankResult {
    pub validity: Validity,
    /// The total reads were held to (given or inferred); `None` when there was no `ok` read.
    pub expected_total: Option<i64>,
    /// Per kind (`wrong-total`, `negative-value`, `nil-balance`, `wrong-accounts`): up to
    /// `max_reported` offending reads, each a JSON object with an `explanation`.
    pub errors: BTreeMap<String, Vec<Value>>,
    pub error_counts: BTreeMap<String, usize>,
    pub ok_reads: usize,
    pub transfers: usize,
    pub ok_transfers: usize,
}

impl BankResult {
    /// `{"valid", "expected_total", "error_types", "errors", "error_counts", "stats"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": self.validity.to_json(),
            "expected_total": self.expected_total,
            "error_types": self.errors.keys().collect::<Vec<_>>(),
            "errors": self.errors,
            "error_counts": self.error_counts,
            "stats": {
                "ok_reads": self.ok_reads,
                "transfers": self.transfers,
                "ok_transfers": self.ok_transfers,
            },
        })
    }

    /// The verdict and the first offending reads, in words.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "{}: {} committed reads, {} transfers ({} ok)",
            self.validity, self.ok_reads, self.transfers, self.ok_transfers
        );
        if let Some(total) = self.expected_total {
            out.push_str(&format!(", expected total {total}"));
        }
        if self.errors.is_empty() {
            out.push_str("; every read adds up.\n");
            return out;
        }
        out.push('\n');
        for (kind, list) in &self.errors {
            out.push_str(&format!("\n{kind}: {}\n", self.error_counts[kind]));
            for e in list.iter().take(5) {
                out.push_str("  - ");
                out.push_str(e["explanation"].as_str().unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }
}

fn error(op: &Op, what: String) -> InputError {
    InputError::new(SOURCE, None, format!("op {}: {what}", op.index))
}

/// An account name: strings as they are, anything else by its JSON text.
fn account(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The balances of a read, in account order.
fn balances(op: &Op) -> Result<Vec<(String, &Value)>, InputError> {
    match &op.value {
        Value::Object(map) => Ok(map.iter().map(|(a, b)| (a.clone(), b)).collect()),
        Value::Array(mops) => mops
            .iter()
            .enumerate()
            .map(|(i, m)| match m.as_array().map(Vec::as_slice) {
                Some([f, a, b]) if f == "r" || f == "read" => Ok((account(a), b)),
                _ => Err(error(
                    op,
                    format!("read micro-operation {i} must be [\"r\", account, balance], got {m}"),
                )),
            })
            .collect(),
        other => Err(error(
            op,
            format!(
                "an ok read's value must be a map of account to balance (or a list of \
                 [\"r\", account, balance]), got {other}"
            ),
        )),
    }
}

fn check_transfer(op: &Op) -> Result<(), InputError> {
    let expected = "a transfer's value must be {\"from\": account, \"to\": account, \"amount\": \
                    non-negative integer}";
    let Some(map) = op.value.as_object() else {
        return Err(error(op, format!("{expected}, got {}", op.value)));
    };
    let ok = map.get("from").is_some_and(|v| !v.is_null())
        && map.get("to").is_some_and(|v| !v.is_null())
        && map.get("amount").and_then(Value::as_u64).is_some();
    if ok {
        Ok(())
    } else {
        Err(error(op, format!("{expected}, got {}", op.value)))
    }
}

struct Errors {
    cap: usize,
    found: BTreeMap<String, (usize, Vec<Value>)>,
}

impl Errors {
    fn push(&mut self, kind: &str, describe: impl FnOnce() -> Value) {
        let entry = self.found.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if entry.1.len() < self.cap {
            entry.1.push(describe());
        }
    }
}

fn show_balances(list: &[(String, &Value)]) -> String {
    let parts: Vec<String> = list.iter().map(|(a, b)| format!("{a}: {b}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn op_json(op: &Op) -> Value {
    Value::Object(op.to_map())
}

/// Checks a bank history. Errors (source `<history>`, naming the op index): an unknown client
/// `f`, a malformed transfer, a read whose value is not balances, a balance that is not an
/// integer (or `null`).
pub fn check(history: &History, opts: &BankOptions) -> Result<BankResult, InputError> {
    let mut errors = Errors {
        cap: opts.max_reported.max(1),
        found: BTreeMap::new(),
    };
    let mut expected_total = opts.total;
    let accounts: Option<BTreeSet<&str>> = opts
        .accounts
        .as_ref()
        .map(|a| a.iter().map(String::as_str).collect());
    let (mut ok_reads, mut transfers, mut ok_transfers) = (0, 0, 0);
    for op in history.client_ops() {
        match op.f.as_str() {
            "transfer" => {
                if op.kind == OpType::Invoke {
                    transfers += 1;
                    check_transfer(op)?;
                } else if op.kind == OpType::Ok {
                    ok_transfers += 1;
                }
            }
            "read" => {
                if op.kind != OpType::Ok {
                    continue;
                }
                ok_reads += 1;
                let list = balances(op)?;
                let mut total: i128 = 0;
                let mut nil = Vec::new();
                for (a, b) in &list {
                    match b {
                        Value::Null => nil.push(a.clone()),
                        _ => match b.as_i64() {
                            Some(n) => {
                                total += i128::from(n);
                                if n < 0 && !opts.allow_negative {
                                    errors.push("negative-value", || {
                                        json!({
                                            "op": op_json(op),
                                            "account": a,
                                            "balance": n,
                                            "explanation": format!(
                                                "op {} read account {a} with balance {n}: \
                                                 balances must never go negative",
                                                op.index
                                            ),
                                        })
                                    });
                                }
                            }
                            None => {
                                return Err(error(
                                    op,
                                    format!("account {a}'s balance must be an integer, got {b}"),
                                ));
                            }
                        },
                    }
                }
                if !nil.is_empty() {
                    errors.push("nil-balance", || {
                        json!({
                            "op": op_json(op),
                            "accounts": nil,
                            "explanation": format!(
                                "op {} read no balance (null) for account(s) {}",
                                op.index, nil.join(", ")
                            ),
                        })
                    });
                    continue;
                }
                if let Some(expected) = &accounts {
                    let seen: BTreeSet<&str> = list.iter().map(|(a, _)| a.as_str()).collect();
                    if &seen != expected || seen.len() != list.len() {
                        errors.push("wrong-accounts", || {
                            let missing: Vec<&&str> = expected.difference(&seen).collect();
                            let extra: Vec<&&str> = seen.difference(expected).collect();
                            json!({
                                "op": op_json(op),
                                "missing": missing,
                                "unexpected": extra,
                                "explanation": format!(
                                    "op {} read accounts {}; missing {:?}, unexpected {:?}",
                                    op.index, show_balances(&list), missing, extra
                                ),
                            })
                        });
                    }
                }
                let expected = *expected_total
                    .get_or_insert(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
                if total != i128::from(expected) {
                    errors.push("wrong-total", || {
                        json!({
                            "op": op_json(op),
                            "total": i64::try_from(total).map_or(Value::Null, Value::from),
                            "expected_total": expected,
                            "balances": Value::Object(list.iter().map(|(a, b)| (a.clone(), (*b).clone())).collect::<Map<_, _>>()),
                            "explanation": format!(
                                "op {} read balances {} totalling {total}, but every read must \
                                 total {expected} ({} {})",
                                op.index,
                                show_balances(&list),
                                if total > i128::from(expected) { "created" } else { "lost" },
                                (total - i128::from(expected)).abs()
                            ),
                        })
                    });
                }
            }
            other => {
                return Err(error(
                    op,
                    format!(
                        "expected `f` = \"transfer\" or \"read\" in a bank history, got \"{other}\""
                    ),
                ));
            }
        }
    }
    let validity = if errors.found.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let mut out = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (k, (n, list)) in errors.found {
        counts.insert(k.clone(), n);
        out.insert(k, list);
    }
    Ok(BankResult {
        validity,
        expected_total,
        errors: out,
        error_counts: counts,
        ok_reads,
        transfers,
        ok_transfers,
    })
}
