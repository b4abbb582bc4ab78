//! A backing file, parent, extent, data file or companion that is missing or refused by
//! `--external` never reads as zeros silently: `cat` fails (exit 2) naming the reference,
//! `--missing=zeros` reads zeros with one warning per reference and `map` shows the ranges
//! as unavailable; `info` still works. With the reference present the bytes are
//! qemu-img's. Every case is a real image (the corpus, or made by qemu-img here).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{s, stderr, vmsnap};
use vmsnap_testkit::{corpus, have_qemu_img, qemu_img_raw, run, scratch_dir, workspace_root};

/// Copies `files` of the corpus into a fresh directory; returns it.
fn copy_alone(tag: &str, files: &[&str]) -> PathBuf {
    let d = scratch_dir(tag);
    for f in files {
        let src = corpus(f);
        std::fs::copy(&src, d.join(src.file_name().unwrap())).unwrap();
    }
    d
}

/// The path `scratch_dir(tag)` made, without emptying it.
fn scratch_dir_path(tag: &str) -> PathBuf {
    workspace_root()
        .join("target")
        .join("test-scratch")
        .join(format!("{tag}-{}", std::process::id()))
}

fn skip_without_qemu_img() -> bool {
    if have_qemu_img() {
        return false;
    }
    eprintln!("skipped: qemu-img is not installed");
    true
}

