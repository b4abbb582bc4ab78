//! Parallels disk images for vmsnap: both signatures (`WithoutFreeSpace`, whose BAT
//! counts sectors, and `WithouFreSpacExt`, whose BAT counts clusters), the BAT, and the
//! format extension cluster with its dirty bitmaps — every feature header and payload
//! bounds-checked (QEMU GitLab #4156) and the MD5 checksum verified.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let lower = Arc::new(FileLayer::open("disk.hds")?);
//! let (r, reg, o) = (Resolver::default(), Registry::empty(), Options::new());
//! let ctx = OpenCtx { resolver: &r, registry: &reg, depth: 0, options: &o };
//! let disk = vmsnap_parallels::Parallels::open(lower, &ctx)?;
//! let mut sector = [0u8; 512];
//! disk.read_at(0, &mut sector)?;
//! # Ok::<(), vmsnap_core::Error>(())
//! ```

pub mod bat;
pub mod ext;
pub mod header;
pub mod layer;
pub mod md5;
pub mod plugin;
pub mod raw;

pub use header::Header;
pub use layer::Parallels;
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
