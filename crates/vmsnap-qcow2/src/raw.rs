//! On-disk layout of qcow2: magic, header offsets, feature bits, extension types and
//! table-entry masks (`docs/interop/qcow2.rst`). All integers are big-endian.

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Length of the fixed version-2 header.
pub const V2_HEADER_LEN: u32 = 72;
/// Smallest valid version-3 header length.
pub const V3_MIN_HEADER_LEN: u32 = 104;
/// Length of the qcow (version 1) header.
pub const V1_HEADER_LEN: u32 = 48;

/// Incompatible feature: refcounts may be stale.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Incompatible feature: the image is corrupt and must not be written.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature: guest data lives in an external data file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature: the compression-type header field is non-zero.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature: extended (128-bit) L2 entries with subclusters.
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Every incompatible bit this reader understands.
pub const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/// Compatible feature: lazy refcounts.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;
/// Autoclear feature: the bitmaps extension is consistent.
pub const AUTOCLEAR_BITMAPS: u64 = 1 << 0;
/// Autoclear feature: the external data file is a valid raw image.
pub const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;

/// Header extension: end of the extension area.
pub const EXT_END: u32 = 0;
/// Header extension: backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;
/// Header extension: feature name table.
pub const EXT_FEATURE_TABLE: u32 = 0x6803_F857;
/// Header extension: bitmaps.
pub const EXT_BITMAPS: u32 = 0x2385_2875;
/// Header extension: full-disk-encryption header pointer.
pub const EXT_CRYPTO: u32 = 0x0537_BE77;
/// Header extension: external data file name (`DATA`).
pub const EXT_DATA_FILE: u32 = 0x4441_5441;

/// crypt_method: none.
pub const CRYPT_NONE: u32 = 0;
/// crypt_method: legacy AES-CBC.
pub const CRYPT_AES: u32 = 1;
/// crypt_method: LUKS.
pub const CRYPT_LUKS: u32 = 2;

/// compression_type: raw deflate ("zlib" in QEMU).
pub const COMPRESSION_ZLIB: u8 = 0;
/// compression_type: zstd.
pub const COMPRESSION_ZSTD: u8 = 1;

/// L1 entry: L2 table offset.
pub const L1E_OFFSET_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;
/// L1 entry: reserved bits.
pub const L1E_RESERVED_MASK: u64 = 0x7F00_0000_0000_01FF;
/// L2 entry: host cluster offset.
pub const L2E_OFFSET_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;
/// L2 entry: COPIED flag (refcount == 1).
pub const OFLAG_COPIED: u64 = 1 << 63;
/// L2 entry: compressed cluster.
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// L2 entry: zero cluster (standard L2 only).
pub const OFLAG_ZERO: u64 = 1;
/// Extended L2 bitmap: every "allocated" bit.
pub const L2_BITMAP_ALL_ALLOC: u64 = 0xFFFF_FFFF;
/// Subclusters per cluster with extended L2.
pub const SUBCLUSTERS: u64 = 32;
/// Compressed data is addressed in 512-byte sectors.
pub const COMPRESSED_SECTOR: u64 = 512;

/// Bytes of a snapshot table entry before its extra data.
pub const SNAPSHOT_HEADER_LEN: u64 = 40;
/// Bytes of one feature-name-table entry.
pub const FEATURE_ENTRY_LEN: usize = 48;
/// Bytes of a bitmap directory entry before its extra data and name.
pub const BITMAP_ENTRY_LEN: u64 = 24;

/// Field offsets in the header.
pub mod off {
    /// version (u32).
    pub const VERSION: usize = 4;
    /// backing_file_offset (u64).
    pub const BACKING_OFFSET: usize = 8;
    /// backing_file_size (u32).
    pub const BACKING_SIZE: usize = 16;
    /// cluster_bits (u32).
    pub const CLUSTER_BITS: usize = 20;
    /// size (u64).
    pub const SIZE: usize = 24;
    /// crypt_method (u32).
    pub const CRYPT: usize = 32;
    /// l1_size (u32).
    pub const L1_SIZE: usize = 36;
    /// l1_table_offset (u64).
    pub const L1_OFFSET: usize = 40;
    /// refcount_table_offset (u64).
    pub const REFCOUNT_OFFSET: usize = 48;
    /// refcount_table_clusters (u32).
    pub const REFCOUNT_CLUSTERS: usize = 56;
    /// nb_snapshots (u32).
    pub const NB_SNAPSHOTS: usize = 60;
    /// snapshots_offset (u64).
    pub const SNAPSHOTS_OFFSET: usize = 64;
    /// incompatible_features (u64, v3).
    pub const INCOMPAT: usize = 72;
    /// compatible_features (u64, v3).
    pub const COMPAT: usize = 80;
    /// autoclear_features (u64, v3).
    pub const AUTOCLEAR: usize = 88;
    /// refcount_order (u32, v3).
    pub const REFCOUNT_ORDER: usize = 96;
    /// header_length (u32, v3).
    pub const HEADER_LENGTH: usize = 100;
    /// compression_type (u8, v3 with header_length > 104).
    pub const COMPRESSION_TYPE: usize = 104;
}
