//! On-disk constants of LiME (Linux Memory Extractor) files and this crate's limits.

/// `LIME_MAGIC` (0x4C694D45), file bytes `45 4D 69 4C` ("EMiL").
pub const LIME_MAGIC: u32 = 0x4C69_4D45;
/// The only range header version LiME writes.
pub const LIME_VERSION: u32 = 1;
/// Size of a range header: magic, version, s_addr, e_addr (inclusive), reserved[8].
pub const HEADER_SIZE: u64 = 32;
/// Most ranges accepted.
pub const MAX_RANGES: u64 = vmsnap_core::limits::MAX_ITEMS;
/// Largest guest-physical address space accepted (x86-64's architectural MAXPHYADDR).
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Most ranges listed one by one in `describe()`.
pub const MAX_LISTED_RANGES: usize = 1024;
