//! The VM a `.vmx` describes, opened: its disks (through the VMDK reader, so delta chains
//! and extents follow the policy), its suspended memory (through the VMware checkpoint
//! reader), and its snapshots from the `.vmsd`, each a named inner layer. The layer itself
//! reads as the `.vmx`'s own bytes (address space `Metadata`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::limits::MAX_CHAIN_DEPTH;
use vmsnap_core::{
    ChildRole, DiskFormat, Error, ExternalRef, Finding, Layer, LayerExt, Link, NamedLayer, OpenCtx,
    Probe, RefDecision, RefKind, Result, ResultExt, Sniff,
};

use crate::device::{devices, Controller, Device};
use crate::dict::Dictionary;
use crate::encryption::Encryption;
use crate::raw::{KEY_SNAPSHOT_FILE, KEY_VMSTATE, MAX_CONFIG_BYTES, MAX_OPENED_DISKS};
use crate::rule::ENCRYPTED;
use crate::snapshot::{Snapshot, SnapshotDb};
use vmsnap_core::rule::REFERENCES;

/// The plugin and layer name.
pub const NAME: &str = "vmx";
/// The plugin that reads the disks.
const DISK_PLUGIN: &str = "vmdk";
/// The plugin that reads `.vmss`/`.vmsn` memory.
const MEMORY_PLUGIN: &str = "vmware";

/// A link's entry in `describe`: the file, what became of it and, when opened, the inner
/// layer `child` that reads it, its format, size and delta chain.
fn link_json(link: &Link, child: &str) -> Value {
    let layer = link.layer.as_ref();
    json!({
        "file": link.reference.name,
        "status": link.reference.decision.describe(),
        "layer": layer.map(|_| child),
        "format": layer.map(|l| l.name().to_string()),
        "size": layer.map(|l| l.len()),
        "chain": layer.map(chain),
    })
}

/// The files of a disk's delta chain, top first (each VMDK's parent is among its lower
/// layers).
fn chain(top: &Arc<dyn Layer>) -> Vec<String> {
    let mut v = Vec::new();
    let mut cur = Some(top.clone());
    while let Some(l) = cur.take() {
        if v.len() > MAX_CHAIN_DEPTH as usize {
            break;
        }
        v.push(
            l.path()
                .map_or_else(|| l.name().to_string(), |p| p.display().to_string()),
        );
        cur = l
            .lower()
            .into_iter()
            .skip(1)
            .find(|x| x.name() == DISK_PLUGIN);
    }
    v
}

/// A disk of the current state or of a snapshot.
#[derive(Debug, Clone)]
pub struct VmDisk {
    /// The bus node (`scsi0:0`).
    pub node: String,
    /// The file.
    pub link: Link,
}

/// A snapshot with its files.
#[derive(Debug, Clone)]
pub struct VmSnapshot {
    /// What the database says.
    pub snapshot: Snapshot,
    /// Its `.vmsn`.
    pub memory: Option<Link>,
    /// Its disks.
    pub disks: Vec<VmDisk>,
}

/// An open `.vmx`.
#[derive(Debug)]
pub struct Vm {
    lower: Arc<dyn Layer>,
    config: Dictionary,
    controllers: Vec<Controller>,
    devices: Vec<Device>,
    encryption: Option<Encryption>,
    disks: Vec<VmDisk>,
    memory: Option<Link>,
    vmsd: Option<(Link, Option<Dictionary>)>,
    snapshot_db: Option<SnapshotDb>,
    snapshots: Vec<VmSnapshot>,
    findings: Vec<Finding>,
}

/// Reads a whole dictionary file, bounded by [`MAX_CONFIG_BYTES`].
fn read_text(l: &dyn Layer, what: &str) -> Result<Vec<u8>> {
    l.read_vec(0, l.len(), MAX_CONFIG_BYTES, what)
}

/// Follows at most [`MAX_OPENED_DISKS`] disks; past that each is only listed.
struct Opener<'c, 'a> {
    ctx: &'c OpenCtx<'a>,
    from: Option<PathBuf>,
    disks: u64,
    refused: bool,
}

