//! `vmsnap check` on the crafted samples of `corpus/check` against the table beside them
//! (`expected.tsv`): the verdict, format, size and failing rules of every row; `check FILE`
//! and `check -` (a pipe) agree; qemu-img opens exactly the samples the table says, and
//! nothing QEMU refuses is called safe; streaming stays within its memory bound on each
//! new format at 256 MiB.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vmsnap_testkit::{corpus_dir, scratch_dir};

/// One row of `expected.tsv`.
#[derive(Debug)]
struct Row {
    file: String,
    args: Vec<String>,
    verdict: String,
    format: String,
    virtual_size: u64,
    failing: Vec<String>,
    qemu_mode: String,
    qemu_opens: bool,
}

fn dir() -> PathBuf {
    corpus_dir().join("check")
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join("expected.tsv")).unwrap();
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 8, "{l:?}");
            let list = |s: &str| -> Vec<String> {
                if s == "-" {
                    Vec::new()
                } else {
                    s.split(',').map(str::to_string).collect()
                }
            };
            Row {
                file: c[0].into(),
                args: if c[1] == "-" {
                    Vec::new()
                } else {
                    c[1].split(' ').map(str::to_string).collect()
                },
                verdict: c[2].into(),
                format: c[3].into(),
                virtual_size: c[4].parse().unwrap(),
                failing: list(c[5]),
                qemu_mode: c[6].into(),
                qemu_opens: match c[7] {
                    "yes" => true,
                    "no" => false,
                    o => panic!("{o}"),
                },
            }
        })
        .collect();
    assert!(rows.len() >= 20, "{} rows", rows.len());
    rows
}

fn vmsnap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmsnap"))
}

fn check_file(path: &Path, args: &[String]) -> Output {
    vmsnap()
        .arg("check")
        .arg("--json")
        .args(args)
        .arg(path)
        .output()
        .unwrap()
}

/// `check -` with `path` written into a pipe (not a redirected file: a stream).
fn check_pipe(path: &Path, args: &[String]) -> Output {
    let data = std::fs::read(path).unwrap();
    let mut child = vmsnap()
        .args(["check", "--json"])
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn failing(v: &serde_json::Value) -> Vec<String> {
    let mut f: Vec<String> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "fail")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    f.sort();
    f.dedup();
    f
}

#[test]
fn every_sample_gets_the_verdict_of_the_table_from_a_file_and_from_a_pipe() {
    for r in rows() {
        let path = dir().join(&r.file);
        let what = format!("{} {:?}", r.file, r.args);
        let out = check_file(&path, &r.args);
        let v = json(&out);
        let code = match r.verdict.as_str() {
            "safe" => 0,
            "unsafe" => 1,
            _ => 2,
        };
        assert_eq!(out.status.code(), Some(code), "{what}: {v:#}");
        assert_eq!(v["verdict"], r.verdict.as_str(), "{what}: {v:#}");
        assert_eq!(v["format"], r.format.as_str(), "{what}: {v:#}");
        assert_eq!(v["virtual_size"], r.virtual_size, "{what}: {v:#}");
        assert_eq!(failing(&v), r.failing, "{what}: {v:#}");
        // The same bytes as a stream: the same answer, rule by rule.
        let streamed = check_pipe(&path, &r.args);
        let s = json(&streamed);
        assert_eq!(streamed.status.code(), out.status.code(), "{what}: {s:#}");
        for key in [
            "verdict",
            "format",
            "virtual_size",
            "detected",
            "payload_offset",
        ] {
            assert_eq!(s[key], v[key], "{what}: {key}: {s:#}");
        }
        let ids = |x: &serde_json::Value| -> Vec<(String, String)> {
            x["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].to_string(), r["verdict"].to_string()))
                .collect()
        };
        assert_eq!(ids(&s), ids(&v), "{what}");
    }
}

#[test]
fn luks_headers_report_the_payload_offset_qemu_img_reports() {
    let v = json(&check_file(&dir().join("luks1.luks"), &[]));
    if vmsnap_testkit::have_qemu_img() {
        let info = vmsnap_testkit::qemu_img_info(&dir().join("luks1.luks"));
        assert_eq!(
            v["payload_offset"],
            info["format-specific"]["data"]["payload-offset"]
        );
        assert_eq!(v["virtual_size"], info["virtual-size"]);
    }
    let v = json(&check_file(&dir().join("luks2.luks"), &[]));
    // cryptsetup luksFormat --offset 576 (sectors).
    assert_eq!(v["payload_offset"], 576 * 512);
    let reason = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "luks_version")
        .unwrap()["message"]
        .clone();
    assert_eq!(reason, "LUKS version 2 is not supported"); // oslo.utils 10.2's words
}

