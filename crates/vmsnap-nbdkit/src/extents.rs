//! A layer's extents as NBD block status: data is allocated, a recorded zero run is an
//! allocated zero, nothing stored is a hole that reads as zeros, and bytes of a reference
//! that was not opened are a hole that reads as zeros only under `missing=zeros` (without
//! it they are a hole that does not read as zeros: reading them fails).

use std::ops::Range;

use nbdkit::ExtentType;
use vmsnap::core::{Extent, ExtentKind};

/// The NBD type of an extent of `kind`; `zeros` is whether unavailable bytes read as zeros.
pub fn nbd_type(kind: ExtentKind, zeros: bool) -> ExtentType {
    match kind {
        ExtentKind::Data => ExtentType::Allocated,
        ExtentKind::Zero => ExtentType::Zero,
        ExtentKind::Unallocated => ExtentType::HoleZero,
        ExtentKind::Unavailable if zeros => ExtentType::HoleZero,
        ExtentKind::Unavailable => ExtentType::Hole,
        // A kind added later claims nothing: the client reads the bytes.
        _ => ExtentType::Allocated,
    }
}

/// `extents` clipped to `range` as contiguous `(offset, length, type)` runs covering it from
/// its start, adjacent runs of one type merged. A part the layer left out is reported as
/// data (which claims nothing about its bytes). `range` must be within the layer.
pub fn nbd_extents(
    extents: &[Extent],
    range: Range<u64>,
    zeros: bool,
) -> Vec<(u64, u64, ExtentType)> {
    let mut out: Vec<(u64, u64, ExtentType)> = Vec::new();
    let mut push = |start: u64, end: u64, t: ExtentType| {
        if let Some(last) = out.last_mut() {
            if last.2 == t && last.0.saturating_add(last.1) == start {
                last.1 = end - last.0;
                return;
            }
        }
        out.push((start, end - start, t));
    };
    let mut pos = range.start;
    for e in extents {
        let start = e.offset.max(pos);
        let end = e.offset.saturating_add(e.len).min(range.end);
        if end <= start {
            continue;
        }
        if start > pos {
            push(pos, start, ExtentType::Allocated);
        }
        push(start, end, nbd_type(e.kind, zeros));
        pos = end;
    }
    if pos < range.end {
        push(pos, range.end, ExtentType::Allocated);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_merges_and_fills_gaps() {
        let e = [
            Extent::data(0, 100, Some(0)),
            Extent::data(100, 50, Some(4096)),
            Extent::of(ExtentKind::Zero, 150, 50),
            Extent::of(ExtentKind::Unallocated, 300, 100),
            Extent::of(ExtentKind::Unavailable, 400, 100),
        ];
        assert_eq!(
            nbd_extents(&e, 20..450, false),
            vec![
                (20, 130, ExtentType::Allocated),
                (150, 50, ExtentType::Zero),
                (200, 100, ExtentType::Allocated),
                (300, 100, ExtentType::HoleZero),
                (400, 50, ExtentType::Hole),
            ]
        );
        assert_eq!(
            nbd_extents(&e, 300..500, true),
            vec![(300, 200, ExtentType::HoleZero)]
        );
        assert_eq!(
            nbd_extents(&[], 7..9, true),
            vec![(7, 2, ExtentType::Allocated)]
        );
    }
}
