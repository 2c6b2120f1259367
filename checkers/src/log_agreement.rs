//! Log agreement: a replicated log's State Machine Safety, checked from the nodes' own reports.
//!
//! A system built on a replicated log (Raft, Multi-Paxos, ZAB) promises that once any node has
//! applied an entry at an index, every node that applies that index applies the same entry. The
//! nodes report what they apply as trace events named [`EVENT`] (in `node-logs/<node>.log`):
//!
//! ```text
//! <time> log-applied {"log":"raft","from":41,"to":43,"term":7}
//! ```
//!
//! meaning "I applied entries 41 to 43, all of term 7, of log `raft`". An index and a term name
//! one entry (Raft's Log Matching property), so two reports of one index with different terms are
//! a violation: a committed entry was lost and replaced. This white-box check complements the
//! black-box ones: a lost entry whose writes were never acknowledged often leaves a history that
//! is still linearizable (indefinite writes can explain almost any read), while the nodes' state
//! machines have already diverged.

use crate::error::InputError;
use crate::verdict::Validity;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The trace event name nodes use for their reports.
pub const EVENT: &str = "log-applied";

/// A node applied entries `from..=to`, all of `term`, of log `log`, at `at` (the node log's time
/// stamp, as written: nanoseconds in the simulator, milliseconds in real mode).
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRun {
    pub node: String,
    pub log: String,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    pub at: String,
}

impl AppliedRun {
    /// Reads a report's data (`{"log", "from", "to", "term"}`); `None` if a field is missing.
    pub fn from_trace(node: &str, at: &str, data: &Value) -> Option<AppliedRun> {
        let number = |field: &str| data.get(field).and_then(Value::as_u64);
        let run = AppliedRun {
            node: node.to_string(),
            log: data.get("log")?.as_str()?.to_string(),
            from: number("from")?,
            to: number("to")?,
            term: number("term")?,
            at: at.to_string(),
        };
        (run.from >= 1 && run.from <= run.to).then_some(run)
    }
}

/// One index applied with two different terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    pub log: String,
    pub index: u64,
    /// The first report of this index.
    pub first: AppliedRun,
    /// A later report with another term.
    pub then: AppliedRun,
}

impl Disagreement {
    pub fn explanation(&self) -> String {
        format!(
            "log {:?} index {}: {} applied the entry of term {} (at {}), but {} applied an entry \
             of term {} there (at {}): a committed entry was lost",
            self.log,
            self.index,
            self.first.node,
            self.first.term,
            self.first.at,
            self.then.node,
            self.then.term,
            self.then.at
        )
    }

    fn to_json(&self) -> Value {
        let side = |r: &AppliedRun| json!({"node": r.node, "term": r.term, "at": r.at});
        json!({
            "log": self.log,
            "index": self.index,
            "first": side(&self.first),
            "then": side(&self.then),
            "explanation": self.explanation(),
        })
    }
}

/// What the check found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAgreementResult {
    pub validity: Validity,
    /// Distinct (log, index) pairs some node applied.
    pub indices_checked: u64,
    pub reports: u64,
    /// Every disagreeing index counts; the first `MAX_REPORTED` are kept.
    pub disagreement_count: u64,
    pub disagreements: Vec<Disagreement>,
}

const MAX_REPORTED: usize = 10;

impl LogAgreementResult {
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "valid": self.validity.to_json(),
            "indices_checked": self.indices_checked,
            "reports": self.reports,
            "disagreement_count": self.disagreement_count,
            "disagreements": self.disagreements.iter().map(Disagreement::to_json).collect::<Vec<_>>(),
        });
        if let Some(first) = self.disagreements.first() {
            out["explanation"] = json!(first.explanation());
        }
        out
    }
}

