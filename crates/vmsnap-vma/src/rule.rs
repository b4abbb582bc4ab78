//! The rule ids of the findings this crate reports.

/// The header's MD5 does not match its bytes.
pub const HEADER_MD5: &str = "vma_header_md5";
/// An extent header's MD5 does not match its bytes.
pub const EXTENT_MD5: &str = "vma_extent_md5";
/// An extent carries another archive's uuid.
pub const EXTENT_UUID: &str = "vma_extent_uuid";
/// The extents stop before the end of the file, or the file ends inside one.
pub const TRUNCATED: &str = "vma_truncated";
/// Clusters of a device that no extent holds (an incomplete backup).
pub const MISSING_CLUSTERS: &str = "vma_missing_clusters";
/// A device entry whose name is not a string of the blob buffer (vma-reader skips it).
pub const DEVICE_NAME: &str = "vma_device_name";
