//! One state of the disk: its storages' layers end to end.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    check_read, push_coalesced, AddressSpace, Error, Extent, ExtentKind, Layer, LayerExt, Result,
};

use crate::layer::NAME;

/// One storage of a state: bytes `start..start + len` of the disk are the layer's first
/// `len` bytes (zeros past its end when it is shorter).
#[derive(Debug, Clone)]
pub struct Piece {
    /// Where it starts in the disk.
    pub start: u64,
    /// Its length in the disk.
    pub len: u64,
    /// The storage's image (over its parents), or the stand-in for one not opened.
    pub layer: Arc<dyn Layer>,
}

/// The disk in one snapshot: the storages' layers end to end.
#[derive(Debug)]
pub struct Concat {
    pieces: Vec<Piece>,
    len: u64,
    path: Option<std::path::PathBuf>,
    describe: Value,
}

impl Concat {
    /// The disk made of `pieces`, contiguous from 0 (the descriptor checked that);
    /// `path` is the descriptor's, `describe` what [`Layer::describe`] returns.
    pub fn new(pieces: Vec<Piece>, path: Option<&Path>, describe: Value) -> Result<Concat> {
        let mut len = 0u64;
        for p in &pieces {
            if p.start != len {
                return Err(Error::malformed(
                    0,
                    format!("a storage starts at byte {} instead of {len}", p.start),
                ));
            }
            len = len
                .checked_add(p.len)
                .ok_or_else(|| Error::malformed(0, "the storages overflow 64 bits"))?;
        }
        Ok(Concat {
            pieces,
            len,
            path: path.map(Path::to_path_buf),
            describe,
        })
    }

    fn piece_at(&self, pos: u64) -> Result<&Piece> {
        let i = self.pieces.partition_point(|p| p.start + p.len <= pos);
        self.pieces
            .get(i)
            .ok_or_else(|| Error::out_of_bounds(pos, 1, self.len))
    }
}

impl Layer for Concat {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let p = self.piece_at(pos)?;
            let rel = pos - p.start;
            let n = usize::try_from(p.len - rel)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let Some(chunk) = buf.get_mut(done..done + n) else {
                break;
            };
            p.layer
                .read_padded(rel, chunk)
                .map_err(|e| e.in_layer(NAME).at(pos))?;
            done += n;
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let p = self.piece_at(pos)?;
            let rel = pos - p.start;
            let n = (p.len - rel).min(end - pos);
            let inner_end = (rel + n).min(p.layer.len());
            if rel < inner_end {
                for e in p.layer.extents(rel..inner_end)? {
                    // Offsets into the storage's own files mean nothing in this layer's
                    // lower (the descriptor): dropped.
                    push_coalesced(&mut out, Extent::of(e.kind, e.offset + p.start, e.len));
                }
            }
            if inner_end < rel + n {
                let from = inner_end.max(rel);
                push_coalesced(
                    &mut out,
                    Extent::of(ExtentKind::Unallocated, p.start + from, rel + n - from),
                );
            }
            pos += n;
        }
        Ok(out)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        self.pieces.iter().map(|p| p.layer.clone()).collect()
    }
    fn describe(&self) -> Value {
        self.describe.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// A state's description: which snapshot it is.
pub fn describe_state(guid: &str, parent: Option<&str>, len: u64) -> Value {
    json!({ "format": NAME, "snapshot": guid, "parent": parent, "virtual_size": len })
}
