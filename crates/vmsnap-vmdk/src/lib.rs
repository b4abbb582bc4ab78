//! VMware VMDK disks for vmsnap.
//!
//! * Hosted sparse extents (`KDMV`): monolithicSparse, twoGbMaxExtentSparse extents,
//!   streamOptimized (zlib grains with markers, GD_AT_END footer).
//! * Text descriptors: monolithicFlat, twoGbMaxExtentFlat/Sparse, vmfs, vmfsSparse,
//!   seSparse, custom; extents FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE.
//! * VMDK3 `COWD` and seSparse extents.
//! * Parents (`parentFileNameHint`, `parentCID`) and extents are external references,
//!   opened only through the caller's [`vmsnap_core::Resolver`]; one that is not opened is
//!   unavailable (reads of what it supplies fail unless the resolver opted into zeros).

pub mod cache;
pub mod descriptor;
pub mod header;
pub mod layer;
pub mod plugin;
pub mod raw;
pub mod sparse;

pub use descriptor::Descriptor;
pub use layer::{Container, Vmdk};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
