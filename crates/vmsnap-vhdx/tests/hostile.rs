//! Crafted VHDXs: one per bound and per known bug (§1.6, §5), with the expected error
//! kind or finding; bad CRCs on one header or region-table copy select the other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::ErrorKind;
use vmsnap_testkit::{assert_same_bytes, read_all};

const H1: usize = 64 * 1024;
const H2: usize = 128 * 1024;
const RT1: usize = 192 * 1024;
const RT2: usize = 256 * 1024;
const ITEMS: usize = META_AT + 64 * 1024;

fn base() -> (Spec, Vec<u8>, Layout) {
    let s = Spec::dynamic(4 << 20, 1 << 20, 512).full(1, pattern(9, 1 << 20));
    let (f, l) = s.build();
    (s, f, l)
}

fn kind(f: Vec<u8>) -> ErrorKind {
    match open_bytes(f) {
        Ok(_) => panic!("opened, but an error was expected"),
        Err(e) => e.kind(),
    }
}

fn set(f: &mut [u8], at: usize, v: &[u8]) {
    f[at..at + v.len()].copy_from_slice(v);
}

#[test]
fn bad_crc_on_one_header_selects_the_other() {
    let (s, f, _) = base();
    // Header 2 has the higher sequence number; break it and header 1 is used.
    let mut g = f.clone();
    g[H2 + 100] ^= 1;
    let l = open_bytes(g).unwrap();
    assert_eq!(l.describe()["header"]["copy"], 1);
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhdx::rule::HEADER && x.message.contains("CRC")));
    assert_same_bytes(&read_all(l.as_ref()), &s.expected(None), "data");
    let mut g = f.clone();
    g[H1 + 100] ^= 1;
    assert_eq!(open_bytes(g).unwrap().describe()["header"]["copy"], 2);
    assert_eq!(
        open_bytes(f.clone()).unwrap().describe()["header"]["copy"],
        2
    );
    let mut g = f;
    g[H1 + 100] ^= 1;
    g[H2 + 100] ^= 1;
    assert_eq!(kind(g), ErrorKind::Malformed);
}

#[test]
fn equal_sequence_numbers_with_different_headers_are_a_finding() {
    let (_, mut f, _) = base();
    set(&mut f, H2 + 8, &1u64.to_le_bytes());
    set(&mut f, H2 + 16, &[0x77; 16]);
    fix_header(&mut f, H2);
    let l = open_bytes(f).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhdx::rule::HEADER && x.message.contains("same sequence")));
}

#[test]
fn a_dirty_log_in_the_unused_header_is_not_replayed() {
    // Header 2 (newer) is corrupt and carries the log GUID: header 1 (clean) wins.
    let (s, mut f, lay) = base();
    let guid = [0x4C; 16];
    let e = log_entry(
        1,
        guid,
        &[W::Data(lay.block_at[&1] as u64, vec![0xEE; 4096])],
        f.len() as u64,
        0,
    );
    add_log(&mut f, s.data_write_guid, guid, &[(0, e)]);
    set(&mut f, H1 + 48, &[0; 16]);
    fix_header(&mut f, H1);
    f[H2 + 200] ^= 1;
    let l = open_bytes(f).unwrap();
    assert_eq!(l.describe()["log"]["replayed"], false);
    assert_same_bytes(&read_all(l.as_ref()), &s.expected(None), "unreplayed");
}

#[test]
fn bad_region_table_crc_selects_the_copy() {
    let (_, f, _) = base();
    let mut g = f.clone();
    g[RT1 + 40] ^= 1;
    let l = open_bytes(g).unwrap();
    assert_eq!(l.describe()["region_table_copy"], 2);
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhdx::rule::REGION_TABLE));
    let mut g = f;
    g[RT1 + 40] ^= 1;
    g[RT2 + 40] ^= 1;
    assert_eq!(kind(g), ErrorKind::Malformed);
}

