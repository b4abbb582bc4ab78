//! What disk.asif's recipe (corpus/asif/make.sh) stored reads back as the right kind of
//! extent: written chunks as data at their file offsets, unwritten ones unallocated, the
//! sectors of the partly written chunk as its group bitmap says; and `describe` reports
//! the header.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_asif::Asif;
use vmsnap_core::{ExtentKind, FileLayer, Layer};
use vmsnap_testkit::corpus;

const K: u64 = 64 * 1024;

fn disk(name: &str) -> Asif {
    Asif::open_layer(Arc::new(
        FileLayer::open(corpus(&format!("asif/{name}"))).unwrap(),
    ))
    .unwrap()
}

#[test]
fn extents_follow_the_tables_and_the_bitmap() {
    let d = disk("disk.asif");
    let kinds: Vec<(u64, u64, ExtentKind)> = d
        .extents(0..16 * K)
        .unwrap()
        .iter()
        .map(|e| (e.offset, e.len, e.kind))
        .collect();
    let (data, hole) = (ExtentKind::Data, ExtentKind::Unallocated);
    assert_eq!(
        kinds,
        vec![
            (0, K, data),
            (K, K, hole),
            (2 * K, 8 * 512, data),
            (2 * K + 8 * 512, 92 * 512, hole),
            (2 * K + 100 * 512, 4 * 512, data),
            (2 * K + 104 * 512, 8 * K - 104 * 512, hole),
            (10 * K, 3 * K, data),
            (13 * K, 3 * K, hole),
        ]
    );
    // Chunks 10, 11 and 12 lie one after the other in the file: one extent, one offset.
    let e = d.extents(10 * K..13 * K).unwrap();
    assert_eq!(e.len(), 1);
    assert!(e[0].lower_offset.is_some());
    // The last chunk of the disk is data, and reads its pattern.
    let end = d.len();
    let e = d.extents(end - K..end).unwrap();
    assert_eq!((e.len(), e[0].kind), (1, data));
    let mut buf = vec![0u8; 16];
    d.read_at(end - K, &mut buf).unwrap();
    assert_eq!(&buf, b"asif last chunk\n");
    // The unwritten sectors of the partly written chunk read as zeros.
    let mut buf = vec![1u8; 512];
    d.read_at(2 * K + 8 * 512, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn describe_reports_the_header_and_metadata() {
    let d = disk("disk.asif");
    let v = d.describe();
    assert_eq!(v["virtual_size"], 1u64 << 30);
    assert_eq!(v["max_size"], 2u64 << 30);
    assert_eq!(v["chunk_size"], K);
    assert_eq!(v["block_size"], 512);
    assert_eq!(v["tables"], 3);
    assert_eq!(v["active_directory"], 1);
    assert_eq!(v["uuid"], "10111213-1415-1617-1819-1a1b1c1d1e1f");
    assert_eq!(v["stable_uuid"], "6f0d3c52-8a41-4e27-9b1e-2d5c7a90e13f");
    let a = disk("apple.asif").describe();
    assert_eq!(a["table_span"], 129_024u64 << 20);
    assert_eq!(a["active_directory"], 0);
    assert_eq!(a["stable_uuid"], serde_json::Value::Null);
}