impl Opener<'_, '_> {
    fn disk(&mut self, name: &str) -> Link {
        if self.disks >= MAX_OPENED_DISKS {
            return Link::listed(RefKind::VmFile, name);
        }
        self.disks += 1;
        self.follow(RefKind::VmFile, name, DISK_PLUGIN)
    }

    fn memory(&self, name: &str) -> Link {
        self.follow(RefKind::VmFile, name, MEMORY_PLUGIN)
    }

    fn follow(&self, kind: RefKind, name: &str, format: &str) -> Link {
        if self.refused {
            return Link::listed(kind, name);
        }
        let registry = self.ctx.registry;
        Link::from(self.ctx.follow_disk(
            kind,
            self.from.as_deref(),
            name,
            DiskFormat::Named(Some(format)),
            |file| recognised(registry, format, file),
        ))
    }
}

/// Whether the `format` plugin's probe accepts `file` (a plugin's `open` may be lenient
/// with what its probe would refuse: a VMDK descriptor parser with any text).
fn recognised(
    registry: &vmsnap_core::Registry,
    format: &str,
    file: &dyn Layer,
) -> std::result::Result<(), String> {
    let plugin = registry
        .get(format)
        .ok_or_else(|| format!("no {format} plugin in the registry"))?;
    let sniff = Sniff::read(file).map_err(|e| e.to_string())?;
    match plugin.recognises(&sniff.window(file)) {
        Probe::Yes => Ok(()),
        Probe::No(why) => Err(format!("not a {format} file: {why}")),
        _ => Err(format!("not a {format} file")),
    }
}

