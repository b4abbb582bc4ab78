//! `cargo xtask fuzz-coverage [TARGET…]`: how much of each parser the fuzz seeds reach.
//!
//! For each target, `cargo +nightly fuzz coverage` runs its seeds (the same files
//! `cargo xtask fuzz` uses) under source-based coverage and merges the profile with
//! `llvm-profdata-19`; `llvm-cov-19 export -format=lcov` then lists every executable
//! line of the binary with its count. Lines are joined over all targets (a line counts
//! as reached when any target reached it) and summed per crate, counting only files under
//! `crates/<crate>/src/` (tests are not compiled into the fuzz binaries, and the tests'
//! builders the structure-aware targets include live under `tests/`). Prints a Markdown
//! table; docs/fuzzing.md keeps the latest one. Needs Debian's `llvm-19`
//! (tools/setup.sh installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::fuzz::{cargo_fuzz, target_dir, target_files, write_seeds};
use crate::{root, sh};

/// Where Debian's llvm-19 keeps its unversioned tools.
const LLVM_BIN: &str = "/usr/lib/llvm-19/bin";

/// The crates reported (parsers and what they stand on).
fn reported(krate: &str) -> bool {
    krate.starts_with("vmsnap-") && !matches!(krate, "vmsnap-testkit" | "vmsnap-fuzzing")
}

/// Parts of a crate that no input of an image reaches by design, with the reason: the
/// table reports each crate over all its lines and over the rest (the input-reachable
/// part). docs/fuzzing.md explains each.
const NOT_INPUT_REACHABLE: &[(&str, &str)] = &[(
    "vmsnap-core/src/sink/",
    "output sinks: chosen by the output path's file type (regular file, block device, \
     FIFO, /dev/null, standard output), never by an image's bytes",
)];

/// Whether `file` lies in a part listed in [`NOT_INPUT_REACHABLE`].
fn excluded(file: &str) -> bool {
    NOT_INPUT_REACHABLE
        .iter()
        .any(|(part, _)| file.contains(&format!("/crates/{part}")))
}

/// Which executable lines of which file were reached: file → line → reached.
type Lines = BTreeMap<String, BTreeMap<u32, bool>>;

/// Folds an lcov report into `into`.
fn fold_lcov(text: &str, into: &mut Lines) {
    let mut file: Option<String> = None;
    for l in text.lines() {
        if let Some(f) = l.strip_prefix("SF:") {
            file = Some(f.to_string());
        } else if let (Some(da), Some(f)) = (l.strip_prefix("DA:"), file.as_ref()) {
            let mut it = da.split(',');
            let line = it.next().and_then(|s| s.parse::<u32>().ok());
            let count = it.next().and_then(|s| s.parse::<u64>().ok());
            if let (Some(line), Some(count)) = (line, count) {
                let e = into
                    .entry(f.clone())
                    .or_default()
                    .entry(line)
                    .or_insert(false);
                *e |= count > 0;
            }
        } else if l == "end_of_record" {
            file = None;
        }
    }
}

/// The crate a source file belongs to, when it is under `crates/<crate>/src/`.
fn crate_of(file: &str) -> Option<String> {
    let rel = file.strip_prefix(&format!("{}/", root().display()))?;
    let mut parts = rel.split('/');
    (parts.next()? == "crates").then_some(())?;
    let krate = parts.next()?;
    (parts.next()? == "src").then(|| krate.to_string())
}

/// Runs one target's seeds under coverage and folds its lines in; false on failure.
fn target_lines(target: &str, into: &mut Lines) -> bool {
    let seeds = root().join("target/fuzz-seeds").join(target);
    if !write_seeds(target, &seeds) {
        return false;
    }
    if std::fs::read_dir(&seeds).map_or(0, |d| d.count()) == 0 {
        eprintln!("xtask: {target} has no seeds; skipped");
        return true;
    }
    let fuzz = root().join("fuzz");
    if !sh(cargo_fuzz(&["coverage", "-O", target])
        .arg(&seeds)
        .args(["--llvm-path", LLVM_BIN]))
    {
        return false;
    }
    let profdata = fuzz.join("coverage").join(target).join("coverage.profdata");
    // cargo-fuzz builds coverage binaries under the shared target directory.
    let binary = target_dir().join(format!(
        "x86_64-unknown-linux-gnu/coverage/x86_64-unknown-linux-gnu/release/{target}"
    ));
    let out = Command::new("llvm-cov-19")
        .args(["export", "-format=lcov", "-skip-functions"])
        .arg(format!("-instr-profile={}", profdata.display()))
        .arg(&binary)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            fold_lcov(&String::from_utf8_lossy(&o.stdout), into);
            true
        }
        Ok(o) => {
            eprintln!(
                "xtask: llvm-cov-19 failed on {target}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("xtask: cannot run llvm-cov-19 ({e}); run tools/setup.sh");
            false
        }
    }
}

