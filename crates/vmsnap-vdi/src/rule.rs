//! The rule ids of the findings only VirtualBox VDI images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A block ending past the end of the file; the missing bytes read as zeros.
pub const TRUNCATED: &str = "truncated";
/// Block map entries sharing a data block with another entry.
pub const BLOCK_MAP: &str = "block_map";
/// A VirtualBox-only image type that QEMU refuses.
pub const IMAGE_TYPE: &str = "image_type";
/// A block size other than 1 MiB, which QEMU refuses.
pub const BLOCK_SIZE: &str = "block_size";
/// A nonzero `block_extra`, which QEMU refuses.
pub const BLOCK_EXTRA: &str = "block_extra";
