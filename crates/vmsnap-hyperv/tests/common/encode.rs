//! The crate's encoders (`vmsnap_hyperv::builder::encode`, re-exported here so tests name
//! them in one place) and the test data generators: guest-like bytes, random and
//! every-kind page-record streams.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub use vmsnap_hyperv::builder::encode::*;

/// Deterministic pseudo-random bytes, compressible like real memory (text, zeros, code-ish).
pub fn guest_bytes(len: usize, seed: u64) -> Vec<u8> {
    guest_bytes_with(len, seed, true)
}

/// Like [`guest_bytes`]; `random` = false leaves out incompressible pages (small samples).
pub fn guest_bytes_with(len: usize, seed: u64, random: bool) -> Vec<u8> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut v = vec![0u8; len];
    let words = b"the quick brown fox jumps over the lazy dog kernel32 ntoskrnl hal.dll ";
    for page in v.chunks_mut(4096) {
        match next() % 5 {
            0 => {} // zero page
            1 => {
                let w = next();
                for c in page.chunks_mut(8) {
                    c.copy_from_slice(&w.to_le_bytes()[..c.len()]);
                }
            }
            2 => {
                if random {
                    for b in page.iter_mut() {
                        *b = next() as u8;
                    }
                }
            }
            _ => {
                let mut i = 0;
                while i < page.len() {
                    let start = (next() as usize) % (words.len() - 8);
                    let n = (next() as usize % 24 + 1)
                        .min(page.len() - i)
                        .min(words.len() - start);
                    page[i..i + n].copy_from_slice(&words[start..start + n]);
                    i += n;
                    if next() % 4 == 0 && i < page.len() {
                        page[i] = next() as u8;
                        i += 1;
                    }
                }
            }
        }
    }
    v
}

/// A seeded xorshift generator for the random streams below.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `n` bytes, text-like (compressible) or random.
fn content(rng: &mut Rng, n: usize) -> Vec<u8> {
    let words = b"the quick brown fox jumps over the lazy dog kernel32 ntoskrnl hal.dll ";
    let random = rng.below(4) == 0;
    (0..n)
        .map(|i| {
            if random {
                rng.next() as u8
            } else {
                words[(i + rng.below(3)) % words.len()]
            }
        })
        .collect()
}

/// A random page-record stream for one block, using every record kind: pattern pages
/// and runs, raw and XPRESS page records, variable records of any size (unaligned,
/// multi-page, empty, raw or XPRESS), an early end tag or none after a full block.
/// Returns the stream and the 1 MiB it decodes to.
pub fn random_stream(seed: u64) -> (Vec<u8>, Vec<u8>) {
    const PAGE: usize = 4096;
    const MIB: usize = 1 << 20;
    let mut rng = Rng::new(seed);
    let mut s = Vec::new();
    let mut out = vec![0u8; MIB];
    let mut op = 0usize;
    let tag = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_le_bytes());
    while op < MIB {
        let room = MIB - op;
        match rng.below(9) {
            0 | 1 if room >= PAGE => {
                let w = rng.next();
                let count = if rng.below(2) == 0 {
                    tag(&mut s, 0xFFFF_FFFE);
                    s.extend_from_slice(&w.to_le_bytes());
                    1
                } else {
                    let c = 1 + rng.below((room / PAGE).min(40));
                    tag(&mut s, 0xFFFF_FFFD);
                    s.extend_from_slice(&w.to_le_bytes());
                    tag(&mut s, c as u32);
                    c
                };
                for c in out[op..op + count * PAGE].chunks_mut(8) {
                    c.copy_from_slice(&w.to_le_bytes());
                }
                op += count * PAGE;
            }
            2 | 3 if room >= PAGE => {
                let p = content(&mut rng, PAGE);
                let c = xpress_compress(&p);
                if c.len() < PAGE && rng.below(4) != 0 {
                    tag(&mut s, c.len() as u32);
                    s.extend_from_slice(&c);
                } else {
                    tag(&mut s, PAGE as u32);
                    s.extend_from_slice(&p);
                }
                out[op..op + PAGE].copy_from_slice(&p);
                op += PAGE;
            }
            4..=6 => {
                let n = 1 + rng.below(room.min(3 * PAGE + 5));
                let p = content(&mut rng, n);
                let c = xpress_compress(&p);
                let data = if c.len() == n || rng.below(3) == 0 {
                    p.clone()
                } else {
                    c
                };
                tag(&mut s, 0xFFFF_FFFC);
                tag(&mut s, n as u32);
                tag(&mut s, data.len() as u32);
                s.extend_from_slice(&data);
                out[op..op + n].copy_from_slice(&p);
                op += n;
            }
            7 => {
                // An empty variable record.
                tag(&mut s, 0xFFFF_FFFC);
                tag(&mut s, 0);
                tag(&mut s, 0);
            }
            _ if rng.below(12) == 0 => break,
            _ => {}
        }
    }
    if op < MIB || rng.below(2) == 0 {
        tag(&mut s, 0xFFFF_FFFF);
    }
    (s, out)
}

