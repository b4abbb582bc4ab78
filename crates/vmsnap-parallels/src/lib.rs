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
//! let ctx = OpenCtx::new(&r, &reg, &o);
//! let disk = vmsnap_parallels::Parallels::open(lower, &ctx)?;
//! let mut sector = [0u8; 512];
//! disk.read_at(0, &mut sector)?;
//! # Ok::<(), vmsnap_core::Error>(())
//! ```

mod bat;
mod ext;
mod header;
mod layer;
pub mod rule;
// Public for the tests' image builder, which signs its extensions the same way.
#[doc(hidden)]
pub mod md5;
mod plugin;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;

pub use header::Header;
pub use layer::Parallels;
pub use plugin::PLUGIN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use bat::Bat;
pub use ext::{DirtyBitmap, Extension, UnknownFeature};
pub use header::Variant;

vmsnap_core::register_plugin!(PLUGIN);
