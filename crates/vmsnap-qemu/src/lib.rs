//! vmsnap-qemu: QEMU migration / savevm streams, mapped-ram files and libvirt save images
//! as guest-physical memory.
//!
//! * [`PLUGIN`] (`qemu`): QEVM v3 streams (`migrate file:`, `savevm` VM state, …). The
//!   stream is scanned once without copying page data; every page becomes a segment of a
//!   core [`vmsnap_core::SegmentMap`] pointing into the stream (a page sent twice reads as
//!   its last copy). Device sections are skipped exactly by their vmdesc field sizes.
//! * [`MAPPED_RAM_PLUGIN`] (`qemu-mapped-ram`): mapped-ram files, read from the per-block
//!   bitmaps without a page scan.
//! * [`LIBVIRT_PLUGIN`] (`libvirt-save`): the libvirt wrapper; exposes the embedded stream
//!   as a Stream-space layer the stream plugins stack on.
//!
//! Each RAM block is a child layer `ram:<name>`; the main layer places the main block by
//! machine type (option `qemu.ram-below-4g` overrides); [`vmsnap_core::Layer::cpu_state`]
//! returns the vCPU registers from the vmdesc-described `cpu` sections.

mod cpu;
mod cursor;
mod layer;
mod layout;
mod libvirt;
mod pages;
mod plugin;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod stream;
mod vmdesc;

pub use layer::{QemuMemory, RamBlock, RamBlockLayer, OPT_RAM_BELOW_4G};
pub use libvirt::LibvirtSave;
pub use plugin::{LIBVIRT_PLUGIN, MAPPED_RAM_PLUGIN, PLUGIN};

vmsnap_core::register_plugin!(PLUGIN);
vmsnap_core::register_plugin!(MAPPED_RAM_PLUGIN);
vmsnap_core::register_plugin!(LIBVIRT_PLUGIN);
