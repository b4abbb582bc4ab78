//! Snappy's framing format inside a version-2 range: the index of its data chunks, built at
//! open from the chunk headers alone (type, length, and a compressed block's varint
//! length), and the decoding of one chunk with its masked CRC-32C checked.

use std::cell::RefCell;

use vmsnap_core::{Bytes, Error, Layer, Result, ResultExt};

use crate::header::RangeHeader;
use crate::raw::{
    CHUNK_COMPRESSED, CHUNK_CRC, CHUNK_HEADER, CHUNK_PEEK, CHUNK_STREAM_ID, CHUNK_UNCOMPRESSED,
    CRC_MASK_DELTA, MAX_CHUNKS, MAX_CHUNK_DECODED, MAX_COMPRESSED_BODY, STREAM_BODY, TRAILER_SIZE,
    UNSKIPPABLE_FIRST, UNSKIPPABLE_LAST,
};

/// Bit of [`Chunk::len_kind`] set for a compressed chunk.
const COMPRESSED_BIT: u32 = 1 << 31;

/// One data chunk of a range's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// File offset of the chunk's body (its CRC).
    pub body: u64,
    /// Offset within the range of the chunk's first decoded byte.
    pub start: u64,
    /// Body length (CRC included), with [`COMPRESSED_BIT`] for a snappy block.
    len_kind: u32,
    /// Bytes the chunk decodes to (1 to 65 536).
    pub decoded: u32,
}

impl Chunk {
    /// Whether the body is a snappy block (else stored bytes).
    pub fn compressed(&self) -> bool {
        self.len_kind & COMPRESSED_BIT != 0
    }

    /// Length of the body, CRC included.
    pub fn body_len(&self) -> u64 {
        u64::from(self.len_kind & !COMPRESSED_BIT)
    }

    /// Offset within the range just past the chunk's decoded bytes.
    pub fn end(&self) -> u64 {
        self.start + u64::from(self.decoded)
    }
}

/// The indexed stream of one version-2 range.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// The data chunks, in order (their decoded bytes tile the range).
    pub chunks: Vec<Chunk>,
    /// Bytes of the framed stream (what the trailer records).
    pub stream_len: u64,
    /// File offset just past the trailer: where the next range header lies.
    pub next: u64,
}

