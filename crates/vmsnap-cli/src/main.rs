//! `vmsnap`: open virtual disks, memory snapshots and VM configuration stores, stack their
//! layers automatically, and read, convert, map and inspect them.
//!
//! Exit codes: 0 ok; 1 findings (for `info` and `check`: an unsafe finding); 2 error
//! (the input could not be opened or read, or the arguments were wrong).

// The CLI indexes only `serde_json::Value`s, whose `Index` returns `Null` instead of
// panicking; file data is read through the libraries' checked readers.
#![allow(clippy::indexing_slicing)]

mod cat;
mod check;
mod cli;
mod completions;
mod convert;
mod export;
mod formats;
mod info;
mod input;
mod interrupt;
mod json;
mod map;
mod meta;
mod open;
mod ordered;
mod output;
mod serve;
mod summary;
mod translate;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use vmsnap::core::Error;

use crate::cli::{Cli, Command};

/// What a command ends with.
#[derive(Debug)]
pub enum Outcome {
    /// Done, nothing to report.
    Ok,
    /// Done, and findings that make the input unsafe.
    Findings,
    /// The command failed after printing its report, which holds the error (`info` on an
    /// image that could not be opened, `check` that could not inspect): exit code 2, and
    /// the error's line on stderr.
    Failed(Error),
    /// The command failed and its report already said why on stdout (`check` in text
    /// mode): exit code 2, nothing more printed.
    Reported,
}

impl Command {
    /// Whether the command prints JSON (`--json` or `--output=json`).
    fn json(&self) -> bool {
        match self {
            Command::Info(a) => a.json,
            Command::Check(a) => a.json,
            Command::Map(a) => a.json,
            Command::Meta(a) => a.json,
            Command::Formats(a) => a.json,
            Command::Translate(a) => a.json,
            Command::Convert(_) | Command::Cat(_) | Command::Completions(_) => false,
            Command::Serve(_) => false,
        }
    }

    /// The input file, which an error names when it names no other.
    fn input(&self) -> Option<&Path> {
        match self {
            Command::Info(a) => Some(&a.open.file),
            Command::Check(a) => Some(&a.file),
            Command::Map(a) => Some(&a.open.file),
            Command::Meta(a) => Some(&a.open.file),
            Command::Translate(a) => Some(&a.open.file),
            Command::Convert(a) => Some(&a.open.file),
            Command::Cat(a) => Some(&a.open.file),
            Command::Formats(_) | Command::Completions(_) => None,
            Command::Serve(a) => Some(&a.open.file),
        }
    }
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = match Cli::try_parse_from(cli::qemu_img_spellings(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let verbose = cli.verbose;
    let json = cli.command.json();
    let input = cli.command.input().map(Path::to_path_buf);
    let result = match &cli.command {
        Command::Info(a) => info::run(a),
        Command::Check(a) => check::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Map(a) => map::run(a),
        Command::Meta(a) => meta::run(a),
        Command::Formats(a) => formats::run(a),
        Command::Translate(a) => translate::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Serve(a) => serve::run(a),
    };
    let input = input.as_deref();
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Ok(Outcome::Reported) => ExitCode::from(2),
        Ok(Outcome::Failed(e)) => {
            output::print_error(&e, input, verbose);
            ExitCode::from(2)
        }
        Err(e) => {
            if json {
                // Nothing was printed on stdout yet: every command prints its JSON last.
                let _ = output::print_json(&json::error_document(&e, input));
            }
            output::print_error(&e, input, verbose);
            ExitCode::from(2)
        }
    }
}
