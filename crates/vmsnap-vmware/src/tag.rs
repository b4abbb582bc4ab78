//! Tags: the tag word (`NAMELEN` bits 15..8, `NINDX` bits 7..6, `VALSIZE` bits 5..0), the
//! name, up to three indices, then an inline value (< 62 bytes) or a block (63; 62 when
//! compressed) with `nbytes`, `nbytesinmem`, `padsize`, padding and data. A zero word ends
//! a group.

use vmsnap_core::{Error, Layer, Result};

use crate::raw::{TAG_WORD_SIZE, VALSIZE_COMPRESSED};

/// A tag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// An inline value of 0..=61 bytes.
    Inline(Vec<u8>),
    /// A block of data stored after the tag.
    Block(Block),
}

/// Where a block tag's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Whether the tag says the data is compressed (value size 62).
    pub compressed: bool,
    /// Bytes of data in the file.
    pub nbytes: u64,
    /// Bytes of the data once in memory (decompressed).
    pub nbytes_in_mem: u64,
    /// Padding bytes between the block header and the data.
    pub padsize: u16,
    /// File offset of the data (after the padding).
    pub data_offset: u64,
}

impl Block {
    /// File offset one past the data.
    pub fn data_end(&self) -> u64 {
        self.data_offset.saturating_add(self.nbytes)
    }
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// File offset of the tag word.
    pub offset: u64,
    /// Name (lossy UTF-8; names are ASCII in practice).
    pub name: String,
    /// Indices (0 to 3).
    pub indices: Vec<u32>,
    /// The value.
    pub value: Value,
}

impl Tag {
    /// Name with indices, as `vmwareinfo` prints it: `regionPPN[1]`.
    pub fn full_name(&self) -> String {
        let mut s = self.name.clone();
        for i in &self.indices {
            s.push_str(&format!("[{i}]"));
        }
        s
    }

    /// The inline value as a little-endian number (1, 2, 4 or 8 bytes; other sizes up to 8
    /// are zero-extended), or `None` for blocks and longer values.
    pub fn number(&self) -> Option<u64> {
        match &self.value {
            Value::Inline(b) if !b.is_empty() && b.len() <= 8 => {
                let mut a = [0u8; 8];
                a.get_mut(..b.len())?.copy_from_slice(b);
                Some(u64::from_le_bytes(a))
            }
            _ => None,
        }
    }

    /// The block, if this is a block tag.
    pub fn block(&self) -> Option<&Block> {
        match &self.value {
            Value::Block(b) => Some(b),
            Value::Inline(_) => None,
        }
    }

    /// Whether the indices are exactly `idx`.
    pub fn has_indices(&self, idx: &[u32]) -> bool {
        self.indices == idx
    }
}

/// How a group's tag stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// A zero tag word at this offset.
    Terminator(u64),
    /// The group's end was reached without a terminator.
    GroupEnd,
}

/// Bytes read ahead while walking a tag stream.
const WINDOW: u64 = 64 * 1024;

/// Reads a tag stream through a read-ahead window, so walking thousands of small tags
/// costs a few reads.
struct Window<'a> {
    layer: &'a dyn Layer,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn get(&mut self, pos: u64, len: u64, limit: u64) -> Result<&[u8]> {
        let end = pos
            .checked_add(len)
            .ok_or_else(|| Error::malformed(pos, "tag offset overflows"))?;
        let inside = pos >= self.start && end <= self.start.saturating_add(self.buf.len() as u64);
        if !inside {
            let n = WINDOW.max(len).min(limit.saturating_sub(pos));
            if n < len {
                return Err(Error::truncated(pos, "tag stream ends early"));
            }
            self.buf.resize(n as usize, 0);
            self.layer.read_at(pos, &mut self.buf)?;
            self.start = pos;
        }
        let from = (pos - self.start) as usize;
        self.buf
            .get(from..from + len as usize)
            .ok_or_else(|| Error::truncated(pos, "tag stream ends early"))
    }
}