fn with_region(f: &[u8], n: u32, entry: Option<([u8; 16], u64, u32, u32)>) -> Vec<u8> {
    let mut g = f.to_vec();
    for rt in [RT1, RT2] {
        set(&mut g, rt + 8, &n.to_le_bytes());
        if let Some((guid, off, len, flags)) = entry {
            let e = rt + 16 + 2 * 32;
            set(&mut g, e, &guid);
            set(&mut g, e + 16, &off.to_le_bytes());
            set(&mut g, e + 24, &len.to_le_bytes());
            set(&mut g, e + 28, &flags.to_le_bytes());
        }
        fix_region(&mut g, rt);
    }
    g
}

#[test]
fn region_table_rules() {
    let (_, f, _) = base();
    let big = (f.len() as u64 + (1 << 20)) & !0xFFFFF;
    assert_eq!(
        kind(with_region(&f, 3, Some(([9; 16], big, 1 << 20, 1)))),
        ErrorKind::Unsupported
    );
    // Optional unknown regions are fine when placed well.
    let mut g = with_region(&f, 3, Some(([9; 16], 5 << 20, 1 << 20, 0)));
    g.resize(6 << 20, 0);
    assert!(open_bytes(g).is_ok());
    let bat = g_text("2DC27766-F623-4200-9D64-115E9BFD4A08");
    assert_eq!(
        kind(with_region(&f, 3, Some((bat, 6 << 20, 1 << 20, 1)))),
        ErrorKind::Malformed
    );
    // Overlaps the metadata region, and the log.
    assert_eq!(
        kind(with_region(&f, 3, Some(([9; 16], 3 << 20, 1 << 20, 0)))),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind(with_region(&f, 3, Some(([9; 16], 1 << 20, 1 << 20, 0)))),
        ErrorKind::Malformed
    );
    // Past the end of the file; not aligned; entry count above 2047.
    assert_eq!(
        kind(with_region(&f, 3, Some(([9; 16], 1 << 40, 1 << 20, 0)))),
        ErrorKind::Truncated
    );
    assert_eq!(
        kind(with_region(
            &f,
            3,
            Some(([9; 16], (5 << 20) + 4096, 1 << 20, 0))
        )),
        ErrorKind::Malformed
    );
    assert_eq!(kind(with_region(&f, 5000, None)), ErrorKind::LimitExceeded);
    // The metadata region missing.
    assert_eq!(kind(with_region(&f, 1, None)), ErrorKind::Malformed);
}

fn g_text(s: &str) -> [u8; 16] {
    g(s)
}

#[test]
fn block_size_bounds_cve_2014_0148() {
    let (_, f, _) = base();
    for bs in [0u32, 4096, 512 * 1024, 3 << 20, 512 << 20, u32::MAX] {
        let mut g = f.clone();
        set(&mut g, ITEMS, &bs.to_le_bytes());
        assert_eq!(kind(g), ErrorKind::Malformed, "block size {bs}");
    }
}

#[test]
fn logical_and_physical_sector_sizes() {
    let (_, f, _) = base();
    for (at, v) in [(ITEMS + 32, 1024u32), (ITEMS + 32, 0), (ITEMS + 40, 520)] {
        let mut g = f.clone();
        set(&mut g, at, &v.to_le_bytes());
        assert_eq!(kind(g), ErrorKind::Malformed);
    }
}

#[test]
fn virtual_disk_size_above_64_tib_gitlab_4033() {
    let (_, f, _) = base();
    let mut g = f.clone();
    set(&mut g, ITEMS + 8, &((64u64 << 40) + 1).to_le_bytes());
    assert_eq!(kind(g), ErrorKind::LimitExceeded);
    // Exactly 64 TiB needs 64 Mi entries: the 1 MiB BAT region is too small. QEMU's u32
    // count would have wrapped for larger sizes; here the count is 64-bit and checked.
    let mut g = f.clone();
    set(&mut g, ITEMS + 8, &(64u64 << 40).to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Malformed);
    // A size whose BAT fits: reads past the BAT's blocks are bounds-checked.
    let mut g = f;
    set(&mut g, ITEMS + 8, &(100u64 << 30).to_le_bytes());
    let l = open_bytes(g).unwrap();
    let mut b = [0u8; 512];
    l.read_at((100u64 << 30) - 512, &mut b).unwrap();
    assert_eq!(b, [0u8; 512]);
}

