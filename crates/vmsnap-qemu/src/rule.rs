//! The rule ids of the findings only QEMU migration streams and libvirt save images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// Pages sent more than once; the last copy is used.
pub const RESENT_PAGES: &str = "resent_pages";
/// No vmdesc trailer: device sections were skipped by a footer scan, no CPU state.
pub const VMDESC: &str = "vmdesc";
/// A libvirt save image marked incomplete.
pub const INCOMPLETE: &str = "incomplete";
/// An iterative section skipped by the footer scan.
pub const DEVICE_SECTION: &str = "device_section";