/// Text-like bytes (compressible): words of the guest vocabulary.
pub fn text(n: usize, seed: u64) -> Vec<u8> {
    let words = b"the quick brown fox jumps over the lazy dog kernel32 ntoskrnl hal.dll ";
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(n + 24);
    while v.len() < n {
        let start = rng.below(words.len() - 8);
        let len = (1 + rng.below(24)).min(words.len() - start);
        v.extend_from_slice(&words[start..start + len]);
    }
    v.truncate(n);
    v
}

/// Bytes whose XPRESS encoding uses every match-length form: the 3-bit length, both
/// halves of a shared nibble, the extra byte, and the 16-bit length (runs of 4 to 2000
/// bytes between literals), padded with text to `n` bytes.
pub fn match_lengths(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, run) in [4usize, 8, 12, 20, 40, 300, 2000].into_iter().enumerate() {
        v.extend_from_slice(&[b'<', b'a' + i as u8, b'>']);
        v.extend(std::iter::repeat_n(b'0' + i as u8, run));
    }
    assert!(v.len() <= n);
    let pad = text(n - v.len(), 3);
    v.extend_from_slice(&pad);
    v
}

/// A small page-record stream with every record kind, in this order: a pattern page, a
/// pattern run, an XPRESS page, a raw page (incompressible), a multi-page XPRESS
/// variable record of an unaligned size, a raw variable record, an empty variable
/// record, a pattern run from the unaligned offset, an XPRESS page using every
/// match-length form, and an early end tag (the rest of the block decodes as zeros).
/// Returns the stream and the 1 MiB it decodes to.
pub fn every_record_stream(seed: u64) -> (Vec<u8>, Vec<u8>) {
    const PAGE: usize = 4096;
    let mut rng = Rng::new(seed);
    let mut s = Vec::new();
    let mut out = Vec::new();
    let tag = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_le_bytes());
    let pattern = |out: &mut Vec<u8>, w: u64, pages: usize| {
        for _ in 0..pages * PAGE / 8 {
            out.extend_from_slice(&w.to_le_bytes());
        }
    };
    // Pattern page, then a run of 3.
    let w = 0x1122_3344_5566_7788u64 ^ rng.next();
    tag(&mut s, 0xFFFF_FFFE);
    s.extend_from_slice(&w.to_le_bytes());
    pattern(&mut out, w, 1);
    tag(&mut s, 0xFFFF_FFFD);
    s.extend_from_slice(&0u64.to_le_bytes());
    tag(&mut s, 3);
    pattern(&mut out, 0, 3);
    // An XPRESS page and a raw page.
    let p = text(PAGE, seed);
    let c = xpress_compress(&p);
    assert!(c.len() < PAGE);
    tag(&mut s, c.len() as u32);
    s.extend_from_slice(&c);
    out.extend_from_slice(&p);
    let p: Vec<u8> = (0..PAGE).map(|_| rng.next() as u8).collect();
    tag(&mut s, PAGE as u32);
    s.extend_from_slice(&p);
    out.extend_from_slice(&p);
    // Variable records: XPRESS over 5000 bytes, raw 1234 bytes, empty.
    let p = text(5000, seed + 1);
    let c = xpress_compress(&p);
    tag(&mut s, 0xFFFF_FFFC);
    tag(&mut s, p.len() as u32);
    tag(&mut s, c.len() as u32);
    s.extend_from_slice(&c);
    out.extend_from_slice(&p);
    let p: Vec<u8> = (0..1234).map(|_| rng.next() as u8).collect();
    tag(&mut s, 0xFFFF_FFFC);
    tag(&mut s, p.len() as u32);
    tag(&mut s, p.len() as u32);
    s.extend_from_slice(&p);
    out.extend_from_slice(&p);
    tag(&mut s, 0xFFFF_FFFC);
    tag(&mut s, 0);
    tag(&mut s, 0);
    // A pattern run starting at an unaligned output offset.
    let w = rng.next();
    tag(&mut s, 0xFFFF_FFFD);
    s.extend_from_slice(&w.to_le_bytes());
    tag(&mut s, 5);
    pattern(&mut out, w, 5);
    // Every match-length form in one XPRESS page.
    let p = match_lengths(PAGE);
    let c = xpress_compress(&p);
    tag(&mut s, c.len() as u32);
    s.extend_from_slice(&c);
    out.extend_from_slice(&p);
    // Early end: the rest of the block is zeros.
    tag(&mut s, 0xFFFF_FFFF);
    out.resize(1 << 20, 0);
    (s, out)
}
