//! The range headers a probe's window shows. A LiME file starts with LiME ranges; an AVML
//! file (avml's LiME version 2) may start with them too before its AVML ranges, so both
//! probes ask the same question: what follows the LiME ranges the head starts with?

use crate::raw::{HEADER_SIZE, LIME_MAGIC, LIME_VERSION};

/// avml's range header magic (bytes `41 56 4D 4C`, "AVML"), read by the `avml` crate.
pub const AVML_MAGIC: u32 = 0x4C4D_5641;

/// A range header seen in a probe's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadHeader {
    /// Its offset in the file.
    pub at: usize,
    /// Its magic.
    pub magic: u32,
    /// Its version.
    pub version: u32,
    /// The range's first address.
    pub start: u64,
    /// The range's last address (inclusive).
    pub end: u64,
}

/// The first range header of `head` that is not a well-formed LiME version-1 range header,
/// after skipping those (each header and its bytes); `None` when the head ends first.
pub fn first_other_header(head: &[u8]) -> Option<HeadHeader> {
    let mut at = 0usize;
    loop {
        let h = header_at(head, at)?;
        if h.magic != LIME_MAGIC || h.version != LIME_VERSION || h.end < h.start {
            return Some(h);
        }
        let len = (h.end - h.start).checked_add(1 + HEADER_SIZE)?;
        at = at.checked_add(usize::try_from(len).ok()?)?;
    }
}

/// The range header at `at` of `head`, if it is all there.
fn header_at(head: &[u8], at: usize) -> Option<HeadHeader> {
    let b = head.get(at..at.checked_add(HEADER_SIZE as usize)?)?;
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    Some(HeadHeader {
        at,
        magic: u32_at(0)?,
        version: u32_at(4)?,
        start: u64_at(8)?,
        end: u64_at(16)?,
    })
}
