//! `cargo xtask`: the project's tasks.
//!
//! * `ci` — everything `.ci/run` does (it runs that script).
//! * `corpus` — rebuilds `corpus/` from the recipes (`corpus/*/make.sh`).
//! * `golden` — regenerates the golden `info --json` dumps under `corpus/golden/`.
//! * `fuzz [TARGET] [--seconds N] [--replay-only]` — replays each target's seeds, then
//!   fuzzes it for N seconds (default 30).
//! * `bench [ARGS…]` — the criterion benches.
//! * `bench-peers [--size-mib N] [--runs N] [--formats a,b]` — vmsnap against qemu-img on a
//!   realistic image per format; prints MiB/s and ratios.
//! * `compare-oslo` — `vmsnap check` beside OpenStack's format inspector on every corpus
//!   disk (`tools/compare-oslo.py`; the Python in `$OSLO_PYTHON`, default `python3`, needs
//!   `pip install oslo.utils cryptography`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod fuzz;
mod peers;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The workspace root.
pub fn root() -> PathBuf {
    vmsnap_testkit::workspace_root()
}

/// Runs a command in the workspace root; false when it fails.
pub fn sh(cmd: &mut Command) -> bool {
    eprintln!("xtask: {cmd:?}");
    match cmd.current_dir(root()).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: cannot run {cmd:?}: {e}");
            false
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <ci | corpus | golden | fuzz [TARGET] [--seconds N] [--replay-only] | bench [ARGS] | bench-peers [--size-mib N] [--runs N] [--formats a,b] | compare-oslo>"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let ok = match cmd.as_str() {
        "ci" => sh(Command::new("bash").arg(".ci/run")),
        "corpus" => corpus(),
        "golden" => sh(Command::new("cargo")
            .args(["test", "-p", "vmsnap-cli", "--test", "golden"])
            .env("VMSNAP_BLESS", "1")),
        "fuzz" => fuzz::run(rest),
        "bench" => sh(Command::new("cargo")
            .args(["bench", "-p", "vmsnap-benches"])
            .args(rest)),
        "bench-peers" => peers::run(rest),
        "compare-oslo" => {
            sh(Command::new("cargo").args(["build", "--release", "-p", "vmsnap-cli"]))
                && sh(Command::new(
                    std::env::var("OSLO_PYTHON").unwrap_or_else(|_| "python3".into()),
                )
                .arg("tools/compare-oslo.py")
                .arg("target/release/vmsnap"))
        }
        _ => return usage(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every `corpus/*/make.sh` (each is idempotent and regenerates its samples).
fn corpus() -> bool {
    let mut recipes: Vec<PathBuf> = std::fs::read_dir(root().join("corpus"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("make.sh")))
        .filter(|p| p.is_file())
        .collect();
    recipes.sort();
    let mut ok = true;
    for r in recipes {
        ok &= sh(Command::new("bash").arg(&r));
    }
    ok && sh(Command::new("cargo")
        .args(["test", "-p", "vmsnap-cli", "--test", "golden"])
        .env("VMSNAP_BLESS", "1"))
}
