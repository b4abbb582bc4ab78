//! Extents: which parts of an address space hold data, read as zeros, or are unallocated.

use serde::Serialize;

/// What a range of an address space is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
