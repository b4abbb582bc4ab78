//! A layer assembled end to end from literal bytes, zeros and windows of a lower layer.
//!
//! This is how a file format that wraps memory (an ELF core, a LiME dump) is written: the
//! writer lays out its headers as bytes and its data as windows of the memory layer, and
//! the result is an ordinary [`Layer`] of the file's bytes. Whatever copies layers (the
//! CLI's `convert`, with its sparse, parallel and streaming outputs) writes it, and its
//! extents say which parts are data, so the output stays sparse where the memory is.
//!
//! ```
//! use std::sync::Arc;
//! use vmsnap_core::compose::ComposedBuilder;
//! use vmsnap_core::{FileLayer, Layer, MemSource};
//!
//! let memory: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(vec![7u8; 64]))));
//! let mut b = ComposedBuilder::new();
//! b.push_bytes(b"HDR!").unwrap();
//! b.push_zeros(4).unwrap();
//! b.push_lower(16, 8).unwrap();
//! let file = b.build("example", memory).unwrap();
//! let mut buf = [0u8; 16];
//! file.read_at(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"HDR!\0\0\0\0\x07\x07\x07\x07\x07\x07\x07\x07");
//! ```

use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::extent::{push_coalesced, Extent, ExtentKind};
use crate::layer::{check_read, AddressSpace, Layer};

/// Where one piece's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Bytes of the builder's buffer, from this index.
    Bytes(usize),
    /// Zeros (alignment padding).
    Zeros,
    /// The lower layer, from this offset.
    Lower(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: u64,
    len: u64,
    part: Part,
}

impl Piece {
    fn end(&self) -> u64 {
        // Checked when the piece was pushed.
        self.start + self.len
    }
}

/// Lays out a [`Composed`] layer piece by piece, each after the previous one.
#[derive(Debug, Default)]
pub struct ComposedBuilder {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
    len: u64,
}

impl ComposedBuilder {
    /// An empty layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// The length laid out so far: where the next piece starts.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was laid out yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, len: u64, part: Part) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let end = self.len.checked_add(len).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "a composed layer of {} + {len} bytes overflows 64 bits",
                    self.len
                ),
            )
        })?;
        self.pieces.push(Piece {
            start: self.len,
            len,
            part,
        });
        self.len = end;
        Ok(())
    }

    /// Appends literal bytes (a header).
    pub fn push_bytes(&mut self, data: &[u8]) -> Result<()> {
        let at = self.bytes.len();
        self.push(data.len() as u64, Part::Bytes(at))?;
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Appends `len` zero bytes (padding; they are a hole of the output).
    pub fn push_zeros(&mut self, len: u64) -> Result<()> {
        self.push(len, Part::Zeros)
    }

    /// Pads with zeros up to `offset` (nothing when already there).
    pub fn pad_to(&mut self, offset: u64) -> Result<()> {
        self.push_zeros(offset.saturating_sub(self.len))
    }

    /// Appends `len` bytes of the lower layer from `offset`.
    pub fn push_lower(&mut self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none() {
            return Err(Error::out_of_bounds(offset, len, u64::MAX));
        }
        self.push(len, Part::Lower(offset))
    }

    /// The layer: `name` is what it is called (`elf-export`), `lower` the layer whose
    /// windows were laid out, which must hold them all.
    pub fn build(self, name: impl Into<String>, lower: Arc<dyn Layer>) -> Result<Composed> {
        for p in &self.pieces {
            if let Part::Lower(o) = p.part {
                if o.checked_add(p.len).is_none_or(|e| e > lower.len()) {
                    return Err(Error::out_of_bounds(o, p.len, lower.len()).in_layer(lower.name()));
                }
            }
        }
        Ok(Composed {
            name: name.into(),
            lower,
            bytes: self.bytes,
            pieces: self.pieces,
            len: self.len,
        })
    }
}

/// A layer assembled by [`ComposedBuilder`]: the bytes of a file that wraps a lower layer.
#[derive(Debug)]
pub struct Composed {
    name: String,
    lower: Arc<dyn Layer>,
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
    len: u64,
}

impl Composed {
    /// The pieces overlapping `start..end`, in order.
    fn pieces_in(&self, start: u64, end: u64) -> impl Iterator<Item = &Piece> {
        let first = self.pieces.partition_point(|p| p.end() <= start);
        self.pieces
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(move |p| p.start < end)
    }

