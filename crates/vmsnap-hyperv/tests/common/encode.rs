//! Test-side encoders: an XPRESS plain LZ77 compressor (MS-XCA §2.3 format), the RAM
//! block page-record stream, `MemoryBlockSaveStruct` and a `partition_state` blob.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

/// Greedy LZ77 compressor writing the MS-XCA plain LZ77 format.
pub fn xpress_compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 8);
    let mut flag_pos = 0usize;
    out.extend_from_slice(&[0u8; 4]);
    let mut flags: u32 = 0;
    let mut nflags = 0u32;
    let mut half: Option<usize> = None;
    let mut table = vec![usize::MAX; 1 << 14];
    let hash = |p: &[u8]| {
        ((u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2])).wrapping_mul(2654435761)
            >> 18) as usize
    };
    let push_flag =
        |bit: u32, out: &mut Vec<u8>, flags: &mut u32, nflags: &mut u32, flag_pos: &mut usize| {
            *flags = (*flags << 1) | bit;
            *nflags += 1;
            if *nflags == 32 {
                out[*flag_pos..*flag_pos + 4].copy_from_slice(&flags.to_le_bytes());
                *flag_pos = out.len();
                out.extend_from_slice(&[0u8; 4]);
                *flags = 0;
                *nflags = 0;
            }
        };
    let mut i = 0;
    while i < input.len() {
        let mut best_len = 0;
        let mut best_off = 0;
        if i + 3 <= input.len() {
            let h = hash(&input[i..]);
            let cand = table[h];
            table[h] = i;
            if cand != usize::MAX && i - cand <= 8192 {
                let mut l = 0;
                while i + l < input.len() && input[cand + l] == input[i + l] && l < 70000 {
                    l += 1;
                }
                if l >= 3 {
                    best_len = l;
                    best_off = i - cand;
                }
            }
        }
        if best_len < 3 {
            out.push(input[i]);
            push_flag(0, &mut out, &mut flags, &mut nflags, &mut flag_pos);
            i += 1;
            continue;
        }
        let l = best_len - 3;
        let off = (best_off - 1) as u16;
        if l < 7 {
            out.extend_from_slice(&((off << 3) | l as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&((off << 3) | 7).to_le_bytes());
            let l2 = l - 7;
            let nib = l2.min(15) as u8;
            match half.take() {
                None => {
                    half = Some(out.len());
                    out.push(nib);
                }
                Some(p) => out[p] |= nib << 4,
            }
            if l2 >= 15 {
                let l3 = l2 - 15;
                if l3 < 255 {
                    out.push(l3 as u8);
                } else {
                    out.push(255);
                    let full = best_len - 3;
                    if full <= 0xFFFF {
                        out.extend_from_slice(&(full as u16).to_le_bytes());
                    } else {
                        out.extend_from_slice(&0u16.to_le_bytes());
                        out.extend_from_slice(&(full as u32).to_le_bytes());
                    }
                }
            }
        }
        push_flag(1, &mut out, &mut flags, &mut nflags, &mut flag_pos);
        i += best_len;
    }
    // Pad the last flag word with 1 bits: the decoder stops at a match bit with no input.
    let rest = 32 - nflags;
    let last = if rest == 32 {
        u32::MAX
    } else {
        (flags << rest) | ((1u32 << rest) - 1)
    };
    out[flag_pos..flag_pos + 4].copy_from_slice(&last.to_le_bytes());
    out
}

/// How to encode one page in a record stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PageMode {
    /// Pattern page if uniform, else XPRESS (raw when it does not shrink).
    Auto,
    /// Always the `0xFFFFFFFC` variable record.
    Variable,
}

/// Encodes a 1 MiB block as the compressed page-record stream.
pub fn encode_block(block: &[u8], mode: PageMode) -> Vec<u8> {
    assert_eq!(block.len(), 1 << 20);
    encode_pages(block, mode)
}

