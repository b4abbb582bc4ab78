//! Parallels `.hdd` bundles for vmsnap: a directory holding `DiskDescriptor.xml` and the
//! image files (`*.hds`) it names, as Parallels Desktop and Virtuozzo write them.
//!
//! The descriptor (layout: QEMU's `docs/interop/prl-xml.txt`) lists the disk's
//! *storages* — runs of sectors, `Start`..`End`, a disk split into pieces has several —
//! and, per storage, one *image* per snapshot (`Shot`): `Plain` (raw bytes) or
//! `Compressed` (an expanding Parallels image, read by `vmsnap-parallels`). A snapshot's
//! image is differencing: its unallocated clusters read from the parent snapshot's image
//! of the same storage. The disk in a snapshot is its storages end to end.
//!
//! The plugin opens `DiskDescriptor.xml` (the CLI maps a `.hdd` directory to it). Its
//! layer is the disk in the current state (`TopGUID`, the default top GUID
//! `{5fbaabe3-6958-40ff-92a7-860e329aab41}` when absent), like qcow2's is the active
//! layer; its children name the states, following the contract's `snapshot:<name>`
//! prefix for a single disk:
//!
//! - `disk`: the current state again (not stacked on twice);
//! - `snapshot:<guid>`: every other snapshot, the GUID lowercase without braces
//!   (`--layer snapshot:4f0e2ad4-…`).
//!
//! Every image file is opened through the resolver (the external-reference policy) and
//! listed in `external_refs()`, so `check` reports a descriptor as unsafe; a file not
//! opened reads as unavailable. Encrypted disks (an `Encryption/Engine`) and unknown image
//! types are reported, not read. The descriptor is parsed with `roxmltree` (no DTD), at
//! most 16 MiB and 2^20 nodes, at most 4096 storages, 1024 snapshots and 4096 images.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let xml = Arc::new(FileLayer::open("disk.hdd/DiskDescriptor.xml")?);
//! let (r, reg, o) = (Resolver::new(ExternalPolicy::SameDir), Registry::empty(), Options::new());
//! let ctx = OpenCtx::new(&r, &reg, &o);
//! let disk = vmsnap_hdd::Hdd::open(xml, &ctx)?;
//! let mut sector = [0u8; 512];
//! disk.read_at(0, &mut sector)?;
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

mod concat;
mod descriptor;
mod guid;
mod layer;
mod plugin;
pub mod raw;
pub mod rule;
pub mod xml;

pub use descriptor::{Descriptor, DiskParameters, Image, Shot, Storage};
pub use guid::Guid;
pub use layer::{Hdd, CURRENT, NAME, SNAPSHOT_PREFIX};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
