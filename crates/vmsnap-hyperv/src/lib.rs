//! Hyper-V storage containers (`.vmcx`, `.vmrs`, `.vsv`) and the guest RAM of saved
//! states.
//!
//! * [`Container`] parses both file headers (CRC-32, sequence with wrap-around), applies a
//!   pending replay log in memory, follows the object tables, picks the active copy of
//!   each key table and builds the lossless key tree (repeated sibling names kept in
//!   insertion order). Every checksum is verified; a mismatch is a finding and the value
//!   is still shown, marked.
//! * [`HyperVContainer`] is the `hyperv-vmcx` layer ([`PLUGIN`]): `meta()` is the whole
//!   tree with types, `describe()` a VM summary, configured paths are external
//!   references (listed, never opened).
//! * [`HyperVRam`] is the `hyperv-vmrs-ram` layer ([`RAM_PLUGIN`]): guest-physical memory
//!   from `RamMemoryBlock`/`RamBlock` keys (raw blocks and XPRESS-compressed page records,
//!   see [`xpress`] and [`pages`]) and CPU registers from `partition_state`.

#[cfg(any(test, feature = "builder"))]
pub mod builder;
mod cache;
mod config;
mod container;
mod cpu;
mod decoder;
mod header;
mod image;
mod keys;
mod layer;
pub mod limits;
mod log;
mod objects;
pub mod pages;
mod plugin;
mod ram;
pub mod rule;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod readahead;
mod tree;
mod value;
pub mod xpress;

pub use container::Container;
pub use keys::Key;
pub use layer::{HyperVContainer, HyperVRam, RamView};
pub use plugin::{PLUGIN, RAM_PLUGIN};
pub use value::{hex, ArrayData, Value};

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use header::FileHeader;
pub use image::Image;
pub use keys::{FileStrings, KeyTableInfo};
pub use layer::read_guest;
pub use log::{LogEntry, ReplayLog};
pub use objects::Object;
pub use ram::{has_ram, MemoryBlock, Ram, MEMORY_BLOCK_LEN};
pub use tree::{Orphan, Tree};
pub use value::Stored;

vmsnap_core::register_plugin!(PLUGIN);
vmsnap_core::register_plugin!(RAM_PLUGIN);
