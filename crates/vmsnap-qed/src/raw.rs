//! On-disk layout of a QED image (all fields little-endian) and the named limits this
//! reader applies to it.

/// Magic `QED\0`.
pub const MAGIC: [u8; 4] = *b"QED\0";
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;

/// Feature: the image has a backing file.
pub const F_BACKING_FILE: u64 = 0x01;
/// Feature: the image was not closed cleanly and needs a consistency check.
pub const F_NEED_CHECK: u64 = 0x02;
/// Feature: the backing file is raw; do not probe its format.
pub const F_BACKING_FORMAT_NO_PROBE: u64 = 0x04;
/// Every feature this reader knows.
pub const KNOWN_FEATURES: u64 = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_FORMAT_NO_PROBE;

/// Smallest cluster size (QEMU's `QED_MIN_CLUSTER_SIZE`).
pub const MIN_CLUSTER_SIZE: u32 = 4 << 10;
/// Largest cluster size (QEMU's `QED_MAX_CLUSTER_SIZE`).
pub const MAX_CLUSTER_SIZE: u32 = 64 << 20;
/// Largest table size in clusters (QEMU's `QED_MAX_TABLE_SIZE`).
pub const MAX_TABLE_SIZE: u32 = 16;
/// Longest backing file name read (QEMU reads it into a `PATH_MAX` buffer).
pub const MAX_BACKING_NAME: u32 = 4095;

/// L2 entry (data offset) meaning "this cluster reads as zeros".
pub const ZERO_CLUSTER: u64 = 1;

/// L2 entries read and cached together (one 4 KiB chunk of a table).
pub const L2_CHUNK_ENTRIES: usize = 512;
/// How many L2 chunks the cache keeps (16 MiB of entries, covering 32 GiB of guest disk
/// at the default 64 KiB clusters).
pub const L2_CACHE_CHUNKS: usize = 4096;
