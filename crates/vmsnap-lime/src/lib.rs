//! vmsnap-lime: LiME (Linux Memory Extractor) files as guest-physical memory.
//!
//! A LiME file is a sequence of ranges, each a 32-byte header (magic `0x4C694D45`,
//! version 1, start address, **inclusive** end address, reserved) followed by the
//! range's bytes. Ranges go through the core segment map: overlaps are an error (unlike
//! Volatility, which lets a one-byte overlap through), gaps between ranges read as zeros
//! and are reported unallocated, unsorted ranges are accepted with a finding.
//!
//! Writing: [`export::export`] lays out any guest-physical layer as a LiME file (what
//! `vmsnap convert -O lime` writes).

pub mod export;
pub mod head;
mod header;
mod layer;
mod plugin;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;

pub use layer::{Lime, NAME};
pub use plugin::PLUGIN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use header::Range;

vmsnap_core::register_plugin!(PLUGIN);
