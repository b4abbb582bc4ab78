//! Damaged AVML images fail with the error kind that names the damage, never panic, and
//! never decode more than the framing format allows; each case is cut from a committed
//! sample (small.avml: one range 0x1234000..=0x1235fff, a stream identifier and one
//! compressed snappy chunk, then the 8-byte length).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::open_bytes;
use vmsnap_avml::PLUGIN;
use vmsnap_core::{ErrorKind, Layer, SniffWindow};
use vmsnap_testkit::corpus;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus(&format!("avml/{name}"))).expect("run corpus/avml/make.sh")
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

/// small.avml's chunks, walked up to its trailer: (header offset, type, body length).
fn chunks(b: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut at = 32;
    while at < b.len() - 8 {
        let len = u32::from_le_bytes([b[at + 1], b[at + 2], b[at + 3], 0]) as usize;
        out.push((at, b[at], len));
        at += 4 + len;
    }
    assert_eq!(at, b.len() - 8);
    out
}

#[test]
fn the_samples_open_and_every_read_path_holds() {
    for name in ["small.avml", "guest.avml", "mixed.avml", "lime-first.avml"] {
        let bytes = sample(name);
        assert!(probe_says_yes(&bytes), "{name}");
        let layer: Arc<dyn Layer> = Arc::new(open_bytes(bytes).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

#[test]
fn reads_of_any_size_and_alignment_equal_a_whole_read() {
    let layer = common::open_avml(&corpus("avml/guest.avml"));
    let (start, len) = (0x10_0000u64, 0x20_0000usize);
    let mut whole = vec![0u8; len];
    layer.read_at(start, &mut whole).unwrap();
    assert!(whole.iter().any(|&b| b != 0));
    // Odd sizes across chunk boundaries, through the cache and straight into the buffer.
    for (at, n) in [
        (0usize, 1usize),
        (0xffff, 2),
        (0x1_0000, 0x1_0000),
        (0x3, 0x2_0001),
        (0x1f_f000, 0x1000),
    ] {
        let mut part = vec![0u8; n];
        layer.read_at(start + at as u64, &mut part).unwrap();
        assert_eq!(part, whole[at..at + n], "{at:#x}+{n:#x}");
    }
}

#[test]
fn damaged_files_fail_with_their_kinds() {
    let good = sample("small.avml");
    let c = chunks(&good);
    assert_eq!(
        c[0],
        (32, 0xff, 6),
        "small.avml starts with the stream identifier"
    );
    let data = c[1];
    let end = good.len() - 8;
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no magic", vec![0u8; 4096], ErrorKind::Malformed),
        (
            "cut inside the header",
            good[..20].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside a chunk",
            good[..data.0 + 10].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut before the trailer",
            good[..end].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "version 3",
            patched(4, &3u32.to_le_bytes()),
            ErrorKind::Unsupported,
        ),
        (
            "end below start",
            patched(16, &0u64.to_le_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "end past 2^52",
            patched(16, &(1u64 << 53).to_le_bytes()),
            ErrorKind::LimitExceeded,
        ),
        ("nonzero padding", patched(24, &[1]), ErrorKind::Malformed),
        // The range declares one byte more than its stream holds: the next thing read as a
        // chunk is the trailer's first byte.
        (
            "range longer than its stream",
            patched(16, &0x1236000u64.to_le_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "range shorter than its stream",
            patched(16, &0x1234fffu64.to_le_bytes()),
            ErrorKind::Malformed,
        ),
        (
            "no stream identifier",
            patched(32, &[0x00]),
            ErrorKind::Malformed,
        ),
        (
            "bad stream identifier",
            patched(36, b"SnApPy"),
            ErrorKind::Malformed,
        ),
        (
            "unskippable chunk type",
            patched(data.0, &[0x02]),
            ErrorKind::Malformed,
        ),
        (
            "chunk longer than the framing allows",
            patched(data.0 + 1, &[0xff, 0xff, 0x01]),
            ErrorKind::Malformed,
        ),
        (
            "chunk past the end of the file",
            patched(data.0 + 1, &[0xff, 0xff, 0x00]),
            ErrorKind::Truncated,
        ),
        (
            "trailer not the stream length",
            patched(end, &[0x55]),
            ErrorKind::Malformed,
        ),
        (
            "trailing bytes",
            [good.clone(), vec![0; 7]].concat(),
            ErrorKind::Truncated,
        ),
        (
            "two overlapping ranges",
            [good.clone(), good.clone()].concat(),
            ErrorKind::Malformed,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open_bytes(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => {
                assert_eq!(e.kind(), kind, "{what}: {e}");
                assert!(
                    e.to_string().contains("avml"),
                    "{what}: {e} names the layer"
                );
            }
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
    // A LiME file is LiME's (`check` would call it two formats otherwise); LiME ranges
    // followed by an AVML range in the head are AVML's too.
    let lime = std::fs::read(corpus("lime/small.lime")).unwrap();
    assert!(!probe_says_yes(&lime));
    assert!(!probe_says_yes(&[lime.clone(), lime.clone()].concat()));
    assert!(probe_says_yes(&[lime, good.clone()].concat()));
    assert!(!probe_says_yes(&good[..20]));
    assert!(!probe_says_yes(&patched(4, &1u32.to_le_bytes())));
}

#[test]
fn corrupt_chunk_data_fails_the_read_naming_the_range() {
    let good = sample("small.avml");
    let data = chunks(&good)[1];
    // A flipped CRC byte: opening indexes headers only, the read checks the CRC.
    let mut b = good.clone();
    b[data.0 + 4] ^= 0xff;
    let layer = open_bytes(b).unwrap();
    let mut page = [0u8; 4096];
    let e = layer.read_at(0x1234000, &mut page).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
    assert!(e.to_string().contains("0x1234000..=0x1235fff"), "{e}");
    // A damaged snappy block (the tag bytes after the varint) fails to decode or fails
    // its CRC, never reads as other bytes.
    let mut b = good.clone();
    for x in &mut b[data.0 + 10..data.0 + 4 + data.2] {
        *x ^= 0x5a;
    }
    let layer = open_bytes(b).unwrap();
    assert_eq!(
        layer.read_at(0x1234000, &mut page).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // The varint length of the block says more than 64 KiB: refused at open.
    let mut b = good.clone();
    if data.1 == 0 {
        b[data.0 + 8..data.0 + 11].copy_from_slice(&[0x81, 0x80, 0x08]);
        assert_eq!(open_bytes(b).unwrap_err().kind(), ErrorKind::Malformed);
    }
}
