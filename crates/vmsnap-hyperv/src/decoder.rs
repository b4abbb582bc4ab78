//! One compressed (or inline) `RamBlock`, decoded on demand through the layer's
//! [`BlockCache`]: whole when read whole, read ahead, or already being decoded by
//! another thread; else only the records of the pages read.

use std::sync::Arc;

use vmsnap_core::{Decoder, Error, Layer, Result};

use crate::cache::{BlockCache, BlockState, Claim};
use crate::pages::{decode_block, decode_range, PageIndex, BLOCK};

/// Where a data block's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    File { offset: u64, size: u32 },
    Inline(Arc<[u8]>),
}

impl Source {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File { size, .. } => u64::from(*size),
            Source::Inline(b) => b.len() as u64,
        }
    }
}

/// One compressed (or inline) data block, decoded on demand through the cache: whole
/// (and cached) when read whole or read ahead of a sequential reader, else only the
/// records of the pages read, found through the block's cached [`PageIndex`].
///
/// A page read decodes only its own records, so a corrupt XPRESS payload elsewhere in
/// the block does not fail it (the whole-block decode does); a malformed record header
/// anywhere in the block fails both, as the index walk checks every header.
#[derive(Debug)]
pub(crate) struct BlockDecoder {
    number: u64,
    source: Source,
    cache: Arc<BlockCache>,
}

impl BlockDecoder {
    /// Block `number`, stored in `source`, decoded through `cache`.
    pub(crate) fn new(number: u64, source: Source, cache: Arc<BlockCache>) -> Self {
        BlockDecoder {
            number,
            source,
            cache,
        }
    }

    /// Calls `f` with input bytes `range` of the block (all when `None`) and their file
    /// offset, read into a recycled buffer (inline data is borrowed).
    fn with_input<T>(
        &self,
        lower: &dyn Layer,
        range: Option<(usize, usize)>,
        f: impl FnOnce(&[u8], u64) -> Result<T>,
    ) -> Result<T> {
        let total = self.source.len();
        let (a, b) = range.unwrap_or((0, usize::try_from(total).unwrap_or(usize::MAX)));
        let origin = match &self.source {
            Source::File { offset, .. } => *offset,
            Source::Inline(_) => 0,
        };
        let bad = || {
            Error::malformed(
                origin,
                format!(
                    "input range {a}..{b} of RamBlock{} out of bounds",
                    self.number
                ),
            )
        };
        if a > b || b as u64 > total {
            return Err(bad());
        }
        match &self.source {
            Source::Inline(bytes) => f(bytes.get(a..b).ok_or_else(bad)?, a as u64),
            Source::File { offset, size } => {
                let at = offset.checked_add(a as u64).ok_or_else(bad)?;
                if offset
                    .checked_add(u64::from(*size))
                    .is_none_or(|e| e > lower.len())
                {
                    return Err(Error::truncated(
                        *offset,
                        format!(
                            "compressed RAM block of {size} bytes ends past the end of the {} layer ({} bytes)",
                            lower.name(),
                            lower.len()
                        ),
                    ));
                }
                let mut buf = self.cache.input();
                if buf.len() < b - a {
                    buf.resize(b - a, 0);
                }
                let r = match buf.get_mut(..b - a) {
                    Some(dst) => lower.read_at(at, dst).and_then(|()| f(dst, at)),
                    None => Err(bad()),
                };
                self.cache.recycle_input(buf);
                r
            }
        }
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The whole decoded block, from the cache or decoded now. When another thread is
    /// decoding it, waits for that thread if `wait` is set, else returns `None` (a
    /// read-ahead helper moves on to another block).
    pub fn decoded(&self, lower: &dyn Layer, wait: bool) -> Result<Option<Arc<Vec<u8>>>> {
        let ticket = match self.cache.claim(self.number, wait) {
            Claim::Cached(b) => return Ok(Some(b)),
            Claim::Busy => return Ok(None),
            Claim::Mine(t) => t,
        };
        let mut out = self.cache.buffer(BLOCK);
        self.with_input(lower, None, |input, base| {
            decode_into(input, &mut out, base)
        })
        .map_err(|e| e.during("decoding a RAM block"))?;
        Ok(Some(ticket.finish(out)))
    }

    /// Fills `buf` with bytes `offset..` of the block, decoding only the records they
    /// need (the block is not cached).
    fn read_pages(&self, lower: &dyn Layer, offset: usize, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len())
            .filter(|&e| e <= BLOCK)
            .ok_or_else(|| Error::out_of_bounds(offset as u64, buf.len() as u64, BLOCK as u64))?;
        if self.source.len() == BLOCK as u64 {
            // Stored raw (inline): the bytes are the block's.
            return self.with_input(lower, Some((offset, end)), |input, _| {
                buf.copy_from_slice(input);
                Ok(())
            });
        }
        let mut scratch = self.cache.input();
        let r = match self.cache.index(self.number) {
            Some(index) => {
                let data_end = end.min(index.produced());
                if data_end <= offset {
                    buf.fill(0);
                    Ok(())
                } else {
                    let (a, b, out) = index
                        .input_range(offset, data_end)
                        .ok_or_else(|| Error::malformed(0, "page index out of range"))?;
                    self.with_input(lower, Some((a, b)), |input, base| {
                        decode_range(input, base, out, &index, offset, buf, &mut scratch)
                    })
                }
            }
            None => self.with_input(lower, None, |input, base| {
                // First page read of this block: walk all its headers once, keep the
                // index, and decode from the bytes already read.
                let index = Arc::new(PageIndex::build(input, base)?);
                self.cache.insert_index(self.number, index.clone());
                let data_end = end.min(index.produced());
                if data_end <= offset {
                    buf.fill(0);
                    return Ok(());
                }
                let (a, b, out) = index
                    .input_range(offset, data_end)
                    .ok_or_else(|| Error::malformed(base, "page index out of range"))?;
                let part = input
                    .get(a..b)
                    .ok_or_else(|| Error::malformed(base, "page index out of range"))?;
                decode_range(
                    part,
                    base.saturating_add(a as u64),
                    out,
                    &index,
                    offset,
                    buf,
                    &mut scratch,
                )
            }),
        };
        self.cache.recycle_input(scratch);
        r.map_err(|e| e.during("decoding a RAM block"))
    }
}

fn decode_into(input: &[u8], out: &mut [u8], base: u64) -> Result<()> {
    if input.len() == BLOCK {
        out.copy_from_slice(input);
        return Ok(());
    }
    decode_block(input, out, base).map(|_| ())
}

impl Decoder for BlockDecoder {
    fn decoded_len(&self) -> u64 {
        BLOCK as u64
    }
    fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset)
            .map_err(|_| Error::out_of_bounds(offset, buf.len() as u64, BLOCK as u64))?;
        // Decode the whole block when it is wanted whole anyway: read whole, queued for
        // read-ahead, or being decoded (then this waits rather than decoding twice).
        // A failed whole decode leaves a part read to the page path, which fails only
        // when the part's own records are bad.
        let whole = match self.cache.state(self.number) {
            BlockState::Absent | BlockState::Failed if buf.len() < BLOCK => None,
            _ => match self.decoded(lower, true) {
                Err(_) if buf.len() < BLOCK => None,
                r => r?,
            },
        };
        let Some(b) = whole else {
            return self.read_pages(lower, start, buf);
        };
        let src = b
            .get(start..start.saturating_add(buf.len()))
            .ok_or_else(|| Error::out_of_bounds(offset, buf.len() as u64, BLOCK as u64))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