/// Indexes the stream of the version-2 range `r` in `lower`, whose chunks may number at
/// most `budget` (decremented). The chunks' decoded bytes must add up to exactly the
/// range's length, and the trailer must record the stream's length.
pub fn index(lower: &dyn Layer, r: &RangeHeader, budget: &mut u64) -> Result<Stream> {
    let file_len = lower.len();
    let first = r.data_offset();
    let want = r.len();
    let mut s = Stream::default();
    let mut pos = first;
    let mut decoded = 0u64;
    while decoded < want {
        let left = file_len.saturating_sub(pos);
        if left < CHUNK_HEADER {
            return Err(Error::truncated(
                pos,
                format!(
                    "AVML range {} declares {want:#x} bytes, but the file ends after {decoded:#x} \
                     of them were decoded",
                    r.span()
                ),
            ));
        }
        let mut peek = [0u8; CHUNK_PEEK as usize];
        let n = left.min(CHUNK_PEEK) as usize;
        let got = peek.get_mut(..n).unwrap_or_default();
        lower
            .read_at(pos, got)
            .during("reading a snappy chunk header")?;
        let b = Bytes::new(got, pos);
        let kind = b.u8(0)?;
        let len = u64::from(b.u32_le(0)? >> 8);
        let body = pos + CHUNK_HEADER;
        let end = body.saturating_add(len);
        if (UNSKIPPABLE_FIRST..=UNSKIPPABLE_LAST).contains(&kind) {
            return Err(Error::malformed(
                pos,
                format!(
                    "AVML range {} declares {want:#x} bytes, but its snappy stream holds \
                     {decoded:#x} before a chunk of reserved unskippable type {kind:#04x}",
                    r.span()
                ),
            ));
        }
        if pos == first && kind != CHUNK_STREAM_ID {
            return Err(Error::malformed(
                pos,
                format!(
                    "AVML range {} does not start with a snappy stream identifier (chunk type \
                     {kind:#04x})",
                    r.span()
                ),
            ));
        }
        let size = match kind {
            CHUNK_STREAM_ID => {
                if len != STREAM_BODY.len() as u64
                    || b.slice(CHUNK_HEADER as usize, STREAM_BODY.len())? != STREAM_BODY
                {
                    return Err(Error::malformed(
                        pos,
                        format!("bad snappy stream identifier in AVML range {}", r.span()),
                    ));
                }
                0
            }
            CHUNK_COMPRESSED => {
                if len <= CHUNK_CRC || len > MAX_COMPRESSED_BODY {
                    return Err(Error::malformed(
                        pos,
                        format!(
                            "compressed snappy chunk of {len:#x} bytes in AVML range {} (a \
                             chunk holds a CRC and at most {MAX_COMPRESSED_BODY:#x} bytes)",
                            r.span()
                        ),
                    ));
                }
                let block = b
                    .as_slice()
                    .get((CHUNK_HEADER + CHUNK_CRC) as usize..)
                    .unwrap_or_default();
                let block = block.get(..(len - CHUNK_CRC) as usize).unwrap_or(block);
                let n = snap::raw::decompress_len(block).map_err(|e| {
                    Error::malformed(
                        body + CHUNK_CRC,
                        format!("snappy block length in AVML range {}: {e}", r.span()),
                    )
                })? as u64;
                if n == 0 || n > MAX_CHUNK_DECODED {
                    return Err(Error::malformed(
                        body + CHUNK_CRC,
                        format!(
                            "snappy block in AVML range {} decodes to {n:#x} bytes (a chunk \
                             holds 1 to {MAX_CHUNK_DECODED:#x})",
                            r.span()
                        ),
                    ));
                }
                n
            }
            CHUNK_UNCOMPRESSED => {
                if len < CHUNK_CRC || len - CHUNK_CRC > MAX_CHUNK_DECODED {
                    return Err(Error::malformed(
                        pos,
                        format!(
                            "uncompressed snappy chunk of {len:#x} bytes in AVML range {} (a \
                             chunk holds a CRC and at most {MAX_CHUNK_DECODED:#x} bytes)",
                            r.span()
                        ),
                    ));
                }
                len - CHUNK_CRC
            }
            // Reserved unskippable types were refused above; padding and reserved
            // skippable chunks carry nothing.
            _ => 0,
        };
        if end > file_len {
            return Err(Error::truncated(
                pos,
                format!(
                    "snappy chunk of {len:#x} bytes in AVML range {} runs past the end of the \
                     file ({file_len:#x} bytes), {decoded:#x} of its {want:#x} bytes decoded",
                    r.span()
                ),
            ));
        }
        if size > 0 {
            let after = decoded + size;
            if after > want {
                return Err(Error::malformed(
                    pos,
                    format!(
                        "AVML range {} declares {want:#x} bytes, but its snappy stream decodes \
                         to {after:#x} or more",
                        r.span()
                    ),
                ));
            }
            if *budget == 0 {
                return Err(Error::limit(
                    "number of snappy chunks",
                    MAX_CHUNKS.saturating_add(1),
                    MAX_CHUNKS,
                )
                .at(pos));
            }
            *budget -= 1;
            let kind_bit = if kind == CHUNK_COMPRESSED {
                COMPRESSED_BIT
            } else {
                0
            };
            s.chunks.push(Chunk {
                body,
                start: decoded,
                // Both fit: the length is at most MAX_COMPRESSED_BODY, the size 65 536.
                len_kind: len as u32 | kind_bit,
                decoded: size as u32,
            });
            decoded = after;
        }
        pos = end;
    }
    s.stream_len = pos - first;
    if file_len.saturating_sub(pos) < TRAILER_SIZE {
        return Err(Error::truncated(
            pos,
            format!(
                "AVML range {}: the file ends before the 8-byte length of its stream",
                r.span()
            ),
        ));
    }
    let raw: [u8; TRAILER_SIZE as usize] = {
        let mut t = [0u8; TRAILER_SIZE as usize];
        lower
            .read_at(pos, &mut t)
            .during("reading a compressed length")?;
        t
    };
    let recorded = u64::from_le_bytes(raw);
    if recorded != s.stream_len {
        return Err(Error::malformed(
            pos,
            format!(
                "AVML range {} records a compressed length of {recorded:#x} bytes, but its \
                 snappy stream is {:#x} bytes",
                r.span(),
                s.stream_len
            ),
        ));
    }
    s.next = pos + TRAILER_SIZE;
    s.chunks.shrink_to_fit();
    Ok(s)
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The framing format's masked CRC-32C of `data`.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Decodes chunk `c` of the range `span` into `out` (exactly `c.decoded` bytes) and checks
/// its CRC.
pub fn decode(lower: &dyn Layer, c: &Chunk, span: &str, out: &mut [u8]) -> Result<()> {
    if out.len() != c.decoded as usize {
        return Err(Error::malformed(
            c.body,
            format!(
                "chunk of {:#x} bytes decoded into {:#x}",
                c.decoded,
                out.len()
            ),
        ));
    }
    let crc = if c.compressed() {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            // The body length was checked against MAX_COMPRESSED_BODY at open.
            scratch.resize(c.body_len() as usize, 0);
            lower
                .read_at(c.body, &mut scratch)
                .during("reading a snappy chunk")?;
            let b = Bytes::new(&scratch, c.body);
            let crc = b.u32_le(0)?;
            let block = b.slice(CHUNK_CRC as usize, scratch.len() - CHUNK_CRC as usize)?;
            match snap::raw::Decoder::new().decompress(block, out) {
                Ok(n) if n == out.len() => Ok(crc),
                Ok(n) => Err(Error::malformed(
                    c.body,
                    format!(
                        "snappy chunk of AVML range {span} decodes to {n:#x} bytes, not the \
                         {:#x} its length says",
                        out.len()
                    ),
                )),
                Err(e) => Err(Error::malformed(
                    c.body + CHUNK_CRC,
                    format!("snappy chunk of AVML range {span}: {e}"),
                )),
            }
        })?
    } else {
        let mut crc = [0u8; CHUNK_CRC as usize];
        lower
            .read_at(c.body, &mut crc)
            .during("reading a snappy chunk")?;
        lower
            .read_at(c.body + CHUNK_CRC, out)
            .during("reading a snappy chunk")?;
        u32::from_le_bytes(crc)
    };
    let sum = masked_crc(out);
    if sum != crc {
        return Err(Error::malformed(
            c.body,
            format!(
                "snappy chunk of AVML range {span} (bytes {:#x}..{:#x} of the range) has CRC \
                 {crc:#010x}, its data {sum:#010x}",
                c.start,
                c.end()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_crc_as_the_framing_format_says() {
        // The stream identifier is followed by chunks whose CRC snap computes the same way:
        // compare with snap's own frame encoder on a small input.
        use std::io::Write;
        let data = b"hello hello hello hello hello hello";
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        let framed = w.into_inner().unwrap();
        // Stream identifier (10 bytes), then a chunk header (4) and the CRC (4).
        let crc = u32::from_le_bytes(framed[14..18].try_into().unwrap());
        assert_eq!(masked_crc(data), crc);
    }
}
