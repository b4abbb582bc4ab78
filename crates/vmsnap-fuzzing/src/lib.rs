//! The bodies of vmsnap's fuzz targets, one function per target taking the raw fuzz input.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are one line each around these, and
//! `tests/seeds.rs` replays every committed seed through them on the stable toolchain, so
//! a seed that crashes fails `cargo test` before any fuzzer runs.
//!
//! Formats whose valid files are large, sparse or checksummed (VHDX, VHD, Hyper-V
//! containers) have a structure-aware mode as well: an input starting with
//! [`STRUCTURED`] is read as an [`arbitrary`] description from which a well-formed file
//! is built (regions at their real offsets, checksums computed), then patched, so the
//! fuzzer reaches the readers behind the headers. Any other input is the file itself.
// A fuzz harness reports a broken invariant by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod check;
mod command;
mod memory;
mod plain;
pub mod registered;
mod structured;
mod typed;

use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Plugin, Registry, Resolver,
    SniffWindow,
};

/// The prefix that switches a structure-aware target to building its file from an
/// `arbitrary` description (the rest of the input).
pub const STRUCTURED: &[u8] = b"\xF5Zs";

/// One fuzz target: its cargo-fuzz name and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The binary name under `fuzz/fuzz_targets/`.
    pub name: &'static str,
    /// Runs one input; panics on a broken invariant.
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order `cargo fuzz list` prints them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "asif",
        run: |data| registered::run("asif", data),
    },
    Target {
        name: "avml",
        run: |data| registered::run("avml", data),
    },
    Target {
        name: "check_streaming",
        run: check::check_streaming,
    },
    Target {
        name: "elf_core",
        run: plain::elf_core,
    },
    Target {
        name: "hdd",
        run: |data| registered::run("hdd", data),
    },
    Target {
        name: "hyperv_container",
        run: structured::hyperv::run,
    },
    Target {
        name: "hyperv_ram",
        run: memory::hyperv_ram,
    },
    Target {
        name: "kdump",
        run: |data| registered::run("kdump", data),
    },
    Target {
        name: "lime",
        run: plain::lime,
    },
    Target {
        name: "ovf",
        run: |data| registered::run("ovf", data),
    },
    Target {
        name: "ovf_ova",
        run: |data| registered::run("ova", data),
    },
    Target {
        name: "parallels",
        run: plain::parallels,
    },
    Target {
        name: "pvs",
        run: |data| registered::run("pvs", data),
    },
    Target {
        name: "qcow2",
        run: plain::qcow2,
    },
    Target {
        name: "qed",
        run: plain::qed,
    },
    Target {
        name: "qemu_mapped_ram",
        run: plain::qemu_mapped_ram,
    },
    Target {
        name: "qemu_stream",
        run: plain::qemu_stream,
    },
    Target {
        name: "segment_map",
        run: typed::segment_map,
    },
    Target {
        name: "stack",
        run: plain::stack,
    },
    Target {
        name: "vbox",
        run: |data| registered::run("vbox", data),
    },
    Target {
        name: "vdi",
        run: plain::vdi,
    },
    Target {
        name: "vhd",
        run: structured::vhd::run,
    },
    Target {
        name: "vhdx",
        run: structured::vhdx::run,
    },
    Target {
        name: "vma",
        run: |data| registered::run("vma", data),
    },
    Target {
        name: "vmdk",
        run: plain::vmdk,
    },
    Target {
        name: "vmware",
        run: plain::vmware,
    },
    Target {
        name: "vmx",
        // The snapshot database is only reached through a file the harness may not
        // open: parse the input as one too.
        run: |data| {
            registered::run("vmx", data);
            let d = vmsnap::vmx::Dictionary::parse(data);
            let _ = vmsnap::vmx::SnapshotDb::parse(&d).snapshots.len();
        },
    },
    Target {
        name: "windump",
        run: |data| registered::run("windump", data),
    },
    Target {
        name: "x86_paging",
        run: typed::x86_paging,
    },
    Target {
        name: "xen",
        run: |data| registered::run("xen", data),
    },
    Target {
        name: "xpress",
        run: memory::xpress,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// `data` as a file layer on memory, with no path (so no companion file is looked up).
pub(crate) fn file(data: &[u8]) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))))
}

/// The probe window a plugin sees for `data`: its first and last 64 KiB.
pub(crate) fn window(data: &[u8]) -> SniffWindow<'_> {
    SniffWindow::of_whole(data)
}

/// Opens `lower` through `plugin` (registered with `more`) under `policy`.
pub(crate) fn open(
    plugin: &'static Plugin,
    more: &[&'static Plugin],
    lower: Arc<dyn Layer>,
    policy: ExternalPolicy,
) -> Option<Arc<dyn Layer>> {
    open_in(plugin, more, lower, &Resolver::new(policy))
}

/// Opens `lower` through `plugin` (registered with `more`), references resolved by
/// `resolver`.
pub(crate) fn open_in(
    plugin: &'static Plugin,
    more: &[&'static Plugin],
    lower: Arc<dyn Layer>,
    resolver: &Resolver,
) -> Option<Arc<dyn Layer>> {
    let mut reg = Registry::empty().with(plugin).ok()?;
    for p in more {
        reg = reg.with(p).ok()?;
    }
    let options = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &options);
    (plugin.open)(lower, &ctx).ok()
}

/// Probes `data` with `plugin`, opens it (external files denied) and reads, maps and
/// describes the whole layer.
pub(crate) fn open_and_exercise(plugin: &'static Plugin, data: &[u8]) {
    let _ = (plugin.probe)(&window(data));
    if let Some(layer) = open(plugin, &[], file(data), ExternalPolicy::Deny) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

// The crates' own independent test writers, shared with their tests.
#[path = "../../vmsnap-hyperv/tests/common/mod.rs"]
mod hyperv_common;
#[path = "../../vmsnap-vhd/tests/common/mod.rs"]
mod vhd_common;
#[path = "../../vmsnap-vhdx/tests/common/mod.rs"]
mod vhdx_common;
