//! `vmsnap completions SHELL`: a completion script generated from the same argument
//! definitions the parser uses, so it cannot drift.

use clap::CommandFactory;
use vmsnap::core::Result;

use crate::cli::{Cli, CompletionsArgs};
use crate::Outcome;

/// Runs `completions`.
pub fn run(args: &CompletionsArgs) -> Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "vmsnap", &mut std::io::stdout());
    Ok(Outcome::Ok)
}
