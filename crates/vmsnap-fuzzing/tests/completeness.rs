//! Every format crate (a crate that registers a plugin) has what a format needs besides
//! its code: the facade's feature, a fuzz target registered as a cargo-fuzz binary, a
//! criterion bench registered as a cargo bench, a corpus folder with its recipe and
//! samples, and golden `info --json` files. Registrations that exist as files but not as
//! cargo targets (what happened to the x86 bench and 17 fuzz targets) fail here too.
//! `cargo xtask new-format` makes all of them but the golden files (`cargo xtask golden`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use vmsnap_fuzzing::TARGETS;
use vmsnap_testkit::workspace_root;

/// The `name = "…"` of every `[[section]]` table in a Cargo.toml, with its `path` if given.
fn tables(manifest: &Path, section: &str) -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let header = format!("[[{section}]]");
    let mut out = Vec::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    let value = |l: &str| {
        l.split_once('=')
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            if let Some((Some(n), p)) = current.take() {
                out.push((n, p));
            }
            if line == header {
                current = Some((None, None));
            }
        } else if let Some((name, path)) = current.as_mut() {
            if line.starts_with("name ") || line.starts_with("name=") {
                *name = value(line);
            } else if line.starts_with("path ") || line.starts_with("path=") {
                *path = value(line);
            }
        }
    }
    if let Some((Some(n), p)) = current {
        out.push((n, p));
    }
    out
}

/// The short names (`qcow2` for `crates/vmsnap-qcow2`) of the crates that register a plugin.
fn format_crates() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(workspace_root().join("crates")).unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(short) = name.strip_prefix("vmsnap-") else {
            continue;
        };
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        if lib.contains("vmsnap_core::register_plugin!(") {
            out.push(short.to_string());
        }
    }
    out.sort();
    out
}

/// Whether `dir` holds at least one file for which `pick` holds.
fn has_file(dir: &Path, pick: impl Fn(&Path) -> bool) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .map(|e| e.path())
            // A bundle directory (a Parallels `.hdd` or `.pvm`) is a sample as a whole.
            .any(|p| {
                (p.is_file()
                    || p.join("DiskDescriptor.xml").is_file()
                    || p.join("config.pvs").is_file())
                    && pick(&p)
            })
    })
}

#[test]
fn every_format_crate_has_its_feature_fuzz_target_bench_corpus_and_golden_files() {
    let root = workspace_root();
    let formats = format_crates();
    assert!(formats.len() >= 13, "only {formats:?} register plugins");
    let facade_toml = std::fs::read_to_string(root.join("crates/vmsnap/Cargo.toml")).unwrap();
    let facade_lib = std::fs::read_to_string(root.join("crates/vmsnap/src/lib.rs")).unwrap();
    let default_features = facade_toml
        .lines()
        .find(|l| l.starts_with("default = ["))
        .unwrap_or("");
    let benches = tables(&root.join("benches/Cargo.toml"), "bench");
    let mut missing = Vec::new();
    for f in &formats {
        let mut lack = |what: String| missing.push(format!("vmsnap-{f}: {what}"));
        if !facade_toml.contains(&format!("{f} = [\"dep:vmsnap-{f}\"]"))
            || !default_features.contains(&format!("\"{f}\""))
        {
            lack("no default feature in crates/vmsnap/Cargo.toml".into());
        }
        if !facade_lib.contains(&format!("pub use vmsnap_{f} as {f};")) {
            lack("no re-export in crates/vmsnap/src/lib.rs".into());
        }
        let own = |t: &str| t == f || t.starts_with(&format!("{f}_"));
        let targets: Vec<&str> = TARGETS.iter().map(|t| t.name).filter(|t| own(t)).collect();
        if targets.is_empty() {
            lack(format!(
                "no fuzz target (`{f}` or `{f}_…` in vmsnap_fuzzing::TARGETS)"
            ));
        }
        let own_bench = tables(&root.join(format!("crates/vmsnap-{f}/Cargo.toml")), "bench");
        if !benches.iter().any(|(n, _)| n == f) && own_bench.is_empty() {
            lack(format!(
                "no bench (`[[bench]] name = \"{f}\"` in benches/Cargo.toml, or a [[bench]] \
                 in its own Cargo.toml)"
            ));
        }
        let corpus = root.join("corpus").join(f);
        if !corpus.join("make.sh").is_file() {
            lack(format!("no corpus/{f}/make.sh (the recipe of its samples)"));
        }
        if !has_file(&corpus, |p| !p.ends_with("make.sh")) {
            lack(format!("no sample in corpus/{f}/"));
        }
        if !has_file(&root.join("corpus/golden").join(f), |p| {
            p.extension().is_some_and(|e| e == "json")
        }) {
            lack(format!(
                "no golden file in corpus/golden/{f}/ (run `cargo xtask golden` and review)"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn fuzz_targets_and_cargo_fuzz_binaries_are_the_same() {
    let root = workspace_root();
    let mut bins: Vec<String> = tables(&root.join("fuzz/Cargo.toml"), "bin")
        .into_iter()
        .map(|(name, path)| {
            assert_eq!(
                path.as_deref(),
                Some(format!("fuzz_targets/{name}.rs").as_str()),
                "fuzz/Cargo.toml: [[bin]] {name}"
            );
            name
        })
        .collect();
    bins.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    targets.sort();
    assert_eq!(
        bins, targets,
        "fuzz/Cargo.toml's [[bin]] entries and vmsnap_fuzzing::TARGETS differ"
    );
}

#[test]
fn every_bench_file_is_a_cargo_bench() {
    let root = workspace_root();
    let registered: Vec<String> = tables(&root.join("benches/Cargo.toml"), "bench")
        .into_iter()
        .filter_map(|(_, p)| p)
        .collect();
    for e in std::fs::read_dir(root.join("benches/benches")).unwrap() {
        let p = e.unwrap().path();
        let rel = format!("benches/{}", p.file_name().unwrap().to_string_lossy());
        assert!(
            registered.contains(&rel),
            "{rel} has no [[bench]] in benches/Cargo.toml: it never runs"
        );
    }
    // Benches inside format crates: cargo finds `benches/<name>.rs` for `[[bench]] name`.
    for e in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = e.unwrap().path();
        let Ok(rd) = std::fs::read_dir(dir.join("benches")) else {
            continue;
        };
        let own = tables(&dir.join("Cargo.toml"), "bench");
        for f in rd {
            let stem = f
                .unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                own.iter().any(|(n, _)| *n == stem),
                "{}/benches/{stem}.rs has no [[bench]] (harness = false) in its Cargo.toml",
                dir.display()
            );
        }
    }
}
