//! vmsnap-avml: AVML images (Microsoft's `avml` memory acquisition tool) as guest-physical
//! memory.
//!
//! An AVML image is a sequence of ranges, each a 32-byte header (magic, version, first
//! address, **inclusive** last address, 8 zero bytes) and the range's data. `avml` writes
//! version-2 ranges (magic `AVML`): the data is a snappy *framed* stream (stream
//! identifier, then compressed and uncompressed chunks of at most 64 KiB, each with a
//! masked CRC-32C) followed by the stream's length as a little-endian u64; `avml
//! --compress` off, or `avml convert --format lime`, writes version-1 ranges (LiME's
//! layout, magic `EMiL`), and a file may mix both. avml splits memory into blocks of at
//! most 16 MiB and leaves all-zero blocks out; those gaps read as zeros here and are
//! unallocated extents. The layout is avml's `src/image.rs` and `src/io/snappy.rs`.
//!
//! Opening indexes every range's chunks from their headers alone (24 bytes of memory per
//! 64 KiB chunk, no decompression), checking that they decode to exactly the range's
//! length and that the trailer records the stream's length; a read decodes only the
//! chunks it touches (whole chunks straight into the caller's buffer, parts through a
//! small cache of decoded chunks) and checks each chunk's CRC.
//!
//! Refused: reserved unskippable chunk types, streams that do not start with the stream
//! identifier, chunks larger than the framing format allows, overlapping ranges. AVML
//! records no CPU state (no CR3), so the x86 layer does not stack on it (as on LiME).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let mem = vmsnap_avml::Avml::open_layer(Arc::new(FileLayer::open("memory.lime")?))?;
//! let mut page = [0u8; 4096];
//! mem.read_at(0x100000, &mut page)?;
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

mod cache;
mod frame;
mod header;
mod layer;
mod plugin;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
mod unit;

pub use header::{RangeHeader, Version};
pub use layer::{Avml, RangeInfo, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
