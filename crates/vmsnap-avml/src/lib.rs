//! vmsnap-avml: avml images as guest disks.
//!
//! TODO(new-format): say what the format is, what writes it, where its specification is,
//! and what this crate reads and refuses (docs/adding-a-format.md). As scaffolded it reads
//! a placeholder layout: a 512-byte header (a magic, the virtual size, where the data
//! starts) followed by the disk's bytes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let disk = vmsnap_avml::Avml::open_layer(Arc::new(FileLayer::open("disk.avml")?))?;
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

mod header;
mod layer;
mod plugin;
mod raw;

pub use header::Header;
pub use layer::{Avml, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
