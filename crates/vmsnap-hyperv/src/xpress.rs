//! XPRESS "plain LZ77" decompression (MS-XCA §2.4), written from the specification's
//! pseudocode: 32-bit flag words (MSB first, 0 = literal, 1 = match), 16-bit match
//! tokens (13-bit offset, 3-bit length) with the shared-nibble, byte, u16 and u32 length
//! extensions. Bounded: never writes past `out`, never reads past `input`, and every
//! match must start inside the output written so far.

use vmsnap_core::{Error, ErrorKind, Result};

fn bad(at: usize, msg: &str) -> Error {
    Error::new(
        ErrorKind::Malformed,
        format!("XPRESS: {msg} (input byte {at})"),
    )
}

#[inline]
fn le16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

#[inline]
fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

/// Decompresses `input` into `out` and returns the number of bytes written. Decoding
/// ends when the input is used up (at a flag word, a literal or a match token).
///
/// `out[..n]` is the decoded data; bytes of `out` past the returned `n` may have been
/// overwritten (short literal runs and matches are copied in fixed 16-byte chunks while
/// there is room), so callers must only use `out[..n]`.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = input.len();
    let cap = out.len();
    let mut ip = 0usize;
    let mut op = 0usize;
    let mut last_half: usize = 0;
    loop {
        // A flag word: 32 bits, most significant first.
        if ip == len {
            return Ok(op);
        }
        let mut flags = le32(input, ip).ok_or_else(|| bad(ip, "flag word truncated"))?;
        ip += 4;
        // Bits left in `flags`, the next one at the top.
        let mut nflags: u32 = 32;
        while nflags > 0 {
            // A run of literal bits: copy them in one go.
            let lits = flags.leading_zeros().min(nflags);
            if lits > 0 {
                let n = lits as usize;
                let take = n.min(len - ip);
                if take > cap - op {
                    return Err(bad(ip, "output overflow in literals"));
                }
                copy_literals(input, ip, out, op, take);
                ip += take;
                op += take;
                if take < n {
                    return Ok(op);
                }
                nflags -= lits;
                flags = flags.checked_shl(lits).unwrap_or(0);
                continue;
            }
            // A match bit.
            nflags -= 1;
            flags <<= 1;
            let Some(tok) = le16(input, ip) else {
                if ip == len {
                    return Ok(op);
                }
                return Err(bad(ip, "match token truncated"));
            };
            let token = usize::from(tok);
            ip += 2;
            let mut mlen = token % 8;
            let off = token / 8 + 1;
            if mlen == 7 {
                if last_half == 0 {
                    let b = *input
                        .get(ip)
                        .ok_or_else(|| bad(ip, "length nibble truncated"))?;
                    mlen = usize::from(b % 16);
                    last_half = ip;
                    ip += 1;
                } else {
                    let b = *input
                        .get(last_half)
                        .ok_or_else(|| bad(last_half, "length nibble missing"))?;
                    mlen = usize::from(b / 16);
                    last_half = 0;
                }
                if mlen == 15 {
                    let b = *input
                        .get(ip)
                        .ok_or_else(|| bad(ip, "length byte truncated"))?;
                    mlen = usize::from(b);
                    ip += 1;
                    if mlen == 255 {
                        mlen = usize::from(
                            le16(input, ip).ok_or_else(|| bad(ip, "length word truncated"))?,
                        );
                        ip += 2;
                        if mlen == 0 {
                            mlen = le32(input, ip)
                                .ok_or_else(|| bad(ip, "length dword truncated"))?
                                as usize;
                            ip += 4;
                        }
                        if mlen < 15 + 7 {
                            return Err(bad(ip, "extended match length below 22"));
                        }
                        mlen -= 15 + 7;
                    }
                    mlen += 15;
                }
                mlen += 7;
            }
            mlen += 3;
            if off > op {
                return Err(bad(ip, "match offset before the start of the output"));
            }
            if mlen > cap - op {
                return Err(bad(ip, "output overflow in match"));
            }
            copy_match(out, op, off, mlen);
            op += mlen;
        }
    }
}

/// Bytes copied at once by the fixed-size fast paths.
const CHUNK: usize = 16;

