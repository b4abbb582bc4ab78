//! Crafted VDI files, one per bound: each must fail with the expected error kind or
//! open with the expected finding, never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{open_bytes, Spec};
use vmsnap_core::{ErrorKind, ExtentKind, RefDecision, RefKind, Severity};

fn kind_of(s: &Spec) -> ErrorKind {
    open_bytes(s.build()).unwrap_err().kind()
}

fn with_blocks(mut s: Spec, stored: &[(usize, u32)]) -> Spec {
    let bs = s.block_size as usize;
    let n = stored
        .iter()
        .map(|&(_, e)| e as usize + 1)
        .max()
        .unwrap_or(0);
    s.data = vec![0u8; n * bs];
    for &(i, e) in stored {
        s.bmap[i] = e;
        s.data[e as usize * bs..(e as usize + 1) * bs].fill(0x10 + i as u8);
    }
    s.blocks_allocated = stored.len() as u32;
    s
}

#[test]
fn crafted_dynamic_image_reads_and_maps() {
    let s = with_blocks(Spec::dynamic(8), &[(1, 1), (3, 0), (4, 2)]);
    let l = open_bytes(s.build()).unwrap();
    let rules: Vec<_> = l.findings().iter().map(|f| f.rule).collect();
    assert_eq!(rules, [vmsnap_vdi::rule::BLOCK_SIZE]);
    let mut buf = vec![0u8; 5 * 4096];
    l.read_at(4096 - 1, &mut buf).unwrap();
    assert_eq!(buf[0], 0);
    assert!(buf[1..4097].iter().all(|&b| b == 0x11));
    assert!(buf[4097..8193].iter().all(|&b| b == 0));
    assert!(buf[8193..12289].iter().all(|&b| b == 0x13));
    assert!(buf[12289..16385].iter().all(|&b| b == 0x14));
    let ext = l.extents(0..l.len()).unwrap();
    let data = s.offset_data as u64;
    assert_eq!(ext[1].lower_offset, Some(data + 4096));
    assert_eq!(ext[3].lower_offset, Some(data));
    // Blocks 3 and 4 are not adjacent in the file, so they are two extents.
    assert_eq!(ext[4].lower_offset, Some(data + 2 * 4096));
    assert_eq!(ext[5].kind, ExtentKind::Unallocated);
}