/// The rule, end to end, for `file` whose reference is unavailable (with `extra` options
/// such as `--external=none`): `cat` exits 2 naming every one of `names`; with
/// `--missing=zeros` it exits 0 with one warning per reference, and `map --json` shows
/// unavailable extents that read as zeros while the data extents read as `reference`
/// (what the image reads with the reference present) does; `info` exits 1 for the
/// finding. Returns the zeros-mode bytes.
fn assert_unavailable(file: &Path, extra: &[&str], names: &[&str], reference: Option<&[u8]>) {
    let with = |cmd: &str, more: &[&str]| {
        let mut a = vec![cmd];
        a.extend_from_slice(extra);
        a.extend_from_slice(more);
        a.push(s(file));
        vmsnap(&a)
    };

    // Default: the read fails, naming the reference and why.
    let out = with("cat", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "cat {file:?}: {err}");
    assert!(err.contains("vmsnap: error:"), "{err}");
    assert!(err.contains("is unavailable"), "{err}");
    for n in names {
        assert!(err.contains(&format!("{n:?}")), "{n} not in: {err}");
    }

    // Opt-in: zeros, said once per reference.
    let out = with("cat", &["--missing=zeros"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "cat --missing=zeros: {err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("vmsnap: warning:"))
        .collect();
    assert_eq!(warnings.len(), names.len(), "{err}");
    for (w, n) in warnings.iter().zip(names) {
        assert!(w.ends_with("it reads as zeros (--missing=zeros)"), "{w}");
        assert!(w.contains(&format!("{n:?}")), "{w}");
    }
    let bytes = out.stdout;

    // map: the ranges are unavailable, by default and with zeros.
    for mode in [&[][..], &["--missing=zeros"][..]] {
        let mut more = vec!["--json"];
        more.extend_from_slice(mode);
        let out = with("map", &more);
        assert_eq!(out.status.code(), Some(0), "map: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ext = v["extents"].as_array().unwrap();
        let unavailable: Vec<_> = ext.iter().filter(|e| e["kind"] == "unavailable").collect();
        assert!(!unavailable.is_empty(), "{v}");
        for e in &unavailable {
            assert_eq!(e["data"], false);
            assert_eq!(e["zero"], !mode.is_empty(), "{e}");
        }
        if mode.is_empty() {
            continue;
        }
        for e in ext {
            let (at, len) = (
                e["start"].as_u64().unwrap() as usize,
                e["length"].as_u64().unwrap() as usize,
            );
            let got = &bytes[at..at + len];
            if e["kind"] == "unavailable" {
                assert!(got.iter().all(|&b| b == 0), "unavailable range at {at:#x}");
            } else if let Some(want) = reference {
                if e["kind"] == "data" {
                    assert_eq!(got, &want[at..at + len], "data range at {at:#x}");
                }
            }
        }
    }

    // info and check still work and report the reference (exit 1 for the finding).
    let out = with("info", &[]);
    assert_eq!(out.status.code(), Some(1), "info: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for n in names {
        assert!(text.contains(n), "{n} not in info: {text}");
    }
}

/// `vmsnap cat` of `file` (exit 0, nothing on stderr).
fn cat(file: &Path) -> Vec<u8> {
    let out = vmsnap(&["cat", s(file)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    out.stdout
}

#[test]
fn qcow2_backing_file_missing_or_refused() {
    if skip_without_qemu_img() {
        return;
    }
    let top = corpus("qcow2/chain-top.qcow2");
    let want = qemu_img_raw(&top, &[]);
    assert_eq!(
        cat(&top),
        want,
        "the whole chain reads as qemu-img reads it"
    );
    let d = copy_alone("missing-qcow2", &["qcow2/chain-top.qcow2"]);
    let alone = d.join("chain-top.qcow2");
    // qemu-img refuses it too.
    let q = Command::new("qemu-img")
        .args(["convert", "-O", "raw", s(&alone), s(&d.join("x.raw"))])
        .output()
        .unwrap();
    assert!(!q.status.success());
    assert_unavailable(&alone, &[], &["chain-mid.qcow2"], Some(&want));
    let err = stderr(&vmsnap(&["cat", s(&alone)]));
    assert!(err.contains("backing file"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(err.contains(": qcow2: "), "{err}");
    // Refused by the policy, in place.
    assert_unavailable(
        &top,
        &["--external=none"],
        &["chain-mid.qcow2"],
        Some(&want),
    );
    let err = stderr(&vmsnap(&["cat", "--external=none", s(&top)]));
    assert!(err.contains("policy is `none`"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn qcow2_external_data_file_missing() {
    if skip_without_qemu_img() {
        return;
    }
    let img = corpus("qcow2/datafile.qcow2");
    // qemu-img resolves the data file's relative name from its working directory.
    run(Command::new("qemu-img")
        .current_dir(corpus("qcow2"))
        .args(["convert", "-O", "raw", "datafile.qcow2"])
        .arg(scratch_dir("datafile-oracle").join("out.raw")));
    let want = std::fs::read(scratch_dir_path("datafile-oracle").join("out.raw")).unwrap();
    assert_eq!(cat(&img), want);
    let d = copy_alone("missing-datafile", &["qcow2/datafile.qcow2"]);
    assert_unavailable(
        &d.join("datafile.qcow2"),
        &[],
        &["datafile.raw"],
        Some(&want),
    );
    let err = stderr(&vmsnap(&["cat", s(&d.join("datafile.qcow2"))]));
    assert!(err.contains("external data file"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn qcow_v1_backing_file_missing() {
    if skip_without_qemu_img() {
        return;
    }
    let d = scratch_dir("missing-qcow1");
    let base = d.join("base.raw");
    run(Command::new("qemu-img").args(["create", "-q", "-f", "raw", s(&base), "1M"]));
    run(Command::new("qemu-io").args(["-f", "raw", "-c", "write -P 0x5a 0 64k", s(&base)]));
    let top = d.join("top.qcow");
    run(Command::new("qemu-img").args([
        "create",
        "-q",
        "-f",
        "qcow",
        "-b",
        "base.raw",
        "-F",
        "raw",
        s(&top),
    ]));
    run(Command::new("qemu-io").args(["-f", "qcow", "-c", "write -P 0x33 512k 4k", s(&top)]));
    let want = qemu_img_raw(&top, &[]);
    assert_eq!(cat(&top), want);
    std::fs::remove_file(&base).unwrap();
    assert_unavailable(&top, &[], &["base.raw"], Some(&want));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn qed_backing_file_missing() {
    if skip_without_qemu_img() {
        return;
    }
    let top = corpus("qed/overlay-qed.qed");
    let want = qemu_img_raw(&top, &[]);
    assert_eq!(cat(&top), want);
    let d = copy_alone("missing-qed", &["qed/overlay-qed.qed"]);
    assert_unavailable(&d.join("overlay-qed.qed"), &[], &["plain.qed"], Some(&want));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn vmdk_parent_and_extent_missing() {
    if skip_without_qemu_img() {
        return;
    }
    let child = corpus("vmdk/child.vmdk");
    let want = qemu_img_raw(&child, &[]);
    assert_eq!(cat(&child), want);
    let d = copy_alone("missing-vmdk", &["vmdk/child.vmdk", "vmdk/flat.vmdk"]);
    assert_unavailable(&d.join("child.vmdk"), &[], &["base.vmdk"], Some(&want));
    // A descriptor whose extent file is missing opens (info reports it) and fails on
    // read, like a missing parent (it used to fail as policy_denied).
    let flat = corpus("vmdk/flat.vmdk");
    let want = qemu_img_raw(&flat, &[]);
    assert_eq!(cat(&flat), want);
    assert_unavailable(&d.join("flat.vmdk"), &[], &["flat-flat.vmdk"], Some(&want));
    let err = stderr(&vmsnap(&["cat", s(&d.join("flat.vmdk"))]));
    assert!(err.contains("extent file"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn vmware_vmem_missing() {
    let vmss = corpus("vmware/plain.vmss");
    let full = cat(&vmss);
    assert!(full.iter().any(|&b| b != 0));
    let d = copy_alone("missing-vmem", &["vmware/plain.vmss"]);
    let alone = d.join("plain.vmss");
    assert_unavailable(&alone, &[], &["plain.vmem"], None);
    // The layout is kept: the same size as with the .vmem.
    let out = vmsnap(&["cat", "--missing=zeros", s(&alone)]);
    assert_eq!(out.stdout.len(), full.len());
    std::fs::remove_dir_all(&d).ok();
}

/// Sets `disk type` and checksum fields of a VHD made by qemu-img so that it is a
/// differencing disk over `parent` (its UUID and Unicode name): what Hyper-V writes, which
/// qemu-img cannot create.
fn make_vhd_differencing(child: &Path, parent: &Path, parent_name: &str) {
    let parent_footer = {
        let p = std::fs::read(parent).unwrap();
        p[p.len() - 512..].to_vec()
    };
    let mut c = std::fs::read(child).unwrap();
    let n = c.len();
    let checksum = |b: &[u8]| !b.iter().fold(0u32, |a, &x| a.wrapping_add(u32::from(x)));
    let dyn_at = u64::from_be_bytes(c[n - 512 + 16..n - 512 + 24].try_into().unwrap()) as usize;
    {
        let h = &mut c[dyn_at..dyn_at + 1024];
        h[40..56].copy_from_slice(&parent_footer[68..84]); // parent unique id
        let name: Vec<u8> = parent_name
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        h[64..64 + 512].fill(0);
        h[64..64 + name.len()].copy_from_slice(&name);
        h[36..40].fill(0);
        let sum = checksum(h);
        h[36..40].copy_from_slice(&sum.to_be_bytes());
    }
    for at in [0, n - 512] {
        let f = &mut c[at..at + 512];
        f[60..64].copy_from_slice(&4u32.to_be_bytes()); // differencing
        f[64..68].fill(0);
        let sum = checksum(f);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
    }
    std::fs::write(child, c).unwrap();
}

#[test]
fn vhd_parent_missing() {
    if skip_without_qemu_img() {
        return;
    }
    let d = scratch_dir("missing-vhd");
    let parent = d.join("parent.vhd");
    let child = d.join("child.vhd");
    for f in [&parent, &child] {
        run(Command::new("qemu-img").args([
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic",
            s(f),
            "4M",
        ]));
    }
    run(Command::new("qemu-io").args([
        "-f",
        "vpc",
        "-c",
        "write -P 0x61 0 1M",
        "-c",
        "write -P 0x62 3M 4k",
        s(&parent),
    ]));
    make_vhd_differencing(&child, &parent, "parent.vhd");
    // With the parent beside it, the child (no blocks of its own) reads as the parent.
    let want = qemu_img_raw(&parent, &[]);
    assert_eq!(cat(&child), want[..]);
    assert_unavailable(&child, &["--external=none"], &["parent.vhd"], Some(&want));
    std::fs::remove_file(&parent).unwrap();
    assert_unavailable(&child, &[], &["parent.vhd"], Some(&want));
    let err = stderr(&vmsnap(&["cat", s(&child)]));
    assert!(err.contains("parent disk"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

/// Byte offsets of the VDI header fields used here (VirtualBox's VDIHEADER1).
const VDI_IMAGE_TYPE: usize = 0x4C;
const VDI_UUID_IMAGE: usize = 0x188;
const VDI_UUID_LINK: usize = 0x1A8;

#[test]
fn vdi_differencing_parent_found_by_uuid_or_unavailable() {
    if skip_without_qemu_img() {
        return;
    }
    let d = scratch_dir("missing-vdi");
    let parent = d.join("parent.vdi");
    let child = d.join("child.vdi");
    let decoy = d.join("decoy.vdi");
    for f in [&parent, &child, &decoy] {
        run(Command::new("qemu-img").args(["create", "-q", "-f", "vdi", s(f), "4M"]));
    }
    run(Command::new("qemu-io").args(["-f", "vdi", "-c", "write -P 0x71 1M 1M", s(&parent)]));
    // The child names the parent only by UUID (uuid_link = the parent's uuid_image), as
    // VirtualBox writes a differencing image (qemu-img cannot).
    let p = std::fs::read(&parent).unwrap();
    let mut c = std::fs::read(&child).unwrap();
    c[VDI_IMAGE_TYPE..VDI_IMAGE_TYPE + 4].copy_from_slice(&4u32.to_le_bytes());
    c[VDI_UUID_LINK..VDI_UUID_LINK + 16].copy_from_slice(&p[VDI_UUID_IMAGE..VDI_UUID_IMAGE + 16]);
    std::fs::write(&child, c).unwrap();
    let want = qemu_img_raw(&parent, &[]);
    assert_eq!(
        cat(&child),
        want,
        "the parent, found by UUID among the .vdi files"
    );
    let out = vmsnap(&["info", "--json", s(&child)]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("decoy.vdi"),
        "every candidate tried is reported: {text}"
    );
    // Refused, then missing: unavailable, naming the UUID.
    let uuid = {
        let out = vmsnap(&["info", "--json", s(&parent)]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["layers"][1]["describe"]["uuid"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let t = v.to_string();
                let i = t.find("\"uuid\":\"").unwrap() + 8;
                t[i..i + 36].to_string()
            })
    };
    assert_unavailable(&child, &["--external=none"], &[&uuid], Some(&want));
    std::fs::remove_file(&parent).unwrap();
    assert_unavailable(&child, &[], &[&uuid], Some(&want));
    let err = stderr(&vmsnap(&["cat", s(&child)]));
    assert!(err.contains("decoy.vdi"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}