/// Checks the reports in the order given (each node's in its own order; nodes one after another
/// is fine: the first report of an index is the reference, whoever made it).
pub fn check(runs: &[AppliedRun]) -> LogAgreementResult {
    // Per log: index → the run (by position) that first reported it.
    let mut first_by_index: BTreeMap<&str, Vec<Option<usize>>> = BTreeMap::new();
    let mut result = LogAgreementResult {
        validity: Validity::Valid,
        indices_checked: 0,
        reports: runs.len() as u64,
        disagreement_count: 0,
        disagreements: Vec::new(),
    };
    for (position, run) in runs.iter().enumerate() {
        let slots = first_by_index.entry(run.log.as_str()).or_default();
        let needed = usize::try_from(run.to)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if slots.len() < needed {
            slots.resize(needed, None);
        }
        for index in run.from..=run.to {
            let slot = &mut slots[index as usize];
            match *slot {
                None => {
                    *slot = Some(position);
                    result.indices_checked += 1;
                }
                Some(first) if runs[first].term != run.term => {
                    result.validity = Validity::Invalid;
                    result.disagreement_count += 1;
                    if result.disagreements.len() < MAX_REPORTED {
                        result.disagreements.push(Disagreement {
                            log: run.log.clone(),
                            index,
                            first: runs[first].clone(),
                            then: run.clone(),
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }
    result
}

/// Reads one node-log line (`<time> <event> <json>`): `Ok(None)` for other events, an error
/// saying what is wrong for a malformed report.
pub fn parse_line(node: &str, line: &str) -> Result<Option<AppliedRun>, String> {
    let mut parts = line.splitn(3, ' ');
    let (Some(at), Some(event), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    if event != EVENT {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(data).map_err(|e| format!("{EVENT} data is not JSON: {e}"))?;
    AppliedRun::from_trace(node, at, &value)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{EVENT} needs \"log\" (string), \"term\" and 1 <= \"from\" <= \"to\" (integers)"
            )
        })
}

/// The reports found in node logs, and the lines that looked like reports but were not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLogReports {
    pub runs: Vec<AppliedRun>,
    /// Malformed report lines, each naming its file and line. A process killed in the middle of
    /// writing a line leaves a torn one, so these are reported, not fatal: the check stays
    /// sound on the reports that were whole.
    pub malformed: Vec<InputError>,
}

/// Parses one node's log for [`EVENT`] reports.
pub fn parse_node_log(node: &str, text: &str, source: &str) -> NodeLogReports {
    let mut reports = NodeLogReports::default();
    for (n, line) in text.lines().enumerate() {
        match parse_line(node, line) {
            Ok(Some(run)) => reports.runs.push(run),
            Ok(None) => {}
            Err(why) => reports
                .malformed
                .push(InputError::new(source, Some(n + 1), why)),
        }
    }
    reports
}

/// Reads every `<node>.log` in a `node-logs/` directory, in name order; an unreadable
/// directory or file is an error.
pub fn read_node_logs(dir: &Path) -> Result<NodeLogReports, InputError> {
    let source = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError::new(&source, None, format!("cannot read the directory: {e}")))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut reports = NodeLogReports::default();
    for file in files {
        let node = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .map_err(|e| InputError::new(&source, None, format!("cannot read: {e}")))?;
        let found = parse_node_log(&node, &text, &source);
        reports.runs.extend(found.runs);
        reports.malformed.extend(found.malformed);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(node: &str, from: u64, to: u64, term: u64) -> AppliedRun {
        AppliedRun {
            node: node.into(),
            log: "raft".into(),
            from,
            to,
            term,
            at: "0".into(),
        }
    }

    #[test]
    fn an_index_applied_with_two_terms_is_caught_whatever_the_batching() {
        let r = check(&[
            run("n1", 1, 3, 1),
            run("n1", 4, 4, 2),
            run("n2", 1, 1, 1),
            run("n2", 2, 4, 1),
        ]);
        // n2 says index 4 has term 1, n1 said term 2.
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.disagreement_count, 1);
        assert_eq!(r.disagreements[0].index, 4);
        let ok = check(&[run("n1", 1, 3, 1), run("n2", 1, 2, 1), run("n2", 3, 3, 1)]);
        assert_eq!(ok.validity, Validity::Valid);
        assert_eq!(ok.indices_checked, 3);
    }

    #[test]
    fn the_explanation_names_both_nodes_and_terms() {
        let r = check(&[run("n1", 5, 7, 3), run("n4", 6, 6, 4)]);
        let text = r.disagreements[0].explanation();
        assert!(text.contains("index 6"), "{text}");
        assert!(text.contains("n1 applied the entry of term 3"), "{text}");
        assert!(text.contains("n4 applied an entry of term 4"), "{text}");
        assert_eq!(r.to_json()["valid"], false);
    }

    #[test]
    fn logs_are_independent() {
        let mut other = run("n2", 1, 1, 9);
        other.log = "group-2".into();
        assert_eq!(
            check(&[run("n1", 1, 1, 1), other]).validity,
            Validity::Valid
        );
    }

    #[test]
    fn node_logs_parse_and_malformed_reports_name_their_line() {
        let text = "10 raft-leader {\"term\":1}\n\
                    12 log-applied {\"log\":\"raft\",\"from\":1,\"to\":2,\"term\":1}\n";
        let found = parse_node_log("n1", text, "n1.log");
        assert_eq!(
            found.runs,
            vec![AppliedRun {
                at: "12".into(),
                ..run("n1", 1, 2, 1)
            }]
        );
        assert!(found.malformed.is_empty());
        // A torn or wrong report is kept aside, naming its file and line; the others count.
        let bad = "1 x {}\n\
                   2 log-applied {\"log\":\"raft\",\"from\":3,\"to\":2,\"term\":1}\n\
                   3 log-applied {\"log\":\"ra\n\
                   4 log-applied {\"log\":\"raft\",\"from\":1,\"to\":1,\"term\":2}\n";
        let found = parse_node_log("n1", bad, "n1.log");
        assert_eq!(found.runs.len(), 1);
        let lines: Vec<_> = found.malformed.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(2), Some(3)]);
        assert!(found.malformed[0].to_string().contains("n1.log:2"));
    }
}
