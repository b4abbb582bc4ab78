//! `cargo xtask new-format NAME [--root DIR]`: scaffolds a working format crate and
//! registers it.
//!
//! Written from `xtask/templates/format/` (`fmtname` → NAME, `Fmtname` → its capitalised
//! form): the crate `crates/vmsnap-NAME` (raw layout, header, reader, plugin with its
//! probe, an oracle test that fails until it names its reference reader, hostile-input
//! tests, its criterion bench), `corpus/NAME/make.sh` (run once, so the sample exists),
//! the fuzz target `fuzz/fuzz_targets/NAME.rs` with its `[[bin]]` and dictionary. Outside
//! the new crate it edits only the facade (`crates/vmsnap/Cargo.toml`: the feature, on by
//! default, and the dependency; `crates/vmsnap/src/lib.rs`: the re-export and the expected
//! plugin name) and the registration of the fuzz target (one `TARGETS` entry in
//! `crates/vmsnap-fuzzing/src/lib.rs`, one `[[bin]]` in `fuzz/Cargo.toml`). The tests that
//! keep this true: `xtask/tests/new_format.rs` (the scaffold builds, registers, and its
//! oracle test fails as designed) and `crates/vmsnap-fuzzing/tests/completeness.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Template file → where it goes (with `fmtname` replaced).
const FILES: &[(&str, &str)] = &[
    (
        include_str!("../templates/format/Cargo.toml.in"),
        "crates/vmsnap-fmtname/Cargo.toml",
    ),
    (
        include_str!("../templates/format/lib.rs.in"),
        "crates/vmsnap-fmtname/src/lib.rs",
    ),
    (
        include_str!("../templates/format/raw.rs.in"),
        "crates/vmsnap-fmtname/src/raw.rs",
    ),
    (
        include_str!("../templates/format/header.rs.in"),
        "crates/vmsnap-fmtname/src/header.rs",
    ),
    (
        include_str!("../templates/format/layer.rs.in"),
        "crates/vmsnap-fmtname/src/layer.rs",
    ),
    (
        include_str!("../templates/format/plugin.rs.in"),
        "crates/vmsnap-fmtname/src/plugin.rs",
    ),
    (
        include_str!("../templates/format/oracle.rs.in"),
        "crates/vmsnap-fmtname/tests/oracle.rs",
    ),
    (
        include_str!("../templates/format/hostile.rs.in"),
        "crates/vmsnap-fmtname/tests/hostile.rs",
    ),
    (
        include_str!("../templates/format/bench.rs.in"),
        "crates/vmsnap-fmtname/benches/fmtname.rs",
    ),
    (
        include_str!("../templates/format/make.sh.in"),
        "corpus/fmtname/make.sh",
    ),
    (
        include_str!("../templates/format/fuzz_target.rs.in"),
        "fuzz/fuzz_targets/fmtname.rs",
    ),
    (
        include_str!("../templates/format/dict.in"),
        "fuzz/dicts/fmtname.dict",
    ),
];

/// Crates under `crates/` that are not formats (names a format may not take).
pub const NOT_FORMATS: &[&str] = &["cli", "core", "fuzzing", "inspect", "stack", "testkit"];

/// Runs the task; false (after saying why) on bad arguments or a failed step.
pub fn run(args: &[String]) -> bool {
    let mut name = None;
    let mut root = crate::root();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => match it.next() {
                Some(r) => root = PathBuf::from(r),
                None => return usage(),
            },
            _ if name.is_none() && !a.starts_with('-') => name = Some(a.clone()),
            _ => return usage(),
        }
    }
    let Some(name) = name else {
        return usage();
    };
    match scaffold(&root, &name) {
        Ok(()) => {
            eprintln!("{}", next_steps(&name));
            true
        }
        Err(e) => {
            eprintln!("xtask new-format: {e}");
            false
        }
    }
}

fn usage() -> bool {
    eprintln!("usage: cargo xtask new-format NAME [--root DIR]  (NAME: a-z then a-z0-9, 2 to 16 characters)");
    false
}

