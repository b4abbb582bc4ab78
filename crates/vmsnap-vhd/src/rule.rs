//! The rule ids of the findings only VHD images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A damaged or missing footer (only one copy usable).
pub const FOOTER: &str = "footer";
/// The virtual size was derived from the CHS geometry, not `current_size`.
pub const VIRTUAL_SIZE: &str = "virtual_size";
/// A dynamic header whose checksum does not verify.
pub const DYNAMIC_HEADER: &str = "dynamic_header";
/// BAT entries pointing into the footer copy, dynamic header or BAT.
pub const BAT: &str = "bat";
