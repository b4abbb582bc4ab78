//! qcow2 reader for vmsnap: versions 2 and 3, every header extension, L1/L2 translation
//! with a bounded L2 cache, extended L2 entries (subclusters), zero clusters, compressed
//! clusters (deflate and zstd, bounded to one cluster), backing chains and external data
//! files through the external-reference policy, and internal snapshots with their VM
//! state as layers.
//!
//! Decisions worth knowing:
//! * A backing file the policy denies (or that fails to open) is unavailable: reads of
//!   unallocated clusters fail with `Unavailable` (zeros only under
//!   `MissingPolicy::Zeros`), with an Unsafe `backing_file` finding;
//!   `describe()["backing"]` says which.
//! * A denied or missing external data file is unavailable the same way for data
//!   clusters; metadata, zero and unallocated ranges still read.
//! * Encrypted images (AES or LUKS) open: `describe()` and `findings()` work, reading an
//!   allocated cluster fails with `Unsupported`.
//! * Data clusters past the end of the file read as zeros, as QEMU's block layer does.
//! * qcow v1 is detected by the probe and refused by `open` with `Unsupported`, naming
//!   it `qcow`.
//! * The virtual size is rounded down to whole 512-byte sectors, as QEMU does.
//! * Children: `snapshot:<id>` is the snapshot's disk (its recorded `disk_size`; note that
//!   `qemu-img convert -l` keeps the current size instead) and `vmstate:<id>` the QEMU
//!   migration stream of `vm_state_size` bytes stored at guest offset
//!   `ceil(disk_size / (cluster_size * l2_entries)) * cluster_size * l2_entries`, read
//!   through the snapshot's L1 table (`qcow2_vm_state_offset`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//! use vmsnap_qcow2::{Qcow2, PLUGIN};
//!
//! let reg = Registry::empty().with(&PLUGIN).unwrap();
//! let resolver = Resolver::new(ExternalPolicy::SameDir);
//! let options = Options::new();
//! let ctx = OpenCtx::new(&resolver, &reg, &options);
//! let img = Qcow2::open(Arc::new(FileLayer::open("disk.qcow2").unwrap()), &ctx).unwrap();
//! let mut buf = [0u8; 512];
//! img.read_at(0, &mut buf).unwrap();
//! ```

mod cache;
mod checks;
mod compress;
mod header;
mod image;
mod layer;
mod limits;
mod open;
mod plugin;
mod qcow1;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod snapshot;

pub use layer::{Qcow2, SnapshotLayer};
pub use plugin::PLUGIN;
pub use qcow1::{Qcow1, PLUGIN as QCOW1_PLUGIN};

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use header::{BitmapsExt, CryptoExt, Extension, FeatureName, Header};
pub use snapshot::Snapshot;

vmsnap_core::register_plugin!(PLUGIN);
vmsnap_core::register_plugin!(QCOW1_PLUGIN);
