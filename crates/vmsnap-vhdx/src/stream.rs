//! What streaming inspection must keep of a VHDX beyond its first MiBs: the regions the
//! region table lists (BAT, metadata) and the log, found from the head alone.

use std::ops::Range;

use vmsnap_core::Bytes;

use crate::raw::{HEADER_OFFSETS, REGION_OFFSETS};

/// Byte ranges of the file a reader needs, from the head of the file (the headers and
/// region table lie in its first 320 KiB). Best effort: nothing for a damaged head.
pub fn stream_regions(head: &[u8]) -> Vec<Range<u64>> {
    let b = Bytes::new(head, 0);
    let mut out = Vec::new();
    for h in HEADER_OFFSETS {
        let at = h as usize;
        if b.slice(at, 4).ok() != Some(b"head") {
            continue;
        }
        // log_length at 68 (u32), log_offset at 72 (u64).
        if let (Ok(len), Ok(off)) = (b.u32_le(at + 68), b.u64_le(at + 72)) {
            if let Some(end) = off.checked_add(u64::from(len)) {
                out.push(off..end);
            }
        }
    }
    for r in REGION_OFFSETS {
        let at = r as usize;
        if b.slice(at, 4).ok() != Some(b"regi") {
            continue;
        }
        let count = b
            .u32_le(at + 8)
            .unwrap_or(0)
            .min(crate::raw::MAX_REGION_ENTRIES);
        for i in 0..count as usize {
            let e = at + 16 + i * 32;
            if let (Ok(off), Ok(len)) = (b.u64_le(e + 16), b.u32_le(e + 24)) {
                if let Some(end) = off.checked_add(u64::from(len)) {
                    out.push(off..end);
                }
            }
        }
    }
    out
}
