//! Compressed blocks (value size 62). No public parser documents the algorithm (crash
//! refuses them). This reader recognises a zlib stream by its header (RFC 1950: CM 8,
//! header check divisible by 31) and accepts the result only when it inflates to exactly
//! `nbytesinmem` bytes; anything else is reported as an unknown algorithm.

use std::io::Read;

use vmsnap_core::{Error, ErrorKind, Result};

/// What a compressed block's first bytes look like.
pub fn sniff(head: &[u8]) -> &'static str {
    match head {
        [cmf, flg, ..]
            if cmf & 0x0F == 8
                && cmf >> 4 <= 7
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 =>
        {
            "zlib"
        }
        _ => "unknown",
    }
}

/// Inflates `raw` when it is zlib and decodes to exactly `expect` bytes (at most `limit`).
pub fn decode(raw: &[u8], expect: u64, limit: u64) -> Result<Vec<u8>> {
    if sniff(raw) != "zlib" {
        return Err(Error::unsupported(
            "compressed VMware block with an unknown algorithm (not a zlib stream)",
        ));
    }
    if expect > limit {
        return Err(Error::limit("decompressed VMware block", expect, limit));
    }
    let mut out = Vec::with_capacity(expect as usize);
    let mut z = flate2::read::ZlibDecoder::new(raw).take(expect.saturating_add(1));
    z.read_to_end(&mut out).map_err(|e| {
        Error::new(
            ErrorKind::Malformed,
            format!("zlib stream of a compressed block is corrupt: {e}"),
        )
    })?;
    if out.len() as u64 != expect {
        return Err(Error::new(
            ErrorKind::Malformed,
            format!(
                "compressed block inflates to {} bytes, nbytesinmem says {expect}",
                out.len()
            ),
        ));
    }
    Ok(out)
}
