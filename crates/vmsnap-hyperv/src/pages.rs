//! The per-page record stream of a compressed `RamBlock` (1 MiB = 256 pages decoded).
//!
//! Layout used (Pascal Beyer's parser, the one run against real files; the reference
//! prefers it where VMkatz differs), little-endian u32 tags:
//! * `0xFFFFFFFF` — end of the block.
//! * `0xFFFFFFFE` + u64 pattern — one 4 KiB page of the pattern (12 bytes).
//! * `0xFFFFFFFD` + u64 pattern @+4 + u32 count @+12 — `count` pattern pages (16 bytes).
//! * `0xFFFFFFFC` + u32 output_size @+4 + u32 compressed_size @+8, data @+12 — a
//!   variable-size record: raw when both sizes are equal, else XPRESS.
//! * any other `n` (1..=4096) — `n` bytes follow: a raw page when `n == 4096`, else
//!   XPRESS plain LZ77 decoding to exactly 4096 bytes.

use vmsnap_core::{Bytes, Error, Result};

use crate::xpress;

/// Bytes of a guest page.
pub const PAGE: usize = 4096;
/// Decoded bytes of a RAM block.
pub const BLOCK: usize = 1 << 20;

/// Tag: end of block.
pub const TAG_END: u32 = 0xFFFF_FFFF;
/// Tag: one pattern page.
pub const TAG_PATTERN: u32 = 0xFFFF_FFFE;
/// Tag: a run of pattern pages.
pub const TAG_PATTERN_RUN: u32 = 0xFFFF_FFFD;
/// Tag: variable-size record.
pub const TAG_VARIABLE: u32 = 0xFFFF_FFFC;

/// Name of the record layout, for `describe()`.
pub const LAYOUT: &str = "beyer: 0xFFFFFFFD = u64 pattern @4, u32 count @12; 0xFFFFFFFC = u32 output_size @4, u32 compressed_size @8, data @12; other n = n bytes (raw if 4096, else XPRESS plain LZ77)";

fn fill_pattern(out: &mut [u8], pattern: u64) {
    let p = pattern.to_le_bytes();
    for c in out.chunks_exact_mut(8) {
        c.copy_from_slice(&p);
    }
}

/// Decodes the record stream `input` into `out` (which must be [`BLOCK`] bytes).
/// Returns the number of bytes the records produced; the rest of `out` is zeroed.
pub fn decode_block(input: &[u8], out: &mut [u8], base: u64) -> Result<usize> {
    let b = Bytes::new(input, base);
    let mut ip = 0usize;
    let mut op = 0usize;
    let err = |at: usize, msg: String| Error::malformed(base.saturating_add(at as u64), msg);
    loop {
        if ip == input.len() && op == out.len() {
            break; // full block without an end tag
        }
        let tag = b.u32_le(ip)?;
        match tag {
            TAG_END => break,
            TAG_PATTERN | TAG_PATTERN_RUN => {
                let pattern = b.u64_le(ip + 4)?;
                let (count, rec) = if tag == TAG_PATTERN {
                    (1usize, 12)
                } else {
                    (b.u32_le(ip + 12)? as usize, 16)
                };
                let n = count
                    .checked_mul(PAGE)
                    .filter(|&n| n <= out.len() - op)
                    .ok_or_else(|| {
                        err(
                            ip,
                            format!("{count} pattern pages overflow the 1 MiB block"),
                        )
                    })?;
                if let Some(d) = out.get_mut(op..op + n) {
                    fill_pattern(d, pattern);
                }
                op += n;
                ip += rec;
            }
            TAG_VARIABLE => {
                let out_size = b.u32_le(ip + 4)? as usize;
                let in_size = b.u32_le(ip + 8)? as usize;
                let data = b.slice(ip + 12, in_size)?;
                if out_size > out.len() - op {
                    return Err(err(
                        ip,
                        format!("variable record of {out_size} bytes overflows the block"),
                    ));
                }
                let dst = out
                    .get_mut(op..op + out_size)
                    .ok_or_else(|| err(ip, "record overflow".into()))?;
                decode_unit(data, dst, base + ip as u64 + 12)?;
                op += out_size;
                ip += 12 + in_size;
            }
            n => {
                let n = n as usize;
                if n == 0 || n > PAGE {
                    return Err(err(
                        ip,
                        format!("page record of {n} bytes (must be 1..=4096)"),
                    ));
                }
                let data = b.slice(ip + 4, n)?;
                if PAGE > out.len() - op {
                    return Err(err(ip, "more than 256 pages in a RAM block".into()));
                }
                let dst = out
                    .get_mut(op..op + PAGE)
                    .ok_or_else(|| err(ip, "record overflow".into()))?;
                decode_unit(data, dst, base + ip as u64 + 4)?;
                op += PAGE;
                ip += 4 + n;
            }
        }
    }
    if let Some(rest) = out.get_mut(op..) {
        rest.fill(0);
    }
    Ok(op)
}

/// Raw when the sizes are equal, else XPRESS that must fill `dst` exactly.
fn decode_unit(data: &[u8], dst: &mut [u8], at: u64) -> Result<()> {
    if data.len() == dst.len() {
        dst.copy_from_slice(data);
        return Ok(());
    }
    let n = xpress::decompress(data, dst).map_err(|e| e.at(at))?;
    if n != dst.len() {
        return Err(Error::malformed(
            at,
            format!("XPRESS record decoded to {n} bytes, {} expected", dst.len()),
        ));
    }
    Ok(())
}
