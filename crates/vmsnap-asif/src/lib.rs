//! vmsnap-asif: Apple Sparse Image Format (ASIF) images as guest disks.
//!
//! ASIF is the sparse disk image of macOS 26 (Tahoe): `diskutil image create … --format
//! ASIF`, Disk Utility and the Virtualization framework write it. Apple publishes no
//! specification; the layout read here is dissect.hypervisor's reader (reversed from
//! `diskimagescontroller`) and the notes at <https://github.com/huven/asif-format>: a
//! big-endian header (`shdw`), two directories (the one with the higher version active)
//! naming one table per range of the disk, tables of chunk entries in groups of
//! `4 × block size` data entries and one bitmap entry, chunks (1 MiB in Apple's images).
//!
//! Read: fully written chunks (state `01`), never written ones (`00`, zeros), partly
//! written ones (`11`) through their group's bitmap (2 bits a sector: written sectors from
//! the chunk, unwritten ones as zeros — dissect reads the whole chunk there), and the
//! metadata block (a `meta` header and a property list whose `stable uuid` is shown).
//! Refused: any other entry or bitmap state (nobody has described one), tables and chunks
//! past the end of the file.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let disk = vmsnap_asif::Asif::open_layer(Arc::new(FileLayer::open("disk.asif")?))?;
//! let mut sector = [0u8; 512];
//! disk.read_at(0, &mut sector)?;
//! # Ok::<(), vmsnap_core::Error>(())
//! ```
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod chunks;
mod directory;
mod geometry;
mod header;
mod layer;
mod metadata;
mod plugin;
pub mod raw;
pub mod rule;

pub use chunks::{Chunk, EntryCursor, ENTRY_WINDOW};
pub use directory::Directory;
pub use geometry::{Geometry, Slot};
pub use header::Header;
pub use layer::{Asif, NAME};
pub use metadata::Metadata;
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
