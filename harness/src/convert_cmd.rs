//! `verity convert IN OUT`: JSON Lines ⇄ Jepsen EDN.

use crate::cli::ConvertArgs;
use crate::exit::Failure;
use checkers::History;
use checkers::history::{edn, jsonl};
use std::io::{BufWriter, Write};

pub fn run(args: &ConvertArgs) -> Result<(), Failure> {
    let history = History::read(&args.input, args.format.to_format())?;
    let out_name = args.output.display().to_string();
    let file = std::fs::File::create(&args.output)
        .map_err(|e| Failure::bad_arguments(format!("{out_name}: cannot create: {e}")))?;
    let mut w = BufWriter::new(file);
    let is_edn = args.output.extension().and_then(|e| e.to_str()) == Some("edn");
    let written = if is_edn {
        edn::write_history(&history, &mut w)
    } else {
        jsonl::write(&history, &mut w)
    };
    written
        .and_then(|_| w.flush())
        .map_err(|e| Failure::internal(format!("{out_name}: write failed: {e}")))
}
