//! VHD files made by qemu-img, read byte-exact against `qemu-img convert -O raw -f vpc`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use common::*;
use vmsnap_core::{ExtentKind, ExternalPolicy, Layer, Options, SniffWindow};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, run, scratch_dir};

fn check_against_qemu(path: &std::path::Path) -> std::sync::Arc<dyn Layer> {
    let layer = open_path(path, ExternalPolicy::Deny).unwrap();
    let want = oracle(path, &["-f", "vpc"]);
    assert_same_bytes(
        &read_all(layer.as_ref()),
        &want,
        &path.display().to_string(),
    );
    layer
}

fn probe_file(path: &std::path::Path) -> bool {
    let b = std::fs::read(path).unwrap();
    (vmsnap_vhd::PLUGIN.probe)(&SniffWindow::of_whole(&b)).is_yes()
}

#[test]
fn corpus_fixed_is_found_through_the_tail_and_matches_qemu() {
    let p = corpus("vhd/fixed.vhd");
    assert!(probe_file(&p));
    let l = check_against_qemu(&p);
    let d = l.describe();
    assert_eq!(d["format"], "vhd");
    assert_eq!(d["subformat"], "fixed");
    assert_eq!(d["creator_app"], "qemu");
    assert_eq!(d["size_rule"], "chs");
    // 200 KiB request: CHS rounds up to 208896 bytes (qemu-img info agrees).
    assert_eq!(l.len(), 208_896);
    assert_eq!(l.extents(0..u64::MAX).unwrap().len(), 1);
    let mut b = [0u8; 4];
    l.read_at(100 * 1024, &mut b).unwrap();
    assert_eq!(b, [0x88; 4]);
    assert!(l.findings().is_empty(), "{:?}", l.findings());
}

#[test]
fn corpus_fixed_force_size_uses_current_size() {
    let p = corpus("vhd/fixed-force.vhd");
    let l = check_against_qemu(&p);
    assert_eq!(l.len(), 192 * 1024);
    assert_eq!(l.describe()["creator_app"], "qem2");
    assert_eq!(l.describe()["size_rule"], "current_size");
}

#[test]
fn corpus_dynamic_empty_samples() {
    let l = check_against_qemu(&corpus("vhd/dynamic-empty.vhd"));
    assert_eq!(l.len(), 8_390_656);
    assert_eq!(l.describe()["subformat"], "dynamic");
    assert_eq!(l.describe()["block_size"], 2 << 20);
    assert_eq!(
        l.extents(0..u64::MAX).unwrap(),
        vec![vmsnap_core::Extent::of(
            ExtentKind::Unallocated,
            0,
            8_390_656
        )]
    );
    let l = check_against_qemu(&corpus("vhd/dynamic-force-empty.vhd"));
    assert_eq!(l.len(), 5 << 20);
}

/// QEMU's dynamic VHDs with data are 2 MiB per block, too big for the corpus: made here
/// with the recipe of corpus/vhd/make.sh.
#[test]
fn qemu_dynamic_with_data_matches_qemu() {
    let d = scratch_dir("vhd-qemu-dyn");
    let p = d.join("dynamic.vhd");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vpc", "-o", "subformat=dynamic"])
        .arg(&p)
        .arg("8M"));
    run(Command::new("qemu-io")
        .args([
            "-f",
            "vpc",
            "-c",
            "write -P 0xab 0 64k",
            "-c",
            "write -P 0x11 3M 4k",
            "-c",
            "write -P 0x22 7M 512",
        ])
        .arg(&p));
    assert!(probe_file(&p));
    let l = check_against_qemu(&p);
    let ext = l.extents(0..l.len()).unwrap();
    let data: u64 = ext
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| e.len)
        .sum();
    assert_eq!(data, 3 * (2 << 20));
    assert_eq!(ext[0].kind, ExtentKind::Data);
    assert!(ext[0].lower_offset.is_some());
    assert_eq!(l.describe()["allocated_blocks"], 3);

    let p2 = d.join("force.vhd");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
        ])
        .arg(&p2)
        .arg("5M"));
    run(Command::new("qemu-io")
        .args([
            "-f",
            "vpc",
            "-c",
            "write -P 0x5a 1M 8k",
            "-c",
            "write -P 0x33 4095k 1k",
        ])
        .arg(&p2));
    let l = check_against_qemu(&p2);
    assert_eq!(l.len(), 5 << 20);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn builder_dynamic_disk_matches_qemu_too() {
    // The builder's own dynamic disk, read by qemu: proves the builder follows the format.
    let spec = Spec::dynamic(1 << 20, 64 * 1024)
        .block(0, pattern(1, 65536), None)
        .block(9, pattern(2, 65536), None);
    let d = scratch_dir("vhd-builder-qemu");
    let p = d.join("b.vhd");
    std::fs::write(&p, spec.build()).unwrap();
    let l = check_against_qemu(&p);
    assert_same_bytes(
        &read_all(l.as_ref()),
        &spec.expected(None),
        "builder expectation",
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn size_rule_follows_qemu_10_and_can_be_forced() {
    // CHS 10/4/17 = 348160 bytes; current size 1 MiB.
    let data = vec![0u8; 1 << 20];
    let vpc = fixed(&data, *b"vpc ", (10, 4, 17));
    assert_eq!(open_bytes(vpc.clone()).unwrap().len(), 348_160);
    let wa = fixed(&data, *b"wa\0\0", (10, 4, 17));
    assert_eq!(open_bytes(wa).unwrap().len(), 1 << 20);
    // The CHS maximum means "use current_size" even for vpc.
    let max = fixed(&data, *b"vpc ", (65535, 16, 255));
    assert_eq!(open_bytes(max).unwrap().len(), 1 << 20);
    let mut o = Options::new();
    o.set("vhd.force_size_calc", "current_size");
    assert_eq!(
        open_bytes_with(vpc.clone(), ExternalPolicy::Deny, &o)
            .unwrap()
            .len(),
        1 << 20
    );
    o.set("vhd.force_size_calc", "bogus");
    assert_eq!(
        open_bytes_with(vpc, ExternalPolicy::Deny, &o)
            .unwrap_err()
            .kind(),
        vmsnap_core::ErrorKind::InvalidArgument
    );
}

#[test]
fn probe_refuses_other_files() {
    let zeros = vec![0u8; 4096];
    let w = SniffWindow::of_bytes(&zeros, &zeros, 4096);
    assert!(!(vmsnap_vhd::PLUGIN.probe)(&w).is_yes());
    let w = SniffWindow::of_bytes(b"conec", b"conec", 5);
    assert!(!(vmsnap_vhd::PLUGIN.probe)(&w).is_yes());
}