    /// How many bytes of literal headers the layout holds.
    pub fn header_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }
}

impl Layer for Composed {
    fn name(&self) -> &str {
        &self.name
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::File
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let end = offset + buf.len() as u64;
        for p in self.pieces_in(offset, end) {
            let (s, t) = (p.start.max(offset), p.end().min(end));
            // Both lie inside `buf` and inside the piece.
            let into = (s - offset) as usize..(t - offset) as usize;
            let Some(dst) = buf.get_mut(into) else {
                continue;
            };
            let within = s - p.start;
            match p.part {
                Part::Zeros => dst.fill(0),
                Part::Bytes(at) => {
                    // The piece's bytes were pushed whole: the slice is always there.
                    let from = at + within as usize;
                    let src = self.bytes.get(from..from + dst.len()).ok_or_else(|| {
                        Error::out_of_bounds(offset, dst.len() as u64, self.len)
                            .in_layer(self.name.as_str())
                    })?;
                    dst.copy_from_slice(src);
                }
                Part::Lower(o) => self.lower.read_at(o + within, dst)?,
            }
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        let mut out = Vec::new();
        if range.start >= end {
            return Ok(out);
        }
        for p in self.pieces_in(range.start, end) {
            let (s, t) = (p.start.max(range.start), p.end().min(end));
            match p.part {
                Part::Bytes(_) => push_coalesced(&mut out, Extent::data(s, t - s, None)),
                Part::Zeros => push_coalesced(&mut out, Extent::of(ExtentKind::Zero, s, t - s)),
                Part::Lower(o) => {
                    // The window `lo..hi` of the lower layer appears at `s`.
                    let lo = o + (s - p.start);
                    let hi = lo + (t - s);
                    for e in self.lower.extents(lo..hi)? {
                        let (a, z) = (e.offset.max(lo), e.end().min(hi));
                        if z <= a {
                            continue;
                        }
                        let at = a - lo + s;
                        push_coalesced(
                            &mut out,
                            match e.kind {
                                ExtentKind::Data => Extent::data(at, z - a, Some(a)),
                                kind => Extent::of(kind, at, z - a),
                            },
                        );
                    }
                }
            }
        }
        Ok(out)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "format": self.name,
            "size": self.len,
            "pieces": self.pieces.len(),
            "header_bytes": self.bytes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileLayer, MemSource};

    fn lower() -> Arc<dyn Layer> {
        let data: Vec<u8> = (0..=255u8).collect();
        Arc::new(FileLayer::new(Arc::new(MemSource::new(data))))
    }

    #[test]
    fn reads_across_pieces_and_lists_extents() {
        let mut b = ComposedBuilder::new();
        b.push_bytes(&[0xaa; 3]).unwrap();
        b.pad_to(8).unwrap();
        b.push_lower(100, 4).unwrap();
        b.push_bytes(&[0xbb; 2]).unwrap();
        b.push_lower(10, 2).unwrap();
        let c = b.build("t", lower()).unwrap();
        assert_eq!(c.len(), 16);
        let mut buf = [0u8; 16];
        c.read_at(0, &mut buf).unwrap();
        assert_eq!(
            buf,
            [0xaa, 0xaa, 0xaa, 0, 0, 0, 0, 0, 100, 101, 102, 103, 0xbb, 0xbb, 10, 11]
        );
        let mut mid = [0u8; 4];
        c.read_at(10, &mut mid).unwrap();
        assert_eq!(mid, [102, 103, 0xbb, 0xbb]);
        assert!(c.read_at(13, &mut mid).is_err());
        let e = c.extents(0..20).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0], Extent::data(0, 3, None));
        assert_eq!(e[1], Extent::of(ExtentKind::Zero, 3, 5));
        assert_eq!(e[2], Extent::data(8, 4, Some(100)));
        assert_eq!(e[3], Extent::data(12, 2, None));
        assert_eq!(e[4], Extent::data(14, 2, Some(10)));
        assert_eq!(c.extents(9..13).unwrap()[0], Extent::data(9, 3, Some(101)));
    }

    #[test]
    fn windows_past_the_lower_layer_are_refused() {
        let mut b = ComposedBuilder::new();
        b.push_lower(250, 10).unwrap();
        assert!(b.build("t", lower()).is_err());
        let mut b = ComposedBuilder::new();
        assert!(b.push_lower(u64::MAX, 2).is_err());
    }
}
