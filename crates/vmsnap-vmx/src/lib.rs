//! vmsnap-vmx: a VMware virtual machine, opened from its `.vmx` configuration.
//!
//! A `.vmx` is VMware's "dictionary" text (`key = "value"` lines; the dialect is in
//! [`raw`] and follows dissect.hypervisor's `descriptor/vmx.py`), written by
//! VMware Workstation, Fusion and ESXi. Opening one opens the VM:
//!
//! - every present disk on the `scsi`, `sata`, `ide` and `nvme` buses (`deviceType`
//!   absent or a disk type) is opened through the registry's `vmdk` plugin, so delta
//!   chains (`parentFileNameHint`) and extents follow the external-reference policy, and
//!   becomes the inner layer `disk:<node>` (`disk:scsi0:0`); CD-ROMs and other devices
//!   are listed in `describe`;
//! - `checkpoint.vmState` (the `.vmss` of a suspended VM) is opened through the `vmware`
//!   plugin (which finds the `.vmem` beside it) as the inner layer `memory`;
//! - the snapshot database (`snapshot.fileName`, else `<vmx stem>.vmsd` beside the
//!   `.vmx`) gives, per snapshot, `snapshot:<name>/disk:<node>` and
//!   `snapshot:<name>/memory` (its `.vmsn`); how `<name>` is chosen (display name, else
//!   uid, else the database key) is pinned in [`snapshot`];
//! - an encrypted VM (`encryption.keySafe`, `vmx.encryptedVM`) is recognised and reported
//!   (finding `encrypted`, `describe().encrypted`); nothing is decrypted or opened.
//!
//! Files are opened only through the resolver (`OpenCtx::follow_disk`); each is an
//! external reference, and the configuration always has an unsafe `references` finding
//! (a VM configuration is never "safe raw"). A disk that was not opened has no inner
//! layer (its size is unknown; a stand-in would claim one): `describe` says why.
//! The layer itself is the configuration file's bytes, in the `Metadata` space.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, OpenCtx, Options, Registry, Resolver};
//!
//! let registry = Registry::from_inventory()?;
//! let (resolver, options) = (Resolver::new(ExternalPolicy::SameDir), Options::new());
//! let ctx = OpenCtx::new(&resolver, &registry, &options);
//! let vm = vmsnap_vmx::Vm::open(Arc::new(FileLayer::open("vm/vm.vmx")?), &ctx)?;
//! for d in vm.disks() {
//!     println!("{}: {}", d.node, d.link.reference.decision.describe());
//! }
//! # Ok::<(), vmsnap_core::Error>(())
//! ```
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod device;
mod dict;
mod encryption;
mod plugin;
pub mod raw;
pub mod rule;
pub mod snapshot;
mod vm;

pub use device::{Controller, Device, DeviceKind};
pub use dict::{Dictionary, Entry};
pub use encryption::Encryption;
pub use plugin::PLUGIN;
pub use snapshot::{Snapshot, SnapshotDb, SnapshotDisk};
pub use vm::{Vm, VmDisk, VmSnapshot, NAME};

vmsnap_core::register_plugin!(PLUGIN);