/// Writes `target/fuzz-coverage/files.tsv` (crate, file, lines reached, executable lines)
/// and `target/fuzz-coverage/missed.txt` (each file's unreached lines), to see where a
/// crate's gaps are.
fn write_per_file(lines: &Lines) {
    let dir = root().join("target/fuzz-coverage");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tsv = String::new();
    let mut missed = String::new();
    for (file, ls) in lines {
        let Some(k) = crate_of(file) else { continue };
        let hit = ls.values().filter(|&&r| r).count();
        tsv.push_str(&format!("{k}\t{file}\t{hit}\t{}\n", ls.len()));
        let gaps: Vec<String> = ls
            .iter()
            .filter(|(_, &r)| !r)
            .map(|(l, _)| l.to_string())
            .collect();
        missed.push_str(&format!("{file}: {}\n", gaps.join(" ")));
    }
    std::fs::write(dir.join("files.tsv"), tsv).unwrap();
    std::fs::write(dir.join("missed.txt"), missed).unwrap();
}

/// Runs the coverage task over `args` (target names; all when empty).
pub fn run(args: &[String]) -> bool {
    let all = target_files();
    let chosen: Vec<String> = if args.is_empty() {
        all
    } else {
        all.into_iter().filter(|t| args.contains(t)).collect()
    };
    let mut lines = Lines::new();
    let mut ok = true;
    let mut reached_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &chosen {
        let mut mine = Lines::new();
        ok &= target_lines(t, &mut mine);
        for (file, ls) in mine {
            if let Some(k) = crate_of(&file) {
                if ls.values().any(|&r| r) {
                    reached_by.entry(k).or_default().insert(t.clone());
                }
            }
            let e = lines.entry(file).or_default();
            for (l, r) in ls {
                *e.entry(l).or_insert(false) |= r;
            }
        }
    }
    write_per_file(&lines);
    // crate → (reached, executable) over all lines, and over the input-reachable part.
    let mut per_crate: BTreeMap<String, [(usize, usize); 2]> = BTreeMap::new();
    for (file, ls) in &lines {
        let Some(k) = crate_of(file) else { continue };
        if !reported(&k) {
            continue;
        }
        let (hit, all) = (ls.values().filter(|&&r| r).count(), ls.len());
        let e = per_crate.entry(k).or_default();
        e[0].0 += hit;
        e[0].1 += all;
        if !excluded(file) {
            e[1].0 += hit;
            e[1].1 += all;
        }
    }
    let pct = |(hit, all): (usize, usize)| {
        if all == 0 {
            0.0
        } else {
            100.0 * hit as f64 / all as f64
        }
    };
    println!(
        "| crate | lines reached | executable lines | line coverage | input-reachable part | targets reaching it |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (k, [whole, reachable]) in &per_crate {
        let by: Vec<String> = reached_by.get(k).into_iter().flatten().cloned().collect();
        let part = if reachable == whole {
            "(all)".to_string()
        } else {
            format!(
                "{:.1}% ({} of {})",
                pct(*reachable),
                reachable.0,
                reachable.1
            )
        };
        println!(
            "| {k} | {} | {} | {:.1}% | {part} | {} |",
            whole.0,
            whole.1,
            pct(*whole),
            by.join(", ")
        );
    }
    for (part, why) in NOT_INPUT_REACHABLE {
        println!("\nNot input-reachable (excluded from the part): `crates/{part}`: {why}.");
    }
    ok
}
