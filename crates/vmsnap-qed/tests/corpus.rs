//! QED samples made by qemu-img, read byte for byte against `qemu-img convert -O raw`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{
    ExtentKind, ExternalPolicy, FileLayer, Layer, LayerExt, RefDecision, RefKind, Severity,
    SniffWindow,
};
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_info, read_all, run};

fn check_against_qemu(path: &Path) -> Arc<dyn Layer> {
    let layer = common::open_path(path, ExternalPolicy::SameDir).unwrap();
    let info = qemu_img_info(path);
    assert_eq!(
        layer.len(),
        info["virtual-size"].as_u64().unwrap(),
        "{path:?}"
    );
    assert_eq!(layer.describe()["format"], "qed");
    assert_eq!(layer.describe()["virtual_size"], layer.len());
    assert_eq!(layer.describe()["cluster_size"], info["cluster-size"]);
    let want = common::oracle(path, &["-f", "qed"]);
    assert_same_bytes(
        &read_all(layer.as_ref()),
        &want,
        &path.display().to_string(),
    );
    check_extents(layer.as_ref(), path, &want);
    assert!(layer
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_qed::rule::QED && f.severity == Severity::Unsafe));
    layer
}

/// Data extents with a lower offset hold exactly the file's bytes there; zero and
/// unallocated extents read as zeros (when no backing file supplies them).
fn check_extents(layer: &dyn Layer, path: &Path, want: &[u8]) {
    let file = FileLayer::open(path).unwrap();
    let ext = layer.extents(0..layer.len()).unwrap();
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), layer.len());
    for e in &ext {
        let got = &want[e.offset as usize..e.end() as usize];
        match (e.kind, e.lower_offset) {
            (ExtentKind::Data, Some(lo)) => {
                let stored = file.read_vec(lo, e.len, 1 << 30, "extent").unwrap();
                assert_eq!(stored, got, "extent {e:?}");
            }
            (ExtentKind::Data, None) => {} // from the backing file
            _ => assert!(got.iter().all(|&b| b == 0), "extent {e:?}"),
        }
    }
}

#[test]
fn corpus_samples_match_qemu_img() {
    for name in [
        "plain.qed",
        "default.qed",
        "overlay-raw.qed",
        "overlay-qed.qed",
    ] {
        check_against_qemu(&corpus(&format!("qed/{name}")));
    }
}

#[test]
fn plain_sample_metadata_and_zero_cluster() {
    let l = check_against_qemu(&corpus("qed/plain.qed"));
    let d = l.describe();
    assert_eq!(d["table_size"], 2);
    assert_eq!(d["need_check"], false);
    assert!(d["backing"].is_null());
    assert!(l.external_refs().is_empty());
    // qemu-io `write -z` over allocated clusters writes zeros into them.
    let ext = l.extents(3 << 20..(3 << 20) + 8192).unwrap();
    assert_eq!(
        ext,
        vec![vmsnap_core::Extent::data(3 << 20, 8192, Some(32768))]
    );
}

#[test]
fn raw_backing_is_followed_under_same_dir() {
    let l = check_against_qemu(&corpus("qed/overlay-raw.qed"));
    let d = l.describe();
    assert_eq!(d["backing"]["name"], "base.raw");
    assert_eq!(d["backing"]["format"], "raw");
    assert_eq!(d["backing"]["followed"], true);
    assert_eq!(
        d["features"],
        serde_json::json!(["backing_file", "backing_format_no_probe"])
    );
    let refs = l.external_refs();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].kind, RefKind::Backing);
    assert!(matches!(refs[0].decision, RefDecision::Opened { .. }));
    assert_eq!(l.lower().len(), 2);
    // Backing data shows through at 0 (0xb1), the overlay's own data at 32 KiB.
    let mut b = [0u8; 2];
    l.read_at(0, &mut b).unwrap();
    assert_eq!(b, [0xb1; 2]);
    l.read_at(32 << 10, &mut b).unwrap();
    assert_eq!(b, [0xc1; 2]);
    // `write -z 200k 4k` over an unallocated cluster made a zero cluster, which hides the
    // backing file's 0xb2 there.
    let ext = l.extents(200 << 10..204 << 10).unwrap();
    assert_eq!(
        ext,
        vec![vmsnap_core::Extent::of(ExtentKind::Zero, 200 << 10, 4096)]
    );
    let ext = l.extents(0..32 << 10).unwrap();
    assert_eq!(ext, vec![vmsnap_core::Extent::data(0, 32 << 10, None)]);
}

#[test]
fn qed_backing_is_probed() {
    let l = check_against_qemu(&corpus("qed/overlay-qed.qed"));
    let d = l.describe();
    assert_eq!(d["backing"]["format"], serde_json::Value::Null);
    assert_eq!(d["backing"]["format_opened"], "qed");
}

#[test]
fn denied_backing_is_unavailable_with_an_unsafe_finding() {
    let path = corpus("qed/overlay-raw.qed");
    let l = common::open_path(&path, ExternalPolicy::Deny).unwrap();
    let f: Vec<_> = l
        .findings()
        .into_iter()
        .filter(|f| f.rule == vmsnap_core::rule::BACKING_FILE)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Unsafe);
    assert!(matches!(
        l.external_refs()[0].decision,
        RefDecision::Denied { .. }
    ));
    assert_eq!(l.describe()["backing"]["followed"], false);
    // Bytes of the refused backing file fail to read (they used to read as zeros);
    // the overlay's own data still reads as qemu-img reads it.
    let mut b = [1u8; 4];
    let e = l.read_at(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unavailable);
    let want = common::oracle(&path, &["-f", "qed"]);
    let mut unavailable = 0;
    for e in l.extents(0..l.len()).unwrap() {
        let r = e.offset as usize..e.end() as usize;
        match e.kind {
            ExtentKind::Data => {
                let mut got = vec![0u8; r.len()];
                l.read_at(e.offset, &mut got).unwrap();
                assert_eq!(got[..], want[r]);
            }
            ExtentKind::Unavailable => unavailable += 1,
            _ => {}
        }
    }
    assert!(unavailable > 0);
}

#[test]
fn one_cluster_tables_qemu_cannot_reopen_are_read() {
    // qemu-img creates this geometry but its own table-offset check then refuses it.
    let dir = vmsnap_testkit::scratch_dir("qed-ts1");
    let p = dir.join("ts1.qed");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qed",
            "-o",
            "cluster_size=4096,table_size=1",
        ])
        .arg(&p)
        .arg("4M"));
    let l = common::open_path(&p, ExternalPolicy::Deny).unwrap();
    assert_eq!(l.len(), 4 << 20);
    assert!(read_all(l.as_ref()).iter().all(|&b| b == 0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn probe_accepts_samples_only() {
    let head = std::fs::read(corpus("qed/plain.qed")).unwrap();
    let w = SniffWindow::of_bytes(&head, &head, head.len() as u64);
    assert!((vmsnap_qed::PLUGIN.probe)(&w).is_yes());
    let raw = std::fs::read(corpus("qed/base.raw")).unwrap();
    let w = SniffWindow::of_bytes(&raw, &raw, raw.len() as u64);
    assert!(!(vmsnap_qed::PLUGIN.probe)(&w).is_yes());
}
