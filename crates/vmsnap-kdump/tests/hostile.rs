//! Damaged kdump files, cut from QEMU's samples, fail with the error kind that names the
//! damage, and never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
#[path = "../../vmsnap-elf/tests/common/mod.rs"]
mod elfcommon;

use std::sync::Arc;

use common::open_bytes;
use vmsnap_core::{ErrorKind, Layer, LayerExt, SniffWindow};
use vmsnap_kdump::PLUGIN;
use vmsnap_testkit::corpus;

fn sample() -> Vec<u8> {
    std::fs::read(corpus("kdump/small.kdump")).expect("run corpus/kdump/make.sh")
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

/// Offsets in small.kdump (64-bit layout, 4 KiB blocks, one sub-header block, 64 bitmap
/// blocks, 1088 dumped pages).
const BLOCK_SIZE: usize = 428;
const SUB_HDR: usize = 432;
const BITMAP_BLOCKS: usize = 436;
const MAX_MAPNR_64: usize = 4096 + 96;
const NOTE_OFFSET: usize = 4096 + 48;
const DESCS: usize = (1 + 1 + 64) * 4096;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The index among the descriptors of the first zlib page, and its descriptor offset.
fn first_zlib(b: &[u8]) -> usize {
    (0..1088)
        .map(|i| DESCS + i * 24)
        .find(|&at| u32::from_le_bytes(b[at + 12..at + 16].try_into().unwrap()) == 1)
        .unwrap()
}

#[test]
fn the_sample_opens_and_every_read_path_holds() {
    let bytes = sample();
    assert!(probe_says_yes(&bytes));
    let layer: Arc<dyn Layer> = Arc::new(open_bytes(bytes).unwrap());
    vmsnap_testkit::exercise(&layer, 64 << 20);
    let flat: Arc<dyn Layer> =
        Arc::new(open_bytes(elfcommon::gunzip("kdump/flat.kdump.gz")).unwrap());
    vmsnap_testkit::exercise(&flat, 64 << 20);
}

#[test]
fn damaged_headers_fail_with_their_kinds() {
    let good = sample();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no signature", vec![0u8; 4096], ErrorKind::Malformed),
        (
            "cut inside the header",
            good[..300].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the bitmaps",
            good[..DESCS - 100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the descriptors",
            good[..DESCS + 1000].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "block size not a power of two",
            with(&|b| {
                put32(b, BLOCK_SIZE, 4095);
                put32(b, BLOCK_SIZE - 12, 4095);
            }),
            ErrorKind::Malformed,
        ),
        (
            "huge sub header",
            with(&|b| put32(b, SUB_HDR, u32::MAX)),
            ErrorKind::LimitExceeded,
        ),
        (
            "odd bitmap block count",
            with(&|b| put32(b, BITMAP_BLOCKS, 63)),
            ErrorKind::Malformed,
        ),
        (
            "bitmap smaller than max_mapnr needs",
            with(&|b| put64(b, MAX_MAPNR_64, 1 << 30)),
            ErrorKind::Malformed,
        ),
        (
            "guest-physical size past 2^52",
            with(&|b| put64(b, MAX_MAPNR_64, u64::MAX / 2)),
            ErrorKind::LimitExceeded,
        ),
        (
            "notes past the end",
            with(&|b| put64(b, NOTE_OFFSET, 1 << 40)),
            ErrorKind::Truncated,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open_bytes(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => {
                assert_eq!(e.kind(), kind, "{what}: {e}");
                assert!(e.to_string().contains("kdump"), "{what}: {e}");
            }
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
}

#[test]
fn damaged_pages_fail_when_read() {
    let good = sample();
    let zlib = first_zlib(&good);
    let index = (zlib - DESCS) / 24;
    // The page frame of that descriptor: the index-th dumped page (pages 0.. are dumped).
    let pfn = index as u64;
    let read = |b: Vec<u8>| {
        let k = open_bytes(b).unwrap();
        k.read_vec(pfn * 4096, 4096, 4096, "test").map(|_| ())
    };
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        (
            "page data past the end",
            with(&|b| put64(b, zlib, 1 << 40)),
            ErrorKind::Truncated,
        ),
        (
            "compressed page larger than two pages",
            with(&|b| put32(b, zlib + 8, 1 << 20)),
            ErrorKind::Malformed,
        ),
        (
            "zlib data damaged",
            with(&|b| {
                let at = u64::from_le_bytes(b[zlib..zlib + 8].try_into().unwrap()) as usize;
                b[at..at + 16].fill(0xa5);
            }),
            ErrorKind::Malformed,
        ),
        (
            "snappy page",
            with(&|b| put32(b, zlib + 12, 4)),
            ErrorKind::Unsupported,
        ),
        (
            "stored page of the wrong size",
            with(&|b| put32(b, zlib + 12, 0)),
            ErrorKind::Malformed,
        ),
    ];
    for (what, bytes, kind) in cases {
        let e = read(bytes).expect_err(what);
        assert_eq!(e.kind(), kind, "{what}: {e}");
        assert!(e.to_string().contains("kdump"), "{what}: {e}");
    }
    assert!(read(good).is_ok());
}

#[test]
fn flattened_damage_is_named() {
    let flat = elfcommon::gunzip("kdump/flat.kdump.gz").to_vec();
    let cut = flat[..flat.len() - 16].to_vec();
    let e = open_bytes(cut).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    assert!(e.to_string().contains("end marker"), "{e}");
    let mut neg = flat.clone();
    neg[4096..4104].copy_from_slice(&(-5i64).to_be_bytes());
    assert_eq!(open_bytes(neg).unwrap_err().kind(), ErrorKind::Malformed);
    let mut long = flat.clone();
    long[4104..4112].copy_from_slice(&(1i64 << 40).to_be_bytes());
    assert_eq!(open_bytes(long).unwrap_err().kind(), ErrorKind::Truncated);
    let mut ty = flat;
    ty[16..24].copy_from_slice(&7i64.to_be_bytes());
    assert_eq!(open_bytes(ty).unwrap_err().kind(), ErrorKind::Unsupported);
}

/// The sub-header fields of header version 3 (makedumpfile's `kdump_sub_header`, 64-bit):
/// `offset_vmcoreinfo` and `size_vmcoreinfo`.
const VMCOREINFO_OFFSET: usize = 4096 + 32;
const VMCOREINFO_SIZE: usize = 4096 + 40;

/// QEMU writes VMCOREINFO only when the guest's kernel filled its `vmcoreinfo` device (the
/// Debian cloud kernel of the real-guest test does not), so the text is placed here by the
/// documented layout: appended to the file, its place and size in the sub-header.
#[test]
fn vmcoreinfo_is_read_from_where_the_sub_header_says() {
    let mut bytes = sample();
    let text =
        b"OSRELEASE=6.1.0-test-amd64\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a0a000\n";
    let at = bytes.len() as u64;
    bytes.extend_from_slice(text);
    put64(&mut bytes, VMCOREINFO_OFFSET, at);
    put64(&mut bytes, VMCOREINFO_SIZE, text.len() as u64);
    let k = open_bytes(bytes.clone()).unwrap();
    assert_eq!(
        k.vmcoreinfo(),
        [
            "OSRELEASE=6.1.0-test-amd64",
            "PAGESIZE=4096",
            "SYMBOL(swapper_pg_dir)=ffffffff82a0a000"
        ]
    );
    let d = k.describe();
    assert_eq!(d["vmcoreinfo"][0], "OSRELEASE=6.1.0-test-amd64", "{d}");
    assert_eq!(d["vmcoreinfo_offset"], at, "{d}");
    // Past the end of the file: refused, naming VMCOREINFO.
    put64(&mut bytes, VMCOREINFO_SIZE, text.len() as u64 + 1);
    let e = open_bytes(bytes).unwrap_err();
    assert!(e.to_string().contains("VMCOREINFO"), "{e}");
}
