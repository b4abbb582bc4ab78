//! What the binary's end-to-end tests share: running `vmsnap` from the workspace root and
//! reading what it printed. Each test file uses a part of it.
#![allow(dead_code)]
// Helpers outside `#[test]` functions, which clippy.toml's test allowances do not cover.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use vmsnap_testkit::workspace_root;

/// Runs the `vmsnap` binary of this build with `args`, from the workspace root (so
/// `corpus/…` paths work), and returns what it did.
pub fn vmsnap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

/// What the command printed on standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path as the `&str` an argument list takes.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
