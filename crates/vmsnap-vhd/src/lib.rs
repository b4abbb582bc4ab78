//! VHD (Virtual PC, Hyper-V gen-1) disk images for vmsnap.
//!
//! * **fixed** disks: raw data and a single footer at the end of the file (found through
//!   the probe's tail window);
//! * **dynamic** disks: a footer copy at 0, a dynamic header, a BAT of blocks;
//! * **differencing** disks: dynamic disks over a parent named by parent locators. The
//!   parent is opened only through the external-reference policy, and only when its unique
//!   id matches the one recorded; otherwise the blocks it would supply are unavailable
//!   (reads fail unless the resolver opted into zeros) and an unsafe `parent` finding is
//!   recorded.
//!
//! The virtual size follows qemu-img 10 (CHS for the `vpc ` and `qemu` creators, the
//! footer's current size otherwise); set option `vhd.force_size_calc` to `chs` or
//! `current_size` to override. A bad footer checksum or disagreeing footer copies are
//! `footer` findings, not open failures.

mod layer;
mod parent;
mod plugin;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;

pub use layer::{Subformat, Vhd, OPT_FORCE_SIZE};
pub use plugin::{probe, PLUGIN};

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use raw::Footer;

vmsnap_core::register_plugin!(PLUGIN);
