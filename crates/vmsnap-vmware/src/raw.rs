//! On-disk layout of a VMware checkpoint (`.vmss` suspend state, `.vmsn` snapshot state):
//! magics, the header and group descriptor sizes, the tag word, and this crate's limits.
//!
//! Facts from crash-utility's `vmware_vmss.h` (written at VMware), Volatility 2/3 and
//! Rekall; see `shared/reference/memory-formats.md` §3.

/// `0xbed2bed0`: the form Volatility and Rekall accept; low nibble 0, so 32-bit block sizes.
pub const MAGIC_V0: u32 = 0xbed2_bed0;
/// `0xbed0bed0`: crash's `CPTDUMP_OLD_MAGIC_NUMBER` (32-bit checkpoint).
pub const MAGIC_OLD: u32 = 0xbed0_bed0;
/// `0xbad1bad1`: crash's `CPTDUMP_RESTORED_MAGIC_NUMBER`.
pub const MAGIC_RESTORED: u32 = 0xbad1_bad1;
/// `0xbad2bad2`: crash's `CPTDUMP_NORESTORE_MAGIC_NUMBER`.
pub const MAGIC_NORESTORE: u32 = 0xbad2_bad2;
/// `0xbed2bed2`: crash's `CPTDUMP_MAGIC_NUMBER`.
pub const MAGIC: u32 = 0xbed2_bed2;
/// `0xbed3bed3`: crash's `CPTDUMP_PARTIAL_MAGIC_NUMBER`.
pub const MAGIC_PARTIAL: u32 = 0xbed3_bed3;

/// Every accepted magic with the name shown in `describe()`.
pub const MAGICS: [(u32, &str); 6] = [
    (MAGIC_V0, "checkpoint (version 0)"),
    (MAGIC_OLD, "old checkpoint"),
    (MAGIC_RESTORED, "restored"),
    (MAGIC_NORESTORE, "no-restore"),
    (MAGIC, "checkpoint"),
    (MAGIC_PARTIAL, "partial"),
];

/// Size of the file header: magic, version word, group count.
pub const HEADER_SIZE: u64 = 12;
/// Size of one group descriptor: name\[64\], tags offset u64, size u64.
pub const GROUP_DESC_SIZE: u64 = 80;
/// Bytes of a group name.
pub const GROUP_NAME_LEN: usize = 64;
/// Size of the tag word.
pub const TAG_WORD_SIZE: u64 = 2;
/// Value-size code of an uncompressed block tag.
pub const VALSIZE_BLOCK: u8 = 63;
/// Value-size code of a compressed block tag.
pub const VALSIZE_COMPRESSED: u8 = 62;
/// Guest page size.
pub const PAGE_SIZE: u64 = 4096;

/// Name of the group holding the memory layout.
pub const GROUP_MEMORY: &str = "memory";
/// Name of the group holding CPU state.
pub const GROUP_CPU: &str = "cpu";

/// Whether `magic` is one of the known checkpoint magics.
pub fn magic_name(magic: u32) -> Option<&'static str> {
    MAGICS.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

/// The format version: the low nibble of the magic (Volatility's rule).
pub fn version_of(magic: u32) -> u32 {
    magic & 0xF
}

/// Whether block sizes are 32-bit: version 0 (`0xbed2bed0`, `0xbed0bed0`).
pub fn is_32bit(magic: u32) -> bool {
    version_of(magic) == 0
}

/// Most groups accepted in the group table (real files have a few dozen).
pub const MAX_GROUPS: u64 = 4096;
/// Most tags parsed in one checkpoint, over all groups (an endless stream stops here).
pub const MAX_TAGS: usize = 1 << 20;
/// Most memory regions accepted.
pub const MAX_REGIONS: u64 = 1 << 16;
/// Most vCPUs accepted.
pub const MAX_VCPUS: u64 = 4096;
/// Largest block value shown in full in `meta()`; larger ones (and `Memory`) show their head.
pub const MAX_META_BLOCK: u64 = 16 * 1024;
/// Bytes of a large block's head shown in `meta()`.
pub const META_BLOCK_HEAD: u64 = 64;
/// Largest compressed `Memory` block decoded into memory.
pub const MAX_DECODED_MEMORY: u64 = vmsnap_core::limits::MAX_UNIT_BYTES;