impl Vm {
    /// Opens the `.vmx` on `lower`; every file it names is opened through `ctx`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_inner(lower, ctx).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let text = read_text(lower.as_ref(), "VMX configuration")?;
        let config = Dictionary::parse(&text);
        if config.entries().is_empty() {
            return Err(Error::declined(
                "no key = \"value\" line: not a VMX configuration",
            ));
        }
        let mut findings = config.findings.clone();
        let (controllers, devices) = devices(&config, &mut findings);
        let encryption = Encryption::of(&config);
        let from = lower.path().map(Path::to_path_buf);
        let mut op = Opener {
            ctx,
            from: from.clone(),
            disks: 0,
            refused: encryption.is_some(),
        };
        let disks = devices
            .iter()
            .filter(|d| d.is_attached_disk())
            .filter_map(|d| {
                Some(VmDisk {
                    node: d.node.clone(),
                    link: op.disk(d.file_name.as_deref()?),
                })
            })
            .collect();
        let memory = config
            .get(KEY_VMSTATE)
            .filter(|v| !v.trim().is_empty())
            .map(|v| op.memory(v));
        let (vmsd, snapshot_db) = if op.refused {
            (None, None)
        } else {
            open_vmsd(&config, from.as_deref(), ctx)
        };
        let snapshots = snapshot_db
            .iter()
            .flat_map(|db| db.snapshots.iter())
            .map(|s| VmSnapshot {
                snapshot: s.clone(),
                memory: s
                    .file_name
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .map(|f| op.memory(f)),
                disks: s
                    .disks
                    .iter()
                    .map(|d| VmDisk {
                        node: d.node.clone(),
                        link: op.disk(&d.file_name),
                    })
                    .collect(),
            })
            .collect();
        if let Some(db) = &snapshot_db {
            findings.extend(db.findings.iter().cloned());
        }
        if let Some((_, Some(d))) = &vmsd {
            findings.extend(d.findings.iter().cloned());
        }
        if op.disks >= MAX_OPENED_DISKS {
            findings.push(Finding::warning(
                REFERENCES,
                format!("more than {MAX_OPENED_DISKS} disks: the rest are listed, not opened"),
            ));
        }
        let mut vm = Vm {
            lower,
            config,
            controllers,
            devices,
            encryption,
            disks,
            memory,
            vmsd,
            snapshot_db,
            snapshots,
            findings,
        };
        vm.findings.extend(vm.own_findings());
        Ok(vm)
    }

    /// The findings about references and encryption.
    fn own_findings(&self) -> Vec<Finding> {
        let mut v = Vec::new();
        if let Some(e) = &self.encryption {
            v.push(Finding::warning(
                ENCRYPTED,
                format!(
                    "the VM is encrypted (key safe {}, key locators {:?}): its devices and disks are not read",
                    e.key_safe_kind.as_deref().unwrap_or("absent"),
                    e.locators
                ),
            ));
            v.push(Finding::unsafe_(
                REFERENCES,
                "an encrypted VM configuration references its disks inside encryption.data",
            ));
        }
        v.extend(vmsnap_core::references_finding(
            "a VMware VM configuration",
            &self.own_refs(),
        ));
        // Each file, opened or not, is reported through its reference (`external_refs`).
        v
    }

    /// The references this file makes itself (not those of its disks' chains).
    fn own_refs(&self) -> Vec<ExternalRef> {
        let mut v: Vec<ExternalRef> = Vec::new();
        let (mut disks, mut memory) = (Vec::new(), Vec::new());
        for d in &self.disks {
            disks.push(d.link.reference.clone());
        }
        memory.extend(self.memory.iter().map(|m| m.reference.clone()));
        v.extend(disks);
        v.extend(memory);
        if let Some((l, _)) = &self.vmsd {
            v.push(l.reference.clone());
        }
        for s in &self.snapshots {
            v.extend(s.memory.iter().map(|m| m.reference.clone()));
            v.extend(s.disks.iter().map(|d| d.link.reference.clone()));
        }
        v
    }

    /// The parsed configuration.
    pub fn config(&self) -> &Dictionary {
        &self.config
    }

    /// The configured devices.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The current state's disks.
    pub fn disks(&self) -> &[VmDisk] {
        &self.disks
    }

    /// The current state's memory (`checkpoint.vmState`).
    pub fn memory(&self) -> Option<&Link> {
        self.memory.as_ref()
    }

    /// The snapshots of the `.vmsd`.
    pub fn snapshots(&self) -> &[VmSnapshot] {
        &self.snapshots
    }

    /// The encryption, for an encrypted VM.
    pub fn encryption(&self) -> Option<&Encryption> {
        self.encryption.as_ref()
    }

    fn snapshots_json(&self) -> Vec<Value> {
        let current = self.snapshot_db.as_ref().and_then(|d| d.current.as_deref());
        self.snapshots
            .iter()
            .map(|s| {
                let p = format!("snapshot:{}", s.snapshot.name);
                let mut j = s.snapshot.to_json();
                if let Some(o) = j.as_object_mut() {
                    o.insert("layer_prefix".into(), json!(p));
                    o.insert(
                        "current".into(),
                        json!(current.is_some() && s.snapshot.uid.as_deref() == current),
                    );
                    o.insert(
                        "vm_state_size".into(),
                        json!(s
                            .memory
                            .as_ref()
                            .and_then(|m| m.layer.as_ref())
                            .map(|l| l.len())),
                    );
                    o.insert(
                        "memory".into(),
                        json!(s
                            .memory
                            .as_ref()
                            .map(|m| link_json(m, &format!("{p}/memory")))),
                    );
                    o.insert(
                        "disks".into(),
                        s.disks
                            .iter()
                            .map(|d| {
                                let mut j = link_json(&d.link, &format!("{p}/disk:{}", d.node));
                                if let Some(o) = j.as_object_mut() {
                                    o.insert("node".into(), json!(d.node));
                                }
                                j
                            })
                            .collect(),
                    );
                }
                j
            })
            .collect()
    }
}

/// The snapshot database: `snapshot.fileName`, else `<vmx stem>.vmsd` beside the `.vmx`
/// (whose absence is normal: a VM without snapshots; then it is not a reference).
fn open_vmsd(
    config: &Dictionary,
    from: Option<&Path>,
    ctx: &OpenCtx<'_>,
) -> (Option<(Link, Option<Dictionary>)>, Option<SnapshotDb>) {
    let named = config
        .get(KEY_SNAPSHOT_FILE)
        .filter(|v| !v.trim().is_empty());
    let implicit = from
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .map(|s| format!("{s}.vmsd"));
    let Some(name) = named.map(str::to_string).or(implicit) else {
        return (None, None);
    };
    let f = ctx.follow_file(RefKind::Companion, from, &name);
    let f = if named.is_some() {
        f
    } else {
        match f.by_convention() {
            Some(f) => f,
            None => return (None, None),
        }
    };
    let link = Link::from(f);
    let Some(file) = &link.layer else {
        return (Some((link, None)), None);
    };
    match read_text(file.as_ref(), "snapshot database") {
        Ok(text) => {
            let d = Dictionary::parse(&text);
            let db = SnapshotDb::parse(&d);
            (Some((link, Some(d))), Some(db))
        }
        Err(e) => {
            let mut link = link;
            link.reference.decision = RefDecision::Failed {
                reason: e.to_string(),
            };
            link.layer = None;
            (Some((link, None)), None)
        }
    }
}

