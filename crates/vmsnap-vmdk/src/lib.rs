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

mod cache;
mod descriptor;
mod header;
mod layer;
mod plugin;
pub mod raw;
pub mod rule;
mod sparse;

pub use descriptor::Descriptor;
pub use layer::{Container, Vmdk};
pub use plugin::PLUGIN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use descriptor::{Access, ExtentLine};
pub use header::{CowdHeader, Marker, SparseHeader};
pub use sparse::{Flavor, GrainCursor, Loc, SparseExtent};

vmsnap_core::register_plugin!(PLUGIN);
