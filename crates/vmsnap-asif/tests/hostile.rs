//! Damaged ASIF files fail with the error kind that names the damage, and never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_asif::{Asif, PLUGIN};
use vmsnap_core::{ErrorKind, FileLayer, Layer, MemSource, SniffWindow};
use vmsnap_testkit::corpus;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus(&format!("asif/{name}"))).expect("run corpus/asif/make.sh")
}

fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Asif> {
    Asif::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

const K: usize = 64 * 1024;

/// Where disk.asif keeps things (corpus/asif/make.sh): the active directory at 0x400 (its
/// entries from 0x408), table 0 in physical chunk 1, the partly written virtual chunk 2.
const ACTIVE_DIRECTORY: usize = 0x400;
const TABLE0: usize = K;

fn put_be(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn the_samples_open_and_every_read_path_holds() {
    for name in ["disk.asif", "apple.asif"] {
        let bytes = sample(name);
        assert!(probe_says_yes(&bytes), "{name}");
        let layer: Arc<dyn Layer> = Arc::new(open(bytes).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

#[test]
fn damaged_headers_fail_with_their_kinds() {
    let good = sample("disk.asif");
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no signature", vec![0u8; 4096], ErrorKind::Malformed),
        (
            "cut inside the header",
            good[..100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the tables",
            good[..K + 100].to_vec(),
            ErrorKind::Truncated,
        ),
        ("block size 0", patched(68, &[0, 0]), ErrorKind::Malformed),
        ("block size 3", patched(68, &[0, 3]), ErrorKind::Malformed),
        ("chunk size 0", patched(64, &[0; 4]), ErrorKind::Malformed),
        (
            "chunk size not a multiple of the block size",
            patched(64, &(K as u32 + 1).to_be_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "chunk size too small for a chunk group",
            patched(64, &1024u32.to_be_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "huge chunk size",
            patched(64, &u32::MAX.to_be_bytes()),
            ErrorKind::LimitExceeded,
        ),
        (
            "huge maximum size",
            patched(56, &u64::MAX.to_be_bytes()),
            ErrorKind::LimitExceeded,
        ),
        (
            "sector count above the maximum",
            patched(48, &(8u64 << 30).to_be_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "directory past the end",
            patched(16, &u64::MAX.to_be_bytes()),
            ErrorKind::Truncated,
        ),
        (
            "directory entries past the end",
            {
                // The active directory's version in the file's last 8 bytes.
                let mut b = patched(24, &(good.len() as u64 - 8).to_be_bytes());
                let end = b.len();
                put_be(&mut b, end - 8, 9);
                b
            },
            ErrorKind::Truncated,
        ),
        (
            "table past the end",
            patched(ACTIVE_DIRECTORY + 8, &u64::MAX.to_be_bytes()),
            ErrorKind::Truncated,
        ),
        (
            "table at the end",
            patched(
                ACTIVE_DIRECTORY + 8,
                &(good.len() as u64 / K as u64).to_be_bytes(),
            ),
            ErrorKind::Truncated,
        ),
        (
            "more directory entries than the limit",
            patched(
                48,
                &[(1u64 << 50).to_be_bytes(), (1u64 << 50).to_be_bytes()].concat(),
            ),
            ErrorKind::LimitExceeded,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
    assert!(!probe_says_yes(&good[..64]));
}

/// Entries the reader does not know, and chunks it cannot find, fail the read that meets
/// them (the image still opens: tables are read as the disk is).
#[test]
fn damaged_entries_fail_the_reads_that_meet_them() {
    let good = sample("disk.asif");
    let cases: Vec<(&str, u64, usize, u64, ErrorKind)> = vec![
        ("state 10", 2 << 62 | 20, TABLE0, 0, ErrorKind::Unsupported),
        (
            "state 00 with a chunk",
            20,
            TABLE0,
            0,
            ErrorKind::Unsupported,
        ),
        (
            "written chunk 0",
            1 << 62,
            TABLE0,
            0,
            ErrorKind::Unsupported,
        ),
        (
            "chunk past the end",
            1 << 62 | 1 << 40,
            TABLE0,
            0,
            ErrorKind::Truncated,
        ),
        // Virtual chunk 2 is partly written: its group's bitmap entry (2048) is damaged.
        (
            "no bitmap",
            0,
            TABLE0 + 8 * 2048,
            2 * K as u64,
            ErrorKind::Malformed,
        ),
        (
            "bitmap past the end",
            1 << 40,
            TABLE0 + 8 * 2048,
            2 * K as u64,
            ErrorKind::Truncated,
        ),
    ];
    for (what, entry, at, read_at, kind) in cases {
        let mut b = good.clone();
        put_be(&mut b, at, entry);
        let disk = open(b).unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut buf = [0u8; 512];
        match disk.read_at(read_at, &mut buf) {
            Ok(()) => panic!("{what}: read"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
        assert!(disk.extents(0..disk.len()).is_err(), "{what}: extents");
    }
}

/// A bitmap state nobody has described (10) fails; the metadata block's damage is a
/// finding, and the disk still reads.
#[test]
fn unknown_bitmap_states_fail_and_bad_metadata_is_a_finding() {
    let good = sample("disk.asif");
    let bitmap_chunk = u64::from_be_bytes(good[TABLE0 + 8 * 2048..][..8].try_into().unwrap());
    let mut b = good.clone();
    // Virtual chunk 2 starts at sector 256 of its group: sectors 4..8 of it (written) are
    // bitmap byte 65; sector 4 becomes state 10.
    let at = bitmap_chunk as usize * K + 65;
    assert_eq!(b[at], 0x55);
    b[at] = 0x56;
    let disk = open(b).unwrap();
    let mut buf = [0u8; 512];
    disk.read_at(2 * K as u64, &mut buf).unwrap();
    let e = disk.read_at(2 * K as u64 + 4 * 512, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");

    let mut b = good.clone();
    // The metadata chunk: the last physical chunk (make.sh stores it last).
    let meta = b.len() - K;
    assert_eq!(&b[meta..meta + 4], b"meta");
    b[meta] = b'X';
    let disk = open(b).unwrap();
    let f = disk.findings();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, vmsnap_asif::rule::METADATA);
    assert!(disk.metadata().is_none());
    disk.read_at(0, &mut buf).unwrap();
}
