//! Crafted QED files, one per bound: each must fail with the expected error kind or open
//! with the expected finding, never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{open_bytes, open_with, Spec, CS};
use vmsnap_core::{
    ErrorKind, ExtentKind, ExternalPolicy, FileLayer, MemSource, RefDecision, Severity,
};

fn kind_of(s: &Spec) -> ErrorKind {
    open_bytes(s.build()).unwrap_err().kind()
}

fn read_err(s: &Spec, off: u64) -> ErrorKind {
    let l = open_bytes(s.build()).unwrap();
    let mut b = [0u8; 16];
    l.read_at(off, &mut b).unwrap_err().kind()
}

#[test]
fn crafted_image_reads_and_maps() {
    let mut s = Spec::new()
        .with_data(0, 1, 0xA0)
        .with_data(1, 2, 0xA1)
        .with_data(5, 0, 0xA5);
    s.l2[3] = 1; // zero cluster
    let l = open_bytes(s.build()).unwrap();
    let mut b = vec![0u8; 6 * CS];
    l.read_at(0, &mut b).unwrap();
    assert!(b[..CS].iter().all(|&x| x == 0xA0));
    assert!(b[CS..2 * CS].iter().all(|&x| x == 0xA1));
    assert!(b[2 * CS..5 * CS].iter().all(|&x| x == 0));
    assert!(b[5 * CS..].iter().all(|&x| x == 0xA5));
    let ext = l.extents(0..6 * CS as u64).unwrap();
    // Guest clusters 0 and 1 are adjacent in the file (clusters 4 and 5): one extent.
    assert_eq!(
        ext[0],
        vmsnap_core::Extent::data(0, 2 * CS as u64, Some(4 * CS as u64))
    );
    assert_eq!(ext[1].kind, ExtentKind::Unallocated);
    assert_eq!(ext[2].kind, ExtentKind::Zero);
    assert_eq!(ext[3].kind, ExtentKind::Unallocated);
    assert_eq!(ext[4].lower_offset, Some(3 * CS as u64));
    // The second L1 entry is 0: the rest of the disk is unallocated.
    assert_eq!(l.extents(2 << 20..4 << 20).unwrap().len(), 1);
}

#[test]
fn bad_magic() {
    let mut f = Spec::new().build();
    f[0] = b'X';
    assert_eq!(open_bytes(f).unwrap_err().kind(), ErrorKind::Malformed);
    assert_eq!(
        open_bytes(b"QED\0".to_vec()).unwrap_err().kind(),
        ErrorKind::Truncated
    );
}

#[test]
fn zero_huge_and_odd_cluster_sizes() {
    for (cs, want) in [
        (0u32, ErrorKind::Malformed),
        (1 << 30, ErrorKind::LimitExceeded),
        (3000, ErrorKind::Malformed),
        (2048, ErrorKind::Malformed),
    ] {
        let mut s = Spec::new();
        s.cluster_size = cs;
        assert_eq!(kind_of(&s), want, "cluster size {cs}");
    }
}

