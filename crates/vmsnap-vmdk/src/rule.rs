//! The rule ids of the findings only VMDK images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// An invalid `GD_AT_END` footer.
pub const FOOTER: &str = "footer";
/// A version or feature QEMU treats specially (e.g. CBT version 3).
pub const UNKNOWN_FEATURES: &str = "unknown_features";
/// The `uncleanShutdown` byte is set.
pub const UNCLEAN_SHUTDOWN: &str = "unclean_shutdown";
/// The newline check bytes are damaged (text-mode transfer?).
pub const NEWLINE_CHECK: &str = "newline_check";
/// A redundant grain directory, not used for reading.
pub const REDUNDANT_GD: &str = "redundant_gd";
/// A non-RW extent, which QEMU skips, so the sizes differ.
pub const EXTENT_TYPE: &str = "extent_type";
/// An extent path that is absolute, has `..` or a protocol prefix.
pub const EXTENT_PATH: &str = "extent_path";
/// An extent whose header capacity differs from the descriptor's.
pub const EXTENT_SIZE: &str = "extent_size";
/// A `parentCID` that does not match the parent's CID.
pub const PARENT_CID: &str = "parent_cid";
