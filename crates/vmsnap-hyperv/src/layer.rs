//! The two layers: the container (`hyperv-vmcx`, Metadata space, the whole key tree as
//! `meta()`) and guest RAM from saved state (`hyperv-vmrs-ram`, guest-physical).
//!
//! Design: the container layer parses everything once, including guest RAM when the
//! RAM keys exist, and offers that RAM as child `ram` (not stackable, so it is not
//! stacked twice). The `hyperv-vmrs-ram` plugin stacks on the container layer and, with
//! no downcasting, takes that child and re-parents it ([`RamView`]), so the stack reads
//! file → hyperv-vmcx → hyperv-vmrs-ram without parsing the file twice. Opened on any
//! other layer, it parses the container itself.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value as Json};
use vmsnap_core::{
    check_read, AddressSpace, ChildRole, CpuState, Error, ErrorKind, Extent, ExternalRef, Finding,
    Layer, LayerExt, NamedLayer, Result, ResultExt,
};

use crate::config;
use crate::container::Container;
use crate::image::Image;
use crate::limits::{MAX_DESCRIBED_RAM_BLOCKS, MAX_PARTITION_STATE_BYTES};
use crate::plugin::{CONTAINER_NAME, RAM_NAME};
use crate::ram::{partition_state, Ram};
use crate::value::Value;

/// The container layer (`hyperv-vmcx`). Its bytes are the file's, with pending
/// replay-log entries applied in memory.
#[derive(Debug)]
pub struct HyperVContainer {
    container: Container,
    lower: Arc<dyn Layer>,
    ram: Option<Arc<HyperVRam>>,
    ram_error: Option<String>,
    refs: Vec<ExternalRef>,
}

