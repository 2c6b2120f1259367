//! `verity check`: check history files, one verdict line per file, then explanations.

use crate::cli::{CheckArgs, parse_bytes};
use crate::exit::{self, Failure};
use checkers::Validity;
use checkers::linearizability::{self, ModelKind};
use checkers::registry::{self, CHECKERS, Checker};
use std::io::Write;
use std::time::{Duration, Instant};

/// Builds the linearizability options from the command line, rejecting bad values up front.
pub fn options_from_args(args: &CheckArgs) -> Result<linearizability::Options, Failure> {
    let model: ModelKind = args
        .model
        .parse()
        .map_err(|e: String| Failure::bad_arguments(format!("--model: {e}")))?;
    let mut opts = linearizability::Options::new(model);
    if let Some(init) = &args.init {
        let v: serde_json::Value = serde_json::from_str(init)
            .or_else(|_| serde_json::from_str(&format!("\"{init}\"")))
            .map_err(|e| Failure::bad_arguments(format!("--init: not JSON: {e}")))?;
        opts.init = Some(v);
    }
    if let Some(secs) = args.time_limit {
        if !(secs.is_finite() && secs > 0.0) {
            return Err(Failure::bad_arguments(format!(
                "--time-limit: expected a positive number of seconds, got {secs}"
            )));
        }
        opts.time_limit = Some(Duration::from_secs_f64(secs));
    }
    if let Some(m) = &args.memory_limit {
        opts.memory_limit = Some(parse_bytes(m).map_err(Failure::bad_arguments)?);
    }
    if let Some(t) = args.threads {
        if t == 0 {
            return Err(Failure::bad_arguments("--threads: must be at least 1"));
        }
        opts.threads = Some(t);
    }
    Ok(opts)
}

/// The checker `--checker` names, with its options.
pub fn checker_from_args(args: &CheckArgs) -> Result<Checker, Failure> {
    let elle_opts = || -> Result<checkers::elle::Options, Failure> {
        let models: Vec<&str> = args
            .consistency_models
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        let known = checkers::elle::models::known_models();
        if let Some(bad) = models.iter().find(|m| !known.contains(**m)) {
            let known: Vec<&str> = known.into_iter().collect();
            return Err(Failure::bad_arguments(format!(
                "--consistency-models: unknown model {bad:?}; known: {}",
                known.join(", ")
            )));
        }
        Ok(checkers::elle::Options::models(&models))
    };
    Ok(match args.checker.as_str() {
        "linearizability" => Checker::Linearizability(options_from_args(args)?),
        "list-append" => Checker::ListAppend(elle_opts()?),
        "rw-register" => Checker::RwRegister(elle_opts()?),
        "external-consistency" => Checker::ExternalConsistency,
        "bank" => Checker::Bank(checkers::bank::BankOptions {
            total: args.total,
            ..Default::default()
        }),
        "version-vectors" => Checker::VersionVectors,
        "stats" => Checker::Stats,
        other => {
            let names: Vec<&str> = CHECKERS.iter().map(|(n, _)| *n).collect();
            return Err(Failure::bad_arguments(format!(
                "--checker: unknown checker {other:?}; known: {}",
                names.join(", ")
            )));
        }
    })
}

/// `--checker log-agreement`: each input is a run directory or its `node-logs/`.
fn run_log_agreement(args: &CheckArgs, out: &mut impl Write) -> Result<i32, Failure> {
    let mut overall = Validity::Valid;
    let mut input_error = false;
    let mut explanations = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let dir = if path.join("node-logs").is_dir() {
            path.join("node-logs")
        } else {
            path.clone()
        };
        let started = Instant::now();
        match checkers::log_agreement::read_node_logs(&dir) {
            Ok(reports) if reports.runs.is_empty() => {
                input_error = true;
                writeln!(out, "{name}	error	0").map_err(io_failure)?;
                explanations.push(format!(
                    "== {name}
error: no log-applied reports in {}",
                    dir.display()
                ));
            }
            Ok(reports) => {
                let result = checkers::log_agreement::check(&reports.runs);
                overall = overall.combine(result.validity);
                let ms = started.elapsed().as_millis();
                writeln!(out, "{name}	{}	{ms}", result.validity).map_err(io_failure)?;
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&result.to_json()).unwrap_or_default()
                    )
                    .map_err(io_failure)?;
                } else if let Some(d) = result.disagreements.first() {
                    explanations.push(format!(
                        "== {name}
{} ({} disagreeing indices)",
                        d.explanation(),
                        result.disagreement_count
                    ));
                }
                for e in reports.malformed.iter().take(3) {
                    explanations.push(format!(
                        "== {name}
set aside (torn or malformed): {e}"
                    ));
                }
            }
            Err(e) => {
                input_error = true;
                writeln!(out, "{name}	error	0").map_err(io_failure)?;
                explanations.push(format!(
                    "== {name}
error: {e}"
                ));
            }
        }
    }
    for e in explanations {
        writeln!(out, "\n{e}").map_err(io_failure)?;
    }
    Ok(exit_code(overall, input_error))
}

