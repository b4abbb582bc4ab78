//! On-disk layout of a Parallels image (all fields little-endian) and the named limits
//! this reader applies to it.

/// Bytes of the header; the BAT follows it.
pub const HEADER_LEN: usize = 64;
/// Magic of the old format (BAT entries in sectors, 32-bit sector count).
pub const MAGIC_OLD: [u8; 16] = *b"WithoutFreeSpace";
/// Magic of the extended format (BAT entries in clusters), what QEMU writes.
pub const MAGIC_EXT: [u8; 16] = *b"WithouFreSpacExt";
/// The only version.
pub const VERSION: u32 = 2;
/// `in_use`: the image is open read-write (not closed cleanly).
pub const IN_USE_OPEN: u32 = 0x746F_6E59;
/// `in_use`: the image was closed.
pub const IN_USE_CLOSED: u32 = 0x312E_3276;
/// Header flag: the image is empty.
pub const FLAG_EMPTY: u32 = 1;
/// Sector size.
pub const SECTOR: u64 = 512;

/// Format extension cluster magic.
pub const EXT_MAGIC: u64 = 0xAB23_4CEF_23DC_EA87;
/// Bytes of the extension header (magic and MD5 of the rest of the cluster).
pub const EXT_HEADER_LEN: usize = 24;
/// Bytes of a feature header (magic, flags, data size, padding).
pub const FEATURE_HEADER_LEN: usize = 24;
/// Feature magic ending the list.
pub const FEATURE_END: u64 = 0;
/// Feature magic of a dirty bitmap.
pub const FEATURE_DIRTY_BITMAP: u64 = 0x2038_5FAE_252C_B34A;
/// Feature flag: the image cannot be read without understanding this feature.
pub const FEATURE_NECESSARY: u64 = 1;
/// Feature flag: the feature is transient and may be dropped.
pub const FEATURE_TRANSIT: u64 = 2;
/// Bytes of a dirty bitmap feature's fixed part (size, id, granularity, L1 size).
pub const BITMAP_HEADER_LEN: usize = 32;

/// Largest cluster size accepted (`tracks` × 512).
pub const MAX_CLUSTER_SIZE: u64 = 256 << 20;