/// Why `name` cannot be a new format in the workspace at `root`, if it cannot.
fn refuse(root: &Path, name: &str) -> Option<String> {
    let mut chars = name.chars();
    let well_formed = (2..=16).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !well_formed {
        return Some(format!(
            "{name:?} is not a format name: a lower-case letter, then lower-case letters or \
             digits, 2 to 16 in all (it names the crate, feature, plugin, fuzz target, bench \
             and corpus folder)"
        ));
    }
    if NOT_FORMATS.contains(&name) {
        return Some(format!("vmsnap-{name} is not a format crate"));
    }
    let edited = [
        "crates/vmsnap/Cargo.toml",
        "crates/vmsnap/src/lib.rs",
        "crates/vmsnap-fuzzing/src/lib.rs",
        "fuzz/Cargo.toml",
    ];
    if let Some(absent) = edited.iter().find(|p| !root.join(p).is_file()) {
        return Some(format!(
            "{} is not the vmsnap workspace: it has no {absent}",
            root.display()
        ));
    }
    let facade = std::fs::read_to_string(root.join("crates/vmsnap/src/lib.rs")).unwrap_or_default();
    if facade.contains(&format!("\"{name}\"")) {
        return Some(format!("a plugin or feature called {name} exists already"));
    }
    let taken = [
        format!("crates/vmsnap-{name}"),
        format!("corpus/{name}"),
        format!("fuzz/fuzz_targets/{name}.rs"),
        format!("benches/benches/{name}.rs"),
    ];
    taken
        .iter()
        .find(|p| root.join(p).exists())
        .map(|p| format!("{p} exists already"))
}

/// Writes the crate and its files, and registers it.
pub fn scaffold(root: &Path, name: &str) -> Result<(), String> {
    if let Some(why) = refuse(root, name) {
        return Err(why);
    }
    let capitalised = name[..1].to_ascii_uppercase() + &name[1..];
    let fill = |t: &str| t.replace("Fmtname", &capitalised).replace("fmtname", name);
    for (template, dest) in FILES {
        let path = root.join(fill(dest));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, fill(template)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    register_in_facade(root, name)?;
    register_fuzz_target(root, name)?;
    // Long names make long lines: leave the files as `cargo fmt` (and CI's check) wants them.
    let rust_files: Vec<String> = FILES
        .iter()
        .map(|(_, dest)| fill(dest))
        .filter(|d| d.ends_with(".rs"))
        .chain(["crates/vmsnap-fuzzing/src/lib.rs".to_string()])
        .collect();
    let formatted = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(&rust_files)
        .current_dir(root)
        .status();
    if !formatted.is_ok_and(|s| s.success()) {
        eprintln!("xtask new-format: rustfmt failed; run cargo fmt --all");
    }
    let made = Command::new("bash")
        .arg(format!("corpus/{name}/make.sh"))
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run corpus/{name}/make.sh: {e}"))?;
    if !made.success() {
        return Err(format!("corpus/{name}/make.sh failed"));
    }
    Ok(())
}

/// Reads, edits and writes back `rel` under `root`.
fn edit(
    root: &Path,
    rel: &str,
    f: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), String> {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let new = f(&text).map_err(|e| format!("{rel}: {e}"))?;
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}

/// Inserts `what` after the last line of `text` for which `pick` holds.
fn insert_after_last(
    text: &str,
    pick: impl Fn(&str) -> bool,
    what: &str,
) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let last = (0..lines.len())
        .rev()
        .find(|&i| pick(lines[i]))
        .ok_or("no line to insert after")?;
    Ok(lines[..=last].concat() + what + &lines[last + 1..].concat())
}

/// `t` (the facade's `Cargo.toml`) with `name` appended to its one-line `default = [...]`
/// features, after the formats already there.
fn append_to_default(t: &str, name: &str) -> Result<String, String> {
    let mut found = false;
    let out = t
        .split_inclusive('\n')
        .map(|l| match l.trim_end().strip_suffix(']') {
            Some(list) if l.starts_with("default = [") && !found => {
                found = true;
                let sep = if list.ends_with('[') { "" } else { ", " };
                format!("{list}{sep}\"{name}\"]\n")
            }
            _ => l.to_string(),
        })
        .collect();
    if found {
        Ok(out)
    } else {
        Err("no one-line `default = [...]` in crates/vmsnap/Cargo.toml".into())
    }
}

