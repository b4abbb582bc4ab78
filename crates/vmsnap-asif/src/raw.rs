//! On-disk constants of ASIF images and this crate's limits.
//!
//! The layout is Apple's, undocumented; these values are what dissect.hypervisor's reader
//! (`dissect/hypervisor/disk/c_asif.py`, `asif.py`, from reversing `diskimagescontroller`)
//! and the community notes at <https://github.com/huven/asif-format> describe. Every
//! integer is big-endian.

/// `header_signature` at offset 0: `shdw`.
pub const MAGIC: &[u8; 4] = b"shdw";
/// `header_version` (u32).
pub const VERSION_AT: usize = 4;
/// `header_size` (u32; 512 in Apple's images).
pub const HEADER_SIZE_AT: usize = 8;
/// `header_flags` (u32).
pub const FLAGS_AT: usize = 12;
/// `directory_offsets[2]` (two u64 byte offsets).
pub const DIRECTORY_OFFSETS_AT: usize = 16;
/// `guid[16]`: the image's UUID, in RFC 4122 byte order.
pub const GUID_AT: usize = 32;
/// `sector_count` (u64): the virtual size in blocks.
pub const SECTOR_COUNT_AT: usize = 48;
/// `max_sector_count` (u64): the size the disk may grow to, in blocks; the metadata chunk
/// lies in a reserved area at its end.
pub const MAX_SECTOR_COUNT_AT: usize = 56;
/// `chunk_size` (u32): the allocation unit, in bytes (1 MiB in Apple's images).
pub const CHUNK_SIZE_AT: usize = 64;
/// `block_size` (u16): the sector size, in bytes (512 in Apple's images).
pub const BLOCK_SIZE_AT: usize = 68;
/// `total_segments` (u16).
pub const TOTAL_SEGMENTS_AT: usize = 70;
/// `metadata_chunk` (u64): the virtual chunk number of the metadata block, 0 for none.
pub const METADATA_CHUNK_AT: usize = 72;
/// `read_only_flags` (u32).
pub const READ_ONLY_FLAGS_AT: usize = 96;
/// `metadata_flags` (u32).
pub const METADATA_FLAGS_AT: usize = 100;
/// `metadata_read_only_flags` (u32).
pub const METADATA_READ_ONLY_FLAGS_AT: usize = 104;
/// Bytes of the header this crate reads (the struct is 108 bytes).
pub const HEADER_LEN: usize = 108;

/// A directory is a u64 version, then one u64 table chunk number per table.
pub const DIRECTORY_VERSION_LEN: u64 = 8;
/// Bytes of one directory or table entry.
pub const ENTRY_LEN: u64 = 8;

/// The physical chunk number of a table entry (its low 55 bits).
pub const ENTRY_CHUNK_MASK: u64 = 0x007F_FFFF_FFFF_FFFF;
/// Bits 61–55 of a table entry: reserved.
pub const ENTRY_RESERVED_MASK: u64 = 0x3F80_0000_0000_0000;
/// Bits 63–62 of a data entry: the chunk's state.
pub const ENTRY_STATE_SHIFT: u32 = 62;
/// State 0: never written (chunk number 0): reads as zeros.
pub const STATE_EMPTY: u64 = 0;
/// State 1: every sector of the chunk is written.
pub const STATE_FULL: u64 = 1;
/// State 3: some sectors are written; the chunk group's bitmap says which.
pub const STATE_PARTIAL: u64 = 3;

/// Data chunks per chunk group, per byte of block size: a group is `4 × block_size` data
/// entries followed by one bitmap entry (dissect's `_num_reserved_table_entries`).
pub const GROUP_CHUNKS_PER_BLOCK_BYTE: u64 = 4;
/// Bits of the group bitmap per sector.
pub const BITMAP_BITS_PER_SECTOR: u64 = 2;
/// Bitmap state of a written sector (`01`); `00` is unwritten, `10` and `11` are unknown.
pub const SECTOR_WRITTEN: u8 = 1;

/// `asif_meta_header.header_signature`: `meta`.
pub const META_MAGIC: &[u8; 4] = b"meta";
/// Bytes of the metadata header this crate reads (signature, version, header size, data
/// size, one more u64).
pub const META_HEADER_LEN: usize = 28;

/// Smallest block size accepted.
pub const MIN_BLOCK_SIZE: u64 = 512;
/// Largest block size accepted.
pub const MAX_BLOCK_SIZE: u64 = 64 * 1024;
/// Largest chunk size accepted (Apple writes 1 MiB).
pub const MAX_CHUNK_SIZE: u64 = 64 * 1024 * 1024;
/// Largest `max_sector_count × block_size` accepted.
pub const MAX_VIRTUAL_SIZE: u64 = vmsnap_core::limits::MAX_VIRTUAL_SIZE;
/// Most directory entries held (those covering the virtual size).
pub const MAX_DIRECTORY_ENTRIES: u64 = vmsnap_core::limits::MAX_TABLE_ENTRIES;
/// Largest metadata property list read.
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;
