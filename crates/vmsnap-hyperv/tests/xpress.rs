//! XPRESS plain LZ77: the MS-XCA §3.1 example vectors, round trips against the encoder
//! written in the test (every length-extension form), and hostile inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::encode::{guest_bytes, xpress_compress};
use vmsnap_hyperv::xpress::decompress;

#[test]
fn ms_xca_examples() {
    let mut c = vec![0x3f, 0x00, 0x00, 0x00];
    c.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
    let mut out = vec![0u8; 26];
    assert_eq!(decompress(&c, &mut out).unwrap(), 26);
    assert_eq!(out, b"abcdefghijklmnopqrstuvwxyz");

    let c = [
        0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
    ];
    let mut out = vec![0u8; 300];
    assert_eq!(decompress(&c, &mut out).unwrap(), 300);
    assert_eq!(out, b"abc".repeat(100));
}

fn round_trip(data: &[u8]) {
    let c = xpress_compress(data);
    let mut out = vec![0u8; data.len()];
    let n = decompress(&c, &mut out).unwrap();
    assert_eq!(n, data.len());
    assert!(out == data, "round trip of {} bytes", data.len());
}

#[test]
fn round_trips_against_the_test_encoder() {
    round_trip(b"");
    round_trip(b"a");
    round_trip(b"abcabcabc");
    // Every match-length form: 3-bit, shared nibble (both halves), byte, u16, u32.
    for n in [
        3usize, 9, 10, 11, 24, 25, 26, 279, 280, 281, 5000, 65_538, 70_000, 200_000,
    ] {
        let mut v = b"xyz".to_vec();
        v.extend(std::iter::repeat_n(b'q', n));
        v.extend_from_slice(b"tail");
        v.extend(std::iter::repeat_n(b'r', n / 2 + 10));
        round_trip(&v);
    }
    for seed in 1..20 {
        round_trip(&guest_bytes(64 * 1024, seed));
    }
    // Incompressible bytes and long-range matches at the 8192 limit.
    let rnd = guest_bytes(4096 * 8, 99)
        .iter()
        .map(|b| b.wrapping_mul(31))
        .collect::<Vec<u8>>();
    round_trip(&rnd);
    let mut far = guest_bytes(8192, 5);
    far.extend_from_within(0..100);
    round_trip(&far);
}

#[test]
fn hostile_streams_never_panic_or_overflow() {
    // A match before any output, a huge length, truncated extensions.
    let cases: Vec<Vec<u8>> = vec![
        vec![0, 0, 0, 0x80, 0, 0],
        vec![
            0, 0, 0, 0x40, b'a', 0xff, 0xff, 0x0f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ],
        vec![0, 0, 0, 0x40, b'a', 0x07, 0x00],
        vec![0, 0, 0, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff],
        vec![0, 0, 0, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff, 0x05, 0x00], // length word < 22
        vec![1, 2],
    ];
    for c in &cases {
        let mut out = vec![0u8; 4096];
        assert!(decompress(c, &mut out).is_err(), "{c:?}");
    }
    // Output bound: 300 bytes do not fit in 299.
    let c = [
        0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
    ];
    assert!(decompress(&c, &mut [0u8; 299]).is_err());
    // Random garbage: any result, no panic.
    let mut s = 0x1234_5678_9abc_def1u64;
    for _ in 0..2000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let len = (s % 64) as usize;
        let v: Vec<u8> = (0..len)
            .map(|i| (s >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        let _ = decompress(&v, &mut [0u8; 4096]);
    }
}
