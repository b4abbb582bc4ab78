//! VDI samples made by qemu-img, read byte for byte against `qemu-img convert -O raw`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use vmsnap_core::{ExtentKind, FileLayer, Layer, LayerExt, SniffWindow};
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_info, read_all, run};

fn check_against_qemu(path: &std::path::Path) -> std::sync::Arc<dyn Layer> {
    let layer = common::open_path(path).unwrap();
    let info = qemu_img_info(path);
    assert_eq!(
        layer.len(),
        info["virtual-size"].as_u64().unwrap(),
        "{path:?}"
    );
    assert_eq!(layer.describe()["format"], "vdi");
    assert_eq!(layer.describe()["virtual_size"], layer.len());
    let want = common::oracle(path, &["-f", "vdi"]);
    assert_same_bytes(
        &read_all(layer.as_ref()),
        &want,
        &path.display().to_string(),
    );
    // Every data extent maps 1:1 onto the file, and everything else reads as zeros.
    let file = FileLayer::open(path).unwrap();
    let ext = layer.extents(0..layer.len()).unwrap();
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), layer.len());
    for e in &ext {
        let got = &want[e.offset as usize..e.end() as usize];
        match e.kind {
            ExtentKind::Data => {
                let lo = e.lower_offset.expect("data extents are 1:1");
                let stored = file.read_vec(lo, e.len, 1 << 30, "extent").unwrap();
                assert_eq!(stored, got, "extent {e:?}");
            }
            _ => assert!(got.iter().all(|&b| b == 0), "extent {e:?}"),
        }
    }
    layer
}

#[test]
fn corpus_samples_match_qemu_img() {
    for name in ["dynamic.vdi", "empty.vdi", "static.vdi"] {
        check_against_qemu(&corpus(&format!("vdi/{name}")));
    }
}

#[test]
fn dynamic_sample_metadata() {
    let l = check_against_qemu(&corpus("vdi/dynamic.vdi"));
    let d = l.describe();
    assert_eq!(d["image_type"], "dynamic");
    assert_eq!(d["block_size"], 1 << 20);
    assert_eq!(d["blocks_in_image"], 4);
    assert_eq!(d["blocks_allocated"], 1);
    assert!(l.external_refs().is_empty());
    assert!(l.findings().is_empty(), "{:?}", l.findings());
    // Block 2 is the only stored block, at offset_data (0x400).
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext.len(), 3);
    assert_eq!(ext[0].kind, ExtentKind::Unallocated);
    assert_eq!(
        (ext[1].offset, ext[1].len, ext[1].lower_offset),
        (2 << 20, 1 << 20, Some(0x400))
    );
    assert_eq!(ext[2].kind, ExtentKind::Unallocated);
    let mut b = [0u8; 4];
    l.read_at((2 << 20) + (4 << 10), &mut b).unwrap();
    assert_eq!(b, [0x33; 4]);
    assert_eq!(
        l.meta()["header"]["text"],
        "<<< QEMU VM Virtual Disk Image >>>\n"
    );
}

#[test]
fn static_sample_is_identity_mapped() {
    let l = check_against_qemu(&corpus("vdi/static.vdi"));
    assert_eq!(l.describe()["image_type"], "static");
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(
        ext,
        vec![vmsnap_core::Extent::data(0, 1 << 20, Some(0x400))]
    );
}

#[test]
fn probe_accepts_samples_only() {
    let head = std::fs::read(corpus("vdi/empty.vdi")).unwrap();
    let w = SniffWindow::of_bytes(&head, &head, head.len() as u64);
    assert!((vmsnap_vdi::PLUGIN.probe)(&w).is_yes());
    let raw = vec![0u8; 4096];
    let w = SniffWindow::of_bytes(&raw, &raw, 4096);
    assert!(!(vmsnap_vdi::PLUGIN.probe)(&w).is_yes());
}

/// A peer returns wrong data for reads longer than one 1 MiB block: read a multi-block
/// image with one read, and with unaligned reads spanning many blocks in both orders of
/// the block map.
#[test]
fn reads_spanning_many_blocks_are_right() {
    let dir = vmsnap_testkit::scratch_dir("vdi-multiblock");
    let p = dir.join("multi.vdi");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vdi"])
        .arg(&p)
        .arg("9M"));
    // Written out of order so the block map is a permutation, with writes crossing
    // block boundaries and a hole in the middle.
    run(Command::new("qemu-io")
        .args(["-f", "vdi"])
        .args(["-c", "write -P 0xa1 7M 1M"])
        .args(["-c", "write -P 0xa2 1020k 8k"])
        .args(["-c", "write -P 0xa3 3M 2M"])
        .args(["-c", "write -P 0xa4 0 4k"])
        .args(["-c", "write -P 0xa5 8700k 400k"])
        .args(["-c", "write -P 0xa6 6143k 2k"])
        .arg(&p));
    let want = common::oracle(&p, &["-f", "vdi"]);
    let l = check_against_qemu(&p);
    assert_eq!(l.describe()["blocks_allocated"], 8);
    for (off, len) in [
        (0u64, 9usize << 20),
        (1000, (5 << 20) + 3),
        ((1 << 20) - 1, (2 << 20) + 2),
        ((3 << 20) + 17, 4 << 20),
        (512, (9 << 20) - 1024),
        ((6 << 20) - 4096, (3 << 20) + 4096),
    ] {
        let mut buf = vec![0xEEu8; len];
        l.read_at(off, &mut buf).unwrap();
        assert_same_bytes(
            &buf,
            &want[off as usize..off as usize + len],
            &format!("read {off}+{len}"),
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
