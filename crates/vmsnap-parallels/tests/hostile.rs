//! Crafted Parallels files, one per bound: each must fail with the expected error kind
//! or open with the expected finding, never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{bitmap, ext_cluster, open_bytes, seal, Spec, CS};
use vmsnap_core::{ErrorKind, Extent, ExtentKind};

const BITMAP: u64 = 0x2038_5FAE_252C_B34A;

fn kind_of(s: &Spec) -> ErrorKind {
    open_bytes(s.build()).unwrap_err().kind()
}

#[test]
fn crafted_image_reads_and_maps() {
    let s = Spec::new(8)
        .with_data(0, 1, 0xA0)
        .with_data(1, 2, 0xA1)
        .with_data(4, 0, 0xA4);
    let l = open_bytes(s.build()).unwrap();
    assert!(l.findings().is_empty(), "{:?}", l.findings());
    let mut b = vec![0u8; 5 * CS];
    l.read_at(0, &mut b).unwrap();
    assert!(b[..CS].iter().all(|&x| x == 0xA0));
    assert!(b[CS..2 * CS].iter().all(|&x| x == 0xA1));
    assert!(b[2 * CS..4 * CS].iter().all(|&x| x == 0));
    assert!(b[4 * CS..].iter().all(|&x| x == 0xA4));
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[0], Extent::data(0, 2 * CS as u64, Some(2 * CS as u64)));
    assert_eq!(
        ext[1],
        Extent::of(ExtentKind::Unallocated, 2 * CS as u64, 2 * CS as u64)
    );
    assert_eq!(
        ext[2],
        Extent::data(4 * CS as u64, CS as u64, Some(CS as u64))
    );
    assert_eq!(ext[3].kind, ExtentKind::Unallocated);
}

#[test]
fn old_format_counts_sectors_and_32_bit_sizes() {
    let mut s = Spec::new(4);
    s.magic = *b"WithoutFreeSpace";
    // 8 sectors = offset 4096 for guest cluster 1; the high word of the size is ignored.
    s.bat[1] = 8;
    s.clusters = vec![vec![0x77; CS]];
    s.nb_sectors = (7 << 32) | 32;
    let l = open_bytes(s.build()).unwrap();
    assert_eq!(l.len(), 32 * 512);
    assert_eq!(l.describe()["variant"], "WithoutFreeSpace");
    let mut b = [0u8; 4];
    l.read_at(CS as u64, &mut b).unwrap();
    assert_eq!(b, [0x77; 4]);
}

#[test]
fn bad_signature_and_version() {
    let mut s = Spec::new(4);
    s.magic = *b"WithoutFreeSpacX";
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::new(4);
    s.version = 3;
    assert_eq!(kind_of(&s), ErrorKind::Unsupported);
    assert_eq!(
        open_bytes(vec![0u8; 10]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
}

#[test]
fn zero_and_huge_cluster_sizes() {
    let mut s = Spec::new(4);
    s.tracks = 0;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.tracks = u32::MAX;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    // Not a power of two is fine (QEMU accepts any sector count).
    let mut s = Spec::new(4);
    s.tracks = 3;
    s.nb_sectors = 12;
    assert!(open_bytes(s.build()).is_ok());
}

#[test]
fn bat_size_bounds() {
    let mut s = Spec::new(4);
    s.bat_entries = u32::MAX;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    s.bat_entries = 1 << 20;
    assert_eq!(kind_of(&s), ErrorKind::Truncated);
    // A BAT shorter than the disk: the rest reads as zeros, with a finding.
    let mut s = Spec::new(4).with_data(0, 0, 1);
    s.nb_sectors = 64;
    let l = open_bytes(s.build()).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_parallels::rule::BAT));
    let mut b = [9u8; 4];
    l.read_at(7 * CS as u64, &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    let mut s = Spec::new(4);
    s.nb_sectors = u64::MAX;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
}

#[test]
fn bat_entries_past_eof_or_into_the_header() {
    let mut s = Spec::new(4).with_data(0, 0, 1);
    s.bat[2] = 50;
    let e = open_bytes(s.build()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("past the end"), "{e}");
    let mut s = Spec::new(4).with_data(0, 0, 1);
    s.bat[2] = u32::MAX;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn bat_entry_into_the_bat_is_rejected() {
    // Old format (sector units) with a 200-entry BAT: sector 1 lies inside header + BAT.
    let mut s = Spec::new(200);
    s.magic = *b"WithoutFreeSpace";
    s.clusters = vec![vec![0; CS]];
    s.bat[5] = 1; // sector 1 = bytes 512..: inside the 864-byte header + BAT
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn overlapping_and_truncated_clusters_are_findings() {
    let mut s = Spec::new(4).with_data(0, 0, 0x31);
    s.bat[3] = 1;
    let mut f = s.build();
    f.truncate(f.len() - 96);
    let l = open_bytes(f).unwrap();
    let rules: Vec<_> = l.findings().iter().map(|f| f.rule).collect();
    assert!(
        rules.contains(&vmsnap_parallels::rule::BAT)
            && rules.contains(&vmsnap_parallels::rule::TRUNCATED),
        "{rules:?}"
    );
    let mut b = vec![0u8; CS];
    l.read_at(3 * CS as u64, &mut b).unwrap();
    assert!(b[..CS - 96].iter().all(|&x| x == 0x31));
    assert!(b[CS - 96..].iter().all(|&x| x == 0));
}

#[test]
fn in_use_and_data_off_findings() {
    let mut s = Spec::new(4);
    s.in_use = 0x746F_6E59;
    s.data_off = 0;
    let l = open_bytes(s.build()).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_parallels::rule::DIRTY));
    assert_eq!(l.describe()["in_use"], "open");
    let mut s = Spec::new(4);
    s.data_off = 0x0000_0000;
    assert!(open_bytes(s.build()).unwrap().findings().is_empty());
    let mut s = Spec::new(1000);
    s.data_off = 1;
    assert!(open_bytes(s.build())
        .unwrap()
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_parallels::rule::DATA_OFF));
}