impl Layer for Vm {
    vmsnap_core::metadata_layer!(NAME);
    fn describe(&self) -> Value {
        let c = &self.config;
        let disks: Vec<Value> = self
            .disks
            .iter()
            .map(|d| {
                let dev = self.devices.iter().find(|x| x.node == d.node);
                let mut j = link_json(&d.link, &format!("disk:{}", d.node));
                if let Some(o) = j.as_object_mut() {
                    o.insert("node".into(), json!(d.node));
                    o.insert(
                        "device_type".into(),
                        json!(dev.and_then(|x| x.device_type.clone())),
                    );
                    o.insert("mode".into(), json!(dev.and_then(|x| x.mode.clone())));
                }
                j
            })
            .collect();
        let other: Vec<Value> = self
            .devices
            .iter()
            .filter(|d| !d.is_attached_disk())
            .map(Device::to_json)
            .collect();
        json!({
            "format": NAME,
            "display_name": c.get("displayname"),
            "guest_os": c.get("guestos"),
            "config_version": c.get("config.version"),
            "virtual_hw_version": c.get("virtualhw.version"),
            "memsize_mib": c.get("memsize"),
            "num_vcpus": c.get("numvcpus"),
            "uuid_bios": c.get("uuid.bios"),
            "encoding": c.encoding,
            "keys": c.entries().len(),
            "encrypted": self.encryption.as_ref().map(Encryption::to_json),
            "controllers": self.controllers.iter().map(|c| json!({
                "name": c.name, "present": c.present, "virtual_dev": c.virtual_dev,
            })).collect::<Vec<_>>(),
            "disks": disks,
            "other_devices": other,
            "memory": self.memory.as_ref().map(|m| link_json(m, "memory")),
            "snapshot_database": self.vmsd.as_ref().map(|(l, _)| json!({
                "file": l.reference.name,
                "status": l.reference.decision.describe(),
            })),
            "current_snapshot": self.snapshot_db.as_ref().and_then(|d| d.current.clone()),
            "snapshots": self.snapshots_json(),
        })
    }
    fn meta(&self) -> Value {
        json!({
            "format": NAME,
            "describe": self.describe(),
            "config": self.config.to_json(),
            "snapshot_database": self.vmsd.as_ref().and_then(|(_, d)| d.as_ref()).map(Dictionary::to_json),
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        let mut v = self.own_refs();
        // The disks' own references (delta parents, extents): the disks are not stacked
        // entries, so nobody else reports them.
        for d in self
            .disks
            .iter()
            .chain(self.snapshots.iter().flat_map(|s| s.disks.iter()))
        {
            if let Some(l) = &d.link.layer {
                v.extend(l.external_refs());
            }
        }
        v
    }
    fn children(&self) -> Vec<NamedLayer> {
        let mut v = Vec::new();
        let child = |name: String, role, stackable, l: &Link| {
            l.layer.as_ref().map(|layer| NamedLayer {
                name,
                role,
                stackable,
                layer: layer.clone(),
            })
        };
        for d in &self.disks {
            v.extend(child(
                format!("disk:{}", d.node),
                ChildRole::Disk,
                false,
                &d.link,
            ));
        }
        if let Some(m) = &self.memory {
            v.extend(child("memory".into(), ChildRole::Memory, true, m));
        }
        for s in &self.snapshots {
            let p = format!("snapshot:{}", s.snapshot.name);
            for d in &s.disks {
                v.extend(child(
                    format!("{p}/disk:{}", d.node),
                    ChildRole::Disk,
                    false,
                    &d.link,
                ));
            }
            if let Some(m) = &s.memory {
                v.extend(child(format!("{p}/memory"), ChildRole::Memory, true, m));
            }
        }
        v
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
