//! `cargo xtask fuzz`: seed each target from `corpus/`, replay the seeds, fuzz briefly;
//! `cargo xtask fuzz-grow`: fuzz longer and keep the new inputs that add coverage as
//! seeds; `cargo xtask fuzz-seed-dirs DIR`: write every target's seeds into `DIR/<target>`
//! (the ClusterFuzzLite build zips them).
//!
//! Which files seed a target is `vmsnap_testkit::fuzz_seeds`' rule (shared with the
//! stable replay test); gzipped samples whose content is at most 4 MiB are decompressed.
//! Each target gets its dictionary `fuzz/dicts/<target>.dict` when there is one. Leak
//! detection stays on (AddressSanitizer's default, passed explicitly); a failure names the
//! target and the input that reproduces it (`target/fuzz-artifacts/<target>/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vmsnap_testkit::fuzz_seeds::{own_dir_or_new, seeds};

use crate::{root, sh};

/// The committed-seed caps (docs/fuzzing.md).
const SEED_FILE_CAP: u64 = 64 << 10;
const SEED_TARGET_CAP: u64 = 10 << 20;

/// Writes `target`'s seeds into `into` (emptied first); false when a gzipped one fails.
pub fn write_seeds(target: &str, into: &Path) -> bool {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).unwrap();
    let mut ok = true;
    for s in seeds(target) {
        let dest = into.join(s.name.trim_end_matches(".gz"));
        if s.gzipped {
            let out = Command::new("gzip").arg("-dc").arg(&s.path).output();
            match out {
                Ok(o) if o.status.success() => std::fs::write(&dest, o.stdout).unwrap(),
                _ => {
                    eprintln!("xtask: cannot decompress {}", s.path.display());
                    ok = false;
                }
            }
        } else {
            std::fs::copy(&s.path, &dest).unwrap();
        }
    }
    ok
}

/// The target directory fuzz builds share with the workspace (contract: one shared
/// target directory for cargo, maturin and fuzz builds): `$CARGO_TARGET_DIR`, else the
/// workspace's `target/`. The sanitizer and coverage builds land in their own
/// `x86_64-unknown-linux-gnu/` subdirectories there, so nothing collides.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo +nightly fuzz ARGS` in `fuzz/`, building into [`target_dir`].
pub fn cargo_fuzz(args: &[&str]) -> Command {
    let mut c = Command::new("cargo");
    c.args(["+nightly", "fuzz"])
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(root().join("fuzz"));
    c
}

/// Every fuzz target, as `cargo fuzz list` prints them.
pub fn targets() -> Vec<String> {
    let out = cargo_fuzz(&["list"])
        .output()
        .expect("cargo fuzz is not installed (cargo install cargo-fuzz --locked)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The targets that read every format: their dictionary is every file of `fuzz/dicts`
/// joined (the formats' magics and GUIDs, and `inspect.dict`: what `check` detects).
const EVERY_FORMAT: &[&str] = &["stack", "check_streaming"];

/// The dictionary of `target`, when it has one: `fuzz/dicts/<target>.dict`, or for
/// [`EVERY_FORMAT`] targets all of them joined into `target/fuzz-dicts/<target>.dict`.
/// Typed targets (`x86_paging`, `segment_map`) and the record-stream decoder (`xpress`)
/// read no magics and have none.
pub fn dict_file(target: &str) -> Option<PathBuf> {
    let dicts = root().join("fuzz/dicts");
    if !EVERY_FORMAT.contains(&target) {
        let d = dicts.join(format!("{target}.dict"));
        return d.is_file().then_some(d);
    }
    let mut joined = String::new();
    for f in files(&dicts)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "dict"))
    {
        joined.push_str(&std::fs::read_to_string(&f).ok()?);
        joined.push('\n');
    }
    let out = root().join("target/fuzz-dicts");
    std::fs::create_dir_all(&out).ok()?;
    let d = out.join(format!("{target}.dict"));
    std::fs::write(&d, joined).ok()?;
    Some(d)
}

/// The dictionary option for `target`, when it has one.
pub fn dict_arg(target: &str) -> Option<String> {
    dict_file(target).map(|d| format!("-dict={}", d.display()))
}

/// The libFuzzer options every run shares.
fn limits() -> Vec<String> {
    [
        "-rss_limit_mb=2048",
        "-malloc_limit_mb=2048",
        "-timeout=10",
        "-detect_leaks=1",
    ]
    .map(String::from)
    .to_vec()
}

/// `cargo +nightly fuzz run -O TARGET` in `fuzz/`.
fn fuzz_run(target: &str) -> Command {
    cargo_fuzz(&["run", "-O", target])
}

