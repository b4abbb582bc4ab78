//! The rule ids of the findings only VMware checkpoints (`.vmss`/`.vmsn`) report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A group table entry that does not decode.
pub const GROUP_TABLE: &str = "group_table";
/// A group with no terminating null tag.
pub const TAG_STREAM: &str = "tag_stream";
/// The declared vCPU count differs from the registers found.
pub const CPU_STATE: &str = "cpu_state";
/// Memory region tags that cannot be used; memory read as one run.
pub const MEMORY: &str = "memory";
/// Compressed guest memory that cannot be read.
pub const COMPRESSED_MEMORY: &str = "compressed_memory";
