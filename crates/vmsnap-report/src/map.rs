//! The `map --json` document: a layer's extents, each with where it is stored.

use std::ops::Range;

use serde_json::{json, Value};
use vmsnap::core::{Extent, ExtentKind, Layer};

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