/// Parses the tag stream of one group from `start` up to `end` (exclusive; already
/// clamped to the file), pushing tags into `out` until a terminator, the group end, or
/// `max_tags` tags in `out`.
pub fn parse_stream(
    layer: &dyn Layer,
    group: &str,
    start: u64,
    end: u64,
    block_width: u64,
    max_tags: usize,
    out: &mut Vec<Tag>,
) -> Result<StreamEnd> {
    let file_len = layer.len();
    let mut w = Window {
        layer,
        start: 0,
        buf: Vec::new(),
    };
    let overflow = |at: u64, what: &str, need: u64| {
        if need > file_len {
            Error::truncated(
                at,
                format!("{what} in group {group:?} ends at {need:#x}, past the end of the file"),
            )
        } else {
            Error::malformed(
                at,
                format!(
                    "{what} in group {group:?} ends at {need:#x}, past the group's end {end:#x}"
                ),
            )
        }
    };
    let mut pos = start;
    loop {
        if pos == end {
            return Ok(StreamEnd::GroupEnd);
        }
        if out.len() >= max_tags {
            return Err(Error::limit(
                "VMware tags in one checkpoint",
                out.len() as u64 + 1,
                max_tags as u64,
            )
            .at(pos));
        }
        let word_end = pos.saturating_add(TAG_WORD_SIZE);
        if word_end > end {
            return Err(overflow(pos, "tag word", word_end));
        }
        let word = w.get(pos, TAG_WORD_SIZE, end)?;
        let (flags, name_len) = match word {
            [f, n] => (*f, u64::from(*n)),
            _ => return Err(Error::truncated(pos, "tag word")),
        };
        if flags == 0 && name_len == 0 {
            return Ok(StreamEnd::Terminator(pos));
        }
        let nindx = u64::from(flags >> 6);
        let valsize = flags & 0x3F;
        let head_len = TAG_WORD_SIZE + name_len + 4 * nindx;
        let head_end = pos.saturating_add(head_len);
        if head_end > end {
            return Err(overflow(pos, "tag name and indices", head_end));
        }
        let head = w.get(pos, head_len, end)?;
        let name_bytes = head.get(2..2 + name_len as usize).unwrap_or_default();
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let mut indices = Vec::with_capacity(nindx as usize);
        for i in 0..nindx as usize {
            let at = 2 + name_len as usize + 4 * i;
            let b = head.get(at..at + 4).unwrap_or_default();
            let mut a = [0u8; 4];
            if b.len() == 4 {
                a.copy_from_slice(b);
            }
            indices.push(u32::from_le_bytes(a));
        }
        let p = head_end;
        let (value, next) = if valsize < VALSIZE_COMPRESSED {
            let v_end = p.saturating_add(u64::from(valsize));
            if v_end > end {
                return Err(overflow(pos, &format!("value of tag {name:?}"), v_end));
            }
            (
                Value::Inline(w.get(p, u64::from(valsize), end)?.to_vec()),
                v_end,
            )
        } else {
            let hdr_len = 2 * block_width + 2;
            let hdr_end = p.saturating_add(hdr_len);
            if hdr_end > end {
                return Err(overflow(
                    pos,
                    &format!("block header of tag {name:?}"),
                    hdr_end,
                ));
            }
            let h = w.get(p, hdr_len, end)?;
            let num = |at: usize, width: u64| -> u64 {
                let mut a = [0u8; 8];
                if let (Some(dst), Some(src)) =
                    (a.get_mut(..width as usize), h.get(at..at + width as usize))
                {
                    dst.copy_from_slice(src);
                }
                u64::from_le_bytes(a)
            };
            let nbytes = num(0, block_width);
            let nbytes_in_mem = num(block_width as usize, block_width);
            let padsize = num(2 * block_width as usize, 2) as u16;
            let data_offset = hdr_end.saturating_add(u64::from(padsize));
            let data_end = data_offset.checked_add(nbytes).ok_or_else(|| {
                Error::malformed(
                    p,
                    format!("block size {nbytes:#x} of tag {name:?} overflows"),
                )
            })?;
            if data_end > end {
                return Err(overflow(
                    pos,
                    &format!("block of tag {name:?} ({nbytes:#x} bytes)"),
                    data_end,
                ));
            }
            (
                Value::Block(Block {
                    compressed: valsize == VALSIZE_COMPRESSED,
                    nbytes,
                    nbytes_in_mem,
                    padsize,
                    data_offset,
                }),
                data_end,
            )
        };
        out.push(Tag {
            offset: pos,
            name,
            indices,
            value,
        });
        pos = next;
    }
}
