//! vmsnap-kdump: kdump-compressed dumps as guest-physical memory.
//!
//! The format is makedumpfile's (`diskdump_mod.h`), which the kernel's kdump tools, QEMU's
//! `dump-guest-memory` (formats `kdump-zlib`, `kdump-lzo`, `kdump-snappy` and their
//! `kdump-raw-*` forms; HMP `-z/-l/-s`, `-R` for raw) and `virsh dump --memory-only
//! --format kdump-*` write. Read:
//!
//! * `disk_dump_header` (64- and 32-bit layouts, either byte order) and `kdump_sub_header`
//!   (versions 1 to 6: `phys_base`, `dump_level`, split ranges, VMCOREINFO, the ELF notes,
//!   `max_mapnr_64`);
//! * both bitmaps: a page absent from the second (dumped) bitmap reads as zeros and is an
//!   unallocated extent; pages present in the first but not dumped (excluded by the dump
//!   level) are counted in `describe()`;
//! * page descriptors, looked up by the rank of the page in the second bitmap (memory:
//!   the bitmap plus an eighth of it, whatever the dump's size); stored pages map to the
//!   file (contiguous ones coalesce), zlib pages decompress through a small cache, and
//!   pages pointing at the shared zero page are zero extents;
//! * makedumpfile's flattened form (what `kdump-zlib` writes): its records are mapped at
//!   open into the dump file they stand for, then read as above;
//! * the ELF notes (QEMU's per-vCPU `QEMU` notes become the CPU state with CR3, so the x86
//!   layer stacks on the dump; `CORE`/`NT_PRSTATUS`; `VMCOREINFO`), parsed by vmsnap-elf.
//!
//! Refused: pages compressed with lzo, snappy or zstd (an `Unsupported` error naming the
//! compression when such a page is read; this machine's QEMU writes zlib only).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let mem = vmsnap_kdump::Kdump::open_layer(Arc::new(FileLayer::open("guest.kdump")?))?;
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

mod bitmap;
mod flat;
mod header;
mod layer;
mod page;
mod plugin;
mod raw;
pub mod rule;

pub use flat::FlatFile;
pub use header::{Header, Layout};
pub use layer::{DescCursor, Kdump, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
