//! vmsnap-xen: Xen dump-core files as guest-physical memory.
//!
//! `xl dump-core` (libxenguest's `xc_domain_dumpcore`) writes a domain's memory as an ELF64
//! core with *section* headers and no program headers (Xen's
//! `docs/misc/dump-core-format.txt`, format version 0.1):
//!
//! * `.note.Xen`: notes named `Xen`: none, the header (`xch_magic` `0xF00FEBED` for PV and
//!   `0xF00FEBEE` for HVM domains, `xch_nr_vcpus`, `xch_nr_pages`, `xch_page_size`), the
//!   hypervisor's version and the format version;
//! * `.xen_prstatus`: one `vcpu_guest_context_t` per vCPU (x86-64 or, for 32-bit PV
//!   guests, x86-32 layout, by `e_machine`);
//! * `.xen_shared_info` (optional), `.xen_pages`: the page frames;
//! * `.xen_pfn` (HVM, auto-translated: the pfn of each page) or `.xen_p2m` (PV: `(pfn,
//!   gmfn)` pairs). Entries of `~0` are unused (their pages are zero padding).
//!
//! Read: pages map to guest-physical `pfn * page size` (runs coalesce; a pfn named twice
//! is an error), every header field and vCPU context is in `describe()`. HVM vCPUs give
//! the CPU state (`ctrlreg[3]` is the guest's CR3; EFER is not recorded and is inferred
//! as the ELF reader does), so the x86 layer stacks on the dump. PV dumps give none:
//! their `ctrlreg[3]` and page tables hold machine frames, not pfns (`describe()` shows
//! the CR3's machine frame and the pfn the p2m table gives it).
//!
//! The ELF structure is parsed by vmsnap-elf (its `section` module and note parser), which
//! also recognises these files so that its generic ELF plugin declines them; this plugin
//! probes first (priority 29).
//!
//! The `builder` feature writes dump-cores by the documented layout from any
//! guest-physical layer and CPU state (no Xen runs here; `corpus/xen/make.sh`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer};
//!
//! let mem = vmsnap_xen::Xen::open_layer(Arc::new(FileLayer::open("guest.core")?))?;
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
pub mod builder;
mod cpu;
mod dump;
mod layer;
mod map;
mod plugin;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;
pub mod rule;

pub use cpu::VcpuContext;
pub use dump::{CoreHeader, Dump, Table, XenVersion};
pub use layer::{Xen, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
