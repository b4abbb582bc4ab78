//! The rule ids of the findings only ASIF images report (`check` lists findings by rule).

/// The metadata block could not be read (the disk still reads).
pub const METADATA: &str = "metadata";
