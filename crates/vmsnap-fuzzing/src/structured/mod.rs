//! Structure-aware targets: an input starting with [`crate::STRUCTURED`] describes a file
//! (decoded with `arbitrary`) that the crate's own test writer builds with its regions at
//! their real offsets and its checksums computed; a list of patches then changes bytes
//! inside named regions, and checksums are recomputed afterwards unless the description
//! says not to. Any other input is the file itself.

pub mod hyperv;
pub mod vhd;
pub mod vhdx;

use arbitrary::{Arbitrary, Unstructured};

/// `Some(description)` when `data` selects the structured mode and decodes.
pub(crate) fn description<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    let rest = data.strip_prefix(crate::STRUCTURED)?;
    T::arbitrary_take_rest(Unstructured::new(rest)).ok()
}

/// Bytes written at an offset inside a region of the built file.
#[derive(Arbitrary, Debug)]
pub(crate) struct Patch {
    /// Which region (taken modulo the format's region count).
    pub region: u8,
    /// Where inside it (modulo the region's length).
    pub offset: u32,
    /// What to write (cut at the region's end).
    pub bytes: Vec<u8>,
}

/// Applies `patches` (at most 16) to `file`, whose regions are `(start, len)`.
pub(crate) fn apply(file: &mut [u8], regions: &[(usize, usize)], patches: &[Patch]) {
    for p in patches.iter().take(16) {
        let Some(&(start, len)) = regions.get(usize::from(p.region) % regions.len().max(1)) else {
            return;
        };
        let at = start + (p.offset as usize) % len.max(1);
        let end = (at + p.bytes.len()).min(start + len).min(file.len());
        if at < end {
            file[at..end].copy_from_slice(&p.bytes[..end - at]);
        }
    }
}
