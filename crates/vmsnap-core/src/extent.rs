//! Extents: which parts of an address space hold data, read as zeros, or are unallocated.

use serde::Serialize;

/// What a range of an address space is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExtentKind {
    /// Data is stored for it.
    Data,
    /// It is recorded as zeros (zero cluster, zero grain, zero page).
    Zero,
    /// Nothing is stored; it reads as zeros (or from a backing file, when there is one, in
    /// which case the layer reports the backing file's extents instead).
    Unallocated,
    /// It would come from an external reference (backing file, parent, extent, companion)
    /// that was not opened: missing, or refused by the policy. Reading it fails unless the
    /// reader opted into zeros ([`crate::MissingPolicy::Zeros`]).
    Unavailable,
}

impl ExtentKind {
    /// The name, as JSON spells it (`data`, `zero`, `unallocated`, `unavailable`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExtentKind::Data => "data",
            ExtentKind::Zero => "zero",
            ExtentKind::Unallocated => "unallocated",
            ExtentKind::Unavailable => "unavailable",
        }
    }
}

/// A run of an address space of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// Start offset in the layer.
    pub offset: u64,
    /// Length in bytes (never 0).
    pub len: u64,
    /// Data, zero or unallocated.
    pub kind: ExtentKind,
    /// Where the data starts in the lower layer, when the run maps 1:1 onto it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_offset: Option<u64>,
}

impl Extent {
    /// A data extent mapping 1:1 onto `lower_offset`.
    pub fn data(offset: u64, len: u64, lower_offset: Option<u64>) -> Self {
        Extent {
            offset,
            len,
            kind: ExtentKind::Data,
            lower_offset,
        }
    }

    /// An extent of `kind` with no lower mapping.
    pub fn of(kind: ExtentKind, offset: u64, len: u64) -> Self {
        Extent {
            offset,
            len,
            kind,
            lower_offset: None,
        }
    }

    /// End offset (exclusive), saturating.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    /// Whether `next` continues this extent (same kind, adjacent, contiguous mapping).
    pub fn continues_with(&self, next: &Extent) -> bool {
        self.kind == next.kind
            && self.end() == next.offset
            && match (self.lower_offset, next.lower_offset) {
                (None, None) => true,
                (Some(a), Some(b)) => a.checked_add(self.len) == Some(b),
                _ => false,
            }
    }
}

/// Appends `e` to `out`, merging with the last extent when it continues it. Zero-length
/// extents are dropped.
pub fn push_coalesced(out: &mut Vec<Extent>, e: Extent) {
    if e.len == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.continues_with(&e) {
            last.len = last.len.saturating_add(e.len);
            return;
        }
    }
    out.push(e);
}

/// The ranges of `extents` that hold memory or data — data, zero and unavailable extents,
/// merged where they touch — leaving out what is unallocated (holes: not part of the
/// guest's memory, nothing stored). Memory exports write one segment or record per range.
pub fn present_ranges(extents: &[Extent]) -> Vec<std::ops::Range<u64>> {
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for e in extents.iter().filter(|e| e.kind != ExtentKind::Unallocated) {
        match out.last_mut() {
            Some(last) if last.end == e.offset => last.end = e.end(),
            _ => out.push(e.offset..e.end()),
        }
    }
    out
}