/// Encodes whole pages (at most a block's 256) as a page-record stream that ends with
/// the end tag: a block whose pages past these decode as zeros.
pub fn encode_pages(block: &[u8], mode: PageMode) -> Vec<u8> {
    assert_eq!(block.len() % 4096, 0, "whole pages");
    assert!(block.len() <= 1 << 20);
    let mut out = Vec::new();
    let pages: Vec<&[u8]> = block.chunks(4096).collect();
    let pattern_of = |p: &[u8]| {
        let w = u64::from_le_bytes(p[..8].try_into().unwrap());
        p.chunks(8)
            .all(|c| u64::from_le_bytes(c.try_into().unwrap()) == w)
            .then_some(w)
    };
    let mut i = 0;
    while i < pages.len() {
        let p = pages[i];
        if mode == PageMode::Auto {
            if let Some(w) = pattern_of(p) {
                let mut n = 1;
                while i + n < pages.len() && pattern_of(pages[i + n]) == Some(w) {
                    n += 1;
                }
                if n == 1 {
                    out.extend_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
                    out.extend_from_slice(&w.to_le_bytes());
                } else {
                    out.extend_from_slice(&0xFFFF_FFFDu32.to_le_bytes());
                    out.extend_from_slice(&w.to_le_bytes());
                    out.extend_from_slice(&(n as u32).to_le_bytes());
                }
                i += n;
                continue;
            }
        }
        let c = xpress_compress(p);
        let (data, raw) = if c.len() < 4096 {
            (c, false)
        } else {
            (p.to_vec(), true)
        };
        match mode {
            PageMode::Auto => {
                out.extend_from_slice(&(if raw { 4096 } else { data.len() as u32 }).to_le_bytes());
            }
            PageMode::Variable => {
                out.extend_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
                out.extend_from_slice(&4096u32.to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(&data);
        i += 1;
    }
    out.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    out
}

/// A `MemoryBlockSaveStruct` (48 bytes).
pub fn memory_block(pages: u64, mbp_start: u64, gpa_page: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&pages.to_le_bytes());
    v.extend_from_slice(&mbp_start.to_le_bytes());
    v.extend_from_slice(&gpa_page.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v
}

/// Registers of one VP for `partition_state`.
#[derive(Clone, Debug, Default)]
pub struct Vp {
    pub index: u32,
    pub gp: [u64; 18],
    pub cr: [u64; 6],
    pub idtr: (u16, u64),
    pub gdtr: (u16, u64),
}

fn chunk(out: &mut Vec<u8>, id: u32, data: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(data);
}

/// A `partition_state` blob: descriptor (header_size 24), chunks from offset 40.
pub fn partition_state(vps: &[Vp]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&24u64.to_le_bytes());
    out.extend_from_slice(&24u64.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.resize(40, 0);
    chunk(&mut out, 0, &[0u8; 64]);
    for vp in vps {
        chunk(&mut out, 0x3000_1000, &vp.index.to_le_bytes());
        let gp: Vec<u8> = vp.gp.iter().flat_map(|x| x.to_le_bytes()).collect();
        chunk(&mut out, 0x3000_5000, &gp);
        chunk(&mut out, 0x3000_9000, &[0u8; 144]);
        let cr: Vec<u8> = vp.cr.iter().flat_map(|x| x.to_le_bytes()).collect();
        chunk(&mut out, 0x3000_7000, &cr);
        let mut t = Vec::new();
        for (limit, base) in [vp.idtr, vp.gdtr] {
            t.extend_from_slice(&[0u8; 6]);
            t.extend_from_slice(&limit.to_le_bytes());
            t.extend_from_slice(&base.to_le_bytes());
        }
        chunk(&mut out, 0x3000_A000, &t);
    }
    chunk(&mut out, 0xF000_0000, &[]);
    let total = out.len() as u64;
    out[16..24].copy_from_slice(&total.to_le_bytes());
    out
}

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
