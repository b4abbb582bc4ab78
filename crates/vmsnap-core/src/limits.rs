//! Named limits. Every count, size or depth taken from a file is checked against one of
//! these (and against the file's size) before anything is allocated for it.

/// Bytes of the head of a layer a probe sees.
pub const PROBE_HEAD: usize = 64 * 1024;
/// Bytes of the tail of a layer a probe sees.
pub const PROBE_TAIL: usize = 64 * 1024;
/// Longest stream `check` reads (a pipe, a FIFO, a character device, `-`) before it gives
/// up: an endless stream such as `/dev/zero` ends as "could not inspect", not a hang.
pub const MAX_STREAM_BYTES: u64 = 1 << 40;
/// Deepest stack the stacker builds (file → disk → stream → memory → virtual …).
pub const MAX_STACK_DEPTH: usize = 16;
/// Longest chain of backing files, parents or snapshots followed.
pub const MAX_CHAIN_DEPTH: u32 = 16;
/// Largest metadata table (L1, BAT, grain directory, region table …) read into memory.
pub const MAX_TABLE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest number of entries in any table from a file.
pub const MAX_TABLE_ENTRIES: u64 = 64 * 1024 * 1024;
/// Largest virtual size of a disk accepted (qemu's own cap is 2^63; we take 1 EiB).
pub const MAX_VIRTUAL_SIZE: u64 = 1 << 60;
/// Largest text item (descriptor, XML, JSON trailer, configuration) read into memory.
pub const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;
/// Largest number of segments a segment map holds.
pub const MAX_SEGMENTS: usize = 64 * 1024 * 1024;
/// Largest single decompressed unit (cluster, grain, block).
pub const MAX_UNIT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest number of findings kept for one layer (later ones are counted, not kept).
pub const MAX_FINDINGS: usize = 1024;
/// Largest number of snapshots, regions, RAM blocks or similar items listed.
pub const MAX_ITEMS: u64 = 1 << 20;