/// Copies `n` literals from `input[ip..]` to `out[op..]`. The caller has checked that
/// both ranges fit. Short runs with room on both sides are one fixed 16-byte copy.
#[inline(always)]
fn copy_literals(input: &[u8], ip: usize, out: &mut [u8], op: usize, n: usize) {
    if n <= CHUNK {
        if let (Some(d), Some(s)) = (
            out.get_mut(op..op.wrapping_add(CHUNK)),
            input.get(ip..ip.wrapping_add(CHUNK)),
        ) {
            d.copy_from_slice(s);
            return;
        }
    }
    if let (Some(d), Some(s)) = (
        out.get_mut(op..op.wrapping_add(n)),
        input.get(ip..ip.wrapping_add(n)),
    ) {
        d.copy_from_slice(s);
    }
}

/// Copies `N` bytes from `out[src..]` to `out[dst..]` through a register-sized
/// temporary (so it compiles to one load and one store); `src + N <= dst` is not
/// needed for memory safety, only for LZ77 meaning, which callers ensure.
#[inline(always)]
fn chunk<const N: usize>(out: &mut [u8], src: usize, dst: usize) {
    let mut t = [0u8; N];
    if let Some(s) = out.get(src..src.wrapping_add(N)) {
        t.copy_from_slice(s);
    }
    if let Some(d) = out.get_mut(dst..dst.wrapping_add(N)) {
        d.copy_from_slice(&t);
    }
}