#[test]
fn bat_entries_are_checked() {
    let (_, f, lay) = base();
    let at = lay.bat_entry_at(2);
    for (e, want) in [
        ((1u64 << 40) | 6, ErrorKind::Truncated),
        (!7u64 | 6, ErrorKind::Truncated),
        (6u64, ErrorKind::Malformed), // offset 0: the header section
        ((3u64 << 20) | 6, ErrorKind::Malformed), // the metadata region
        ((4u64 << 20) | 4, ErrorKind::Malformed), // unknown state
        ((4u64 << 20) | 7, ErrorKind::Malformed), // partially present without parent
    ] {
        let mut g = f.clone();
        set(&mut g, at, &e.to_le_bytes());
        assert_eq!(kind(g), want, "entry {e:#x}");
    }
    // Zero, unmapped, undefined and v0.95 unmapped all read as zeros.
    for st in [1u64, 2, 3, 5] {
        let mut g = f.clone();
        set(
            &mut g,
            lay.bat_entry_at(1),
            &((4u64 << 20) | st).to_le_bytes(),
        );
        let l = open_bytes(g).unwrap();
        let mut b = [1u8; 4096];
        l.read_at(1 << 20, &mut b).unwrap();
        assert_eq!(b, [0u8; 4096], "state {st}");
    }
}

#[test]
fn metadata_rules() {
    let (_, f, _) = base();
    // Unknown required item.
    let mut g = f.clone();
    set(&mut g, META_AT + 32, &[0x99; 16]);
    set(&mut g, META_AT + 32 + 24, &4u32.to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Unsupported);
    // Missing required item (unknown but optional now).
    let mut g = f.clone();
    set(&mut g, META_AT + 32, &[0x99; 16]);
    set(&mut g, META_AT + 32 + 24, &0u32.to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Malformed);
    // Duplicate item.
    let mut g = f.clone();
    let second = g[META_AT + 64..META_AT + 80].to_vec();
    set(&mut g, META_AT + 32, &second);
    assert_eq!(kind(g), ErrorKind::Malformed);
    // Item outside the region, and inside the table area.
    let mut g = f.clone();
    set(&mut g, META_AT + 32 + 16, &(2u32 << 20).to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Malformed);
    let mut g = f.clone();
    set(&mut g, META_AT + 32 + 16, &16u32.to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Malformed);
    // Entry count above 2047.
    let mut g = f.clone();
    set(&mut g, META_AT + 10, &3000u16.to_le_bytes());
    assert_eq!(kind(g), ErrorKind::LimitExceeded);
    // HasParent without a parent locator.
    let mut g = f;
    set(&mut g, ITEMS + 4, &2u32.to_le_bytes());
    assert_eq!(kind(g), ErrorKind::Malformed);
}

#[test]
fn log_descriptor_count_overflow_gitlab_3860() {
    let (s, mut f, lay) = base();
    let guid = [0x4C; 16];
    let mut e = log_entry(
        1,
        guid,
        &[W::Data(lay.block_at[&1] as u64, vec![0xEE; 4096])],
        f.len() as u64,
        0,
    );
    // descriptor_count = u32::MAX: 64 + count × 32 wraps a 32-bit size. Valid CRC.
    e[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    e[4..8].fill(0);
    let c = crc(&e);
    e[4..8].copy_from_slice(&c.to_le_bytes());
    add_log(&mut f, s.data_write_guid, guid, &[(0, e)]);
    let l = open_bytes(f).unwrap();
    assert_eq!(l.describe()["log"]["replayed"], false);
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhdx::rule::LOG && x.message.contains("no valid entries")));
    assert_same_bytes(&read_all(l.as_ref()), &s.expected(None), "unreplayed");
}

