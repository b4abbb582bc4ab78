//! The JSON contract (`docs/json.md`, `docs/schema/*.json`): every command's `--json` on
//! every corpus sample, and on errors, validates against its schema; numbers above 2^53
//! never appear (they lose precision in jq and JavaScript); `--output=json` is `--json`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::vmsnap;
use serde_json::Value;
use vmsnap_testkit::{corpus_dir, workspace_root};

fn schema(name: &str) -> jsonschema::Validator {
    let path = workspace_root().join(format!("docs/schema/{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&v).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every integer in `v` is exact in an IEEE double (jq, JavaScript).
fn no_big_numbers(v: &Value, at: &str, bad: &mut Vec<String>) {
    match v {
        Value::Number(n) if n.as_u64().is_some_and(|x| x > 1 << 53) => {
            bad.push(format!("{at} = {n}"))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| no_big_numbers(x, &format!("{at}[{i}]"), bad)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| no_big_numbers(x, &format!("{at}.{k}"), bad)),
        _ => {}
    }
}

/// Runs `args`, parses stdout as one JSON object and checks it against `schema`; returns it.
fn checked(
    name: &str,
    validator: &jsonschema::Validator,
    args: &[&str],
    failures: &mut Vec<String>,
) -> Option<(Value, Output)> {
    let out = vmsnap(args);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            failures.push(format!(
                "{args:?}: stdout is not one JSON object ({e}): {text:.200}"
            ));
            return None;
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .take(3)
        .collect();
    if !errors.is_empty() {
        failures.push(format!("{args:?} against {name}.json: {errors:?}"));
    }
    let mut big = Vec::new();
    no_big_numbers(&v, "", &mut big);
    if !big.is_empty() {
        failures.push(format!(
            "{args:?}: numbers above 2^53: {:?}",
            &big[..big.len().min(5)]
        ));
    }
    Some((v, out))
}

/// The corpus samples (what the golden dumps cover, plus the gzipped ones, uncompressed
/// ones only: `.gz` files are recipes' inputs).
fn samples() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = Vec::new();
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
        // Bundle directories (a Parallels `.hdd` or `.pvm`) are inputs of their own.
        for f in files
            .into_iter()
            .filter(|f| (f.is_file() && is_sample(f)) || is_bundle(f))
        {
            out.push(f.strip_prefix(&root).unwrap().to_path_buf());
        }
    }
    out
}

fn is_bundle(p: &Path) -> bool {
    p.is_dir() && (p.join("DiskDescriptor.xml").is_file() || p.join("config.pvs").is_file())
}

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

#[test]
fn every_command_on_every_sample_matches_its_schema() {
    let (info, check, map, meta, error) = (
        schema("info"),
        schema("check"),
        schema("map"),
        schema("meta"),
        schema("error"),
    );
    let mut failures = Vec::new();
    let samples = samples();
    assert!(samples.len() > 30, "{samples:?}");
    for bundle in ["corpus/hdd/snapshot.hdd", "corpus/pvs/snapshots.pvm"] {
        assert!(samples.iter().any(|s| s == Path::new(bundle)), "{bundle}");
    }
    for s in &samples {
        let s = s.to_str().unwrap();
        checked("info", &info, &["info", "--json", s], &mut failures);
        checked("check", &check, &["check", "--json", s], &mut failures);
        checked("meta", &meta, &["meta", "--json", s], &mut failures);
        // `map` fails on images whose format cannot be read (exit 2): then the error
        // document is what stdout holds.
        let out = vmsnap(&["map", "--json", s]);
        let which = if out.status.code() == Some(2) {
            &error
        } else {
            &map
        };
        let name = if out.status.code() == Some(2) {
            "error"
        } else {
            "map"
        };
        checked(name, which, &["map", "--json", s], &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gzipped_samples_match_their_schemas_too() {
    // ELF cores, LiME and QEMU streams are committed gzipped; checked uncompressed.
    let dir = std::env::temp_dir().join(format!("vmsnap-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (info, check, map, meta, translate, error) = (
        schema("info"),
        schema("check"),
        schema("map"),
        schema("meta"),
        schema("translate"),
        schema("error"),
    );
    let mut failures = Vec::new();
    let mut count = 0;
    for sub in ["elf", "lime", "qemu", "kdump"] {
        let mut files: Vec<_> = std::fs::read_dir(corpus_dir().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .collect();
        files.sort();
        for gz in files {
            let out = dir.join(gz.file_stem().unwrap());
            let data = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
            assert!(data.status.success(), "{}", gz.display());
            std::fs::write(&out, &data.stdout).unwrap();
            let s = out.to_str().unwrap();
            checked("info", &info, &["info", "--json", s], &mut failures);
            checked("check", &check, &["check", "--json", s], &mut failures);
            checked("meta", &meta, &["meta", "--json", s], &mut failures);
            // A sample that fails to map (exit 2) prints the error document.
            let failed = vmsnap(&["map", "--json", s]).status.code() == Some(2);
            let (name, which) = if failed {
                ("error", &error)
            } else {
                ("map", &map)
            };
            checked(name, which, &["map", "--json", s], &mut failures);
            // Where a guest-virtual layer stacks, a walk.
            let v: Value = serde_json::from_slice(&vmsnap(&["info", "--json", s]).stdout).unwrap();
            if v["layers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["space"] == "guest_virtual")
            {
                checked(
                    "translate",
                    &translate,
                    &["translate", "--json", s, "0xffffffff81000000"],
                    &mut failures,
                );
            }
            std::fs::remove_file(&out).unwrap();
            count += 1;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(count >= 10, "{count}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn formats_and_translate_match_their_schemas() {
    let mut failures = Vec::new();
    let (v, _) = checked(
        "formats",
        &schema("formats"),
        &["formats", "--json"],
        &mut failures,
    )
    .unwrap();
    let names: Vec<&str> = v["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"qcow2") && names.contains(&"x86"),
        "{names:?}"
    );
    let tr = schema("translate");
    let (v, _) = checked(
        "translate",
        &tr,
        &[
            "translate",
            "--json",
            "corpus/vmware/plain.vmss",
            "0xffffffff81000000",
        ],
        &mut failures,
    )
    .unwrap();
    assert_eq!(v["address"], "0xffffffff81000000");
    assert_eq!(v["offset"], "0xffffffff81000000".replace("0xffff", "0x"));
    assert_eq!(v["root"], "0x1ab000");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn registers_are_hex_strings_in_every_format() {
    // VMware, QEMU (its own stream and inside qcow2), Hyper-V, ELF: the same type.
    for (sample, path) in [
        ("corpus/vmware/plain.vmss", "/layers/1/cpu/0/cr3"),
        ("corpus/qemu/pc-64m.qevm", "/layers/1/cpu/0/cr0"),
        (
            "corpus/qemu/pc-64m.qevm",
            "/layers/1/describe/cpus/0/regs/rip",
        ),
        (
            "corpus/hyperv/savedstate.vmrs",
            "/layers/2/cpu/0/regs/gdtr_base",
        ),
    ] {
        let out = vmsnap(&["info", "--json", sample]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reg = v
            .pointer(path)
            .unwrap_or_else(|| panic!("{sample}: no {path}"));
        let s = reg
            .as_str()
            .unwrap_or_else(|| panic!("{sample}{path} = {reg} is not a string"));
        assert!(s.starts_with("0x"), "{sample}{path} = {s}");
        assert_eq!(v["schema_version"], 1);
    }
}

#[test]
fn errors_in_json_mode_are_json_on_stdout_and_one_line_on_stderr() {
    let error = schema("error");
    let dir = std::env::temp_dir().join(format!("vmsnap-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A Parallels image whose BAT points past its end.
    let plain = std::fs::read(corpus_dir().join("parallels/plain.hds")).unwrap();
    let trunc = dir.join("trunc.hds");
    std::fs::write(&trunc, &plain[..1024]).unwrap();
    let t = trunc.to_str().unwrap();
    let mut failures = Vec::new();
    for args in [
        vec!["map", "--json", t],
        vec!["map", "--output=json", t],
        vec!["meta", "--json", "no/such/file.qcow2"],
        vec![
            "translate",
            "--json",
            "corpus/vmware/plain.vmss",
            "0x800000000000",
        ],
        vec!["translate", "--json", "corpus/vmware/plain.vmss", "0xzz"],
        vec!["info", "--json", "-o", "nosuch=1", "corpus/qcow2/v3.qcow2"],
        vec!["formats", "--json"],
    ] {
        if args[0] == "formats" {
            continue;
        }
        let (v, out) = checked("error", &error, &args, &mut failures).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(v["error"]["message"].as_str().unwrap()),
            "{stderr}"
        );
    }
    let (v, _) = checked("error", &error, &["map", "--json", t], &mut failures).unwrap();
    assert_eq!(v["error"]["kind"], "malformed");
    assert_eq!(v["error"]["file"], t);
    assert_eq!(v["error"]["layer"], "parallels");
    assert_eq!(v["error"]["offset"], 0x40);
    // `info` and `check` keep their report, with the same error object in it.
    let (v, out) = checked(
        "info",
        &schema("info"),
        &["info", "--json", t],
        &mut failures,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(v["error"]["layer"], "parallels");
    let (v, out) = checked(
        "check",
        &schema("check"),
        &["check", "--json", t],
        &mut failures,
    )
    .unwrap();
    // A header that breaks the format's rules is a verdict naming the rule (issue 21).
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["verdict"], "unsafe");
    assert_eq!(v["error"], serde_json::Value::Null);
    let malformed = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "malformed")
        .unwrap();
    assert_eq!(malformed["verdict"], "fail");
    assert!(malformed["message"]
        .as_str()
        .unwrap()
        .contains("at offset 0x40"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn argument_errors_go_to_stderr_only() {
    let out = vmsnap(&["info", "--json", "--no-such-flag", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
