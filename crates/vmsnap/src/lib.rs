//! vmsnap: open what hypervisors leave on disk as address spaces you can read at any
//! offset. This facade links every enabled format crate (one cargo feature each, all on by
//! default) so that their plugins register, and re-exports them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap::core::{ExternalPolicy, FileLayer, Layer, Options, Resolver};
//!
//! let registry = vmsnap::registry().unwrap();
//! let resolver = Resolver::new(ExternalPolicy::SameDir);
//! let options = Options::new();
//! let file = Arc::new(FileLayer::open("disk.qcow2").unwrap());
//! let stack = vmsnap::stack::Stacker::new(&registry, &resolver, &options).stack(file);
//! let top = stack.default_selection();
//! let mut first_sector = [0u8; 512];
//! top.layer.read_at(0, &mut first_sector).unwrap();
//! ```

pub use vmsnap_core as core;
pub use vmsnap_inspect as inspect;
pub use vmsnap_stack as stack;

// Naming each crate is what links it, and so registers its plugins.
#[cfg(feature = "asif")]
pub use vmsnap_asif as asif;
#[cfg(feature = "avml")]
pub use vmsnap_avml as avml;
#[cfg(feature = "elf")]
pub use vmsnap_elf as elf;
#[cfg(feature = "hdd")]
pub use vmsnap_hdd as hdd;
#[cfg(feature = "hyperv")]
pub use vmsnap_hyperv as hyperv;
#[cfg(feature = "kdump")]
pub use vmsnap_kdump as kdump;
#[cfg(feature = "lime")]
pub use vmsnap_lime as lime;
#[cfg(feature = "ovf")]
pub use vmsnap_ovf as ovf;
#[cfg(feature = "parallels")]
pub use vmsnap_parallels as parallels;
#[cfg(feature = "pvs")]
pub use vmsnap_pvs as pvs;
#[cfg(feature = "qcow2")]
pub use vmsnap_qcow2 as qcow2;
#[cfg(feature = "qed")]
pub use vmsnap_qed as qed;
#[cfg(feature = "qemu")]
pub use vmsnap_qemu as qemu;
#[cfg(feature = "vbox")]
pub use vmsnap_vbox as vbox;
#[cfg(feature = "vdi")]
pub use vmsnap_vdi as vdi;
#[cfg(feature = "vhd")]
pub use vmsnap_vhd as vhd;
#[cfg(feature = "vhdx")]
pub use vmsnap_vhdx as vhdx;
#[cfg(feature = "vma")]
pub use vmsnap_vma as vma;
#[cfg(feature = "vmdk")]
pub use vmsnap_vmdk as vmdk;
#[cfg(feature = "vmware")]
pub use vmsnap_vmware as vmware;
#[cfg(feature = "vmx")]
pub use vmsnap_vmx as vmx;
#[cfg(feature = "windump")]
pub use vmsnap_windump as windump;
#[cfg(feature = "x86")]
pub use vmsnap_x86 as x86;
#[cfg(feature = "xen")]
pub use vmsnap_xen as xen;

/// Every plugin linked into this program, sorted by (priority, name).
pub fn registry() -> vmsnap_core::Result<vmsnap_core::Registry> {
    vmsnap_core::Registry::from_inventory()
}

/// What streaming inspection must keep beyond the head, per enabled format that keeps
/// metadata past its first MiBs.
#[allow(clippy::vec_init_then_push)]
pub fn stream_hints() -> Vec<vmsnap_inspect::RegionHint> {
    #[allow(unused_mut)]
    let mut v: Vec<vmsnap_inspect::RegionHint> = Vec::new();
    #[cfg(feature = "vhdx")]
    v.push(vmsnap_vhdx::stream_regions);
    v
}

/// The plugin names the enabled features provide, sorted.
#[allow(clippy::vec_init_then_push)]
pub fn expected_plugin_names() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static str> = Vec::new();
    #[cfg(feature = "x86")]
    v.push("x86");
    #[cfg(feature = "qcow2")]
    v.extend(["qcow", "qcow2"]);
    #[cfg(feature = "parallels")]
    v.push("parallels");
    #[cfg(feature = "qed")]
    v.push("qed");
    #[cfg(feature = "vdi")]
    v.push("vdi");
    #[cfg(feature = "lime")]
    v.push("lime");
    #[cfg(feature = "elf")]
    v.push("elf-core");
    #[cfg(feature = "qemu")]
    v.push("qemu");
    #[cfg(feature = "qemu")]
    v.push("qemu-mapped-ram");
    #[cfg(feature = "qemu")]
    v.push("libvirt-save");
    #[cfg(feature = "vhdx")]
    v.push("vhdx");
    #[cfg(feature = "vhd")]
    v.push("vhd");
    #[cfg(feature = "hyperv")]
    v.push("hyperv-vmcx");
    #[cfg(feature = "hyperv")]
    v.push("hyperv-vmrs-ram");
    #[cfg(feature = "vmdk")]
    v.push("vmdk");
    #[cfg(feature = "vmware")]
    v.push("vmware");
    #[cfg(feature = "kdump")]
    v.push("kdump");
    #[cfg(feature = "xen")]
    v.push("xen");
    #[cfg(feature = "vmx")]
    v.push("vmx");
    #[cfg(feature = "hdd")]
    v.push("hdd");
    #[cfg(feature = "windump")]
    v.push("windump");
    #[cfg(feature = "asif")]
    v.push("asif");
    #[cfg(feature = "vma")]
    v.push("vma");
    #[cfg(feature = "avml")]
    v.push("avml");
    #[cfg(feature = "vbox")]
    v.push("vbox");
    #[cfg(feature = "pvs")]
    v.push("pvs");
    #[cfg(feature = "ovf")]
    v.push("ovf");
    #[cfg(feature = "ovf")]
    v.push("ova");
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered_plugins_are_exactly_the_enabled_features() {
        let reg = super::registry().unwrap();
        let mut names: Vec<&str> = reg.plugins().iter().map(|p| p.name).collect();
        names.sort_unstable();
        assert_eq!(names, super::expected_plugin_names());
    }
}