#[test]
fn bad_table_sizes() {
    for (ts, want) in [
        (0u32, ErrorKind::Malformed),
        (3, ErrorKind::Malformed),
        (32, ErrorKind::LimitExceeded),
    ] {
        let mut s = Spec::new();
        s.table_size = ts;
        assert_eq!(kind_of(&s), want, "table size {ts}");
    }
    // The file has 3 clusters: a 2-cluster L1 at cluster 1 fits exactly, 4 do not.
    let mut s = Spec::new();
    s.table_size = 2;
    s.l1 = vec![];
    assert!(open_bytes(s.build()).is_ok());
    s.table_size = 4;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn unknown_features_are_unsupported() {
    let mut s = Spec::new();
    s.features = 0x10;
    assert_eq!(kind_of(&s), ErrorKind::Unsupported);
}

#[test]
fn header_size_bounds() {
    let mut s = Spec::new();
    s.header_size = 0;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.header_size = u32::MAX;
    assert_eq!(kind_of(&s), ErrorKind::Truncated);
    // The L1 table may not sit inside a two-cluster header.
    s.header_size = 2;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn image_size_bounds() {
    let mut s = Spec::new();
    s.image_size = 4097;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    // 512 entries² × 4 KiB = 1 GiB is the most these tables map.
    s.image_size = (1 << 30) + 512;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.image_size = 1 << 30;
    assert!(open_bytes(s.build()).is_ok());
    s.image_size = u64::MAX - 511;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn l1_offset_bounds() {
    for off in [CS as u64 + 8, 0, 100 * CS as u64, u64::MAX - 4095] {
        let mut s = Spec::new();
        s.l1_offset = off;
        assert_eq!(kind_of(&s), ErrorKind::Malformed, "L1 at {off:#x}");
    }
}

#[test]
fn l1_and_l2_entries_are_checked_on_use() {
    // L1 entry pointing past the end of the file: opens, the read fails.
    let mut s = Spec::new();
    s.l1 = vec![64 * CS as u64];
    assert_eq!(read_err(&s, 0), ErrorKind::Malformed);
    s.l1 = vec![2 * CS as u64 + 8];
    assert_eq!(read_err(&s, 0), ErrorKind::Malformed);
    // L2 entries: unaligned, past EOF.
    for e in [3 * CS as u64 + 1, 1000 * CS as u64, 2] {
        let mut s = Spec::new().with_data(1, 0, 7);
        s.l2[0] = e;
        assert_eq!(read_err(&s, 0), ErrorKind::Malformed, "L2 entry {e:#x}");
        // The neighbouring cluster still reads.
        let l = open_bytes(s.build()).unwrap();
        let mut b = [0u8; 4];
        l.read_at(CS as u64, &mut b).unwrap();
        assert_eq!(b, [7; 4]);
        assert!(l.extents(0..4096).is_err());
    }
}

#[test]
fn cluster_cut_short_by_eof_reads_zeros() {
    let s = Spec::new().with_data(0, 0, 0x5A);
    let mut f = s.build();
    f.truncate(f.len() - 100);
    let l = open_bytes(f).unwrap();
    let mut b = vec![0u8; CS];
    l.read_at(0, &mut b).unwrap();
    assert!(b[..CS - 100].iter().all(|&x| x == 0x5A));
    assert!(b[CS - 100..].iter().all(|&x| x == 0));
}

#[test]
fn need_check_is_a_warning() {
    let mut s = Spec::new();
    s.features = 0x02;
    let l = open_bytes(s.build()).unwrap();
    let f = l.findings();
    assert!(f
        .iter()
        .any(|x| x.rule == vmsnap_qed::rule::NEED_CHECK && x.severity == Severity::Warning));
    assert_eq!(l.describe()["need_check"], true);
}

#[test]
fn backing_name_bounds() {
    let mut s = Spec::new();
    s.features = 0x01;
    s.backing = Some((64, vec![b'a'; 5000]));
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    s.backing = Some((4000, vec![b'a'; 200]));
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.backing = Some((8, b"base.img".to_vec()));
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn backing_references_go_through_the_policy() {
    for (name, policy) in [
        (&b"/etc/passwd"[..], ExternalPolicy::SameDir),
        (b"../up.img", ExternalPolicy::SameDir),
        (b"nbd:localhost:10809", ExternalPolicy::Any),
        (b"json:{\"driver\":\"file\"}", ExternalPolicy::Any),
        (b"base.img", ExternalPolicy::Deny),
    ] {
        let mut s = Spec::new().with_data(0, 0, 0x42);
        s.features = 0x01;
        s.backing = Some((64, name.to_vec()));
        let src = MemSource::with_path(s.build(), "/nonexistent-dir/top.qed");
        let l = open_with(Arc::new(FileLayer::new(Arc::new(src))), policy).unwrap();
        let refs = l.external_refs();
        assert_eq!(refs.len(), 1);
        assert!(
            matches!(refs[0].decision, RefDecision::Denied { .. }),
            "{refs:?}"
        );
        assert!(l
            .findings()
            .iter()
            .any(|f| f.rule == vmsnap_core::rule::BACKING_FILE && f.severity == Severity::Unsafe));
        // What the backing file would supply is unavailable, never zeros.
        let mut b = [9u8; 4];
        let e = l.read_at(CS as u64, &mut b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }
}

#[test]
fn self_referencing_backing_chain_stops_at_the_depth_cap() {
    let dir = vmsnap_testkit::scratch_dir("qed-loop");
    let p = dir.join("loop.qed");
    let mut s = Spec::new();
    s.features = 0x01;
    s.backing = Some((64, b"loop.qed".to_vec()));
    std::fs::write(&p, s.build()).unwrap();
    let e = common::open_path(&p, ExternalPolicy::SameDir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reads_past_the_end_fail() {
    let l = open_bytes(Spec::new().build()).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(
        l.read_at((4 << 20) - 1, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        l.read_at(u64::MAX, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}
