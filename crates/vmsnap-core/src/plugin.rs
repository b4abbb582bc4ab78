//! The plugin type every format crate exports, the bounded window its probe sees, and the
//! context its `open` gets.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::cpu::CpuState;
use crate::error::Result;
use crate::layer::{AddressSpace, Layer};
use crate::option::PluginOption;
use crate::policy::Resolver;
use crate::registry::Registry;

/// What a plugin turns its input into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PluginKind {
    /// A virtual disk image (qcow2, VMDK …).
    Disk,
    /// A memory image (QEMU stream, VMware checkpoint, ELF core …).
    Memory,
    /// A container of metadata (Hyper-V .vmcx, a libvirt save header).
    Container,
    /// An address translation (x86 paging) on top of memory.
    Translation,
    /// A whole VM's configuration or bundle (`.vmx`, `.vbox`, `DiskDescriptor.xml`,
    /// `config.pvs`): its disks, memory and snapshots are named inner layers, and the
    /// front ends' default external-reference policy for it is
    /// [`crate::ExternalPolicy::VmDir`].
    Vm,
}

impl PluginKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Disk => "disk",
            PluginKind::Memory => "memory",
            PluginKind::Container => "container",
            PluginKind::Translation => "translation",
            PluginKind::Vm => "vm",
        }
    }
}

/// What a probe sees: the head and tail of a layer, its size and a few facts about it.
/// Probes must not read anything else.
#[derive(Debug, Clone, Copy)]
pub struct SniffWindow<'a> {
    /// The first bytes (up to [`crate::limits::PROBE_HEAD`]).
    pub head: &'a [u8],
    /// The last bytes (up to [`crate::limits::PROBE_TAIL`]).
    pub tail: &'a [u8],
    /// Size of the layer.
    pub size: u64,
    /// The layer's address space.
    pub space: AddressSpace,
    /// The layer's name (plugin name, or `file`).
    pub layer: &'a str,
    /// The host file behind it, when there is one (used by companion-file formats).
    pub path: Option<&'a Path>,
    /// CPU state the layer offers (memory layers), for translation plugins.
    pub cpu: &'a [CpuState],
}

impl<'a> SniffWindow<'a> {
    /// The window the registry shows for a whole file held in memory, `data`: its first
    /// [`PROBE_HEAD`](crate::limits::PROBE_HEAD) and last
    /// [`PROBE_TAIL`](crate::limits::PROBE_TAIL) bytes (tests, fuzzing).
    pub fn of_whole(data: &'a [u8]) -> Self {
        let head = data.get(..crate::limits::PROBE_HEAD).unwrap_or(data);
        let tail = data
            .get(data.len().saturating_sub(crate::limits::PROBE_TAIL)..)
            .unwrap_or(data);
        SniffWindow::of_bytes(head, tail, data.len() as u64)
    }

    /// A window over bytes in memory (tests, fuzzing, streaming inspection).
    pub fn of_bytes(head: &'a [u8], tail: &'a [u8], size: u64) -> Self {
        SniffWindow {
            head,
            tail,
            size,
            space: AddressSpace::File,
            layer: "file",
            path: None,
            cpu: &[],
        }
    }
}

/// A probe's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// The layer is in this format.
    Yes,
    /// It is not, and why (for `--explain`).
    No(&'static str),
}

impl Probe {
    /// Whether the answer is yes.
    pub fn is_yes(self) -> bool {
        matches!(self, Probe::Yes)
    }
}

