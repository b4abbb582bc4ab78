//! VirtualBox machine settings (`.vbox`) for vmsnap: a `.vbox` file opens the VM.
//!
//! VirtualBox writes one `.vbox` XML file per machine (schema `VirtualBox-settings.xsd`,
//! read by VirtualBox's `Settings.cpp`; the elements read are listed below). This
//! crate reads:
//!
//! - the machine (`Machine`: name, UUID, OS type, current snapshot, snapshot folder,
//!   saved-state file);
//! - the media registry (`MediaRegistry/HardDisks`): each `HardDisk` (UUID, location,
//!   format, type), differencing images nested in their parent;
//! - the hard disks attached in the current state and in every snapshot
//!   (`StorageControllers/StorageController/AttachedDevice type="HardDisk"/Image`), in
//!   `Hardware` (settings 1.17 and later) or beside it (earlier);
//! - the snapshot tree (`Snapshot` with its children in `Snapshots`).
//!
//! The layer is the settings file's own bytes (address space `Metadata`); `describe()`
//! and `meta()` show the VM, and every attached disk is a named child:
//!
//! | child | what |
//! |---|---|
//! | `disk:<bus><port>:<device>` | a disk of the current state, e.g. `disk:sata0:0`, `disk:ide1:0` (secondary master) |
//! | `snapshot:<name>/disk:<bus><port>:<device>` | the same for snapshot `<name>` |
//!
//! `<bus>` is the controller `type`'s bus: `ide` (PIIX3, PIIX4, ICH6), `sata` (AHCI),
//! `scsi` (LsiLogic, BusLogic), `sas` (LsiLogicSas), `nvme`, `usb`, `floppy` (I82078),
//! `virtio` (VirtioSCSI), `other`; `<port>` and `<device>` are the attachment's `port`
//! (SATA port, IDE channel, SCSI target) and `device` (IDE master 0 / slave 1) as
//! VirtualBox numbers them. A name taken twice (two controllers on one bus, two snapshots
//! with one name) gets ` (2)`, ` (3)` … and a `child_name` finding.
//!
//! Every disk file is opened through the external-reference resolver (never `File::open`).
//! VDI chains are the registry's: each VDI's header UUID and parent UUID are checked
//! against the registry, a differencing image is opened with the parent the registry
//! names (not the VDI plugin's search beside the file), and a mismatch is an unsafe
//! `registry` finding, the image not read (its child reads fail where it would supply
//! bytes). Other formats (VMDK, VHD …) are opened by their own plugin, which follows their
//! own parents. What is not opened is stood in for by a layer whose reads fail (zeros under
//! `--missing zeros`). Encrypted media (`CRYPT/KeyId`, `CRYPT/KeyStore`) are recognised and
//! reported, not read. Saved states (`stateFile`, `.sav`: VirtualBox's own saved-state
//! format) are listed in `describe()` and as `configured` references, never read. `check`
//! reports a `.vbox` as unsafe (rule `references`): it is never a self-contained image.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let lower = Arc::new(FileLayer::open("vm/vm.vbox")?);
//! let (r, reg, o) = (Resolver::new(ExternalPolicy::Any), Registry::empty(), Options::new());
//! let vm = vmsnap_vbox::Vbox::open(lower, &OpenCtx::new(&r, &reg, &o))?;
//! for child in vm.children() {
//!     println!("{} {} bytes", child.name, child.layer.len());
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
mod layer;
mod media;
mod plugin;
mod raw;
pub mod rule;
mod time;

pub use config::{canonical_uuid, Attachment, Machine, Medium, Snapshot};
pub use layer::{Disk, Vbox, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
