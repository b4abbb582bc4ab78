//! vmsnap-vma: Proxmox VMA backup archives.
//!
//! `vzdump` (Proxmox VE's backup tool) writes a VM's backup as one VMA archive: a header
//! holding the VM's configuration files (`qemu-server.conf`, `qemu-server.fw`) and a table
//! of up to 255 devices (name and size), then extents of up to 59 64 KiB clusters of any
//! devices, in the order the backup jobs produced them, each cluster storing only its
//! non-zero 4 KiB blocks. The layout is pve-qemu's `vma_spec.txt`; what is accepted and
//! refused follows `vma-reader.c` (the reader `vma extract` uses): see `src/scan.rs` and
//! docs/references.md.
//!
//! The archive opens as the layer `vma` (plugin kind `vm`, address space metadata) that
//! reads as the archive file's own bytes, like a Hyper-V `.vmcx`: `vmsnap convert` without
//! `--layer` copies the archive. Each device is a named child layer:
//!
//! - `disk:<device name>` (`disk:drive-scsi0`, `disk:drive-efidisk0`): a guest disk, so
//!   disk formats stack on it;
//! - `memory`: the device named `vmstate` (the VM's saved state, a QEMU stream).
//!
//! Zero blocks read as zeros (`map` shows them as `zero`); clusters no extent holds (a
//! backup cut short) are `unavailable` in `map` and fail to read. `meta` shows the uuid,
//! backup time, the configuration files (`qemu-server.conf` as text) and the devices with
//! their stored bytes; `meta --extract qemu-server.conf` writes a configuration file.
//! The header's and every extent header's MD5 are checked: a mismatch is a finding.
//! Compressed archives (`.vma.zst`, `.vma.lzo`, `.vma.gz`) are recognised and refused with
//! an error saying to decompress them first.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let vma = vmsnap_vma::Vma::open_layer(Arc::new(FileLayer::open("backup.vma")?))?;
//! let disk = &vma.devices()[0];
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

mod device;
mod header;
mod layer;
pub mod md5;
mod plugin;
pub mod raw;
pub mod rule;
mod scan;

pub use device::{VmaDevice, DEVICE_LAYER};
pub use header::{uuid_text, Config, Device, Header};
pub use layer::{child_name, Vma, NAME};
pub use plugin::PLUGIN;
pub use scan::Cluster;

vmsnap_core::register_plugin!(PLUGIN);
