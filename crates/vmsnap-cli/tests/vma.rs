//! A Proxmox VMA archive through the CLI (`corpus/vma/sample.vma`): every device converts
//! with `--layer disk:<device name>` to the bytes the reader gives (which
//! `crates/vmsnap-vma/tests/oracle.rs` checks against the images qemu-io wrote, and
//! `tests/dissect.rs` there against dissect.archive); without `--layer` the archive
//! itself is the default layer; `check` calls it an archive (unsafe, rule `archive`),
//! never a raw image; configuration files extract; compressed archives are refused with
//! the compressor named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};
use std::sync::Arc;

use vmsnap::core::FileLayer;
use vmsnap::vma::Vma;
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, scratch_dir, workspace_root};

const SAMPLE: &str = "corpus/vma/sample.vma";

fn vmsnap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_device_converts_by_its_layer_name() {
    let vma =
        Vma::open_layer(Arc::new(FileLayer::open(corpus("vma/sample.vma")).unwrap())).unwrap();
    let dir = scratch_dir("vma-convert");
    assert_eq!(vma.devices().len(), 2);
    for dev in vma.devices() {
        let layer = format!("disk:{}", dev.device().name);
        let out = dir.join(format!("{}.raw", dev.device().name));
        let o = vmsnap(&[
            "convert",
            "--quiet",
            SAMPLE,
            out.to_str().unwrap(),
            "--layer",
            &layer,
        ]);
        assert_eq!(o.status.code(), Some(0), "{layer}: {}", stderr(&o));
        assert_same_bytes(
            &std::fs::read(&out).unwrap(),
            &read_all(dev.as_ref()),
            &layer,
        );
    }
    // The default layer is the archive: its own bytes.
    let out = dir.join("default.out");
    let o = vmsnap(&["convert", "--quiet", SAMPLE, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same_bytes(
        &std::fs::read(&out).unwrap(),
        &std::fs::read(corpus("vma/sample.vma")).unwrap(),
        "default layer",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn info_lists_the_devices_as_layers() {
    let o = vmsnap(&["info", "--json", SAMPLE]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v.to_string();
    for name in ["vma/disk:drive-scsi0", "vma/disk:drive-efidisk0"] {
        assert!(text.contains(name), "{name} not in {text}");
    }
    assert!(text.contains("6a1e7b2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d"));
}

#[test]
fn check_calls_it_an_archive_not_a_raw_image() {
    let o = vmsnap(&["check", "--json", SAMPLE]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "unsafe", "{v}");
    assert_eq!(v["format"], "vma", "{v}");
    let failing: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "fail")
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["archive"], "{v}");
}

#[test]
fn configuration_files_extract() {
    let o = vmsnap(&[
        "meta",
        SAMPLE,
        "--extract",
        "qemu-server.conf",
        "--output",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(corpus("vma/qemu-server.conf")).unwrap()
    );
}

#[test]
fn compressed_archives_are_refused_naming_the_compressor() {
    let dir = scratch_dir("vma-compressed");
    for (name, magic, what) in [
        ("b.vma.zst", &b"\x28\xb5\x2f\xfd\x04\x58"[..], "zstd"),
        ("b.vma.lzo", &b"\x89LZO\x00\r\n\x1a\n\x10"[..], "lzo"),
        ("b.vma.gz", &b"\x1f\x8b\x08\x00"[..], "gzip"),
    ] {
        let path = dir.join(name);
        let mut bytes = magic.to_vec();
        bytes.resize(4096, 0x5a);
        std::fs::write(&path, bytes).unwrap();
        let o = vmsnap(&["info", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let want = format!("a {what}-compressed Proxmox VMA archive: decompress first");
        assert!(stderr(&o).contains(&want), "{name}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
