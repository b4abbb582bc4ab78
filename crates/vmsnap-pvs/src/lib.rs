//! vmsnap-pvs: a Parallels virtual machine, opened from its `config.pvs`.
//!
//! A `.pvm` bundle is a directory that Parallels Desktop (macOS) and Virtuozzo write:
//! `config.pvs` (the VM's XML configuration, root `<ParallelsVirtualMachine>`), one `.hdd`
//! bundle per disk (read by `vmsnap-hdd`), `Snapshots.xml` (the snapshot tree) and
//! `Snapshots/{GUID}.mem`/`.sav` (each snapshot's saved memory and device state). The CLI
//! maps a directory holding `config.pvs` to it. Opening it opens the VM:
//!
//! - every `Hardware/Hdd` that is enabled and an image file (`EmulatedType` 1) is opened
//!   through the `hdd` plugin on `<SystemName>/DiskDescriptor.xml`, so its storages and
//!   snapshots follow the external-reference policy and the chain depth cap, and becomes
//!   the inner layer `disk:<bus>0:<StackIndex>` (`disk:sata0:0`); the bus is the
//!   `InterfaceType` (`PRL_MASS_STORAGE_INTERFACE_TYPE` of OpenVZ libprlsdk's
//!   `PrlEnums.h`: 0 `ide`, 1 `scsi`, 2 `sata`, 3 `virtio`; see [`raw::INTERFACES`]).
//!   Host devices, Boot Camp partitions and disabled disks are listed, never opened. A
//!   disk the policy refused or that is missing has a stand-in of the size `config.pvs`
//!   records (`Size`, MiB): reads fail unless `--missing zeros`.
//! - `Snapshots.xml` (`ParallelsSavedStates`, nested `SavedStateItem`s; the layout
//!   OpenVZ's libvzctl `src/lib/snapshot.c` writes and reads) gives the snapshot tree:
//!   GUID, name, date, description, parent, which one is current. Parallels snapshots
//!   every disk under the VM snapshot's GUID, so a snapshot's disk is the `.hdd` bundle's
//!   snapshot of the same GUID: `snapshot:<name>/disk:<node>` (how `<name>` is chosen is
//!   in [`snapshots`]).
//! - A snapshot's `Snapshots/{GUID}.mem`, `.sav`, `.pvc` and `.png` (memory dump, saved
//!   state, configuration, screenshot) are listed (and are references) when they exist;
//!   their layouts are not publicly documented, so they are not read and there is no
//!   `memory` layer. The names of a suspended VM's own `.sav`/`.mem` (Parallels' user
//!   guides name the extensions only) are in no public source found (prl-disp-service,
//!   libprlsdk, dissect): they are not looked for.
//! - An encrypted VM (an `Encryption` element outside the disks with a key id, an engine
//!   or `Enabled` 1) or disk (`Hdd/Encryption/KeyId`, prlxmlmodel's `CVmHddEncryption`)
//!   is recognised and reported (finding `encrypted`, `describe`): its disks are listed,
//!   not opened.
//!
//! Every file is opened through the resolver (`OpenCtx::follow_disk`/`follow_file`);
//! every `SystemName` is an external reference whether or not it was opened, and the
//! configuration has an unsafe `references` finding (a VM configuration is never "safe
//! raw"). The layer itself is the configuration file's bytes, in the `Metadata` space.
//! Both XML files are parsed with vmsnap-hdd's bounded parser (no DTD, 16 MiB, 2^20
//! nodes); at most 256 disks and 1024 snapshots.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, OpenCtx, Options, Registry, Resolver};
//!
//! let registry = Registry::from_inventory()?;
//! let (resolver, options) = (Resolver::new(ExternalPolicy::VmDir), Options::new());
//! let ctx = OpenCtx::new(&resolver, &registry, &options);
//! let vm = vmsnap_pvs::Vm::open(Arc::new(FileLayer::open("win.pvm/config.pvs")?), &ctx)?;
//! for d in vm.disks() {
//!     println!("{}: {:?}", d.layer_name(), d.device.system_name);
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

mod config;
mod plugin;
pub mod raw;
pub mod rule;
pub mod snapshots;
mod vm;

pub use config::{Config, HddDevice};
pub use plugin::PLUGIN;
pub use snapshots::SavedState;
pub use vm::{SnapshotDisk, Vm, VmDisk, VmSnapshot, NAME};

vmsnap_core::register_plugin!(PLUGIN);
