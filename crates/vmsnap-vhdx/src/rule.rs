//! The rule ids of the findings only VHDX images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A header copy that is not valid.
pub const HEADER: &str = "header";
/// A region table copy that is not valid.
pub const REGION_TABLE: &str = "region_table";
/// A log that needs replay; the writes are replayed in memory.
pub const LOG: &str = "log";
/// An unknown optional metadata item.
pub const METADATA: &str = "metadata";
/// A virtual size that is not a multiple of the logical sector size.
pub const VIRTUAL_SIZE: &str = "virtual_size";
