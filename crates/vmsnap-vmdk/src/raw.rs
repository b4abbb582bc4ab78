//! On-disk constants of the VMDK family and this crate's named limits.

/// `KDMV` magic of a hosted sparse extent (as the first four bytes).
pub const KDMV_MAGIC: &[u8; 4] = b"KDMV";
/// `COWD` magic of a VMDK3 / vmfsSparse extent (as the first four bytes).
pub const COWD_MAGIC: &[u8; 4] = b"COWD";
/// seSparse constant-header magic (LE u64).
pub const SESPARSE_MAGIC: u64 = 0x0000_0000_CAFE_BABE;
/// seSparse volatile-header magic (LE u64).
pub const SESPARSE_VOLATILE_MAGIC: u64 = 0x0000_0000_CAFE_CAFE;
/// The only seSparse version QEMU reads.
pub const SESPARSE_VERSION: u64 = 0x0000_0002_0000_0001;

/// Sector size; every VMDK offset and size field counts these.
pub const SECTOR: u64 = 512;
/// Header `gdOffset` meaning "the grain directory is found through the footer".
pub const GD_AT_END: u64 = u64::MAX;

/// KDMV flag: valid newline test.
pub const FLAG_NL_TEST: u32 = 1 << 0;
/// KDMV flag: redundant grain directory in use.
pub const FLAG_RGD: u32 = 1 << 1;
/// KDMV flag: GTE 1 means a zeroed grain.
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
/// KDMV flag: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// KDMV flag: stream markers present.
pub const FLAG_MARKERS: u32 = 1 << 17;
/// Compression algorithm: deflate (zlib stream).
pub const COMPRESS_DEFLATE: u16 = 1;

/// Stream marker type: end of stream.
pub const MARKER_EOS: u32 = 0;
/// Stream marker type: grain table.
pub const MARKER_GT: u32 = 1;
/// Stream marker type: grain directory.
pub const MARKER_GD: u32 = 2;
/// Stream marker type: footer.
pub const MARKER_FOOTER: u32 = 3;

/// Grain table entries in a COWD extent (fixed).
pub const COWD_GT_ENTRIES: u64 = 4096;
/// seSparse grain size QEMU accepts (sectors).
pub const SESPARSE_GRAIN_SECTORS: u64 = 8;
/// seSparse grain-table size QEMU accepts (sectors).
pub const SESPARSE_GT_SECTORS: u64 = 64;

/// QEMU's limit on KDMV `numGTEsPerGT`.
pub const MAX_GTES_PER_GT: u64 = 512;
/// QEMU's limit on the grain size (sectors).
pub const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// QEMU's limit on grain-directory entries.
pub const MAX_GD_ENTRIES: u64 = 32 * 1024 * 1024;
/// Largest descriptor read (QEMU reads at most 1 MiB − 1).
pub const MAX_DESCRIPTOR_BYTES: u64 = 1024 * 1024;
/// Most extent lines in a descriptor.
pub const MAX_EXTENTS: usize = 4096;
/// Highest KDMV version.
pub const MAX_VERSION: u32 = 3;

/// Bytes of the grain directory read at a time.
pub const GD_READ_PIECE: u64 = 1024 * 1024;
/// Grain tables kept in the cache, per extent.
pub const GT_CACHE_TABLES: usize = 4096;
/// Bytes of grain tables kept in the cache, per extent (tables are held as 8-byte
/// entries: 4096 KDMV tables of 512 entries, or 512 seSparse tables of 4096).
pub const GT_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of decompressed grains kept in the cache, per extent.
pub const GRAIN_CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest grain of a compressed extent (each partial read inflates one whole grain).
pub const MAX_COMPRESSED_GRAIN_BYTES: u64 = 32 * 1024 * 1024;
