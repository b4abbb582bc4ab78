//! vmsnap-x86: guest-virtual address spaces from x86 page tables.
//!
//! Every snapshot format vmsnap reads records the page-table root (CR3) and the paging
//! mode (CR0, CR4, EFER), so there is nothing to scan for: the `x86` plugin stacks a
//! virtual layer on any guest-physical layer that offers CPU state. Modes: 32-bit (4 KiB
//! and 4 MiB pages, PSE-36), PAE (2 MiB pages), IA-32e 4-level (2 MiB and 1 GiB pages) and
//! 5-level (LA57). Offsets of the layer are linear addresses with the sign extension
//! dropped (see [`mode::offset_of_address`]). Unmapped pages read as zeros and are
//! reported unallocated; tables or pages outside the physical layer are unmapped; walks
//! have a fixed number of levels, so no table layout can make them loop.

mod cache;
mod layer;
pub mod mode;
mod plugin;
pub mod walk;

pub use layer::VirtualLayer;
pub use mode::Mode;
pub use plugin::{PLUGIN, X86};

vmsnap_core::register_plugin!(PLUGIN);
