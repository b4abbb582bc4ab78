//! VirtualBox VDI disk images for vmsnap: static and dynamic images, the block map,
//! `block_extra`, and differencing images, whose parent is found by UUID among the `.vdi`
//! files the external-reference policy allows (see [`parent`]); without it the blocks it
//! supplies are unavailable.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
//!
//! let lower = Arc::new(FileLayer::open("disk.vdi")?);
//! let (r, reg, o) = (Resolver::default(), Registry::empty(), Options::new());
//! let ctx = OpenCtx::new(&r, &reg, &o);
//! let vdi = vmsnap_vdi::Vdi::open(lower, &ctx)?;
//! let mut sector = [0u8; 512];
//! vdi.read_at(0, &mut sector)?;
//! # Ok::<(), vmsnap_core::Error>(())
//! ```

mod blockmap;
mod header;
mod layer;
pub mod parent;
mod plugin;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod uuid;

pub use header::Header;
pub use layer::Vdi;
pub use plugin::PLUGIN;
/// The size of the VDI header [`Header::parse`] reads.
pub use raw::HEADER_LEN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use blockmap::{Block, BlockMap};
pub use uuid::Uuid;

vmsnap_core::register_plugin!(PLUGIN);