/// The artifact directory of `target` (ends with `/`, as libFuzzer's prefix wants).
fn artifacts(target: &str) -> PathBuf {
    let d = root().join("target/fuzz-artifacts").join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Says which target failed and which inputs reproduce it.
fn report_failure(target: &str, what: &str, before: &[PathBuf]) {
    let dir = artifacts(target);
    let new: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    eprintln!("xtask: FUZZ FAILURE: target `{target}` failed while {what}");
    if new.is_empty() {
        eprintln!("xtask:   no artifact written (see the libFuzzer output above)");
    }
    for a in new {
        eprintln!("xtask:   artifact: {}", a.display());
        eprintln!(
            "xtask:   reproduce: (cd fuzz && cargo +nightly fuzz run -O {target} {})",
            a.display()
        );
    }
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
    if !sh(&mut cargo_fuzz(&["build", "-O"])) {
        eprintln!("xtask: FUZZ FAILURE: the fuzz targets do not build");
        return false;
    }
    let mut failed = Vec::new();
    for t in targets()
        .into_iter()
        .filter(|t| only.as_ref().is_none_or(|o| o == t))
    {
        let seeds_dir = root().join("target/fuzz-seeds").join(&t);
        if !write_seeds(&t, &seeds_dir) {
            failed.push(t.clone());
            continue;
        }
        let work = root().join("target/fuzz-work").join(&t);
        std::fs::create_dir_all(&work).unwrap();
        let art = artifacts(&t);
        let prefix = format!("-artifact_prefix={}/", art.display());
        let before = files(&art);
        // Replay every seed once.
        let replay = sh(fuzz_run(&t)
            .arg(&seeds_dir)
            .arg("--")
            .args(["-runs=0", &prefix])
            .args(limits()));
        if !replay {
            report_failure(&t, "replaying its seeds", &before);
            failed.push(t);
            continue;
        }
        if !replay_only && seconds > 0 {
            let fuzzed = sh(fuzz_run(&t)
                .arg(&work)
                .arg(&seeds_dir)
                .arg("--")
                .args([
                    format!("-max_total_time={seconds}"),
                    "-print_final_stats=1".into(),
                    prefix,
                ])
                .args(dict_arg(&t))
                .args(limits()));
            if !fuzzed {
                report_failure(&t, &format!("fuzzing for {seconds} s"), &before);
                failed.push(t);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("xtask: fuzz targets that failed: {}", failed.join(", "));
    }
    failed.is_empty()
}

/// `cargo xtask fuzz-grow [TARGET] [--seconds N]`: fuzz each target for N seconds
/// (default 300) from its seeds and the previous runs' corpus, then merge: the inputs
/// that add coverage over the current seeds, up to 64 KiB each, join the target's own
/// seed directory (within 10 MiB a target). Review and commit them.
pub fn grow(args: &[String]) -> bool {
    let mut seconds = 300u64;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(300),
            t => only = Some(t.to_string()),
        }
    }
    if !sh(&mut cargo_fuzz(&["build", "-O"])) {
        return false;
    }
    let mut ok = true;
    for t in targets()
        .into_iter()
        .filter(|t| only.as_ref().is_none_or(|o| o == t))
    {
        let seeds_dir = root().join("target/fuzz-seeds").join(&t);
        ok &= write_seeds(&t, &seeds_dir);
        let work = root().join("target/fuzz-work").join(&t);
        std::fs::create_dir_all(&work).unwrap();
        let prefix = format!("-artifact_prefix={}/", artifacts(&t).display());
        ok &= sh(fuzz_run(&t)
            .arg(&work)
            .arg(&seeds_dir)
            .arg("--")
            .args([
                format!("-max_total_time={seconds}"),
                "-max_len=65536".into(),
                prefix,
            ])
            .args(dict_arg(&t))
            .args(limits()));
        // Merge into a copy of the seeds: what lands there beyond them is new coverage.
        let merged = root().join("target/fuzz-merge").join(&t);
        let _ = std::fs::remove_dir_all(&merged);
        std::fs::create_dir_all(&merged).unwrap();
        for f in files(&seeds_dir) {
            std::fs::copy(&f, merged.join(f.file_name().unwrap())).unwrap();
        }
        let known = files(&merged);
        ok &= sh(fuzz_run(&t)
            .arg(&merged)
            .arg(&work)
            .arg("--")
            .args(["-merge=1".to_string(), "-max_len=65536".into()])
            .args(limits()));
        let own = own_dir_or_new(&t);
        std::fs::create_dir_all(&own).unwrap();
        let mut used: u64 = files(&own)
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        let mut added = 0;
        for f in files(&merged).into_iter().filter(|f| !known.contains(f)) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if len > SEED_FILE_CAP || used + len > SEED_TARGET_CAP {
                continue;
            }
            let name = format!("grown-{}", f.file_name().unwrap().to_string_lossy());
            std::fs::copy(&f, own.join(name)).unwrap();
            used += len;
            added += 1;
        }
        eprintln!(
            "xtask: {t}: {added} new seeds in {} ({used} bytes)",
            own.display()
        );
    }
    ok
}

/// `cargo xtask fuzz-seed-dirs DIR`: every target's seeds into `DIR/<target>/` and its
/// dictionary, when it has one, into `DIR/<target>.dict`, without needing cargo-fuzz
/// (the target list is `vmsnap_fuzzing`'s, read from `fuzz/`).
pub fn seed_dirs(args: &[String]) -> bool {
    let Some(out) = args.first() else {
        eprintln!("usage: cargo xtask fuzz-seed-dirs DIR");
        return false;
    };
    let out = PathBuf::from(out);
    let mut ok = true;
    for t in target_files() {
        ok &= write_seeds(&t, &out.join(&t));
        if let Some(d) = dict_file(&t) {
            ok &= std::fs::copy(d, out.join(format!("{t}.dict"))).is_ok();
        }
    }
    ok
}

/// The target names from `fuzz/fuzz_targets/*.rs`.
pub fn target_files() -> Vec<String> {
    let mut v: Vec<String> = files(&root().join("fuzz/fuzz_targets"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    v.sort();
    v
}
