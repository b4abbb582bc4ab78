//! VHDX (Hyper-V) disk images for vmsnap.
//!
//! * both headers are checked with CRC-32C and the valid one with the higher sequence
//!   number is used (a bad copy is a `header` finding);
//! * a **dirty log** is replayed *without writing*: the active sequence is applied to an
//!   in-memory overlay of the file and everything is read through it (a `log` finding);
//! * region table, metadata items by GUID, the BAT with its interleaved sector-bitmap
//!   entries, every payload block state;
//! * **differencing** disks: the parent is opened only through the external-reference
//!   policy and only when its data write GUID matches `parent_linkage`; partially present
//!   blocks read from the parent sector by sector per the sector bitmap.
//!
//! Bounds: block size 1–256 MiB power of two, logical sector 512/4096, virtual disk size
//! ≤ 64 TiB, BAT entry count in 64 bits, every BAT index bounds-checked, log descriptor
//! counts checked against the entry length.

mod bat;
mod header;
mod layer;
mod log;
mod metadata;
mod parent;
mod plugin;
pub mod raw;
pub mod rule;
mod stream;

pub use layer::{Subformat, Vhdx};
pub use plugin::{probe, PLUGIN};
pub use stream::stream_regions;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use bat::Bat;
pub use metadata::{Metadata, ParentLocator};

vmsnap_core::register_plugin!(PLUGIN);