#[test]
fn log_entries_with_bad_crc_or_length_are_ignored() {
    let (s, f, lay) = base();
    let guid = [0x4C; 16];
    let good = log_entry(
        3,
        guid,
        &[W::Data(lay.block_at[&1] as u64, vec![0xEE; 4096])],
        f.len() as u64,
        0,
    );
    for corrupt in [100usize, 8, 16] {
        let mut e = good.clone();
        if corrupt == 8 {
            e[8..12].copy_from_slice(&(64u32 << 20).to_le_bytes()); // longer than the log
        } else if corrupt == 16 {
            e[16..24].fill(0); // sequence 0
        } else {
            e[corrupt] ^= 1;
        }
        let mut g = f.clone();
        add_log(&mut g, s.data_write_guid, guid, &[(0, e)]);
        let l = open_bytes(g).unwrap();
        assert_eq!(
            l.describe()["log"]["replayed"],
            false,
            "corruption at {corrupt}"
        );
    }
    // The same entry intact is replayed.
    let mut g = f;
    add_log(&mut g, s.data_write_guid, guid, &[(0, good)]);
    let l = open_bytes(g).unwrap();
    assert_eq!(l.describe()["log"]["replayed"], true);
    let mut b = [0u8; 16];
    l.read_at(1 << 20, &mut b).unwrap();
    assert_eq!(b, [0xEE; 16]);
}

#[test]
fn only_the_consecutive_run_with_the_highest_sequence_is_replayed() {
    // A stale entry (5) right before the active run (10, 11). QEMU 10 accepts any valid
    // entry as the second of a run and would replay 5 too; the spec's rule (consecutive
    // sequence numbers) replays only 10 and 11.
    let (s, mut f, lay) = base();
    let guid = [0x4C; 16];
    let b1 = lay.block_at[&1] as u64;
    let len = f.len() as u64;
    let stale = log_entry(5, guid, &[W::Data(b1, vec![0xEE; 4096])], len, 0);
    let p1 = stale.len();
    let e10 = log_entry(
        10,
        guid,
        &[W::Data(b1 + 4096, vec![0x10; 4096])],
        len,
        p1 as u32,
    );
    let p2 = p1 + e10.len();
    let e11 = log_entry(11, guid, &[W::Zero(b1 + 8192, 8192)], len, p1 as u32);
    add_log(
        &mut f,
        s.data_write_guid,
        guid,
        &[(0, stale), (p1, e10), (p2, e11)],
    );
    let l = open_bytes(f).unwrap();
    let mut want = s.expected(None);
    want[(1 << 20) + 4096..(1 << 20) + 8192].fill(0x10);
    want[(1 << 20) + 8192..(1 << 20) + 16384].fill(0);
    assert_same_bytes(&read_all(l.as_ref()), &want, "replayed 10..=11");
    assert_eq!(l.describe()["log"]["entries"], 2);
}

#[test]
fn log_placement_is_checked() {
    let (_, f, _) = base();
    let mut g = f.clone();
    for h in [H1, H2] {
        set(&mut g, h + 72, &((1u64 << 20) + 4096).to_le_bytes());
        fix_header(&mut g, h);
    }
    assert_eq!(kind(g), ErrorKind::Malformed);
    let mut g = f;
    for h in [H1, H2] {
        set(&mut g, h + 72, &(1u64 << 40).to_le_bytes());
        fix_header(&mut g, h);
    }
    assert_eq!(kind(g), ErrorKind::Truncated);
}

#[test]
fn not_a_vhdx() {
    assert_eq!(kind(vec![0u8; 2 << 20]), ErrorKind::Malformed);
    assert_eq!(kind(b"vhdxfile".to_vec()), ErrorKind::Truncated);
    let (_, f, _) = base();
    let l = open_bytes(f).unwrap();
    assert_eq!(
        l.read_at(l.len() - 1, &mut [0u8; 2]).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}
