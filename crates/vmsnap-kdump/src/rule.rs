//! The rule ids of the findings only kdump-compressed dumps report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// Dumped pages missing from the bitmap of existing pages.
pub const BITMAPS: &str = "bitmaps";
/// The dump is marked incomplete (its writer ran out of space).
pub const INCOMPLETE: &str = "incomplete";
/// One part of a split dump; the other parts are separate files.
pub const SPLIT: &str = "split";
/// Pages compressed with a method this build cannot read.
pub const COMPRESSION: &str = "compression";
