//! qcow2-specific limits, QEMU's own (`block/qcow2.h`) unless noted.

/// Smallest cluster_bits (512-byte clusters).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster_bits (2 MiB clusters).
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Smallest cluster_bits with extended L2 entries (subclusters of at least 512 bytes).
pub const MIN_CLUSTER_BITS_EXTL2: u32 = 14;
/// Largest active or snapshot L1 table (`QCOW_MAX_L1_SIZE`).
pub const MAX_L1_BYTES: u64 = 32 * 1024 * 1024;
/// Largest qcow (version 1) L1 table, which is loaded whole: QEMU allows `INT_MAX` bytes;
/// this is the core table limit (64 TiB with the default 4 KiB clusters, 512-entry L2).
pub const MAX_QCOW1_L1_BYTES: u64 = vmsnap_core::limits::MAX_TABLE_BYTES;
/// Largest refcount table (`QCOW_MAX_REFTABLE_SIZE`).
pub const MAX_REFTABLE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest refcount_order (64-bit refcounts).
pub const MAX_REFCOUNT_ORDER: u32 = 6;
/// Largest number of internal snapshots (`QCOW_MAX_SNAPSHOTS`).
pub const MAX_SNAPSHOTS: u64 = 65_536;
/// Largest snapshot table (`QCOW_MAX_SNAPSHOTS_SIZE`).
pub const MAX_SNAPSHOT_TABLE_BYTES: u64 = 1024 * 65_536;
/// Largest snapshot extra data (`QCOW_MAX_SNAPSHOT_EXTRA_DATA`).
pub const MAX_SNAPSHOT_EXTRA: u32 = 1024;
/// Largest number of bitmaps (`QCOW2_MAX_BITMAPS`).
pub const MAX_BITMAPS: u32 = 65_535;
/// Largest bitmap directory (`QCOW2_MAX_BITMAP_DIRECTORY_SIZE`).
pub const MAX_BITMAP_DIRECTORY_BYTES: u64 = 64 * 1024 * 1024;
/// Longest backing file name (`1023` in QEMU).
pub const MAX_BACKING_NAME: u32 = 1023;
/// Backing-format extension must be shorter than this (`sizeof(bs->backing_format)`).
pub const MAX_BACKING_FORMAT: u32 = 16;
/// Largest host offset QEMU addresses (`QCOW_MAX_CLUSTER_OFFSET`).
pub const MAX_HOST_OFFSET: u64 = (1 << 56) - 1;
/// Memory the L2 cache may use, across all shards (QEMU's default maximum is 32 MiB).
pub const L2_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// Memory the cache of decompressed clusters may use.
pub const COMPRESSED_CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// Longest external data file name accepted.
pub const MAX_DATA_FILE_NAME: u64 = 4096;
/// Most header extensions listed.
pub const MAX_EXTENSIONS: usize = 1024;