impl HyperVContainer {
    /// Parses the container in `lower` (and its guest RAM when present).
    pub fn open(lower: Arc<dyn Layer>) -> Result<Self> {
        let container = Container::open(lower.clone())?;
        let (ram, ram_error) = match HyperVRam::from_container(&container, lower.clone()) {
            Ok(r) => (Some(Arc::new(r)), None),
            Err(e) if e.kind() == ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let refs = config::external_refs(&container.tree);
        Ok(HyperVContainer {
            container,
            lower,
            ram,
            ram_error,
            refs,
        })
    }

    /// The parsed container.
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// Guest RAM, when the container holds a saved state with RAM.
    pub fn ram(&self) -> Option<&Arc<HyperVRam>> {
        self.ram.as_ref()
    }
}

impl Layer for HyperVContainer {
    fn name(&self) -> &str {
        CONTAINER_NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::Metadata
    }
    fn len(&self) -> u64 {
        self.container.image.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.container
            .image
            .read_at(offset, buf)
            .in_layer(CONTAINER_NAME)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        self.container.image.extents(range)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Json {
        let c = &self.container;
        let t = &c.tree;
        let kind = if t.get("/savedstate").is_some() {
            "saved_state"
        } else if t.get("/configuration").is_some() {
            "configuration"
        } else {
            "unknown"
        };
        json!({
            "format": CONTAINER_NAME,
            "virtual_size": self.len(),
            "contents": kind,
            "format_version": format!("{}.{}", c.header.version >> 8, c.header.version & 0xff),
            "header_copy": c.header.copy,
            "header_sequence": c.header.sequence,
            "alignment": c.header.alignment,
            "data": "the file's bytes, with pending replay-log entries applied in memory",
            "replay_log": {
                "pending": c.log.pending,
                "applied": c.log.entries.iter().filter(|e| e.applied).count(),
            },
            "keys": t.keys.len(),
            "orphan_keys": t.orphans.len(),
            "key_tables": c.key_tables.iter().filter(|k| k.active).count(),
            "checksum_mismatches": t.keys.iter().filter(|k| !k.checksum_ok).count(),
            "vm": config::summary(t),
            "guest_ram": self.ram.as_ref().map(|r| json!({
                "size": r.len(),
                "ram_blocks": r.ram.blocks.len(),
                "child": "ram",
            })),
            "guest_ram_error": self.ram_error,
        })
    }
    fn meta(&self) -> Json {
        json!({
            "format": CONTAINER_NAME,
            "virtual_size": self.len(),
            "structure": self.container.structure_json(),
            "tree": self.container.tree_json(),
        })
    }
    fn findings(&self) -> Vec<Finding> {
        let mut v = self.container.findings.to_vec();
        v.extend(vmsnap_core::references_finding(
            "a Hyper-V configuration",
            &self.refs,
        ));
        if let Some(e) = &self.ram_error {
            v.push(Finding::warning(
                crate::rule::GUEST_RAM,
                format!("guest RAM keys present but not readable: {e}"),
            ));
        }
        v
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.ram
            .iter()
            .map(|r| NamedLayer {
                name: "ram".into(),
                role: ChildRole::RamBlock,
                stackable: false,
                layer: r.clone() as Arc<dyn Layer>,
            })
            .collect()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

/// Guest-physical memory from a saved state (`hyperv-vmrs-ram`).
#[derive(Debug)]
pub struct HyperVRam {
    ram: Ram,
    image: Arc<Image>,
    lower: Arc<dyn Layer>,
    cpus: Vec<CpuState>,
    findings: Vec<Finding>,
}

impl HyperVRam {
    /// Maps the guest RAM of a parsed container; `lower` is reported as its lower layer.
    pub fn from_container(c: &Container, lower: Arc<dyn Layer>) -> Result<Self> {
        let ram = Ram::open(c).in_layer(RAM_NAME)?;
        let mut findings = ram.findings.clone();
        let mut cpus = Vec::new();
        if let Some(k) = partition_state(c) {
            if let Value::Array(a) = &k.value {
                match c.array_bytes(a, MAX_PARTITION_STATE_BYTES) {
                    Ok(blob) => {
                        let (v, f) = crate::cpu::parse(&blob, k.file_offset);
                        cpus = v;
                        findings.extend(f);
                    }
                    Err(e) => findings.push(Finding::warning(
                        crate::rule::PARTITION_STATE,
                        e.to_string(),
                    )),
                }
            }
        } else {
            findings.push(Finding::info(
                crate::rule::PARTITION_STATE,
                "no partition_state key: no CPU state",
            ));
        }
        Ok(HyperVRam {
            ram,
            image: c.image.clone(),
            lower,
            cpus,
            findings,
        })
    }

    /// Opens the container in `lower` and maps its guest RAM.
    pub fn open(lower: Arc<dyn Layer>) -> Result<Self> {
        let c = Container::open(lower.clone())?;
        Self::from_container(&c, lower)
    }

    /// The RAM description.
    pub fn ram(&self) -> &Ram {
        &self.ram
    }
}

impl Layer for HyperVRam {
    fn name(&self) -> &str {
        RAM_NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.ram.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.ram.read(&self.image, offset, buf).in_layer(RAM_NAME)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.ram.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Json {
        let r = &self.ram;
        let listed = r
            .blocks
            .get(..MAX_DESCRIBED_RAM_BLOCKS)
            .unwrap_or(&r.blocks);
        let mut d = json!({
            "format": RAM_NAME,
            "virtual_size": self.len(),
            "vm_version": r.vm_version,
            "savedstate_type": r.state_type,
            "key_layout": r.key_layout,
            "ram_blocks": listed,
            "data_blocks": {"raw": r.data_blocks.0, "compressed": r.data_blocks.1},
            "record_layout": crate::pages::LAYOUT,
            "segments": r.map.segments().len(),
            "cpus": self.cpus.len(),
        });
        if listed.len() < r.blocks.len() {
            if let Some(m) = d.as_object_mut() {
                m.insert("ram_blocks_total".into(), json!(r.blocks.len()));
            }
        }
        d
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.cpus.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

/// The container's `ram` child re-parented onto the container layer, as the
/// `hyperv-vmrs-ram` plugin returns it.
#[derive(Debug)]
pub struct RamView {
    inner: Arc<dyn Layer>,
    lower: Arc<dyn Layer>,
}

impl RamView {
    /// Takes the `ram` child of a `hyperv-vmcx` layer; a container without one (a
    /// configuration) is [`ErrorKind::Declined`](vmsnap_core::ErrorKind::Declined): not
    /// a saved state after all.
    pub fn of_container(container: Arc<dyn Layer>) -> Result<Self> {
        let child = container
            .children()
            .into_iter()
            .find(|c| c.name == "ram")
            .ok_or_else(|| {
                Error::declined("the container has no guest RAM keys (/savedstate/RamMemoryBlock0)")
                    .in_layer(RAM_NAME)
            })?;
        Ok(RamView {
            inner: child.layer,
            lower: container,
        })
    }
}

impl Layer for RamView {
    fn name(&self) -> &str {
        RAM_NAME
    }
    fn space(&self) -> AddressSpace {
        self.inner.space()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        self.inner.extents(range)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Json {
        self.inner.describe()
    }
    fn findings(&self) -> Vec<Finding> {
        self.inner.findings()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.inner.cpu_state()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

/// Reads `len` bytes of guest memory (convenience for embedders and tests).
pub fn read_guest(layer: &dyn Layer, gpa: u64, len: u64) -> Result<Vec<u8>> {
    layer.read_vec(
        gpa,
        len,
        vmsnap_core::limits::MAX_UNIT_BYTES,
        "guest memory",
    )
}