/// Free-form options from the user (`-o key=value`), e.g. `qemu.ram-below-4g=2G`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Options(BTreeMap<String, String>);

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// All options.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// What `open` gets besides its input: the external-reference resolver, the registry (to
/// open a backing file or parent as a disk), the chain depth so far and user options.
/// Made with [`OpenCtx::new`] (the fields are read, never listed, by other crates).
///
/// ```
/// use vmsnap_core::{OpenCtx, Options, Registry, Resolver};
/// let (resolver, registry, options) = (Resolver::default(), Registry::empty(), Options::new());
/// let ctx = OpenCtx::new(&resolver, &registry, &options);
/// assert_eq!(ctx.depth, 0);
/// assert_eq!(ctx.deeper().depth, 1);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OpenCtx<'a> {
    /// Resolves backing files, extents, parents and companions under the policy.
    pub resolver: &'a Resolver,
    /// Plugins available for chained opens.
    pub registry: &'a Registry,
    /// How many backing/parent links were followed to get here.
    pub depth: u32,
    /// User options.
    pub options: &'a Options,
}

impl<'a> OpenCtx<'a> {
    /// The context of a top-level open (depth 0): references resolved by `resolver`,
    /// chained opens through `registry`, user `options`.
    pub fn new(resolver: &'a Resolver, registry: &'a Registry, options: &'a Options) -> Self {
        OpenCtx {
            resolver,
            registry,
            depth: 0,
            options,
        }
    }

    /// The context one link further down a backing or parent chain.
    pub fn deeper(&self) -> OpenCtx<'a> {
        OpenCtx {
            depth: self.depth.saturating_add(1),
            ..*self
        }
    }
}

/// A format plugin: what every format crate exports as `PLUGIN`.
#[derive(Debug)]
pub struct Plugin {
    /// Unique name, e.g. `qcow2`.
    pub name: &'static str,
    /// What it produces.
    pub kind: PluginKind,
    /// Lower probes first (Volatility's `stack_order`); ties are ordered by name and two
    /// equal-priority plugins that both accept is an ambiguity.
    pub priority: u16,
    /// The address spaces of the layers it stacks on (a disk format on a host file or a
    /// guest disk, x86 paging on guest-physical memory). Its probe is never run on a layer
    /// of another space: the stacker skips it ("not tried: stacks on …").
    pub stacks_on: &'static [AddressSpace],
    /// One line for `vmsnap formats`.
    pub summary: &'static str,
    /// The `-o` options `open` reads (`vmsnap formats` lists them; a front end refuses any
    /// other key with [`crate::check_options`]).
    pub options: &'static [PluginOption],
    /// Pure, bounded recognition of the format, on a window of a layer whose space is one
    /// of [`Plugin::stacks_on`].
    pub probe: fn(&SniffWindow<'_>) -> Probe,
    /// Opens the format on `lower` (see [`OpenFn`] for what its errors mean).
    pub open: OpenFn,
}

impl Plugin {
    /// Whether it stacks on layers of `space` (see [`Plugin::stacks_on`]).
    pub fn stacks_on_space(&self, space: AddressSpace) -> bool {
        self.stacks_on.contains(&space)
    }

    /// Its probe on `w`, or a refusal without probing when `w` is of a space it does not
    /// stack on.
    pub fn recognises(&self, w: &SniffWindow<'_>) -> Probe {
        if self.stacks_on_space(w.space) {
            (self.probe)(w)
        } else {
            Probe::No("not a space it stacks on")
        }
    }

    /// The spaces it stacks on, in words: `file, guest_disk`.
    pub fn stacks_on_names(&self) -> String {
        let names: Vec<&str> = self.stacks_on.iter().map(|s| s.as_str()).collect();
        names.join(", ")
    }
}

/// A plugin's `open`: builds its layer on `lower`. Its outcomes are three:
///
/// - `Ok(layer)`: the format's layer;
/// - `Err` of kind [`crate::ErrorKind::Declined`] ([`crate::Error::declined`]): not this
///   format after all, which the probe could not tell from head and tail (a Hyper-V
///   container without guest RAM); the stacker records it as a refusal, with the message,
///   and tries the next plugin. Return it only about `lower` itself, never pass one up from
///   a nested open;
/// - any other `Err`: the format is recognised but cannot be opened, which is reported.
pub type OpenFn = fn(Arc<dyn Layer>, &OpenCtx<'_>) -> Result<Arc<dyn Layer>>;
