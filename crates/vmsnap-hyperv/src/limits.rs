//! Limits specific to the Hyper-V storage format, on top of `vmsnap_core::limits`.

/// Most pending replay-log entries applied.
pub const MAX_LOG_ENTRIES: u64 = 1 << 16;
/// Most bytes of pending replay-log data held in memory.
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// Most object tables followed through chaining.
pub const MAX_OBJECT_TABLES: usize = 1 << 16;
/// Most objects listed across all object tables.
pub const MAX_OBJECTS: usize = 1 << 22;
/// Largest key table read.
pub const MAX_KEY_TABLE_BYTES: u64 = 16 << 20;
/// Most key table bytes read in total.
pub const MAX_KEY_BYTES_TOTAL: u64 = 1 << 30;
/// Most keys held.
pub const MAX_KEYS: usize = 1 << 23;
/// Deepest key tree kept (deeper keys are reported as orphans).
pub const MAX_KEY_DEPTH: usize = 64;
/// Largest file-object string loaded at open.
pub const MAX_STRING_BYTES: u64 = 16 << 20;
/// Largest file-object array rendered in `meta()` (bigger ones are shown by reference).
pub const MAX_META_ARRAY_BYTES: u64 = 64 << 10;
/// Largest `partition_state` blob parsed.
pub const MAX_PARTITION_STATE_BYTES: u64 = 64 << 20;
/// Most chunks parsed in `partition_state`.
pub const MAX_STATE_CHUNKS: usize = 1 << 16;
/// Largest guest-physical address space built (2^52, the x86-64 architectural maximum).
pub const MAX_GUEST_BYTES: u64 = 1 << 52;
/// Decoded RAM blocks kept in the cache (1 MiB each).
pub const RAM_CACHE_BLOCKS: usize = 32;
/// Page indexes of compressed RAM blocks kept for page-by-page reads (3 KiB each, so
/// 3 MiB: random reads over 1 GiB of compressed RAM walk each block's records once).
pub const RAM_INDEX_BLOCKS: usize = 1024;
/// Fewest compressed blocks kept decoded ahead of a sequential reader (more with more
/// cores, at most a quarter of [`RAM_CACHE_BLOCKS`], so the blocks decoded ahead
/// survive in the cache until read even with a few sequential readers at once).
pub const RAM_READ_AHEAD_BLOCKS: usize = 8;
/// Sequential read streams tracked at once (readers interleaving reads of their own
/// ranges, as a parallel convert does).
pub const RAM_READ_STREAMS: usize = 8;
/// Most file-object string bytes (as stored, UTF-16LE) decoded when a container is
/// opened, in total. The budget is also at most the file's size: file objects do not
/// overlap in a sound file, so only keys pointing many times at the same bytes reach
/// it. Strings past it stay [`crate::Value::DeferredString`], with a finding.
pub const MAX_STRING_BYTES_TOTAL: u64 = 64 << 20;
/// Most file-object array bytes rendered by one `meta()` (also at most the file's size);
/// arrays past it are shown by reference, marked `deferred`.
pub const MAX_META_ARRAY_BYTES_TOTAL: u64 = 64 << 20;
/// Most `RamMemoryBlock`s listed in the RAM layer's `describe()` (each is about 1 KiB
/// of JSON; a file may hold millions). Past it the list stops and `ram_blocks_total`
/// gives the count.
pub const MAX_DESCRIBED_RAM_BLOCKS: usize = 1024;
