//! A Proxmox VMA archive through the CLI (`corpus/vma/sample.vma`): every device converts
//! with `--layer disk:<device name>` to the bytes the reader gives (which
//! `crates/vmsnap-vma/tests/oracle.rs` checks against the images qemu-io wrote, and
//! `tests/dissect.rs` there against dissect.archive); without `--layer` the archive
//! itself is the default layer; `check` calls it an archive (unsafe, rule `archive`),
//! never a raw image; configuration files extract; compressed archives are refused with
//! the compressor named; a `vmstate` device is the `memory` layer, stacked on to the QEMU
//! stream's guest memory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
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

#[test]
fn a_vmstate_device_is_the_memory_layer_and_stacks_to_guest_memory() {
    // The archive vzdump writes for a VM with its state: a disk and the `vmstate` device,
    // whose bytes are the QEMU savevm stream (here one a real QEMU wrote).
    let dir = scratch_dir("vma-vmstate");
    let archive = dir.join("state.vma");
    let stream = corpus("qemu/pc-64m.qevm");
    let o = Command::new("python3")
        .arg(workspace_root().join("corpus/vma/vma_write.py"))
        .arg(&archive)
        .args([
            "--uuid",
            "6a1e7b2c3d4f4a5b8c6d7e8f9a0b1c2d",
            "--ctime",
            "1700000000",
        ])
        .arg("--config")
        .arg(format!(
            "qemu-server.conf={}",
            corpus("vma/qemu-server.conf").display()
        ))
        .arg("--device")
        .arg(format!("vmstate={}", stream.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let archive = archive.to_str().unwrap();
    let o = vmsnap(&["info", "--json", archive]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["stack"],
        serde_json::json!(["file", "vma", "vma/memory", "vma/memory/qemu"])
    );
    // `memory` reads as the stream the device holds ...
    let o = vmsnap(&["cat", "--layer", "memory", archive]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same_bytes(&o.stdout, &std::fs::read(&stream).unwrap(), "memory");
    // ... and the guest memory stacked on it is the stream file's, which
    // crates/vmsnap-qemu/tests/real.rs checks against QEMU's own dump of the same guest.
    let from_archive = dir.join("from-archive.raw");
    let from_stream = dir.join("from-stream.raw");
    for (args, out) in [
        (vec!["--layer", "vma/memory/qemu", archive], &from_archive),
        (vec![stream.to_str().unwrap()], &from_stream),
    ] {
        let mut a = vec!["convert", "--quiet"];
        a.extend(args);
        a.push(out.to_str().unwrap());
        let o = vmsnap(&a);
        assert_eq!(o.status.code(), Some(0), "{a:?}: {}", stderr(&o));
    }
    // 4 GiB of guest-physical space (64 MiB of RAM and the PCI hole), mostly holes:
    // compared a MiB at a time.
    assert_eq!(std::fs::metadata(&from_archive).unwrap().len(), 4 << 30);
    let (mut a, mut b) = (
        std::fs::File::open(&from_archive).unwrap(),
        std::fs::File::open(&from_stream).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut nonzero = 0usize;
    for mib in 0..4096 {
        a.read_exact(&mut x).unwrap();
        b.read_exact(&mut y).unwrap();
        assert!(x == y, "guest memory differs in MiB {mib}");
        if mib < 64 {
            nonzero += x.iter().filter(|&&v| v != 0).count();
        }
    }
    // The guest's RAM (its first 64 MiB) holds what it booted (about 140 KB non-zero; the BIOS mapped below 4 GiB holds the rest).
    assert!(nonzero > 100_000, "only {nonzero} non-zero bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
