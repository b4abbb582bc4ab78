//! LiME files: the real guest RAM (the same paused QEMU guest as the ELF core samples),
//! and crafted hostile files with their expected error kinds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../../vmsnap-elf/tests/common/mod.rs"]
mod elfcommon;

use std::sync::Arc;

use elfcommon::{blob, gunzip, BLOBS};
use vmsnap_core::{
    ErrorKind, ExtentKind, FileLayer, Layer, LayerExt, MemSource, Probe, SniffWindow,
};
use vmsnap_lime::Lime;
use vmsnap_testkit::assert_same_bytes;
use vmsnap_testkit::elf::program_loads;

fn open(bytes: impl Into<Arc<[u8]>>) -> vmsnap_core::Result<Lime> {
    Lime::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

fn probe(bytes: &[u8]) -> Probe {
    (vmsnap_lime::PLUGIN.probe)(&SniffWindow::of_whole(bytes))
}

/// The test builder: one LiME range per (start, bytes).
fn lime(ranges: &[(u64, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    for (start, data) in ranges {
        f.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&start.to_le_bytes());
        f.extend_from_slice(&(start + data.len() as u64 - 1).to_le_bytes());
        f.extend_from_slice(&[0u8; 8]);
        f.extend_from_slice(data);
    }
    f
}

fn header(start: u64, end: u64, version: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
    f.extend_from_slice(&version.to_le_bytes());
    f.extend_from_slice(&start.to_le_bytes());
    f.extend_from_slice(&end.to_le_bytes());
    f.extend_from_slice(&[0u8; 8]);
    f
}

fn read(l: &dyn Layer, off: u64, len: usize) -> Vec<u8> {
    l.read_vec(off, len as u64, 1 << 30, "test").unwrap()
}

#[test]
fn lime_of_the_qemu_guest_matches_its_elf_core() {
    let file = gunzip("lime/guest.lime.gz");
    assert_eq!(probe(&file), Probe::Yes);
    let l = open(file).unwrap();
    let core_file = gunzip("elf/core.elf.gz");
    let core = elfcommon::open(core_file.clone()).unwrap();
    assert_eq!(l.len(), core.len());
    for (addr, name) in BLOBS {
        let want = blob(name);
        assert_same_bytes(&read(&l, addr, want.len()), &want, name);
    }
    for ld in program_loads(&core_file) {
        assert_same_bytes(
            &read(&l, ld.paddr, ld.memsz as usize),
            &read(core.as_ref(), ld.paddr, ld.memsz as usize),
            &format!("range at {:#x}", ld.paddr),
        );
    }
    // Same holes (data runs differ only in where they lie in each file).
    let holes = |ext: Vec<vmsnap_core::Extent>| {
        ext.into_iter()
            .filter(|e| e.kind != ExtentKind::Data)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        holes(l.extents(0..l.len()).unwrap()),
        holes(core.extents(0..core.len()).unwrap())
    );
    let d = l.describe();
    assert_eq!(d["format"], "lime");
    assert_eq!(d["virtual_size"], 0x1_0020_0000u64);
    assert_eq!(d["range_count"], 6);
    assert_eq!(d["ranges"][0]["end_inclusive"], 0xbffff);
    assert_eq!(d["ranges"][5]["start"], 0x1_0000_0000u64);
    assert_eq!(d["mapped_bytes"], 0x200_0000 + 0x24_0000);
    assert!(l.findings().is_empty());
}

#[test]
fn small_lime_matches_the_small_elf_core() {
    // corpus/lime/small.lime: one range, converted from corpus/elf/small.elf.
    let file = std::fs::read(vmsnap_testkit::corpus("lime/small.lime")).unwrap();
    assert_eq!(probe(&file), Probe::Yes);
    let l = open(file).unwrap();
    let core_file: Arc<[u8]> = std::fs::read(vmsnap_testkit::corpus("elf/small.elf"))
        .unwrap()
        .into();
    let core = elfcommon::open(core_file).unwrap();
    assert_eq!(l.len(), core.len());
    let b = blob("blob-b.bin");
    assert_same_bytes(&read(&l, 0x1234000, b.len()), &b, "blob-b");
    assert_same_bytes(
        &read(&l, 0x1234000, 0x2000),
        &read(core.as_ref(), 0x1234000, 0x2000),
        "the range",
    );
    let d = l.describe();
    assert_eq!(d["range_count"], 1);
    assert_eq!(d["ranges"][0]["start"], 0x1234000);
    assert_eq!(d["ranges"][0]["end_inclusive"], 0x1235fff);
}

#[test]
fn test_builder_reproduces_the_committed_sample() {
    let core_file = gunzip("elf/core.elf.gz");
    let loads = program_loads(&core_file);
    let ranges: Vec<(u64, &[u8])> = loads
        .iter()
        .map(|l| {
            (
                l.paddr,
                &core_file[l.offset as usize..(l.offset + l.filesz) as usize],
            )
        })
        .collect();
    let built = lime(&ranges);
    assert_same_bytes(&built, &gunzip("lime/guest.lime.gz"), "LiME from make.sh");
}

#[test]
fn gaps_read_as_zeros_and_unsorted_ranges_are_accepted() {
    let a = vec![0xAAu8; 0x1000];
    let b = vec![0xBBu8; 0x10];
    let l = open(lime(&[(0x5000, &a), (0x1000, &b)])).unwrap();
    assert_eq!(l.len(), 0x6000);
    assert_eq!(read(&l, 0x1000, 0x10), b);
    assert_eq!(read(&l, 0x5000, 0x1000), a);
    assert!(read(&l, 0x1010, 0x3ff0).iter().all(|&x| x == 0));
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[0].kind, ExtentKind::Unallocated);
    assert_eq!(ext[1].lower_offset, Some(0x1000 + 32 + 32));
    assert_eq!(l.findings()[0].rule, vmsnap_lime::rule::RANGE_ORDER);
    assert_eq!(l.describe()["gap_bytes"], 0x6000 - 0x1010);
}

#[test]
fn hostile_files_fail_with_their_kinds() {
    let d = [1u8; 16];
    // Overlap, including the one-byte overlap (start == previous inclusive end) that
    // Volatility lets through.
    let e = open(lime(&[(0, &d), (15, &d)])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.message().contains("0x0..0x10 and 0xf..0x1f"), "{e}");
    // End below start.
    assert_eq!(
        open(header(10, 5, 1)).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Version 2.
    let e = open(header(0, 15, 2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(probe(&header(0, 15, 2)), Probe::Yes);
    // Data past EOF.
    let mut f = header(0, 0xfff, 1);
    f.extend_from_slice(&[0u8; 100]);
    assert_eq!(open(f).unwrap_err().kind(), ErrorKind::Truncated);
    // An end at 2^64-1 and one past the physical-address limit.
    assert_eq!(
        open(header(0, u64::MAX, 1)).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    assert_eq!(
        open(header(1 << 60, (1 << 60) + 15, 1)).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    // Trailing bytes after the last range.
    let mut f = lime(&[(0, &d)]);
    f.extend_from_slice(&[0u8; 7]);
    assert_eq!(open(f).unwrap_err().kind(), ErrorKind::Truncated);
    let mut f = lime(&[(0, &d)]);
    f.extend_from_slice(&[0u8; 40]);
    let e = open(f).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert_eq!(e.context().offset, Some(48));
    // Not LiME.
    assert!(matches!(probe(b"\x7fELF\x02\x01\x01\0"), Probe::No(_)));
    assert!(matches!(probe(&header(0, 15, 1)[..8]), Probe::No(_)));
    assert_eq!(
        open(b"EMiX".to_vec()).unwrap_err().kind(),
        ErrorKind::Truncated
    );
}

#[test]
fn empty_file_is_an_empty_space() {
    let l = open(Vec::new()).unwrap();
    assert_eq!(l.len(), 0);
    assert!(l.read_at(0, &mut [0u8; 1]).is_err());
}

/// avml writes LiME ranges and AVML ranges into one file: when the head shows an AVML range
/// after the LiME ones, the file is the avml plugin's alone (no `multiple_formats`).
#[test]
fn an_avml_range_after_the_lime_ones_makes_it_an_avml_image() {
    let bytes = std::fs::read(vmsnap_testkit::corpus("avml/lime-first.avml")).unwrap();
    let w = vmsnap_core::SniffWindow::of_whole(&bytes);
    assert_eq!(
        (vmsnap_lime::PLUGIN.probe)(&w),
        vmsnap_core::Probe::No("an AVML range follows the LiME ones: an AVML image")
    );
    let first = vmsnap_lime::head::first_other_header(w.head).unwrap();
    assert_eq!(first.magic, vmsnap_lime::head::AVML_MAGIC);
    assert!(first.at >= 32, "{first:?}");
}
