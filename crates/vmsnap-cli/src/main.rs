//! `vmsnap`: open virtual disks, memory snapshots and VM configuration stores, stack their
//! layers automatically, and read, convert, map and inspect them.
//!
//! Exit codes: 0 ok; 1 findings (for `info` and `check`: an unsafe finding); 2 error
//! (the input could not be opened or read, or the arguments were wrong).

// The CLI indexes only `serde_json::Value`s, whose `Index` returns `Null` instead of
// panicking; file data is read through the libraries' checked readers.
#![allow(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cat;
mod check;
mod cli;
mod convert;
mod formats;
mod info;
mod input;
mod interrupt;
mod map;
mod meta;
mod open;
mod ordered;
mod output;
mod translate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// What a command ends with.
#[derive(Debug)]
pub enum Outcome {
    /// Done, nothing to report.
    Ok,
    /// Done, and findings that make the input unsafe.
    Findings,
    /// `check` could not inspect the input (exit code 2, the report already printed).
    CouldNotInspect,
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let verbose = cli.verbose;
    let result = match cli.command {
        Command::Info(a) => info::run(&a),
        Command::Check(a) => check::run(&a),
        Command::Convert(a) => convert::run(&a),
        Command::Cat(a) => cat::run(&a),
        Command::Map(a) => map::run(&a),
        Command::Meta(a) => meta::run(&a),
        Command::Formats(a) => formats::run(&a),
        Command::Translate(a) => translate::run(&a),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Ok(Outcome::CouldNotInspect) => ExitCode::from(2),
        Err(e) => {
            output::print_error(&e, verbose);
            ExitCode::from(2)
        }
    }
}
