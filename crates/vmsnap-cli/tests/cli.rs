//! The `vmsnap` binary end to end on raw files: every command, JSON shapes, exit codes,
//! error lines, and a sparse 1 GiB convert.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{s, vmsnap};
use vmsnap_testkit::{corpus, scratch_dir};

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.code() != Some(2),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample() -> PathBuf {
    corpus("raw/sample.raw")
}

#[test]
fn info_json_describes_a_raw_file() {
    let out = vmsnap(&["info", "--json", "corpus/raw/sample.raw"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["stack"], serde_json::json!(["file"]));
    assert_eq!(v["layers"][0]["size"], 1 << 20);
    assert_eq!(v["layers"][0]["space"], "file");
    assert_eq!(v["external_policy"], "same_dir");
    assert_eq!(v["findings"], serde_json::json!([]));
}

#[test]
fn info_text_says_which_external_policy_is_in_force() {
    let out = vmsnap(&["info", "--external", "none", s(&sample())]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("stack: file"), "{text}");
    assert!(text.contains("--external=none"), "{text}");
}

#[test]
fn explain_lists_every_plugin_refusal() {
    let out = vmsnap(&["info", "--json", "--explain", s(&sample())]);
    let v = json(&out);
    let attempts = v["attempts"].as_array().unwrap();
    let plugins = json(&vmsnap(&["formats", "--json"]));
    // Every registered plugin is listed with why not: asked on the file and refused, or
    // not asked because it stacks on other spaces.
    assert_eq!(attempts.len(), plugins["formats"].as_array().unwrap().len());
    for a in attempts {
        let stacks_on: Vec<&str> = plugins["formats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == a["plugin"])
            .unwrap()["stacks_on"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        if stacks_on.contains(&"file") {
            assert_eq!(a["outcome"], "refused", "{a}");
            assert!(!a["reason"].as_str().unwrap().is_empty());
        } else {
            assert_eq!(a["outcome"], "not_tried", "{a}");
            assert_eq!(a["reason"], format!("stacks on {}", stacks_on.join(", ")));
        }
    }
    let x86 = attempts.iter().find(|a| a["plugin"] == "x86").unwrap();
    assert_eq!(x86["reason"], "stacks on guest_physical");
    let qcow2 = attempts.iter().find(|a| a["plugin"] == "qcow2").unwrap();
    assert_eq!(qcow2["outcome"], "refused");
}

#[test]
fn cat_prints_exact_ranges_and_refuses_past_the_end() {
    let out = vmsnap(&["cat", s(&sample()), "--offset", "512K", "--length", "36"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"vmsnap raw sample: sector at 512 KiB");
    let out = vmsnap(&["cat", s(&sample()), "--offset", "0x100000"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let out = vmsnap(&["cat", s(&sample()), "--offset", "1M", "--length", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("past the end"), "{err}");
}

#[cfg(unix)]
#[test]
fn map_json_reports_the_holes_of_a_sparse_file() {
    use std::os::unix::fs::FileExt;
    let dir = scratch_dir("map-sparse");
    let p = dir.join("sparse.raw");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(1 << 20).unwrap();
    f.write_all_at(&[1u8; 4096], 0).unwrap();
    f.write_all_at(&[2u8; 4096], 512 << 10).unwrap();
    f.sync_all().unwrap();
    let v = json(&vmsnap(&["map", "--json", s(&p)]));
    assert_eq!(v["size"], 1 << 20);
    let kinds: Vec<(u64, u64, &str)> = v["extents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_u64().unwrap(),
                e["length"].as_u64().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (0, 4096, "data"),
            (4096, (512 << 10) - 4096, "unallocated"),
            (512 << 10, 4096, "data"),
            ((512 << 10) + 4096, (512 << 10) - 4096, "unallocated"),
        ]
    );
    assert_eq!(v["extents"][2]["offset"], 512 << 10);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn meta_and_formats_print_json() {
    let v = json(&vmsnap(&["meta", "--json", s(&sample())]));
    assert_eq!(v["layers"][0]["name"], "file");
    assert_eq!(v["layers"][0]["meta"]["size"], 1 << 20);
    let f = json(&vmsnap(&["formats", "--json"]));
    let names: Vec<&str> = f["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "plugin names are unique");
}

#[test]
fn check_calls_a_raw_file_safe() {
    let out = vmsnap(&["check", "--json", s(&sample())]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["verdict"], "safe");
    assert_eq!(v["format"], "raw");
    assert_eq!(v["virtual_size"], 1 << 20);
    // A declared format that does not match is a finding and exit 1.
    let out = vmsnap(&["check", "--json", "--format", "qcow2", s(&sample())]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["verdict"], "unsafe");
    assert!(v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "format_mismatch" && r["verdict"] == "fail"));
}

#[test]
fn errors_are_one_line_with_exit_code_2_and_never_a_panic() {
    for args in [
        vec!["info", "/nonexistent/disk.qcow2"],
        vec!["convert", "/nonexistent/disk.qcow2", "/tmp/x"],
        vec!["info", "--layer-that-does-not-exist"],
        vec!["cat", "corpus/raw/sample.raw", "--layer", "nope"],
        vec!["cat", "corpus/raw/sample.raw", "--offset", "zz"],
        vec!["info", "corpus"],
    ] {
        let out = vmsnap(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
    }
    let out = vmsnap(&["info", "/nonexistent/disk.qcow2"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim(),
        "vmsnap: error: /nonexistent/disk.qcow2: opening: No such file or directory (os error 2)"
    );
    let out = vmsnap(&["--verbose", "info", "/nonexistent/disk.qcow2"]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("kind: io"));
}

#[test]
fn every_command_has_help_and_documents_exit_codes() {
    for cmd in [
        "info",
        "check",
        "convert",
        "cat",
        "map",
        "meta",
        "formats",
        "translate",
        "serve",
    ] {
        let out = vmsnap(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Exit codes"), "{cmd}: {text}");
    }
}

#[cfg(unix)]
#[test]
fn convert_of_a_1gib_sparse_raw_file_is_identical_and_sparse() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let dir = scratch_dir("convert-sparse");
    let src = dir.join("big.raw");
    let mut f = std::fs::File::create(&src).unwrap();
    f.set_len(1 << 30).unwrap();
    for (i, off) in [0u64, 4096, 300 << 20, (1 << 30) - 4096].iter().enumerate() {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(&[i as u8 + 1; 4096]).unwrap();
    }
    drop(f);
    let dst = dir.join("out.raw");
    let out = vmsnap(&["convert", s(&src), s(&dst), "--threads", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&dst).unwrap();
    assert_eq!(meta.len(), 1 << 30);
    assert!(
        meta.blocks() * 512 < 4 << 20,
        "output not sparse: {} blocks",
        meta.blocks()
    );
    // Same bytes, compared in pieces.
    let (a, b) = (
        std::fs::File::open(&src).unwrap(),
        std::fs::File::open(&dst).unwrap(),
    );
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    use std::os::unix::fs::FileExt;
    for off in (0..1u64 << 30).step_by(1 << 20) {
        a.read_exact_at(&mut ba, off).unwrap();
        b.read_exact_at(&mut bb, off).unwrap();
        assert!(ba == bb, "differs in the MiB at {off:#x}");
    }
    // Converting again over an existing, larger file leaves no stale bytes.
    std::fs::write(&dst, vec![0xFFu8; 2 << 20]).unwrap();
    let out = vmsnap(&["convert", s(&sample()), s(&dst)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(&dst).unwrap(),
        std::fs::read(sample()).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}