/// Splits the data extents of `extents` that map 1:1 onto `lower` (those with a lower
/// offset) by `lower`'s own extents: what `lower` holds as data stays data, its holes
/// (zero or unallocated, as the holes of a sparse `.vmem`) become zero, what it cannot
/// provide stays unavailable. Other extents pass through. One `lower.extents` call per
/// data extent: the cost follows the extents, not their length.
pub fn refine_by_lower(
    extents: Vec<Extent>,
    lower: &dyn crate::Layer,
) -> crate::Result<Vec<Extent>> {
    let mut out = Vec::with_capacity(extents.len());
    for e in extents {
        let mapped = e.lower_offset.filter(|_| e.kind == ExtentKind::Data);
        let Some((lo, lend)) = mapped.and_then(|lo| Some((lo, lo.checked_add(e.len)?))) else {
            push_coalesced(&mut out, e);
            continue;
        };
        let mut pos = lo;
        for le in lower.extents(lo..lend)? {
            let (s, t) = (le.offset.max(pos), le.end().min(lend));
            if t <= s {
                continue;
            }
            let at = e.offset.saturating_add(s - lo);
            push_coalesced(
                &mut out,
                match le.kind {
                    ExtentKind::Data => Extent::data(at, t - s, Some(s)),
                    ExtentKind::Zero | ExtentKind::Unallocated => {
                        Extent::of(ExtentKind::Zero, at, t - s)
                    }
                    ExtentKind::Unavailable => Extent::of(ExtentKind::Unavailable, at, t - s),
                },
            );
            pos = t;
        }
        // What `lower` did not describe (it is shorter) stays data: reading it reports why.
        if pos < lend {
            let at = e.offset.saturating_add(pos - lo);
            push_coalesced(&mut out, Extent::data(at, lend - pos, Some(pos)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_ranges_skip_holes_and_merge_the_rest() {
        let e = [
            Extent::of(ExtentKind::Unallocated, 0, 10),
            Extent::data(10, 5, Some(0)),
            Extent::of(ExtentKind::Zero, 15, 5),
            Extent::of(ExtentKind::Unavailable, 20, 1),
            Extent::of(ExtentKind::Unallocated, 21, 9),
            Extent::data(30, 2, None),
        ];
        assert_eq!(present_ranges(&e), vec![10..21, 30..32]);
        assert!(present_ranges(&[]).is_empty());
    }

    #[test]
    fn coalesces_only_contiguous_runs() {
        let mut v = Vec::new();
        push_coalesced(&mut v, Extent::data(0, 10, Some(100)));
        push_coalesced(&mut v, Extent::data(10, 5, Some(110)));
        push_coalesced(&mut v, Extent::data(15, 5, Some(200)));
        push_coalesced(&mut v, Extent::of(ExtentKind::Zero, 20, 0));
        push_coalesced(&mut v, Extent::of(ExtentKind::Zero, 20, 4));
        push_coalesced(&mut v, Extent::of(ExtentKind::Zero, 24, 4));
        assert_eq!(
            v,
            vec![
                Extent::data(0, 15, Some(100)),
                Extent::data(15, 5, Some(200)),
                Extent::of(ExtentKind::Zero, 20, 8)
            ]
        );
    }

    #[test]
    fn refining_by_a_sparse_lower_turns_its_holes_into_zero() {
        use crate::layer::{FileLayer, Layer};
        use crate::source::FileSource;
        use std::sync::Arc;
        let dir = std::env::temp_dir().join(format!("vmsnap-refine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sparse.bin");
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::File::create(&path).unwrap();
            f.set_len(64 << 20).unwrap();
            f.seek(SeekFrom::Start(32 << 20)).unwrap();
            f.write_all(&[1u8; 4096]).unwrap();
        }
        let lower = FileLayer::new(Arc::new(FileSource::open(&path).unwrap()));
        // A layer whose 1 MiB..65 MiB maps onto the file, after an unallocated MiB.
        let mapped = vec![
            Extent::of(ExtentKind::Unallocated, 0, 1 << 20),
            Extent::data(1 << 20, 64 << 20, Some(0)),
        ];
        let got = refine_by_lower(mapped.clone(), &lower).unwrap();
        if lower.extents(0..64 << 20).unwrap().len() == 1 {
            // The filesystem reports no holes: nothing to refine.
            assert_eq!(got, mapped);
        } else {
            assert_eq!(got[0], mapped[0]);
            let data: Vec<_> = got.iter().filter(|e| e.kind == ExtentKind::Data).collect();
            assert_eq!(data.len(), 1, "{got:?}");
            // The written block (the filesystem may report a larger block around it).
            assert!(data[0].offset <= (33 << 20) && data[0].end() >= (33 << 20) + 4096);
            assert_eq!(data[0].lower_offset, Some(data[0].offset - (1 << 20)));
            assert_eq!(got.last().unwrap().kind, ExtentKind::Zero);
            assert_eq!(got.last().unwrap().end(), 65 << 20);
            assert!(got.iter().map(|e| e.len).sum::<u64>() == 65 << 20);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
