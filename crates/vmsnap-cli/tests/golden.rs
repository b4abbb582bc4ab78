//! Golden `info --json` dumps for every corpus sample: `corpus/golden/<dir>/<file>.json`.
//! Regenerate with `cargo xtask golden` (sets `VMSNAP_BLESS=1`) and review the diff.

use std::path::Path;
use std::process::Command;

use vmsnap_testkit::{corpus_dir, workspace_root};

/// Files in corpus directories that are not samples.
fn is_sample(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    !(name.starts_with('.')
        || name.starts_with("README")
        || matches!(
            ext,
            "sh" | "txt" | "md" | "json" | "gz" | "bin" | "blob" | "xml" | "py"
        ))
}

/// A bundle directory the CLI opens by its descriptor (a Parallels `.hdd`, or a `.pvm` by
/// its `config.pvs`): a sample.
fn is_bundle(p: &Path) -> bool {
    p.is_dir() && (p.join("DiskDescriptor.xml").is_file() || p.join("config.pvs").is_file())
}

#[test]
fn info_json_matches_the_golden_dumps() {
    let bless = std::env::var_os("VMSNAP_BLESS").is_some();
    let root = workspace_root();
    let golden = corpus_dir().join("golden");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs
        .into_iter()
        .filter(|d| d.is_dir() && !d.ends_with("golden"))
    {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|f| (f.is_file() && is_sample(f)) || is_bundle(f))
        {
            let rel = file.strip_prefix(&root).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
                .args(["info", "--json"])
                .arg(rel)
                .current_dir(&root)
                .output()
                .unwrap();
            // Resolved references are absolute paths: make them independent of the checkout.
            let canonical = root.canonicalize().unwrap();
            let text = String::from_utf8(out.stdout)
                .unwrap()
                .replace(canonical.to_str().unwrap(), "$ROOT")
                .replace(root.to_str().unwrap(), "$ROOT");
            let dir_name = dir.file_name().unwrap();
            let want_path = golden.join(dir_name).join(format!(
                "{}.json",
                file.file_name().unwrap().to_str().unwrap()
            ));
            let got: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!(
                        "{}: not JSON ({e}): {}",
                        rel.display(),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                    continue;
                }
            };
            // Samples nothing stacks on are not golden material (auxiliary files).
            if got["stack"].as_array().map_or(0, Vec::len) < 2 && !dir.ends_with("raw") {
                continue;
            }
            checked += 1;
            let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
            if bless {
                std::fs::create_dir_all(want_path.parent().unwrap()).unwrap();
                std::fs::write(&want_path, &pretty).unwrap();
                continue;
            }
            match std::fs::read_to_string(&want_path) {
                Ok(want) if want == pretty => {}
                Ok(_) => failures.push(format!(
                    "{}: differs from {}",
                    rel.display(),
                    want_path.display()
                )),
                Err(_) => failures.push(format!(
                    "{}: no golden dump {}",
                    rel.display(),
                    want_path.display()
                )),
            }
        }
    }
    assert!(checked >= 1, "no corpus samples found");
    assert!(
        failures.is_empty(),
        "run `cargo xtask golden` and review:\n{}",
        failures.join("\n")
    );
}
