//! The `x86` translation plugin: stacks a guest-virtual layer on any guest-physical layer
//! whose format recorded CPU state with paging on.

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, ChildRole, Error, ErrorKind, Layer, NamedLayer, OpenCtx, OptionType, Plugin,
    PluginKind, PluginOption, Probe, Result, SniffWindow,
};

use crate::layer::VirtualLayer;
use crate::mode::{Mode, EFER_NXE};

/// The declared `x86.cr3` option.
const CR3: PluginOption = PluginOption {
    name: "x86.cr3",
    ty: OptionType::Address,
    help: "page-table root to walk instead of the first paging vCPU's CR3",
};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "x86",
    kind: PluginKind::Translation,
    priority: 50,
    stacks_on: &[AddressSpace::GuestPhysical],
    summary: "x86 paging (32-bit, PAE, 4- and 5-level) from the CPU state a snapshot recorded",
    options: &[CR3],
    probe,
    open,
};

fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.cpu.is_empty() {
        return Probe::No("the memory layer records no CPU state");
    }
    if !w.cpu.iter().any(|c| Mode::of(c).is_some()) {
        return Probe::No("no recorded vCPU has paging enabled (CR0.PG clear)");
    }
    Probe::Yes
}

/// The translation layer with its per-root siblings.
#[derive(Debug)]
pub struct X86 {
    main: VirtualLayer,
    others: Vec<(String, Arc<VirtualLayer>)>,
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(X86::open(lower, ctx)?))
}

impl X86 {
    /// Opens on `lower`: the root of the first vCPU with paging on (the kernel's tables
    /// are shared by all), or `x86.cr3` from the options; other distinct roots become
    /// children `root:<hex>`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let cpus = lower.cpu_state();
        let paged: Vec<_> = cpus
            .iter()
            .filter_map(|c| Some((c, Mode::of(c)?)))
            .collect();
        let Some(&(first, mode)) = paged.first() else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "no vCPU with paging enabled",
            ));
        };
        let nxe = first.efer & EFER_NXE != 0;
        let main = match CR3.number(ctx.options)? {
            Some(cr3) => VirtualLayer::new(lower.clone(), mode, cr3, nxe),
            None => VirtualLayer::new(lower.clone(), mode, first.cr3, nxe).from_cpu(first.index),
        };
        let mut others: Vec<(String, Arc<VirtualLayer>)> = Vec::new();
        for &(c, m) in paged.iter().skip(1) {
            let root = m.root_of(c.cr3);
            if root == main.root() && m == main.mode() {
                continue;
            }
            let name = format!("root:{root:#x}");
            if others.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let nxe = c.efer & EFER_NXE != 0;
            others.push((
                name,
                Arc::new(VirtualLayer::new(lower.clone(), m, c.cr3, nxe).from_cpu(c.index)),
            ));
        }
        Ok(X86 { main, others })
    }

    /// The main virtual layer.
    pub fn main(&self) -> &VirtualLayer {
        &self.main
    }
}

impl Layer for X86 {
    fn name(&self) -> &str {
        "x86"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestVirtual
    }
    fn len(&self) -> u64 {
        self.main.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.main.read_at(offset, buf)
    }
    fn extents(&self, range: std::ops::Range<u64>) -> Result<Vec<vmsnap_core::Extent>> {
        self.main.extents(range)
    }
    fn extent_attributes(&self, e: &vmsnap_core::Extent) -> Option<serde_json::Value> {
        self.main.extent_attributes(e)
    }
    fn translate(&self, offset: u64) -> Result<Option<serde_json::Value>> {
        self.main.translate(offset)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        self.main.lower()
    }
    fn describe(&self) -> serde_json::Value {
        let mut d = self.main.describe();
        if let Some(o) = d.as_object_mut() {
            o.insert(
                "other_roots".into(),
                serde_json::json!(self.others.iter().map(|(n, _)| n).collect::<Vec<_>>()),
            );
        }
        d
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.others
            .iter()
            .map(|(n, l)| NamedLayer {
                name: n.clone(),
                role: ChildRole::AddressSpace,
                stackable: false,
                layer: l.clone(),
            })
            .collect()
    }
    fn path(&self) -> Option<&std::path::Path> {
        self.main.path()
    }
}
