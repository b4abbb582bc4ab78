//! A version-2 range as a compressed unit of the segment map: a read finds the chunks it
//! touches in the range's index and decodes only those (whole chunks straight into the
//! caller's buffer, parts through the shared cache).

use std::sync::Arc;

use vmsnap_core::{Decoder, Error, Layer, Result};

use crate::cache::ChunkCache;
use crate::frame::{decode, Chunk};

/// The decoded bytes of one version-2 range.
#[derive(Debug)]
pub struct RangeUnit {
    /// The range, `start..=end` in hex (for messages).
    span: Box<str>,
    /// The range's length.
    len: u64,
    /// Its chunks, tiling `0..len`.
    chunks: Vec<Chunk>,
    /// Number in the file of the first chunk (the cache key base).
    first: u64,
    cache: Arc<ChunkCache>,
}

impl RangeUnit {
    /// A unit of `len` bytes decoded from `chunks` (checked at open to tile `0..len`),
    /// the first of which is chunk number `first` of the file.
    pub fn new(
        span: String,
        len: u64,
        chunks: Vec<Chunk>,
        first: u64,
        cache: Arc<ChunkCache>,
    ) -> Self {
        RangeUnit {
            span: span.into(),
            len,
            chunks,
            first,
            cache,
        }
    }

    /// Chunk `i`'s bytes, from the cache or decoded into it.
    fn cached(&self, lower: &dyn Layer, i: usize, c: &Chunk) -> Result<Arc<[u8]>> {
        let number = self.first.saturating_add(i as u64);
        if let Some(b) = self.cache.get(number) {
            return Ok(b);
        }
        // One allocation, decoded in place (the Arc is not shared yet).
        let mut b: Arc<[u8]> = std::iter::repeat_n(0u8, c.decoded as usize).collect();
        let out = Arc::get_mut(&mut b)
            .ok_or_else(|| Error::malformed(c.body, "a fresh chunk buffer is shared"))?;
        decode(lower, c, &self.span, out)?;
        self.cache.insert(number, b.clone());
        Ok(b)
    }
}

impl Decoder for RangeUnit {
    fn decoded_len(&self) -> u64 {
        self.len
    }

    fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut i = self.chunks.partition_point(|c| c.end() <= offset);
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let Some(c) = self.chunks.get(i) else {
                return Err(Error::out_of_bounds(pos, rest.len() as u64, self.len)
                    .during("decoding an AVML range"));
            };
            let skip = pos.saturating_sub(c.start);
            let n = (u64::from(c.decoded) - skip).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at_mut(n);
            if skip == 0 && n == c.decoded as usize {
                // A whole chunk: straight into the caller's buffer.
                decode(lower, c, &self.span, now)?;
            } else {
                let b = self.cached(lower, i, c)?;
                let src = b
                    .get(skip as usize..skip as usize + n)
                    .ok_or_else(|| Error::out_of_bounds(skip, n as u64, b.len() as u64))?;
                now.copy_from_slice(src);
            }
            rest = later;
            pos += n as u64;
            i += 1;
        }
        Ok(())
    }
}
