//! VMware checkpoints for vmsnap: the suspend state (`.vmss`) and snapshot state (`.vmsn`)
//! with their memory — embedded in a `Memory` block or in the companion `.vmem` — as one
//! guest-physical layer, whichever of the files is opened.
//!
//! * Header with every known magic; the version is the magic's low nibble, and version 0
//!   uses 32-bit block sizes.
//! * Groups and tags of every kind: inline values, blocks with their padding, compressed
//!   blocks (recognised; inflated only when verifiably zlib).
//! * Memory regions (`regionsCount`, `regionPPN`, `regionPageNum`, `regionSize`) through
//!   the core segment map; a `.vmem` without regions is identity-mapped.
//! * CPU state per vCPU ([`vmsnap_core::CpuState`], CR3 for the x86 layer).
//! * Every group and tag in [`Layer::meta`](vmsnap_core::Layer::meta); a tag's bytes with
//!   [`Vmware::extract_tag`] or [`extract_tag`] (the screenshot is `MKSVMX/imageData`).

#[cfg(any(test, feature = "builder"))]
pub mod builder;
mod checkpoint;
mod compress;
mod cpu;
mod header;
mod layer;
mod memory;
mod memsrc;
mod meta;
mod open;
mod plugin;
pub mod raw;
pub mod rule;
mod tag;

use std::sync::Arc;

pub use checkpoint::Checkpoint;
pub use cpu::GPREGS;
pub use layer::{Entry, MemorySource, Vmware};
pub use plugin::PLUGIN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use checkpoint::Group;
pub use header::{GroupDesc, Header};
pub use memory::{MemoryInfo, Region};
pub use tag::{Block, Tag, Value};

vmsnap_core::register_plugin!(PLUGIN);

/// The bytes of tag `spec` (`imageData`, `MKSVMX/imageData`, `memory/regionPPN[0]`) in the
/// checkpoint `file` (a `.vmss`/`.vmsn`), at most `limit` bytes; compressed blocks are
/// inflated when verifiably zlib. For `vmsnap meta FILE --extract imageData`.
pub fn extract_tag(
    file: Arc<dyn vmsnap_core::Layer>,
    spec: &str,
    limit: u64,
) -> vmsnap_core::Result<Vec<u8>> {
    Checkpoint::parse(file)?.extract(spec, limit)
}
