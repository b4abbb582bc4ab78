//! On-disk constants of VMA archives and this crate's limits.
//!
//! The layout is pve-qemu's `vma_spec.txt` and `vma.h` (in
//! `debian/patches/pve/0026-PVE-Backup-add-vma-backup-format-code.patch`). Every number in
//! a VMA is big-endian, except the 2-byte length in front of each blob (vma-writer.c writes
//! it low byte first, vma-reader.c reads it so).

/// `VMA_MAGIC`: the archive's first four bytes.
pub const MAGIC: &[u8; 4] = b"VMA\0";
/// The only version vma-reader.c accepts.
pub const VERSION: u32 = 1;
/// `sizeof(VmaHeader)`: the fixed part of the header; the blob buffer follows it.
pub const FIXED_HEADER_SIZE: u64 = 12288;
/// Offset of the version (u32).
pub const VERSION_AT: usize = 4;
/// Offset of the archive's uuid (16 bytes), repeated in every extent header.
pub const UUID_AT: usize = 8;
/// Offset of the backup time (seconds since the epoch, i64).
pub const CTIME_AT: usize = 24;
/// Offset of the header's MD5 (16 bytes, computed with these bytes zeroed).
pub const MD5_AT: usize = 32;
/// Offset of the blob buffer's offset (u32).
pub const BLOB_OFFSET_AT: usize = 48;
/// Offset of the blob buffer's size (u32).
pub const BLOB_SIZE_AT: usize = 52;
/// Offset of the whole header's size (u32).
pub const HEADER_SIZE_AT: usize = 56;
/// Offset of `config_names[256]` (u32 blob pointers).
pub const CONFIG_NAMES_AT: usize = 2044;
/// Offset of `config_data[256]` (u32 blob pointers).
pub const CONFIG_DATA_AT: usize = 3068;
/// `VMA_MAX_CONFIGS`.
pub const MAX_CONFIGS: usize = 256;
/// Offset of `dev_info[256]`.
pub const DEV_INFO_AT: usize = 4096;
/// Size of one `VmaDeviceInfoHeader` (name pointer u32, reserved u32, size u64, 16 reserved).
pub const DEV_INFO_SIZE: usize = 32;
/// Device ids run from 1 to 255 (0 marks an unused blockinfo).
pub const MAX_DEV_ID: u8 = 255;
/// The device name vma_spec.txt reserves for the VM's RAM state.
pub const VMSTATE_NAME: &str = "vmstate";
/// vma-writer.c's `HEADERBUF_SIZE` (`VMA_CLUSTER_SIZE * HEADER_CLUSTERS`, 4 clusters): the
/// largest header it writes.
pub const MAX_HEADER_SIZE: u64 = 4 * CLUSTER_SIZE;

/// `VMA_EXTENT_MAGIC`.
pub const EXTENT_MAGIC: &[u8; 4] = b"VMAE";
/// `VMA_EXTENT_HEADER_SIZE`.
pub const EXTENT_HEADER_SIZE: u64 = 512;
/// Offset of the extent's reserved u16 (must be 0).
pub const EXTENT_RESERVED_AT: usize = 4;
/// Offset of the extent's block count (u16): 4 KiB blocks that follow the header.
pub const EXTENT_BLOCK_COUNT_AT: usize = 6;
/// Offset of the extent's uuid.
pub const EXTENT_UUID_AT: usize = 8;
/// Offset of the extent header's MD5 (over its 512 bytes with these zeroed).
pub const EXTENT_MD5_AT: usize = 24;
/// Offset of `blockinfo[59]` (u64: mask << 48 | dev_id << 32 | cluster number).
pub const BLOCKINFO_AT: usize = 40;
/// `VMA_BLOCKS_PER_EXTENT`: blockinfo entries per extent.
pub const BLOCKS_PER_EXTENT: usize = 59;
/// `VMA_BLOCK_SIZE`: the unit of the mask (a zero block is not stored).
pub const BLOCK_SIZE: u64 = 4096;
/// `VMA_CLUSTER_SIZE`: 16 blocks.
pub const CLUSTER_SIZE: u64 = 65536;
/// Blocks per cluster (bits of the mask).
pub const BLOCKS_PER_CLUSTER: u64 = CLUSTER_SIZE / BLOCK_SIZE;

/// Largest device size accepted: cluster numbers are 32-bit.
pub const MAX_DEVICE_SIZE: u64 = CLUSTER_SIZE << 32;
/// Most extents scanned (an extent is at least 512 bytes; 2^24 of them cover a 8 GiB file
/// of empty extents, and hundreds of TiB of data).
pub const MAX_EXTENTS: u64 = 1 << 24;
/// Most clusters listed in all extents together (2^26 clusters are 4 TiB of device data;
/// the scan keeps 16 bytes for each).
pub const MAX_CLUSTERS: u64 = 1 << 26;
/// Most bytes of one configuration file shown as text in `meta`.
pub const MAX_CONFIG_TEXT: usize = 65535;