/// Copies `mlen` bytes from `op - off` to `op` with LZ77 overlap semantics. The caller
/// has checked `off <= op` and `op + mlen <= out.len()`. Fixed-size chunks may write
/// up to 15 bytes past `op + mlen` when there is room (bytes not decoded yet).
#[inline(always)]
fn copy_match(out: &mut [u8], op: usize, off: usize, mlen: usize) {
    let src = op - off;
    let room = out.len() - op;
    if off >= mlen {
        // No overlap.
        if off >= CHUNK && mlen <= CHUNK && room >= CHUNK {
            chunk::<CHUNK>(out, src, op);
        } else {
            let (done, rest) = out.split_at_mut(op);
            if let (Some(s), Some(d)) = (done.get(src..src + mlen), rest.get_mut(..mlen)) {
                d.copy_from_slice(s);
            }
        }
    } else if off == 1 {
        let b = out.get(src).copied().unwrap_or(0);
        if let Some(d) = out.get_mut(op..op + mlen) {
            d.fill(b);
        }
    } else if off >= CHUNK && mlen <= 4 * CHUNK && mlen.div_ceil(CHUNK) * CHUNK <= room {
        // Overlapping, period of at least 16: each chunk's source is already written.
        let mut done = 0;
        while done < mlen {
            chunk::<CHUNK>(out, src + done, op + done);
            done += CHUNK;
        }
    } else if off >= 8 && mlen <= 4 * CHUNK && mlen.div_ceil(8) * 8 <= room {
        let mut done = 0;
        while done < mlen {
            chunk::<8>(out, src + done, op + done);
            done += 8;
        }
    } else {
        // Copy the period, then double it: each chunk's source lies wholly before it.
        let mut done = 0;
        while done < mlen {
            let n = (off + done).min(mlen - done);
            let (head, rest) = out.split_at_mut(op + done);
            if let (Some(s), Some(d)) = (head.get(src..src + n), rest.get_mut(..n)) {
                d.copy_from_slice(s);
            }
            done += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The previous, byte-at-a-time-checked decoder, kept as the reference.
    /// Decompresses `input` into `out` and returns the number of bytes written. Decoding
    /// ends when the input is used up (at a flag word, a literal or a match token).
    fn reference(input: &[u8], out: &mut [u8]) -> Result<usize> {
        let len = input.len();
        let cap = out.len();
        let mut ip = 0usize;
        let mut op = 0usize;
        let mut flags: u32 = 0;
        let mut nflags: u32 = 0;
        let mut last_half: usize = 0;
        loop {
            if nflags == 0 {
                if ip == len {
                    return Ok(op);
                }
                flags = le32(input, ip).ok_or_else(|| bad(ip, "flag word truncated"))?;
                ip += 4;
                nflags = 32;
            }
            // A run of literal bits: copy them in one go.
            let lits = (flags << (32 - nflags)).leading_zeros().min(nflags);
            if lits > 0 {
                let n = lits as usize;
                let avail = len - ip;
                let take = n.min(avail);
                let dst = out
                    .get_mut(op..op + take)
                    .ok_or_else(|| bad(ip, "output overflow in literals"))?;
                if let Some(src) = input.get(ip..ip + take) {
                    dst.copy_from_slice(src);
                }
                ip += take;
                op += take;
                if take < n {
                    return Ok(op);
                }
                nflags -= lits;
                continue;
            }
            nflags -= 1;
            if ip == len {
                return Ok(op);
            }
            let token =
                usize::from(le16(input, ip).ok_or_else(|| bad(ip, "match token truncated"))?);
            ip += 2;
            let mut mlen = token % 8;
            let off = token / 8 + 1;
            if mlen == 7 {
                if last_half == 0 {
                    let b = *input
                        .get(ip)
                        .ok_or_else(|| bad(ip, "length nibble truncated"))?;
                    mlen = usize::from(b % 16);
                    last_half = ip;
                    ip += 1;
                } else {
                    let b = *input
                        .get(last_half)
                        .ok_or_else(|| bad(last_half, "length nibble missing"))?;
                    mlen = usize::from(b / 16);
                    last_half = 0;
                }
                if mlen == 15 {
                    let b = *input
                        .get(ip)
                        .ok_or_else(|| bad(ip, "length byte truncated"))?;
                    mlen = usize::from(b);
                    ip += 1;
                    if mlen == 255 {
                        mlen = usize::from(
                            le16(input, ip).ok_or_else(|| bad(ip, "length word truncated"))?,
                        );
                        ip += 2;
                        if mlen == 0 {
                            mlen = le32(input, ip)
                                .ok_or_else(|| bad(ip, "length dword truncated"))?
                                as usize;
                            ip += 4;
                        }
                        if mlen < 15 + 7 {
                            return Err(bad(ip, "extended match length below 22"));
                        }
                        mlen -= 15 + 7;
                    }
                    mlen += 15;
                }
                mlen += 7;
            }
            mlen += 3;
            if off > op {
                return Err(bad(ip, "match offset before the start of the output"));
            }
            if mlen > cap - op {
                return Err(bad(ip, "output overflow in match"));
            }
            ref_copy_match(out, op, off, mlen);
            op += mlen;
        }
    }

    /// Reference: copies `mlen` bytes from `op - off` to `op` with LZ77 overlap semantics. The caller
    /// has checked `off <= op` and `op + mlen <= out.len()`.
    fn ref_copy_match(out: &mut [u8], op: usize, off: usize, mlen: usize) {
        let src = op - off;
        if off >= mlen {
            out.copy_within(src..src + mlen, op);
        } else if off == 1 {
            let b = out.get(src).copied().unwrap_or(0);
            if let Some(d) = out.get_mut(op..op + mlen) {
                d.fill(b);
            }
        } else {
            // Copy the period, then double it: each chunk's source lies wholly before it.
            let mut done = 0;
            while done < mlen {
                let n = (off + done).min(mlen - done);
                out.copy_within(src..src + n, op + done);
                done += n;
            }
        }
    }

    #[test]
    fn spec_examples() {
        // MS-XCA §3.1 examples.
        let mut c = vec![0x3f, 0, 0, 0];
        c.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
        let mut out = [0u8; 64];
        let n = decompress(&c, &mut out).unwrap();
        assert_eq!(&out[..n], b"abcdefghijklmnopqrstuvwxyz");

        let c = [
            0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
        ];
        let mut out = [0u8; 300];
        let n = decompress(&c, &mut out).unwrap();
        assert_eq!(n, 300);
        assert_eq!(out.to_vec(), b"abc".repeat(100));
        let mut small = [0u8; 299];
        assert!(decompress(&c, &mut small).is_err());
    }

    #[test]
    fn rejects_bad_offsets_and_truncation() {
        // Match before any output.
        let c = [0x00, 0x00, 0x00, 0x80, 0x00, 0x00];
        assert!(decompress(&c, &mut [0u8; 16]).is_err());
        // Flag word cut short.
        assert!(decompress(&[0x00, 0x00], &mut [0u8; 16]).is_err());
    }

    /// A small deterministic generator for the differential test.
    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// A random but mostly valid stream: literals and matches of every length form and
    /// small and large offsets.
    fn random_stream(seed: u64) -> Vec<u8> {
        let mut r = seed | 1;
        let mut v = Vec::new();
        let mut written = 0usize;
        let mut half: Option<usize> = None;
        for _ in 0..(xorshift(&mut r) % 12 + 1) {
            let want = xorshift(&mut r) as u32;
            let at = v.len();
            v.extend_from_slice(&[0; 4]);
            let mut flags = 0u32;
            for bit in 0..32 {
                if want & (1 << (31 - bit)) == 0 || written == 0 {
                    v.push(xorshift(&mut r) as u8);
                    written += 1;
                    continue;
                }
                flags |= 1 << (31 - bit);
                let pick = xorshift(&mut r);
                let off = match pick % 4 {
                    0 => pick as usize % 8 + 1,
                    1 => pick as usize % 24 + 1,
                    _ => pick as usize % written + 1,
                }
                .min(written)
                .min(8192);
                let len_code = match (pick >> 8) % 8 {
                    0..=4 => (pick >> 16) as usize % 7,
                    _ => 7,
                };
                v.extend_from_slice(&((((off - 1) << 3) | len_code) as u16).to_le_bytes());
                if len_code == 7 {
                    let mode = (pick >> 24) % 4;
                    let nib = if mode == 0 {
                        (pick >> 32) as u8 % 15
                    } else {
                        15
                    };
                    match half.take() {
                        None => {
                            half = Some(v.len());
                            v.push(nib);
                        }
                        Some(h) => {
                            if let Some(b) = v.get_mut(h) {
                                *b |= nib << 4;
                            }
                        }
                    }
                    match mode {
                        0 => {}
                        1 => v.push((pick >> 32) as u8 % 255),
                        2 => {
                            v.push(0xff);
                            v.extend_from_slice(&((pick >> 40) as u16 % 600 + 22).to_le_bytes());
                        }
                        _ => {
                            v.push(0xff);
                            v.extend_from_slice(&[0, 0]);
                            v.extend_from_slice(&((pick >> 40) as u32 % 900 + 22).to_le_bytes());
                        }
                    }
                }
                written += 3;
            }
            if let Some(f) = v.get_mut(at..at + 4) {
                f.copy_from_slice(&flags.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn matches_the_reference_decoder() {
        let mut r = 12345u64;
        let mut ok = 0usize;
        for seed in 1..3000u64 {
            let mut input = random_stream(seed);
            // Some streams are cut or corrupted.
            match seed % 5 {
                0 => input.truncate(xorshift(&mut r) as usize % (input.len() + 1)),
                1 => {
                    let at = xorshift(&mut r) as usize % input.len().max(1);
                    if let Some(b) = input.get_mut(at) {
                        *b ^= xorshift(&mut r) as u8;
                    }
                }
                _ => {}
            }
            for cap in [0usize, 17, 100, 300, 1000, 4096, 20_000] {
                let mut a = vec![0u8; cap];
                let mut b = vec![0u8; cap];
                let ra = decompress(&input, &mut a);
                let rb = reference(&input, &mut b);
                match (ra, rb) {
                    (Ok(na), Ok(nb)) => {
                        assert_eq!(na, nb, "seed {seed} cap {cap}");
                        ok += usize::from(na > 0);
                        assert_eq!(a[..na], b[..nb], "seed {seed} cap {cap}");
                    }
                    (Err(ea), Err(eb)) => {
                        assert_eq!(ea.to_string(), eb.to_string(), "seed {seed} cap {cap}")
                    }
                    (ra, rb) => panic!("seed {seed} cap {cap}: {ra:?} vs {rb:?}"),
                }
            }
        }
        // Most streams decode: the fast paths are exercised, not only the errors.
        assert!(ok > 2000, "only {ok} non-empty decodes");
    }
}