/// `qemu-img convert` of `path` the way `mode` says; true when QEMU opened and read it.
fn qemu_opens(path: &Path, mode: &str, scratch: &Path) -> bool {
    let out = scratch.join("out.raw");
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-O", "raw"]);
    match mode {
        "probe" => {
            cmd.arg(path);
        }
        "luks+secret" => {
            cmd.args(["--object", "secret,id=s,data=x", "--image-opts"])
                .arg(format!(
                    "driver=luks,key-secret=s,file.filename={}",
                    path.display()
                ));
        }
        fmt => {
            cmd.args(["-f", fmt]).arg(path);
        }
    }
    let o = cmd.arg(&out).output().unwrap();
    std::fs::remove_file(&out).ok();
    o.status.success()
}

#[test]
fn qemu_refuses_exactly_what_the_table_says_and_none_of_it_is_safe() {
    if !vmsnap_testkit::have_qemu_img() {
        eprintln!("qemu-img not found; skipped");
        return;
    }
    let scratch = scratch_dir("check-corpus-qemu");
    let mut refused = 0;
    for r in rows() {
        let path = dir().join(&r.file);
        let opens = qemu_opens(&path, &r.qemu_mode, &scratch);
        assert_eq!(
            opens, r.qemu_opens,
            "{} ({}): qemu-img",
            r.file, r.qemu_mode
        );
        if !opens {
            refused += 1;
            assert_ne!(r.verdict, "safe", "{}: QEMU refuses it", r.file);
        }
        // Where QEMU reads the same format, it sees the same size.
        let qemu_name = if r.format == "vhd" { "vpc" } else { &r.format };
        if opens && r.virtual_size != 0 && r.qemu_mode != "vpc" {
            let info = vmsnap_testkit::qemu_img_info(&path);
            if info["format"] == qemu_name {
                assert_eq!(info["virtual-size"], r.virtual_size, "{}", r.file);
            }
        }
    }
    println!("qemu-img refused {refused} of the samples");
    assert!(refused >= 8);
    std::fs::remove_dir_all(&scratch).ok();
}

/// Peak resident set of `vmsnap check -` fed `head`, then `fill` zero bytes, then `tail`,
/// through a pipe, in KiB (GNU time's `%M`), and the report.
fn streamed_rss(head: &[u8], fill: u64, tail: &[u8], scratch: &Path) -> (u64, serde_json::Value) {
    let rss = scratch.join("rss");
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["check", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (head, tail) = (head.to_vec(), tail.to_vec());
    let writer = std::thread::spawn(move || {
        stdin.write_all(&head)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = fill;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            stdin.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        stdin.write_all(&tail)
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let kib = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (kib, json(&out))
}

#[test]
fn streaming_the_new_formats_keeps_memory_bounded() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("/usr/bin/time not found; skipped");
        return;
    }
    let scratch = scratch_dir("check-corpus-rss");
    let fill = 256u64 << 20;
    let bound_kib = (vmsnap::inspect::MAX_RETAINED as u64 + (40 << 20)) / 1024;
    for (file, format) in [
        ("luks1.luks", "luks"),
        ("luks2.luks", "luks"),
        ("wrapped.qcow2.xz", "xz"),
        ("sample.bochs", "bochs"),
        ("sample.cloop", "cloop"),
        ("disk.tar", "tar"),
        ("iso-mbr.iso", "gpt"),
        ("lone-sesparse.vmdk", "vmdk"),
    ] {
        let head = std::fs::read(dir().join(file)).unwrap();
        let (kib, v) = streamed_rss(&head, fill, &[], &scratch);
        assert_eq!(v["format"], format, "{file}: {v:#}");
        assert!(kib <= bound_kib, "{file}: {kib} KiB, bound {bound_kib} KiB");
        println!("{file} + 256 MiB: {kib} KiB peak");
    }
    // dmg: the koly trailer comes last.
    let dmg = std::fs::read(dir().join("trailer.dmg")).unwrap();
    let (kib, v) = streamed_rss(&[], fill, &dmg, &scratch);
    assert_eq!(v["format"], "dmg", "{v:#}");
    assert!(kib <= bound_kib, "dmg: {kib} KiB");
    std::fs::remove_dir_all(&scratch).ok();
}

#[test]
fn format_names_outside_the_vocabulary_are_argument_errors() {
    let path = dir().join("sample.bochs");
    let out = vmsnap()
        .args(["check", "--format", "qcow3"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown format \"qcow3\""), "{err}");
    for name in ["bochs", "luks", "zstd", "qcow2", "vhd"] {
        assert!(err.contains(name), "{name} missing from {err}");
    }
    let out = vmsnap()
        .args(["check", "--allow", "iso+floppy"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Aliases and detectors are accepted; case does not matter.
    let out = vmsnap()
        .args(["check", "--json", "--format", "VPC,Bochs,ploop"])
        .arg(&path)
        .output()
        .unwrap();
    let v = json(&out);
    assert!(
        failing(&v) == ["unsupported_format"],
        "bochs is an allowed format: {v:#}"
    );
}
