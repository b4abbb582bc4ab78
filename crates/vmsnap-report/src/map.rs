//! The `map --json` document: a layer's extents, each with where it is stored.

use std::ops::Range;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap::core::{Extent, ExtentKind, Layer, Result};

use crate::json::envelope;

/// Where a range of the disk comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The range.
    pub range: Range<u64>,
    /// Depth in the chain (0: the input), `None` when no file stores it.
    pub depth: Option<usize>,
    /// Whether that file stores it compressed.
    pub compressed: bool,
    /// Where `range.start` lies in that file, when it maps 1:1.
    pub offset: Option<u64>,
}

impl Origin {
    /// The part of this origin that starts at `start` (inside its range).
    pub fn from(&self, start: u64) -> Origin {
        Origin {
            range: start..self.range.end,
            depth: self.depth,
            compressed: self.compressed,
            offset: self
                .offset
                .map(|o| o.saturating_add(start.saturating_sub(self.range.start))),
        }
    }
}

/// One file of a chain, opened alone.
#[derive(Debug)]
pub struct Member {
    /// The file opened alone, as its format.
    pub layer: Arc<dyn Layer>,
    /// Whether data it does not map 1:1 is compressed in this format.
    pub compresses: bool,
}

/// Whether a format stores clusters compressed (they then have no offset in the file).
pub fn compresses(format: &str) -> bool {
    matches!(format, "qcow2" | "qcow" | "vmdk")
}

/// The origin of every byte of `0..size` of a chain's disk, `members` top first.
pub fn resolve_origins(members: &[Member], size: u64) -> Result<Vec<Origin>> {
    let mut out = Vec::new();
    resolve(members, 0, 0..size, &mut out)?;
    Ok(out)
}

fn resolve(
    members: &[Member],
    depth: usize,
    range: Range<u64>,
    out: &mut Vec<Origin>,
) -> Result<()> {
    let Some(m) = members.get(depth) else {
        push(out, range, None, false, None);
        return Ok(());
    };
    let end = range.end.min(m.layer.len());
    let mut pos = range.start;
    if pos < end {
        for e in m.layer.extents(pos..end)? {
            if e.offset > pos {
                resolve(members, depth + 1, pos..e.offset, out)?;
            }
            let (s, t) = (e.offset.max(pos), e.end().min(end));
            if s >= t {
                continue;
            }
            match e.kind {
                ExtentKind::Data => {
                    let compressed = m.compresses && e.lower_offset.is_none();
                    let at = e
                        .lower_offset
                        .map(|l| l.saturating_add(s.saturating_sub(e.offset)));
                    push(out, s..t, Some(depth), compressed, at);
                }
                ExtentKind::Zero => push(out, s..t, Some(depth), false, None),
                _ => resolve(members, depth + 1, s..t, out)?,
            }
            pos = t;
        }
    }
    if pos < range.end {
        // Past this member's end (or its extents): what is below, if anything.
        if pos >= m.layer.len() {
            push(out, pos..range.end, None, false, None);
        } else {
            resolve(members, depth + 1, pos..range.end, out)?;
        }
    }
    Ok(())
}

fn push(
    out: &mut Vec<Origin>,
    range: Range<u64>,
    depth: Option<usize>,
    compressed: bool,
    offset: Option<u64>,
) {
    if range.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        let len = last.range.end.saturating_sub(last.range.start);
        let contiguous = match (last.offset, offset) {
            (None, None) => true,
            (Some(a), Some(b)) => a.checked_add(len) == Some(b),
            _ => false,
        };
        if last.range.end == range.start
            && last.depth == depth
            && last.compressed == compressed
            && contiguous
        {
            last.range.end = range.end;
            return;
        }
    }
    out.push(Origin {
        range,
        depth,
        compressed,
        offset,
    });
}

/// `extents` split where their origin changes, each with its origin. Where the two views
/// disagree (the stacked disk says stored and no file stores it, or the reverse) the piece
/// gets no origin: nothing is claimed that is not known.
pub fn annotate(extents: &[Extent], origins: &[Origin]) -> Vec<(Extent, Option<Origin>)> {
    let mut out = Vec::new();
    let mut i = 0;
    for e in extents {
        let mut pos = e.offset;
        while i < origins.len() && origins.get(i).is_some_and(|o| o.range.end <= pos) {
            i += 1;
        }
        while pos < e.end() {
            let Some(o) = origins.get(i).filter(|o| o.range.start <= pos) else {
                out.push((piece(e, pos, e.end()), None));
                break;
            };
            let stop = o.range.end.min(e.end());
            let stored = matches!(e.kind, ExtentKind::Data | ExtentKind::Zero);
            // Only a file that stores the piece is an origin.
            let origin = Some(o.from(pos)).filter(|o| o.depth.is_some() && stored);
            let p = piece(e, pos, stop);
            match out.last_mut() {
                // Runs nothing stores stay one extent, as the stacked view has them.
                Some((last, None)) if origin.is_none() && last.continues_with(&p) => {
                    last.len = last.len.saturating_add(p.len);
                }
                _ => out.push((p, origin)),
            }
            pos = stop;
            if o.range.end <= pos {
                i += 1;
            }
        }
    }
    out
}

fn piece(e: &Extent, start: u64, end: u64) -> Extent {
    Extent {
        offset: start,
        len: end.saturating_sub(start),
        kind: e.kind,
        lower_offset: e
            .lower_offset
            .map(|l| l.saturating_add(start.saturating_sub(e.offset))),
    }
}

/// The extents of a layer with no chain to resolve: when `alone` (no other file was
/// opened) the input holds every stored extent, at depth 0; otherwise nothing is claimed.
pub fn alone_pieces(extents: &[Extent], alone: bool) -> Vec<(Extent, Option<Origin>)> {
    extents
        .iter()
        .map(|e| {
            let stored = matches!(e.kind, ExtentKind::Data | ExtentKind::Zero);
            let origin = (alone && stored).then(|| Origin {
                range: e.offset..e.end(),
                depth: Some(0),
                compressed: false,
                offset: e.lower_offset,
            });
            (*e, origin)
        })
        .collect()
}

/// One entry of `extents`: `file` is the file at the origin's depth; `zeros` says whether
/// unavailable bytes read as zeros (`--missing=zeros`).
pub fn extent_json(
    layer: &dyn Layer,
    e: &Extent,
    o: Option<&Origin>,
    file: Option<String>,
    zeros: bool,
) -> Value {
    let mut v = json!({
        "start": e.offset, "length": e.len,
        "data": e.kind == ExtentKind::Data,
        // Unavailable bytes read as zeros only under --missing=zeros.
        "zero": match e.kind {
            ExtentKind::Data => false,
            ExtentKind::Unavailable => zeros,
            _ => true,
        },
        "kind": e.kind,
        // In the file that holds it (qemu-img's offset), else in the layer below.
        "offset": o.filter(|o| o.depth.is_some()).map_or(e.lower_offset, |o| o.offset),
        "depth": o.and_then(|o| o.depth),
        "file": file,
        "compressed": o.is_some_and(|o| o.compressed),
    });
    if let (Some(a), Some(obj)) = (layer.extent_attributes(e), v.as_object_mut()) {
        obj.insert("attributes".into(), a);
    }
    v
}

/// The whole `map --json` document of layer `name` of `file`.
pub fn document(file: &str, name: &str, size: u64, extents: Vec<Value>) -> Value {
    envelope(json!({
        "file": file,
        "layer": name,
        "size": size,
        "extents": Value::Array(extents),
    }))
}
