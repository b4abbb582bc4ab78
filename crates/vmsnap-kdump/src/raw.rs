//! On-disk constants of kdump-compressed dumps and this crate's limits.
//!
//! The layout is makedumpfile's `diskdump_mod.h` (`struct disk_dump_header`,
//! `struct kdump_sub_header`, `page_desc_t`) and its flattened format (`makedumpfile.h`:
//! `struct makedumpfile_header`, `struct makedumpfile_data_header`), as QEMU writes them
//! too (`include/sysemu/dump.h`: `DiskDumpHeader64/32`, `KdumpSubHeader64/32`,
//! `PageDescriptor`, `MakedumpfileHeader`, `MakedumpfileDataHeader`). The signatures and
//! status flags are shared with vmsnap-elf, which recognises these files.

pub use vmsnap_elf::kdump::{
    DISKDUMP_SIGNATURE, DUMP_DH_COMPRESSED_INCOMPLETE, DUMP_DH_COMPRESSED_LZO,
    DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB, DUMP_DH_COMPRESSED_ZSTD, FLAT_HEADER_SIZE,
    FLAT_SIGNATURE, KDUMP_SIGNATURE, KDUMP_STATUS_OFFSET_32, KDUMP_STATUS_OFFSET_64,
};

/// Every page-compression flag of `page_desc_t.flags` (the same bits as the header's).
pub const COMPRESSION_FLAGS: u32 = DUMP_DH_COMPRESSED_ZLIB
    | DUMP_DH_COMPRESSED_LZO
    | DUMP_DH_COMPRESSED_SNAPPY
    | DUMP_DH_COMPRESSED_ZSTD;

/// Offset of `header_version` (i32).
pub const VERSION_AT: usize = 8;
/// Offset of `utsname` (`struct new_utsname`: six 65-byte strings).
pub const UTSNAME_AT: usize = 12;
/// Length of one `new_utsname` field.
pub const UTS_FIELD: usize = 65;
/// Names of the `new_utsname` fields, in order.
pub const UTS_FIELDS: [&str; 6] = [
    "sysname",
    "nodename",
    "release",
    "version",
    "machine",
    "domainname",
];
/// Offset of `timestamp` with a 64-bit `struct timeval` (two 8-byte fields).
pub const TIMESTAMP_AT_64: usize = 408;
/// Offset of `timestamp` with a 32-bit `struct timeval` (two 4-byte fields).
pub const TIMESTAMP_AT_32: usize = 404;
/// Bytes of `disk_dump_header` read (the 64-bit layout's fixed part, 464 bytes).
pub const HEADER_BYTES: usize = 464;

/// Bytes of `kdump_sub_header` with 64-bit `unsigned long` (through `max_mapnr_64`).
pub const SUB_HEADER_64: usize = 104;
/// Bytes of QEMU's packed 32-bit `KdumpSubHeader32` (through `max_mapnr_64`).
pub const SUB_HEADER_32: usize = 80;

/// Size of one `page_desc_t`: `offset` (8), `size` (4), `flags` (4), `page_flags` (8).
pub const PAGE_DESC_SIZE: u64 = 24;

/// Size of one flattened record header: big-endian `offset` and `buf_size` (i64 each).
pub const FLAT_RECORD_HEADER: u64 = 16;
/// The flattened format's end marker: `offset` and `buf_size` both -1.
pub const FLAT_END: i64 = -1;
/// `type` of the flattened header makedumpfile and QEMU write.
pub const FLAT_TYPE: i64 = 1;

/// Smallest block (page) size accepted.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest block (page) size accepted (64 KiB pages exist on arm64 and ppc64).
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;
/// Largest guest-physical address space accepted (`max_mapnr * block_size`): x86-64's
/// architectural MAXPHYADDR of 52 bits.
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Most bytes of one bitmap read into memory (2^31 pages: 8 TiB of 4 KiB pages).
pub const MAX_BITMAP_BYTES: u64 = vmsnap_core::limits::MAX_TABLE_BYTES;
/// Most blocks of the sub header (makedumpfile and QEMU write one).
pub const MAX_SUB_HEADER_BLOCKS: u32 = 1 << 16;
/// Most bytes of the ELF notes the sub header points to.
pub const MAX_NOTE_BYTES: u64 = 64 << 20;
/// Most bytes of VMCOREINFO text.
pub const MAX_VMCOREINFO_BYTES: u64 = vmsnap_core::limits::MAX_TEXT_BYTES;
/// Most bytes a compressed page may declare (a page that does not shrink is stored).
pub const MAX_COMPRESSED_FACTOR: u64 = 2;
/// Most records of a flattened file.
pub const MAX_FLAT_RECORDS: u64 = vmsnap_core::limits::MAX_SEGMENTS as u64;
/// Decompressed pages kept (a direct-mapped cache; 256 pages = 1 MiB of 4 KiB pages).
pub const PAGE_CACHE_SLOTS: usize = 256;
/// Page descriptors read at once while walking a range.
pub const DESC_CHUNK: u64 = 256;
