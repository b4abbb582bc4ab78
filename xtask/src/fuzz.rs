//! `cargo xtask fuzz`: seed each target from `corpus/`, replay the seeds, fuzz briefly.
//!
//! A target whose input is not a whole file (a RAM block's record stream, an XPRESS
//! stream) has its own seeds in `corpus/<format>/fuzz-seeds/<target>/`, written in its
//! input format by the format's recipe; those replace the format's sample files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, sh};

/// The target's own seeds, `corpus/<format>/fuzz-seeds/<target>`, relative to `corpus/`.
fn dedicated_seeds(target: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(root().join("corpus"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("fuzz-seeds").join(target).is_dir())
        .map(|e| format!("{}/fuzz-seeds/{target}", e.file_name().to_string_lossy()))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Which corpus directories (relative to `corpus/`) seed a target (`*` = all of them,
/// empty = none).
fn seed_dirs(target: &str) -> Vec<String> {
    if let Some(own) = dedicated_seeds(target) {
        return vec![own];
    }
    let direct = root().join("corpus").join(target);
    if direct.is_dir() {
        return vec![target.to_string()];
    }
    let by_prefix = target.split('_').next().unwrap_or(target);
    match target {
        "stack" | "check_streaming" => vec!["*".into()],
        "elf_core" => vec!["elf".into()],
        "x86_paging" | "segment_map" => vec![],
        _ if root().join("corpus").join(by_prefix).is_dir() => vec![by_prefix.to_string()],
        _ => vec![],
    }
}

fn copy_seeds(dirs: &[String], into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let corpus = root().join("corpus");
    let all: Vec<PathBuf> = if dirs.iter().any(|d| d == "*") {
        std::fs::read_dir(&corpus)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect()
    } else {
        dirs.iter().map(|d| corpus.join(d)).collect()
    };
    for d in all
        .into_iter()
        .filter(|d| d.is_dir() && !d.ends_with("golden"))
    {
        for f in std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
        {
            let small = f
                .metadata()
                .map(|m| m.is_file() && m.len() <= 4 << 20)
                .unwrap_or(false);
            if small {
                let name = format!(
                    "{}-{}",
                    d.strip_prefix(&corpus)
                        .unwrap_or(&d)
                        .to_string_lossy()
                        .replace('/', "-"),
                    f.file_name().unwrap().to_string_lossy()
                );
                std::fs::copy(&f, into.join(name)).unwrap();
            }
        }
    }
}

fn targets() -> Vec<String> {
    let out = Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(root().join("fuzz"))
        .output()
        .expect("cargo fuzz is not installed (cargo install cargo-fuzz)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs the fuzz task.
pub fn run(args: &[String]) -> bool {
    let mut seconds = 30u64;
    let mut replay_only = false;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(30),
            "--replay-only" => replay_only = true,
            t => only = Some(t.to_string()),
        }
    }
    let fuzz_dir = root().join("fuzz");
    if !sh(Command::new("cargo")
        .args(["+nightly", "fuzz", "build", "-O"])
        .current_dir(&fuzz_dir))
    {
        return false;
    }
    let mut ok = true;
    for t in targets()
        .into_iter()
        .filter(|t| only.as_ref().is_none_or(|o| o == t))
    {
        let seeds = root().join("target").join("fuzz-seeds").join(&t);
        let _ = std::fs::remove_dir_all(&seeds);
        copy_seeds(&seed_dirs(&t), &seeds);
        let work = root().join("target").join("fuzz-work").join(&t);
        std::fs::create_dir_all(&work).unwrap();
        let base = || {
            let mut c = Command::new("cargo");
            c.args(["+nightly", "fuzz", "run", "-O", &t])
                .current_dir(&fuzz_dir);
            c
        };
        // Replay every seed once.
        ok &= sh(base().arg(&seeds).args([
            "--",
            "-runs=0",
            "-rss_limit_mb=2048",
            "-malloc_limit_mb=2048",
        ]));
        if !replay_only && seconds > 0 {
            ok &= sh(base().arg(&work).arg(&seeds).args([
                "--".to_string(),
                format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048".into(),
                "-malloc_limit_mb=2048".into(),
                "-timeout=10".into(),
                "-print_final_stats=1".into(),
            ]));
        }
        if !ok {
            eprintln!("xtask: fuzz target {t} failed");
            return false;
        }
    }
    ok
}
