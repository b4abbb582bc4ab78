//! `cargo xtask new-format` on a copy of the workspace (under `target/scaffold-test/`): the
//! scaffolded crate builds without warnings, its plugin registers through the facade
//! feature, its tests pass except the oracle test, which fails saying what to fill in, and
//! nothing outside the crate changes but the facade and the fuzz registration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vmsnap_testkit::{run_ok, workspace_root};

/// The scaffolded name: a format that exists nowhere else.
const NAME: &str = "toyfmt";

/// Copies what cargo needs of the workspace into `to`, keeping modification times (so the
/// build directory, kept between runs, stays fresh).
fn copy_workspace(to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("corpus")).unwrap();
    let root = workspace_root();
    let status = Command::new("cp")
        .arg("-a")
        .args(
            [
                "Cargo.toml",
                "Cargo.lock",
                "crates",
                "benches",
                "xtask",
                "fuzz",
            ]
            .map(|p| root.join(p)),
        )
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every file under `dir` (relative paths), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `cargo ARGS` in the copy, offline, with its own build directory.
fn cargo(ws: &Path, target: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO"))
        .arg(args[0])
        .arg("--offline")
        .args(&args[1..])
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", target)
        .env("RUSTFLAGS", "-D warnings")
        .output()
        .unwrap();
    eprintln!(
        "cargo {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    out
}

#[test]
fn a_scaffolded_format_builds_registers_and_waits_for_its_oracle() {
    let base = workspace_root().join("target").join("scaffold-test");
    let ws = base.join("ws");
    let target = base.join("target");
    copy_workspace(&ws);
    let before = files(&ws);

    run_ok(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["new-format", NAME, "--root"])
            .arg(&ws),
    );
    // A second run refuses: the crate exists.
    let again = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["new-format", NAME, "--root"])
        .arg(&ws)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // What changed outside the new crate: the facade and the fuzz registration, plus the
    // new corpus folder, fuzz target and dictionary.
    let root = workspace_root();
    let mut changed: Vec<String> = before
        .iter()
        .filter(|p| std::fs::read(ws.join(p)).unwrap() != std::fs::read(root.join(p)).unwrap())
        .map(|p| p.display().to_string())
        .collect();
    changed.sort();
    // The new format joins the end of the facade's default features.
    let facade_toml = std::fs::read_to_string(ws.join("crates/vmsnap/Cargo.toml")).unwrap();
    let default = facade_toml
        .lines()
        .find(|l| l.starts_with("default = ["))
        .unwrap();
    assert!(default.ends_with(&format!(", \"{NAME}\"]")), "{default}");
    assert_eq!(default.matches(&format!("\"{NAME}\"")).count(), 1);
    assert_eq!(
        changed,
        [
            "crates/vmsnap-fuzzing/src/lib.rs",
            "crates/vmsnap/Cargo.toml",
            "crates/vmsnap/src/lib.rs",
            "fuzz/Cargo.toml",
        ]
    );
    let added: Vec<String> = files(&ws)
        .into_iter()
        .filter(|p| !before.contains(p))
        .map(|p| p.display().to_string())
        .filter(|p| !p.starts_with(&format!("crates/vmsnap-{NAME}/")))
        .collect();
    assert_eq!(
        added,
        [
            format!("corpus/{NAME}/make.sh"),
            format!("corpus/{NAME}/sample.{NAME}"),
            format!("fuzz/dicts/{NAME}.dict"),
            format!("fuzz/fuzz_targets/{NAME}.rs"),
        ]
    );

    // Formatted as CI checks it.
    let fmt = Command::new(env!("CARGO"))
        .args(["fmt", "-p", &format!("vmsnap-{NAME}"), "--", "--check"])
        .current_dir(&ws)
        .status()
        .unwrap();
    assert!(fmt.success(), "the scaffolded crate is not rustfmt-clean");

    // The crate and its tests build without a warning (RUSTFLAGS=-D warnings), the hostile
    // tests pass, the oracle test fails saying what to fill in.
    let krate = format!("vmsnap-{NAME}");
    let test = cargo(&ws, &target, &["test", "-p", &krate, "--no-fail-fast"]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(!test.status.success(), "the oracle placeholder passed");
    assert!(
        stdout.contains("test the_sample_opens_and_every_read_path_holds ... ok")
            && stdout.contains("test damaged_headers_fail_with_their_kinds ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test samples_read_like_the_reference_reader ... FAILED")
            && stdout.contains("fill in the oracle"),
        "{stdout}"
    );
    // Clippy as CI runs it, on the crate's library and tests.
    let clippy = cargo(
        &ws,
        &target,
        &[
            "clippy", "-p", &krate, "--lib", "--tests", "--", "-D", "warnings",
        ],
    );
    assert!(clippy.status.success());
    // The facade registers its plugin when (only) its feature is on.
    let facade = cargo(
        &ws,
        &target,
        &[
            "test",
            "-p",
            "vmsnap",
            "--no-default-features",
            "--features",
            NAME,
            "--lib",
        ],
    );
    assert!(facade.status.success());
    assert!(String::from_utf8_lossy(&facade.stdout)
        .contains("registered_plugins_are_exactly_the_enabled_features ... ok"));
    // Its fuzz target's entry in vmsnap_fuzzing::TARGETS compiles.
    let fuzzing = cargo(&ws, &target, &["check", "-p", "vmsnap-fuzzing", "--lib"]);
    assert!(fuzzing.status.success());
    // Its own target directory holds a second build of the workspace (gigabytes): gone once
    // the test passed, kept for a look when it failed.
    let _ = std::fs::remove_dir_all(&base);
}
