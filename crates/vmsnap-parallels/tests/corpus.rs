//! Parallels samples made by qemu-img, read byte for byte against `qemu-img convert`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{ExtentKind, FileLayer, Layer, LayerExt, SniffWindow};
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_info, read_all};

fn check_against_qemu(path: &Path) -> Arc<dyn Layer> {
    let layer = common::open_path(path).unwrap();
    let info = qemu_img_info(path);
    assert_eq!(
        layer.len(),
        info["virtual-size"].as_u64().unwrap(),
        "{path:?}"
    );
    assert_eq!(layer.describe()["format"], "parallels");
    assert_eq!(layer.describe()["virtual_size"], layer.len());
    let want = common::oracle(path, &["-f", "parallels"]);
    assert_same_bytes(
        &read_all(layer.as_ref()),
        &want,
        &path.display().to_string(),
    );
    let file = FileLayer::open(path).unwrap();
    let ext = layer.extents(0..layer.len()).unwrap();
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), layer.len());
    for e in &ext {
        let got = &want[e.offset as usize..e.end() as usize];
        match e.kind {
            ExtentKind::Data => {
                let lo = e.lower_offset.expect("data extents are 1:1");
                assert_eq!(file.read_vec(lo, e.len, 1 << 30, "extent").unwrap(), got);
            }
            _ => assert!(got.iter().all(|&b| b == 0), "extent {e:?}"),
        }
    }
    layer
}

#[test]
fn corpus_samples_match_qemu_img() {
    for name in ["plain.hds", "small-clusters.hds", "empty.hds"] {
        check_against_qemu(&corpus(&format!("parallels/{name}")));
    }
}

#[test]
fn plain_sample_metadata() {
    let l = check_against_qemu(&corpus("parallels/plain.hds"));
    let d = l.describe();
    assert_eq!(d["variant"], "WithouFreSpacExt");
    assert_eq!(d["cluster_size"], 65536);
    assert_eq!(d["bat_entries"], 128);
    assert_eq!(d["allocated_clusters"], 4);
    assert_eq!(d["in_use"], "none");
    assert!(d["format_extension"].is_null());
    assert!(l.findings().is_empty(), "{:?}", l.findings());
    // Clusters were written out of order (5 MiB first), so extents are not ascending;
    // guest clusters 0 and 1 were allocated together and form one extent.
    let ext: Vec<_> = l
        .extents(0..l.len())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .collect();
    assert_eq!(ext.len(), 3);
    assert_eq!(ext[0].len, 2 << 16);
    assert!(ext[0].lower_offset > ext[1].lower_offset);
}

#[test]
fn empty_sample_is_unallocated() {
    let l = check_against_qemu(&corpus("parallels/empty.hds"));
    assert_eq!(l.describe()["cluster_size"], 1 << 20);
    assert_eq!(
        l.extents(0..l.len()).unwrap(),
        vec![vmsnap_core::Extent::of(
            ExtentKind::Unallocated,
            0,
            32 << 20
        )]
    );
}

#[test]
fn probe_accepts_samples_only() {
    let head = std::fs::read(corpus("parallels/small-clusters.hds")).unwrap();
    let w = SniffWindow::of_bytes(&head, &head, head.len() as u64);
    assert!((vmsnap_parallels::PLUGIN.probe)(&w).is_yes());
    let mut v3 = head.clone();
    v3[16] = 3;
    let w = SniffWindow::of_bytes(&v3, &v3, v3.len() as u64);
    assert!(!(vmsnap_parallels::PLUGIN.probe)(&w).is_yes());
    let w = SniffWindow::of_bytes(&[0; 100], &[0; 100], 100);
    assert!(!(vmsnap_parallels::PLUGIN.probe)(&w).is_yes());
}
