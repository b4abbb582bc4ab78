//! vmsnap-lime: LiME (Linux Memory Extractor) files as guest-physical memory.
//!
//! A LiME file is a sequence of ranges, each a 32-byte header (magic `0x4C694D45`,
//! version 1, start address, **inclusive** end address, reserved) followed by the
//! range's bytes. Ranges go through the core segment map: overlaps are an error (unlike
//! Volatility, which lets a one-byte overlap through), gaps between ranges read as zeros
//! and are reported unallocated, unsorted ranges are accepted with a finding.

pub mod header;
pub mod layer;
pub mod plugin;
pub mod raw;

pub use layer::{Lime, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
