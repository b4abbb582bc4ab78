//! vmsnap-windump: Windows crash dumps (`MEMORY.DMP`) as guest-physical memory.
//!
//! Windows writes a crash dump when it bugchecks (or is told to: `NotMyFault`, an NMI,
//! `livekd`); VMware's `vmss2core -W` and Hyper-V's `vm2dmp` turn snapshots into the same
//! format. The layout is Microsoft's `DUMP_HEADER32`/`DUMP_HEADER64` (as Volatility 3's
//! `crash.json`/`crash64.json` and WinDbg read it). Read:
//!
//! * the 32-bit `PAGEDUMP` header (one 4 KiB page) and the 64-bit `PAGEDU64` header
//!   (8 KiB): `DirectoryTableBase` (CR3, with PAE or 4-level paging so the x86 layer
//!   stacks), the bugcheck code and parameters, `KdDebuggerDataBlock`,
//!   `PsActiveProcessHead`, `PsLoadedModuleList`, `PfnDataBase`, processors, machine,
//!   dump type, times, comment — all in `describe()`;
//! * full dumps (type 1): the `_PHYSICAL_MEMORY_DESCRIPTOR` runs, their pages after the
//!   header in run order;
//! * bitmap dumps (type 5 complete, `FDMP`; type 6 kernel, `SDMP`): the summary header
//!   after the dump header, its bitmap walked in bounded chunks, the pages of the set bits
//!   from `HeaderSize` on in bit order.
//!
//! Page frames a dump does not hold read as zeros and are unallocated. Refused: summary,
//! header-only and triage dumps (types 2–4), which hold no physical memory map.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let mem = vmsnap_windump::Windump::open_layer(Arc::new(FileLayer::open("MEMORY.DMP")?))?;
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

#[cfg(feature = "builder")]
#[allow(clippy::indexing_slicing)]
pub mod builder;
mod header;
mod layer;
mod plugin;
pub mod raw;
pub mod rule;
mod summary;

pub use header::{Header, MemoryRun, Width};
pub use layer::{Windump, NAME};
pub use plugin::PLUGIN;
pub use summary::Summary;

vmsnap_core::register_plugin!(PLUGIN);
