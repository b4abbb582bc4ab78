//! On-disk constants of AVML images and this crate's limits.
//!
//! The range header is avml's `src/image.rs` (`Header::read`/`encode`, `Format::{LIME_MAGIC,
//! AVML_MAGIC}`): four little-endian fields, magic and version (u32), first address and
//! **inclusive** last address (u64), then 8 padding bytes avml requires to be zero.
//! Version 1 (`LiME` magic) ranges carry their bytes as is; version 2 (`AVML` magic)
//! ranges carry a snappy *framed* stream of them (avml's `src/io/snappy.rs`,
//! `SnapCountWriter`: `snap::write::FrameEncoder`) followed by the stream's length as a
//! little-endian u64. The framing is google/snappy's `framing_format.txt`.

/// Magic of a version-1 (uncompressed, LiME) range: `0x4C694D45`, file bytes "EMiL".
pub const LIME_MAGIC: u32 = 0x4C69_4D45;
/// Version of a LiME range.
pub const LIME_VERSION: u32 = 1;
/// Magic of a version-2 (snappy-compressed) range: `0x4C4D5641`, file bytes "AVML".
pub const AVML_MAGIC: u32 = vmsnap_lime::head::AVML_MAGIC;
/// Version of an AVML compressed range.
pub const AVML_VERSION: u32 = 2;
/// Size of a range header (both versions).
pub const HEADER_SIZE: u64 = 32;
/// Offset of the first address in a range header.
pub const START_AT: usize = 8;
/// Offset of the inclusive last address in a range header.
pub const END_AT: usize = 16;
/// Offset of the padding in a range header.
pub const PADDING_AT: usize = 24;
/// Size of the little-endian compressed length that follows a version-2 range's stream.
pub const TRAILER_SIZE: u64 = 8;

/// Size of a framing chunk header: the type byte and a 24-bit little-endian length.
pub const CHUNK_HEADER: u64 = 4;
/// Size of the masked CRC-32C that starts compressed and uncompressed chunks.
pub const CHUNK_CRC: u64 = 4;
/// Chunk type: compressed data (CRC of the uncompressed data, then a snappy block).
pub const CHUNK_COMPRESSED: u8 = 0x00;
/// Chunk type: uncompressed data (CRC, then the bytes).
pub const CHUNK_UNCOMPRESSED: u8 = 0x01;
/// Chunk type: padding (skipped).
pub const CHUNK_PADDING: u8 = 0xFE;
/// Chunk type: the stream identifier (body [`STREAM_BODY`]).
pub const CHUNK_STREAM_ID: u8 = 0xFF;
/// Body of the stream identifier chunk.
pub const STREAM_BODY: &[u8] = b"sNaPpY";
/// First reserved unskippable chunk type (a reader must stop on them).
pub const UNSKIPPABLE_FIRST: u8 = 0x02;
/// Last reserved unskippable chunk type.
pub const UNSKIPPABLE_LAST: u8 = 0x7F;
/// First reserved skippable chunk type (skipped like padding).
pub const SKIPPABLE_FIRST: u8 = 0x80;
/// Last reserved skippable chunk type.
pub const SKIPPABLE_LAST: u8 = 0xFD;
/// Most bytes one chunk decodes to (the framing format's limit: 65 536).
pub const MAX_CHUNK_DECODED: u64 = 1 << 16;
/// Most bytes of a compressed chunk's body: the CRC and snappy's worst case for a
/// 64 KiB block (`max_compress_len(65536)` = 76 490, snap's `MAX_COMPRESS_BLOCK_SIZE`).
pub const MAX_COMPRESSED_BODY: u64 = CHUNK_CRC + 76_490;
/// Added to the rotated CRC-32C to mask it (the framing format's `mask`).
pub const CRC_MASK_DELTA: u32 = 0xA282_EAD8;
/// Bytes read at a chunk's start while indexing: header, CRC and the snappy block's
/// varint length (at most 5 bytes).
pub const CHUNK_PEEK: u64 = CHUNK_HEADER + CHUNK_CRC + 5;

/// Most ranges accepted.
pub const MAX_RANGES: u64 = vmsnap_core::limits::MAX_ITEMS;
/// Largest guest-physical address space accepted (x86-64's architectural MAXPHYADDR).
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Most data chunks indexed in one file: the index (24 bytes a chunk) stays within
/// [`vmsnap_core::limits::MAX_TABLE_BYTES`]; 11 M chunks of 64 KiB are 680 GiB of memory.
pub const MAX_CHUNKS: u64 = vmsnap_core::limits::MAX_TABLE_BYTES / 24;
/// Decoded chunks kept (direct-mapped by chunk number: 16 × 64 KiB = 1 MiB).
pub const CACHE_SLOTS: usize = 16;
/// Most ranges listed one by one in `describe()`.
pub const MAX_LISTED_RANGES: usize = 1024;