/// The facade: one cargo feature (on by default) and one optional dependency in its
/// `Cargo.toml`; the re-export that links the crate and the expected plugin name in its
/// `lib.rs`.
fn register_in_facade(root: &Path, name: &str) -> Result<(), String> {
    edit(root, "crates/vmsnap/Cargo.toml", |t| {
        let t = append_to_default(t, name)?;
        let t = insert_after_last(
            &t,
            |l| l.starts_with("vmsnap-") && l.contains("optional = true"),
            &format!("vmsnap-{name} = {{ path = \"../vmsnap-{name}\", optional = true }}\n"),
        )?;
        // The features are the lines `x = ["dep:vmsnap-x"]`.
        insert_after_last(
            &t,
            |l| l.contains("= [\"dep:vmsnap-"),
            &format!("{name} = [\"dep:vmsnap-{name}\"]\n"),
        )
    })?;
    edit(root, "crates/vmsnap/src/lib.rs", |t| {
        let reexport = format!("#[cfg(feature = \"{name}\")]\npub use vmsnap_{name} as {name};\n");
        let lines: Vec<&str> = t.split_inclusive('\n').collect();
        let uses: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("pub use vmsnap_") && i > 0)
            .filter(|&i| lines[i - 1].starts_with("#[cfg(feature"))
            .collect();
        let last = *uses
            .last()
            .ok_or("no `pub use vmsnap_x as x;` behind a feature")?;
        let at = uses
            .iter()
            .copied()
            .find(|&i| lines[i] > format!("pub use vmsnap_{name} ").as_str())
            .map_or(last + 1, |i| i - 1);
        let t = lines[..at].concat() + &reexport + &lines[at..].concat();
        let anchor = "    v.sort_unstable();\n    v\n}";
        let fn_at = t
            .find("pub fn expected_plugin_names")
            .ok_or("no expected_plugin_names")?;
        let sort_at = t[fn_at..]
            .find(anchor)
            .map(|i| fn_at + i)
            .ok_or("expected_plugin_names does not end with v.sort_unstable(); v")?;
        Ok(format!(
            "{}    #[cfg(feature = \"{name}\")]\n    v.push(\"{name}\");\n{}",
            &t[..sort_at],
            &t[sort_at..]
        ))
    })
}

/// The fuzz target: one entry in `vmsnap_fuzzing::TARGETS` (sorted by name) running the
/// plugin through `registered::run`, and its `[[bin]]` in `fuzz/Cargo.toml`.
fn register_fuzz_target(root: &Path, name: &str) -> Result<(), String> {
    edit(root, "crates/vmsnap-fuzzing/src/lib.rs", |t| {
        let start = t
            .find("pub const TARGETS: &[Target] = &[\n")
            .ok_or("no `pub const TARGETS: &[Target] = &[`")?;
        let end = start + t[start..].find("\n];\n").ok_or("TARGETS does not end")? + 1;
        let entry = format!(
            "    Target {{\n        name: \"{name}\",\n        run: |data| registered::run(\"{name}\", data),\n    }},\n"
        );
        // Entries are `    Target {` … `    },` blocks; insert before the first that sorts after.
        let body = &t[start..end];
        let mut at = end;
        let mut search = 0;
        while let Some(i) = body[search..].find("    Target {\n        name: \"") {
            let block = start + search + i;
            let name_at = block + "    Target {\n        name: \"".len();
            let other = t[name_at..].split('"').next().unwrap_or("");
            if other > name {
                at = block;
                break;
            }
            search += i + 1;
        }
        Ok(format!("{}{entry}{}", &t[..at], &t[at..]))
    })?;
    edit(root, "fuzz/Cargo.toml", |t| {
        Ok(format!(
            "{}\n\n[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"\ntest = false\ndoc = false\nbench = false\n",
            t.trim_end()
        ))
    })
}

/// What the contributor does next.
fn next_steps(name: &str) -> String {
    format!(
        "xtask new-format: made crates/vmsnap-{name} and registered it (facade feature \
         `{name}`, fuzz target `{name}`, bench `{name}`). Next (docs/adding-a-format.md):
  1. corpus/{name}/make.sh: write the samples with the format's reference writer, run it
  2. crates/vmsnap-{name}/src/: the real layout (raw.rs), header, reader, probe
     (grep TODO(new-format))
  3. crates/vmsnap-{name}/tests/oracle.rs: fill in `oracle` (it fails until then)
  4. fuzz/dicts/{name}.dict: the format's magics and keywords
  5. cargo xtask golden, and review corpus/golden/{name}/
  6. cargo test -p vmsnap-{name}; cargo test -p vmsnap-fuzzing; cargo bench -p vmsnap-{name}"
    )
}

#[cfg(test)]
mod tests {
    use super::append_to_default;

    #[test]
    fn a_new_format_joins_the_end_of_the_default_features() {
        let t = "[features]\ndefault = [\"qcow2\", \"vhd\"]\nqcow2 = []\n";
        assert_eq!(
            append_to_default(t, "toy").unwrap(),
            "[features]\ndefault = [\"qcow2\", \"vhd\", \"toy\"]\nqcow2 = []\n"
        );
        assert_eq!(
            append_to_default("default = []\n", "toy").unwrap(),
            "default = [\"toy\"]\n"
        );
        assert!(append_to_default("[features]\n", "toy").is_err());
    }
}