#[test]
fn bad_signature_and_version() {
    let mut f = Spec::dynamic(4).build();
    f[0x40] = 0;
    assert_eq!(open_bytes(f).unwrap_err().kind(), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.version = 0x0001_0000;
    assert_eq!(kind_of(&s), ErrorKind::Unsupported);
    assert_eq!(
        open_bytes(vec![0u8; 100]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
}

#[test]
fn zero_huge_and_odd_block_sizes() {
    let mut s = Spec::dynamic(4);
    s.block_size = 0;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.block_size = 1 << 30;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    s.block_size = 3000;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    s.block_size = 256;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn sector_size_and_image_type() {
    let mut s = Spec::dynamic(4);
    s.sector_size = 4096;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.image_type = 9;
    assert_eq!(kind_of(&s), ErrorKind::Unsupported);
}

#[test]
fn block_counts_and_disk_size() {
    let mut s = Spec::dynamic(4);
    s.blocks_in_image = 0x4000_0000;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    // Within the format's bound but the block map would run past the end of the file.
    let mut s = Spec::dynamic(4);
    s.blocks_in_image = 0x3FFF_FFFF;
    s.disk_size = 4096;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
    let mut s = Spec::dynamic(4);
    s.blocks_in_image = 1 << 20;
    assert_eq!(kind_of(&s), ErrorKind::Truncated);
    // Disk size beyond what the blocks cover.
    let mut s = Spec::dynamic(4);
    s.disk_size = 4 * 4096 + 512;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.disk_size = u64::MAX;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
}

#[test]
fn odd_disk_size_rounds_up_like_qemu() {
    let mut s = Spec::dynamic(4);
    s.disk_size = 3 * 4096 + 1;
    let l = open_bytes(s.build()).unwrap();
    assert_eq!(l.len(), 3 * 4096 + 512);
}

#[test]
fn misaligned_and_overlapping_offsets() {
    let mut s = Spec::dynamic(4);
    s.offset_bmap = 0x201;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.offset_data = 0x300;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(200);
    s.offset_data = 512;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.offset_bmap = 0;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
}

#[test]
fn block_map_entries_out_of_range_or_past_eof() {
    let mut s = Spec::dynamic(4);
    s.bmap[2] = 4;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    let mut s = Spec::dynamic(4);
    s.bmap[2] = 0x7FFF_FFFF;
    assert_eq!(kind_of(&s), ErrorKind::Malformed);
    // Entry 3 names stored block 3, but the file holds only one block.
    let mut s = with_blocks(Spec::dynamic(4), &[(0, 0)]);
    s.bmap[1] = 3;
    let e = open_bytes(s.build()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn truncated_last_block_reads_zeros_with_a_finding() {
    let s = with_blocks(Spec::dynamic(4), &[(2, 0)]);
    let mut f = s.build();
    f.truncate(f.len() - 1000);
    let l = open_bytes(f).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vdi::rule::TRUNCATED));
    let mut b = vec![0u8; 4096];
    l.read_at(2 * 4096, &mut b).unwrap();
    assert!(b[..3096].iter().all(|&x| x == 0x12));
    assert!(b[3096..].iter().all(|&x| x == 0));
    let ext = l.extents(2 * 4096..3 * 4096).unwrap();
    assert_eq!(ext[0].len, 3096);
    assert_eq!(ext[1].kind, ExtentKind::Zero);
}

#[test]
fn discarded_blocks_read_zero() {
    let mut s = with_blocks(Spec::dynamic(4), &[(0, 0)]);
    s.bmap[1] = 0xFFFF_FFFE;
    let l = open_bytes(s.build()).unwrap();
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[1].kind, ExtentKind::Zero);
    assert_eq!(l.describe()["blocks_discarded"], 1);
}

#[test]
fn shared_blocks_and_wrong_allocated_count_are_findings() {
    let mut s = with_blocks(Spec::dynamic(4), &[(0, 0)]);
    s.bmap[3] = 0;
    s.blocks_allocated = 9;
    let l = open_bytes(s.build()).unwrap();
    let rules: Vec<_> = l.findings().iter().map(|f| f.rule).collect();
    assert!(rules.contains(&vmsnap_vdi::rule::BLOCK_MAP), "{rules:?}");
    let mut b = [0u8; 1];
    l.read_at(3 * 4096, &mut b).unwrap();
    assert_eq!(b, [0x10]);
}

#[test]
fn block_extra_uses_the_virtualbox_layout() {
    let mut s = Spec::dynamic(2);
    s.block_extra = 512;
    s.bmap = vec![1, 0];
    s.blocks_allocated = 2;
    // Each stored block is 512 bytes of metadata followed by 4096 bytes of data.
    for fill in [0xB0u8, 0xB1] {
        s.data.extend_from_slice(&[0xEE; 512]);
        s.data.extend_from_slice(&[fill; 4096]);
    }
    let l = open_bytes(s.build()).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_vdi::rule::BLOCK_EXTRA));
    let mut b = vec![0u8; 8192];
    l.read_at(0, &mut b).unwrap();
    assert!(b[..4096].iter().all(|&x| x == 0xB1));
    assert!(b[4096..].iter().all(|&x| x == 0xB0));
    s.block_extra = 1 << 30;
    assert_eq!(kind_of(&s), ErrorKind::LimitExceeded);
}

#[test]
fn differencing_parent_not_found_is_unavailable() {
    let mut s = with_blocks(Spec::dynamic(4), &[(1, 0)]);
    s.image_type = 4;
    s.uuid_link = [0x11; 16];
    s.uuid_parent = [0x22; 16];
    let l = open_bytes(s.build()).unwrap();
    // The parent is looked up by its UUID (uuid_link) among the files beside the image;
    // bytes in memory have no directory, so it is not found.
    let refs = l.external_refs();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].kind, RefKind::Parent);
    assert!(
        matches!(&refs[0].decision, RefDecision::Failed { reason } if reason.contains("no directory")),
        "{refs:?}"
    );
    assert_eq!(refs[0].name, "11111111-1111-1111-1111-111111111111");
    let f = l.findings();
    assert!(f
        .iter()
        .any(|x| x.rule == vmsnap_core::rule::PARENT && x.severity == Severity::Unsafe));
    assert!(f.iter().any(|x| x.rule == vmsnap_vdi::rule::IMAGE_TYPE));
    assert_eq!(l.describe()["parent"]["followed"], false);
    assert_eq!(l.describe()["parent"]["unallocated_reads"], "unavailable");
    // Block 0 is the parent's: unavailable, not zeros (it used to read as zeros).
    let mut b = vec![1u8; 4096];
    let e = l.read_at(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.to_string()
            .contains("11111111-1111-1111-1111-111111111111"),
        "{e}"
    );
}

#[test]
fn reads_past_the_end_fail() {
    let l = open_bytes(Spec::dynamic(4).build()).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(
        l.read_at(4 * 4096 - 1, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        l.read_at(u64::MAX, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert!(l.extents(10 * 4096..20 * 4096).unwrap().is_empty());
}
