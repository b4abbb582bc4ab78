//! QEMU Enhanced Disk (QED) images for vmsnap: the header, L1/L2 tables (read through a
//! bounded cache), zero clusters, the need-check flag, and the backing file — opened only
//! through the external-reference policy.
//!
//! QED is deprecated and banned by OpenStack's format inspector; every open records an
//! Unsafe `qed` finding, but reading is fully supported.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let lower = Arc::new(FileLayer::open("disk.qed")?);
//! let (r, reg, o) = (Resolver::default(), Registry::empty(), Options::new());
//! let ctx = OpenCtx::new(&r, &reg, &o);
//! let qed = vmsnap_qed::Qed::open(lower, &ctx)?;
//! let mut sector = [0u8; 512];
//! qed.read_at(0, &mut sector)?;
//! # Ok::<(), vmsnap_core::Error>(())
//! ```

mod header;
mod layer;
mod plugin;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod table;

pub use header::Header;
pub use layer::Qed;
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
