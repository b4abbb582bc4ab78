//! On-disk constants of avml files and this crate's limits.
//!
//! TODO(new-format): replace the placeholder layout with the format's, each constant
//! citing the specification (or the reference implementation's source) it comes from.

/// The magic at offset 0.
pub const MAGIC: &[u8] = b"vmsnap avml sample\n";
/// Offset of the virtual size (u64, little-endian).
pub const VIRTUAL_SIZE_AT: u64 = 32;
/// Offset of the data offset (u64, little-endian): where the disk's first byte lies.
pub const DATA_OFFSET_AT: u64 = 40;
/// Size of the header.
pub const HEADER_SIZE: u64 = 512;
/// Largest virtual size accepted.
pub const MAX_VIRTUAL_SIZE: u64 = vmsnap_core::limits::MAX_VIRTUAL_SIZE;
