//! Value encoders: an XPRESS plain LZ77 compressor (MS-XCA §2.3 format), the RAM block
//! page-record stream, `MemoryBlockSaveStruct` and a `partition_state` blob.

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
    /// VP index.
    pub index: u32,
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8–r15, rip, rflags.
    pub gp: [u64; 18],
    /// cr0, cr2, cr3, cr4, cr8, efer.
    pub cr: [u64; 6],
    /// IDTR (limit, base).
    pub idtr: (u16, u64),
    /// GDTR (limit, base).
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
