//! The rule ids of the findings only Parallels images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// BAT entries overlapping another cluster's data.
pub const BAT: &str = "bat";
/// A cluster ending past the end of the file; the missing bytes read as zeros.
pub const TRUNCATED: &str = "truncated";
/// An unknown format extension feature.
pub const UNKNOWN_FEATURES: &str = "unknown_features";
/// A `data_off` lying inside the header and BAT.
pub const DATA_OFF: &str = "data_off";
/// The image is marked in use: it was not closed cleanly.
pub const DIRTY: &str = "dirty";