/// 32 clusters of 4 KiB = 256 sectors; 1-sector granularity gives 256 bits = 32 bytes,
/// one L1 entry.
fn bitmap_image(features: &[(u64, u64, Vec<u8>)], bad_sum: bool) -> Spec {
    let mut s = Spec::new(32).with_data(0, 0, 0x11);
    s.nb_sectors = 256;
    s.with_ext(1, ext_cluster(features, bad_sum))
}

#[test]
fn dirty_bitmaps_are_listed() {
    let s = bitmap_image(
        &[
            (BITMAP, 0, bitmap(256, 1, &[1])),
            (BITMAP, 0, bitmap(256, 8, &[0])),
            (BITMAP, 0, bitmap(256, 2, &[8])),
        ],
        false,
    );
    let l = open_bytes(s.build()).unwrap();
    let d = l.describe();
    let bms = d["format_extension"]["dirty_bitmaps"].as_array().unwrap();
    assert_eq!(bms.len(), 3);
    assert_eq!(bms[0]["id"], "abababab-abab-abab-abab-abababababab");
    assert_eq!(bms[0]["granularity"], 512);
    assert_eq!(bms[0]["set_chunks"], 1);
    assert_eq!(bms[1]["clear_chunks"], 1);
    assert_eq!(bms[2]["stored_chunks"], 1);
    // The disk still reads.
    let mut b = [0u8; 2];
    l.read_at(0, &mut b).unwrap();
    assert_eq!(b, [0x11; 2]);
}

#[test]
fn extension_magic_checksum_and_place() {
    let mut s = bitmap_image(&[], false);
    s.clusters[1][0] ^= 1;
    seal(&mut s.clusters[1], false);
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    assert_eq!(kind_of(&bitmap_image(&[], true)), ErrorKind::Malformed);
    let mut s = bitmap_image(&[], false);
    s.ext_off = 1000;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.ext_off = u64::MAX;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    // Empty feature list is fine.
    assert!(open_bytes(bitmap_image(&[], false).build()).is_ok());
}

/// QEMU GitLab #4156: feature headers and payloads that run past the cluster.
#[test]
fn extension_overruns() {
    // A payload larger than what is left of the cluster.
    let mut s = bitmap_image(&[(0x1234, 0, vec![])], false);
    let c = &mut s.clusters[1];
    c[24 + 16..24 + 20].copy_from_slice(&((CS - 48 + 1) as u32).to_le_bytes());
    seal(c, false);
    let e = open_bytes(s.build()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("left in the extension"), "{e}");
    // Payloads that exactly fill the cluster leave no room for the end marker.
    let s = bitmap_image(&[(0x1234, 0, vec![0; CS - 48])], false);
    let e = open_bytes(s.build()).unwrap_err();
    assert!(e.to_string().contains("overruns the cluster"), "{e}");
    // Many small features whose padded sizes walk the cursor to the end: the budget
    // shrinks with the cursor, so this ends in an error, not an out-of-bounds read.
    let feats: Vec<_> = (0..200).map(|_| (0x1234u64, 0u64, vec![1u8; 1])).collect();
    let e = open_bytes(bitmap_image(&feats, false).build()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    // No end marker at all: every byte is a huge-magic feature of size 0 until the end.
    let mut s = bitmap_image(&[], false);
    let c = &mut s.clusters[1];
    for p in (24..CS).step_by(24) {
        if p + 8 <= CS {
            c[p..p + 8].copy_from_slice(&0x5555u64.to_le_bytes());
        }
    }
    seal(c, false);
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn unknown_features() {
    let s = bitmap_image(&[(0x1234, 0, vec![7; 10])], false);
    let l = open_bytes(s.build()).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_parallels::rule::UNKNOWN_FEATURES));
    assert_eq!(
        l.describe()["format_extension"]["unknown_features"][0],
        "0x1234"
    );
    let s = bitmap_image(&[(0x1234, 1, vec![7; 10])], false);
    assert_eq!(kind_of(&s), ErrorKind::Unsupported);
}

#[test]
fn dirty_bitmap_bounds() {
    for (what, payload) in [
        ("too small", vec![0u8; 31]),
        ("size differs from the disk", bitmap(255, 1, &[1])),
        ("zero granularity", bitmap(256, 0, &[1])),
        ("granularity not a power of two", bitmap(256, 3, &[1])),
        ("wrong L1 size", bitmap(256, 1, &[1, 1])),
        ("stored chunk past EOF", bitmap(256, 1, &[1 << 20])),
        ("stored chunk offset overflows", bitmap(256, 1, &[u64::MAX])),
    ] {
        let s = bitmap_image(&[(BITMAP, 0, payload)], false);
        assert_eq!(kind_of(&s), ErrorKind::Malformed, "{what}");
    }
    // An L1 size that runs past the feature data.
    let mut p = bitmap(256, 1, &[1]);
    p[28..32].copy_from_slice(&1000u32.to_le_bytes());
    let s = bitmap_image(&[(BITMAP, 0, p)], false);
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn reads_past_the_end_fail() {
    let l = open_bytes(Spec::new(4).build()).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(
        l.read_at(4 * CS as u64 - 1, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        l.read_at(u64::MAX, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}
