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
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize> {
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
        let token = usize::from(le16(input, ip).ok_or_else(|| bad(ip, "match token truncated"))?);
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
                        mlen = le32(input, ip).ok_or_else(|| bad(ip, "length dword truncated"))?
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

/// Copies `mlen` bytes from `op - off` to `op` with LZ77 overlap semantics. The caller
/// has checked `off <= op` and `op + mlen <= out.len()`.
#[inline]
fn copy_match(out: &mut [u8], op: usize, off: usize, mlen: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
