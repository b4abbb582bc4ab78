//! Damaged crash dumps fail with the error kind that names the damage, and never panic.
//! Each case is cut from a committed sample (corpus/windump).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{ErrorKind, FileLayer, Layer, MemSource, SniffWindow};
use vmsnap_testkit::corpus;
use vmsnap_windump::{Windump, PLUGIN};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus(&format!("windump/{name}"))).expect("run corpus/windump/make.sh")
}

fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Windump> {
    Windump::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

#[test]
fn every_sample_opens_and_every_read_path_holds() {
    for name in [
        "small-64-full.dmp",
        "small-64-bitmap.dmp",
        "small-64-kernel.dmp",
        "small-32-full.dmp",
        "small-32pae-bitmap.dmp",
    ] {
        let bytes = sample(name);
        assert!(probe_says_yes(&bytes), "{name}");
        let layer: Arc<dyn Layer> = Arc::new(open(bytes).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

fn put(mut b: Vec<u8>, at: usize, v: &[u8]) -> Vec<u8> {
    b[at..at + v.len()].copy_from_slice(v);
    b
}

#[test]
fn damaged_headers_fail_with_their_kinds() {
    let full64 = sample("small-64-full.dmp");
    let bitmap64 = sample("small-64-bitmap.dmp");
    let full32 = sample("small-32-full.dmp");
    let bitmap32 = sample("small-32pae-bitmap.dmp");
    let u32b = |v: u32| v.to_le_bytes().to_vec();
    let u64b = |v: u64| v.to_le_bytes().to_vec();
    // 64-bit: runs at 0x88 (count), 0x98 (first run: base, count); DumpType at 0xf98;
    // summary at 0x2000 (HeaderSize 0x2020, Pages 0x2028, BitmapSize 0x2030).
    // 32-bit: runs at 0x64 (count), 0x6c (first run); DumpType at 0xf88; summary at 0x1000.
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no signature", vec![0u8; 8192], ErrorKind::Malformed),
        (
            "PAGE but not DUMP/DU64",
            put(full64.clone(), 4, b"DU32"),
            ErrorKind::Malformed,
        ),
        (
            "cut inside the 64-bit header",
            full64[..0x1800].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the 32-bit header",
            full32[..0x800].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the pages",
            full64[..full64.len() - 1].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the 32-bit pages",
            full32[..full32.len() - 4096].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "more runs than the header holds",
            put(full64.clone(), 0x88, &u32b(43)),
            ErrorKind::LimitExceeded,
        ),
        (
            "more 32-bit runs than the header holds",
            put(full32.clone(), 0x64, &u32b(87)),
            ErrorKind::LimitExceeded,
        ),
        (
            "a run past the address-space limit",
            put(full64.clone(), 0x98, &u64b(1 << 41)),
            ErrorKind::LimitExceeded,
        ),
        (
            "a run count wrapping the address",
            put(full64.clone(), 0xa0, &u64b(u64::MAX)),
            ErrorKind::LimitExceeded,
        ),
        (
            "a run longer than the file",
            put(full32.clone(), 0x70, &u32b(0xffff_ffff)),
            ErrorKind::Truncated,
        ),
        (
            "summary dump (type 2)",
            put(full64.clone(), 0xf98, &u32b(2)),
            ErrorKind::Unsupported,
        ),
        (
            "triage dump (type 4)",
            put(full32.clone(), 0xf88, &u32b(4)),
            ErrorKind::Unsupported,
        ),
        (
            "bitmap without a summary header",
            put(full64.clone(), 0xf98, &u32b(5)),
            ErrorKind::Malformed,
        ),
        (
            "bitmap dump cut before its summary",
            bitmap64[..0x2010].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "summary signature",
            put(bitmap64.clone(), 0x2000, b"XDMP"),
            ErrorKind::Malformed,
        ),
        (
            "bitmap of 2^41 page frames",
            put(bitmap64.clone(), 0x2030, &u64b(1 << 41)),
            ErrorKind::LimitExceeded,
        ),
        (
            "bitmap past the end of the file",
            put(bitmap64.clone(), 0x2030, &u64b(1 << 30)),
            ErrorKind::Truncated,
        ),
        (
            "HeaderSize inside the bitmap",
            put(bitmap64.clone(), 0x2020, &u64b(0x2040)),
            ErrorKind::Malformed,
        ),
        (
            "HeaderSize past the end",
            put(bitmap64.clone(), 0x2020, &u64b(u64::MAX)),
            ErrorKind::Malformed,
        ),
        (
            "Pages above BitmapSize",
            put(bitmap32.clone(), 0x1028, &u64b(u64::MAX)),
            ErrorKind::Malformed,
        ),
        (
            "bitmap bits past the pages stored",
            put(bitmap32.clone(), 0x1038, &[0xff; 64]),
            ErrorKind::Truncated,
        ),
        (
            "pages cut from a bitmap dump",
            bitmap32[..bitmap32.len() - 4096].to_vec(),
            ErrorKind::Truncated,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    assert!(!probe_says_yes(&[0u8; 8192]));
    assert!(
        !probe_says_yes(&full64[..0x1000]),
        "a 64-bit header needs 8 KiB"
    );
}

#[test]
fn wrong_counts_are_findings() {
    // NumberOfPages (u64 at 0x90) and the summary's Pages (0x2028) disagreeing with the
    // runs and the bitmap; RequiredDumpSpace (0xfa0) not the file size.
    let w = open(put(sample("small-64-full.dmp"), 0x90, &7u64.to_le_bytes())).unwrap();
    let f = w.findings();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, vmsnap_windump::rule::PAGE_COUNT);
    let w = open(put(
        sample("small-64-bitmap.dmp"),
        0x2028,
        &1u64.to_le_bytes(),
    ))
    .unwrap();
    assert_eq!(w.findings()[0].rule, vmsnap_windump::rule::PAGE_COUNT);
    let mut b = sample("small-32-full.dmp");
    b.extend_from_slice(&[0u8; 4096]);
    let w = open(b).unwrap();
    assert_eq!(w.findings()[0].rule, vmsnap_windump::rule::DUMP_SIZE);
}
