//! Damaged VMA archives, cut from the committed sample: what vma-reader refuses fails
//! with the error kind naming the damage; checksum and uuid damage and a cut-short
//! archive open with findings, and a cluster the archive lacks fails to read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{ErrorKind, ExtentKind, FileLayer, Layer, MemSource, SniffWindow};
use vmsnap_testkit::corpus;
use vmsnap_vma::{rule, Vma, PLUGIN};

fn sample() -> Vec<u8> {
    std::fs::read(corpus("vma/sample.vma")).expect("run corpus/vma/make.sh")
}

fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Vma> {
    Vma::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// The first extent's offset.
fn first_extent(b: &[u8]) -> usize {
    be32(b, 56) as usize
}

/// Re-signs the header's MD5 after a patch (so the patch, not the checksum, is judged).
fn resign(mut b: Vec<u8>) -> Vec<u8> {
    let hs = first_extent(&b);
    b[32..48].fill(0);
    let d = vmsnap_vma::md5::digest(&b[..hs]);
    b[32..48].copy_from_slice(&d);
    b
}

fn rules(v: &Vma) -> Vec<&'static str> {
    v.findings().iter().map(|f| f.rule).collect()
}

#[test]
fn the_sample_opens_and_every_read_path_holds() {
    let bytes = sample();
    assert!(probe_says_yes(&bytes));
    let layer: Arc<dyn Layer> = Arc::new(open(bytes).unwrap());
    vmsnap_testkit::exercise(&layer, 64 << 20);
}

#[test]
fn damaged_archives_fail_with_their_kinds() {
    let good = sample();
    let e0 = first_extent(&good);
    let patched = |at: usize, v: &[u8], sign: bool| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        if sign {
            resign(b)
        } else {
            b
        }
    };
    // blockinfo i of the first extent: mask(2) reserved(1) dev(1) cluster(4).
    let bi = |i: usize| e0 + 40 + 8 * i;
    let first_cluster = be32(&good, bi(0) + 4);
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no magic", vec![0u8; 16384], ErrorKind::Malformed),
        (
            "cut inside the header",
            good[..100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the blob buffer",
            good[..e0 - 1].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "version 2",
            patched(4, &2u32.to_be_bytes(), true),
            ErrorKind::Unsupported,
        ),
        (
            "header size inside the fixed header",
            patched(56, &12288u32.to_be_bytes(), false),
            ErrorKind::Malformed,
        ),
        (
            "huge header size",
            patched(56, &u32::MAX.to_be_bytes(), false),
            ErrorKind::LimitExceeded,
        ),
        (
            "blob buffer before its place",
            patched(48, &100u32.to_be_bytes(), true),
            ErrorKind::Malformed,
        ),
        (
            "blob buffer past the header",
            patched(52, &u32::MAX.to_be_bytes(), true),
            ErrorKind::Malformed,
        ),
        (
            "config name that is no blob",
            patched(2044, &2u32.to_be_bytes(), true),
            ErrorKind::Malformed,
        ),
        (
            "huge device size",
            patched(4096 + 32 + 8, &u64::MAX.to_be_bytes(), true),
            ErrorKind::LimitExceeded,
        ),
        (
            "cluster of an unlisted device",
            patched(bi(0) + 3, &[9], false),
            ErrorKind::Malformed,
        ),
        (
            "cluster past its device's end",
            patched(bi(0) + 4, &0x0100_0000u32.to_be_bytes(), false),
            ErrorKind::Malformed,
        ),
        (
            "block count that disagrees with the masks",
            patched(e0 + 6, &1u16.to_be_bytes(), false),
            ErrorKind::Malformed,
        ),
        (
            "a cluster stored twice",
            patched(bi(1) + 4, &first_cluster.to_be_bytes(), false),
            ErrorKind::Malformed,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
}

#[test]
fn checksum_and_uuid_damage_are_findings() {
    let good = sample();
    assert!(rules(&open(good.clone()).unwrap()).is_empty());
    let mut b = good.clone();
    b[3000] ^= 1; // a config pointer slot that is unused: only the MD5 notices
    let v = open(b).unwrap();
    assert_eq!(rules(&v), [rule::HEADER_MD5]);
    assert_eq!(v.meta()["header_md5"], "mismatch");
    let e0 = first_extent(&good);
    let mut b = good.clone();
    b[e0 + 8] ^= 1; // the extent's uuid
    assert_eq!(
        rules(&open(b).unwrap()),
        [rule::EXTENT_MD5, rule::EXTENT_UUID]
    );
}

#[test]
fn a_cut_short_archive_reads_what_it_has_and_refuses_the_rest() {
    let good = sample();
    let full = open(good.clone()).unwrap();
    let cut = good.len() - 5000;
    let v = open(good[..cut].to_vec()).unwrap();
    let r = rules(&v);
    assert!(r.contains(&rule::TRUNCATED), "{r:?}");
    assert!(r.contains(&rule::MISSING_CLUSTERS), "{r:?}");
    let mut missing = 0;
    for (d, f) in v.devices().iter().zip(full.devices()) {
        missing += d.missing_clusters();
        for e in d.extents(0..d.len()).unwrap() {
            let mut got = vec![0u8; e.len as usize];
            let res = d.read_at(e.offset, &mut got);
            if e.kind == ExtentKind::Unavailable {
                assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
            } else {
                res.unwrap();
                let mut want = vec![0u8; e.len as usize];
                f.read_at(e.offset, &mut want).unwrap();
                assert!(got == want, "{e:?}");
            }
        }
    }
    assert!(missing > 0);
    // Garbage after the last extent: the scan stops there with a finding.
    let mut b = good.clone();
    b.extend_from_slice(&[0xAA; 4096]);
    assert_eq!(rules(&open(b).unwrap()), [rule::TRUNCATED]);
}
