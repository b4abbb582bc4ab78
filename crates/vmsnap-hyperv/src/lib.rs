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

pub mod cache;
pub mod config;
pub mod container;
pub mod cpu;
pub mod decoder;
pub mod header;
pub mod image;
pub mod keys;
pub mod layer;
pub mod limits;
pub mod log;
pub mod objects;
pub mod pages;
pub mod plugin;
pub mod ram;
pub mod raw;
pub mod readahead;
pub mod tree;
pub mod value;
pub mod xpress;

pub use container::Container;
pub use layer::{HyperVContainer, HyperVRam, RamView};
pub use plugin::{PLUGIN, RAM_PLUGIN};
pub use value::{ArrayData, Value};

vmsnap_core::register_plugin!(PLUGIN);
vmsnap_core::register_plugin!(RAM_PLUGIN);
