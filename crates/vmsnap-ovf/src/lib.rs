//! vmsnap-ovf: OVF packages, as a descriptor (`.ovf`, plugin `ovf`) or an archive
//! (`.ova`, plugin `ova`).
//!
//! OVF (DMTF DSP0243 1.x and 2.x; written by VMware ovftool, VirtualBox
//! `VBoxManage export`, and most appliance builders) describes virtual systems in XML:
//! `References/File` (the files, `href`), `DiskSection/Disk` (each disk's file,
//! capacity and format URI), and each `VirtualSystem`'s `VirtualHardwareSection` whose
//! disk drives (`ResourceType` 17; 2.x `StorageItem`s) hang on IDE, SCSI, SATA or NVMe
//! controllers. Opening one opens every drive's disk:
//!
//! - each drive is the inner layer `disk:<bus><n>:<unit>` (`disk:scsi0:0`); how the
//!   name is derived is pinned in [`descriptor`]; a `VirtualSystemCollection` of several
//!   systems prefixes `system:<id>/`;
//! - a `.ovf` opens each file through the resolver (`OpenCtx::follow_disk`, the format
//!   probed among the disk plugins: streamOptimized VMDK, VHD, qcow2, … or raw bytes):
//!   every file is an external reference, so `check` says `references` (unsafe), as for
//!   any VM configuration; a file not opened is a stand-in of the descriptor's capacity
//!   (reads fail unless `--missing zeros`);
//! - an `.ova` is a tar (ustar, GNU or pax) whose first member is the descriptor; each
//!   disk is the member its `href` names, read in place (a window of the archive, opened
//!   by its format plugin): nothing outside the file is opened. An `href` naming no
//!   member is a missing reference (so `references`, unsafe); members that are not
//!   regular files, or whose names are paths, are refused and reported. **An OVA's
//!   verdict** comes from its disks' own findings and the manifest: with every disk a
//!   member it has no references, a manifest digest that does not match (or a listed
//!   file that is not there) is unsafe, no manifest is a warning (nothing to verify, but
//!   nothing wrong either); the certificate is listed, not verified;
//! - the manifest (an OVA's `.mf` member; `<stem>.mf` beside a `.ovf`, a companion
//!   reference when it is there) is verified against the files it lists (SHA-1 and
//!   SHA-256, [`digest`]), at most [`raw::MAX_DIGESTED`] bytes hashed, once per open when
//!   findings are first asked for; no manifest is a warning;
//! - each disk's virtual size is checked against the descriptor's capacity and its
//!   format against the `ovf:format` URI (a mismatch is a finding); compressed
//!   (`ovf:compression="gzip"`) and chunked (`ovf:chunkSize`) files are reported
//!   (`unsupported_file`) and not read: those drives have no layer.
//!
//! The layer itself reads as the file's own bytes (address space `Metadata`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let registry = Registry::from_inventory()?;
//! let (resolver, options) = (Resolver::new(ExternalPolicy::Deny), Options::new());
//! let ctx = OpenCtx::new(&resolver, &registry, &options);
//! let ova = vmsnap_ovf::Ovf::open_ova(Arc::new(FileLayer::open("vm.ova")?), &ctx)?;
//! for c in ova.children() {
//!     println!("{}: {} bytes", c.name, c.layer.len());
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

mod archive;
pub mod descriptor;
pub mod digest;
pub mod manifest;
mod package;
mod plugin;
pub mod raw;
pub mod rule;
pub mod tar;
mod units;
mod xml;

pub use archive::Archive;
pub use descriptor::Descriptor;
pub use layer::{Ovf, NAME, OVA_NAME};
pub use package::{DiskLink, Opened, Package};
pub use plugin::{OVA_PLUGIN, PLUGIN};

mod layer;

vmsnap_core::register_plugin!(PLUGIN);
vmsnap_core::register_plugin!(OVA_PLUGIN);