/// Runs the command; returns the exit code. Unreadable input is exit 254 after checking the rest.
pub fn run(args: &CheckArgs, out: &mut impl Write) -> Result<i32, Failure> {
    if args.checker == "log-agreement" {
        return run_log_agreement(args, out);
    }
    let checker = checker_from_args(args)?;
    if args.report.is_some() && args.files.len() != 1 {
        return Err(Failure::bad_arguments(
            "--report draws one history: give exactly one file",
        ));
    }
    let format = args.format.to_format();
    let mut overall = Validity::Valid;
    let mut input_error = false;
    let mut explanations = Vec::new();
    let mut json_results = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let outcome = checkers::History::read(path, format).and_then(|history| {
            let started = Instant::now();
            let result = registry::run(&checker, &history).map_err(|e| e.in_source(&name))?;
            Ok((result, started.elapsed(), history))
        });
        match outcome {
            Ok((result, elapsed, history)) => {
                if let Some(out_path) = &args.report {
                    write_report(args, path, &history, &result.result, out_path)?;
                }
                overall = overall.combine(result.validity);
                let line = format!("{name}\t{}\t{}", result.validity, elapsed.as_millis());
                writeln!(out, "{line}").map_err(io_failure)?;
                if args.json {
                    let mut j = result.result.clone();
                    if let Some(obj) = j.as_object_mut() {
                        obj.insert("file".into(), name.clone().into());
                        obj.insert("ms".into(), (elapsed.as_millis() as u64).into());
                    }
                    json_results.push(j);
                } else if result.validity != Validity::Valid {
                    explanations.push(format!("== {name}\n{}", result.explanation));
                }
            }
            Err(e) => {
                input_error = true;
                writeln!(out, "{name}\terror\t0").map_err(io_failure)?;
                if args.json {
                    json_results.push(serde_json::json!({"file": name, "error": e.to_string()}));
                } else {
                    explanations.push(format!("== {name}\nerror: {e}"));
                }
            }
        }
    }
    if args.json {
        let doc = if json_results.len() == 1 {
            json_results.pop().unwrap_or_default()
        } else {
            serde_json::Value::Array(json_results)
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )
        .map_err(io_failure)?;
    } else {
        for e in explanations {
            writeln!(out, "\n{e}").map_err(io_failure)?;
        }
    }
    Ok(exit_code(overall, input_error))
}

/// `--report OUT.html`: the same report a stored run gets, for this history.
fn write_report(
    args: &CheckArgs,
    path: &std::path::Path,
    history: &checkers::History,
    result: &serde_json::Value,
    out_path: &std::path::Path,
) -> Result<(), Failure> {
    let mut options = vec![("model".to_string(), args.model.clone())];
    let mut repro = format!("verity check --model {}", args.model);
    if let Some(init) = &args.init {
        options.push(("init".into(), init.clone()));
        repro.push_str(&format!(" --init '{init}'"));
    }
    if let Some(secs) = args.time_limit {
        options.push(("time limit".into(), format!("{secs} s")));
    }
    repro.push_str(&format!(" {}", path.display()));
    let html = crate::report::render_check(history, path, result, options, repro)
        .map_err(Failure::internal)?;
    std::fs::write(out_path, html)
        .map_err(|e| Failure::internal(format!("writing {}: {e}", out_path.display())))
}

/// Invalid wins; then unreadable input (254); then unknown; else valid.
fn exit_code(overall: Validity, input_error: bool) -> i32 {
    match overall {
        Validity::Invalid => exit::INVALID,
        _ if input_error => exit::BAD_ARGUMENTS,
        Validity::Unknown => exit::UNKNOWN,
        Validity::Valid => exit::VALID,
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::internal(format!("writing output: {e}"))
}
