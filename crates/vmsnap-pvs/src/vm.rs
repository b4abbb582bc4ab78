//! The VM a `config.pvs` describes, opened: each image `Hdd` through the `.hdd` bundle
//! reader (so its storages and snapshots follow the policy), the snapshot tree of
//! `Snapshots.xml` with each snapshot's disks (the bundles' snapshots of the same GUID)
//! and state files. The layer itself reads as the `config.pvs`'s own bytes (address space
//! `Metadata`).

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    ChildRole, DiskFormat, ExternalRef, Finding, Layer, LayerExt, Link, NamedLayer, OpenCtx,
    RefKind, Result, ResultExt,
};

use crate::config::{Config, HddDevice};
use crate::raw::{
    DISK_DESCRIPTOR, MAX_CONFIG_BYTES, SNAPSHOTS_DIR, SNAPSHOTS_FILE, SNAPSHOT_STATE_FILES,
};
use crate::rule::{ENCRYPTED, SNAPSHOTS};
use crate::snapshots::{self, SavedState};

/// The plugin and layer name.
pub const NAME: &str = "pvs";

/// A link's entry in `describe`: the file, what became of it, and whether it was opened.
fn link_json(link: &Link) -> Value {
    json!({
        "file": link.reference.name,
        "status": link.reference.decision.describe(),
        "opened": link.opened(),
    })
}

/// A disk of the current state.
#[derive(Debug, Clone)]
pub struct VmDisk {
    /// The `Hdd` element.
    pub device: HddDevice,
    /// Its bundle, when it has a `SystemName`.
    pub link: Option<Link>,
    /// Why it was not opened, when it was not.
    pub not_read: Option<String>,
}

impl VmDisk {
    /// `disk:<node>`.
    pub fn layer_name(&self) -> String {
        format!("disk:{}", self.device.node)
    }
}

/// A disk in a snapshot: the bundle's own snapshot of the same GUID.
#[derive(Debug, Clone)]
pub struct SnapshotDisk {
    /// The bus node (`sata0:0`).
    pub node: String,
    /// The bundle's state of that snapshot.
    pub layer: Option<Arc<dyn Layer>>,
    /// Why there is none.
    pub missing: Option<String>,
}

/// A snapshot with its disks and state files.
#[derive(Debug, Clone)]
pub struct VmSnapshot {
    /// What `Snapshots.xml` says.
    pub state: SavedState,
    /// Its disks.
    pub disks: Vec<SnapshotDisk>,
    /// Its `Snapshots/{GUID}.mem`, `.sav`, `.pvc` and `.png`, those that exist: listed,
    /// not read.
    pub files: Vec<Link>,
}

impl VmSnapshot {
    /// `snapshot:<name>`.
    pub fn prefix(&self) -> String {
        format!("snapshot:{}", self.state.layer_name)
    }
}

/// An open `config.pvs`.
#[derive(Debug)]
pub struct Vm {
    lower: Arc<dyn Layer>,
    config: Config,
    disks: Vec<VmDisk>,
    snapshots_file: Option<Link>,
    snapshots: Vec<VmSnapshot>,
    findings: Vec<Finding>,
}

/// `SystemName` names the `.hdd` bundle directory; its descriptor is opened (a name that
/// already ends in `DiskDescriptor.xml` is kept).
fn descriptor_name(system_name: &str) -> String {
    let t = system_name.trim_end_matches('/');
    let last = t.rsplit('/').next().unwrap_or(t);
    if last.eq_ignore_ascii_case(DISK_DESCRIPTOR) {
        t.to_string()
    } else {
        format!("{t}/{DISK_DESCRIPTOR}")
    }
}

/// Reads a whole XML file, bounded by [`MAX_CONFIG_BYTES`].
fn read_text(l: &dyn Layer, what: &str) -> Result<Vec<u8>> {
    l.read_vec(0, l.len(), MAX_CONFIG_BYTES, what)
}

impl Vm {
    /// Opens the `config.pvs` on `lower`; every file it names is opened through `ctx`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_inner(lower, ctx).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let text = read_text(lower.as_ref(), "config.pvs")?;
        let config = Config::parse(&text).during("parsing config.pvs")?;
        let from = lower.path().map(Path::to_path_buf);
        let mut findings = config.findings.clone();
        let disks: Vec<VmDisk> = config
            .disks
            .iter()
            .map(|d| open_disk(d, &config, from.as_deref(), ctx))
            .collect();
        let (snapshots_file, states) = open_snapshots(from.as_deref(), ctx, &mut findings);
        let snapshots = states
            .into_iter()
            .map(|state| snapshot(state, &disks, &config, from.as_deref(), ctx))
            .collect();
        let mut vm = Vm {
            lower,
            config,
            disks,
            snapshots_file,
            snapshots,
            findings,
        };
        vm.findings.extend(vm.own_findings());
        Ok(vm)
    }

    /// The parsed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state's disks (every `Hdd`).
    pub fn disks(&self) -> &[VmDisk] {
        &self.disks
    }

    /// The snapshots of `Snapshots.xml`, parents first.
    pub fn snapshots(&self) -> &[VmSnapshot] {
        &self.snapshots
    }

    fn own_findings(&self) -> Vec<Finding> {
        let mut v = Vec::new();
        if let Some(e) = &self.config.encryption {
            v.push(Finding::warning(
                ENCRYPTED,
                format!("the VM is encrypted ({e}): its disks are not read"),
            ));
        }
        for d in &self.disks {
            if let Some(k) = &d.device.encryption {
                v.push(Finding::warning(
                    ENCRYPTED,
                    format!("{} is encrypted ({k}): not read", d.layer_name()),
                ));
            }
        }
        v.extend(vmsnap_core::references_finding(
            "a Parallels VM configuration",
            &self.own_refs(),
        ));
        // Each file, opened or not, is reported through its reference (`external_refs`).
        for s in &self.snapshots {
            for d in &s.disks {
                if let Some(why) = &d.missing {
                    v.push(Finding::warning(
                        SNAPSHOTS,
                        format!("{}/disk:{}: {why}", s.prefix(), d.node),
                    ));
                }
            }
        }
        v
    }

    /// The references this file makes itself (not those inside the disks' bundles).
    fn own_refs(&self) -> Vec<ExternalRef> {
        let mut v: Vec<ExternalRef> = self
            .disks
            .iter()
            .filter_map(|d| d.link.as_ref())
            .map(|l| l.reference.clone())
            .collect();
        v.extend(self.snapshots_file.iter().map(|l| l.reference.clone()));
        for s in &self.snapshots {
            v.extend(s.files.iter().map(|l| l.reference.clone()));
        }
        v
    }

    fn snapshots_json(&self) -> Vec<Value> {
        self.snapshots
            .iter()
            .map(|s| {
                let p = s.prefix();
                let mut j = s.state.to_json();
                if let Some(o) = j.as_object_mut() {
                    o.insert("layer_prefix".into(), json!(p));
                    o.insert(
                        "disks".into(),
                        s.disks
                            .iter()
                            .map(|d| {
                                json!({
                                    "node": d.node,
                                    "layer": d.layer.as_ref().map(|_| format!("{p}/disk:{}", d.node)),
                                    "size": d.layer.as_ref().map(|l| l.len()),
                                    "missing": d.missing,
                                })
                            })
                            .collect(),
                    );
                    o.insert(
                        "state_files".into(),
                        s.files
                            .iter()
                            .map(|f| {
                                let mut j = link_json(f);
                                if let Some(o) = j.as_object_mut() {
                                    o.insert(
                                        "size".into(),
                                        json!(f.layer.as_ref().map(|l| l.len())),
                                    );
                                    o.insert("read".into(), json!(false));
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

/// Opens disk `d` (its bundle's `DiskDescriptor.xml`, through the `hdd` plugin), or lists
/// it with the reason it is not read.
fn open_disk(d: &HddDevice, config: &Config, from: Option<&Path>, ctx: &OpenCtx<'_>) -> VmDisk {
    let Some(name) = d.system_name.as_deref().filter(|s| !s.is_empty()) else {
        return VmDisk {
            device: d.clone(),
            link: None,
            not_read: Some("no SystemName".into()),
        };
    };
    let why_not = if !d.enabled {
        Some("disabled (Enabled 0)".to_string())
    } else if !d.is_image() {
        Some(format!(
            "not an image file (EmulatedType {}: a host device or Boot Camp partition)",
            d.emulated_type.unwrap_or_default()
        ))
    } else if let Some(e) = &config.encryption {
        Some(format!("the VM is encrypted ({e})"))
    } else {
        d.encryption
            .as_ref()
            .map(|k| format!("the disk is encrypted ({k})"))
    };
    if let Some(why) = why_not {
        return VmDisk {
            device: d.clone(),
            link: Some(Link::listed(RefKind::VmFile, name)),
            not_read: Some(why),
        };
    }
    let f = ctx.follow_disk(
        RefKind::VmFile,
        from,
        &descriptor_name(name),
        DiskFormat::Plugin(&vmsnap_hdd::PLUGIN),
        |_| Ok(()),
    );
    let mut link = Link::from(f);
    let not_read = (!link.opened()).then(|| link.reference.decision.describe());
    if !link.opened() {
        // A stand-in of the size the configuration records: reads fail (or read zeros
        // with `--missing zeros`), and the resolver lists it as unavailable.
        if let Some(len) = d.size_bytes() {
            link.layer = Some(ctx.resolver.unavailable(&link.reference, NAME, from, len));
        }
    }
    VmDisk {
        device: d.clone(),
        link: Some(link),
        not_read,
    }
}

/// `Snapshots.xml` beside the configuration (its absence is normal: a VM without
/// snapshots; then it is not a reference), and the snapshots it lists.
fn open_snapshots(
    from: Option<&Path>,
    ctx: &OpenCtx<'_>,
    findings: &mut Vec<Finding>,
) -> (Option<Link>, Vec<SavedState>) {
    let Some(f) = ctx
        .follow_file(RefKind::Companion, from, SNAPSHOTS_FILE)
        .by_convention()
    else {
        return (None, Vec::new());
    };
    let link = Link::from(f);
    let Some(file) = &link.layer else {
        return (Some(link), Vec::new());
    };
    match read_text(file.as_ref(), SNAPSHOTS_FILE).and_then(|t| snapshots::parse(&t)) {
        Ok(s) => (Some(link), s),
        Err(e) => {
            findings.push(Finding::warning(
                SNAPSHOTS,
                format!("{SNAPSHOTS_FILE} is not read: {e}"),
            ));
            (Some(link), Vec::new())
        }
    }
}

/// Snapshot `state` of the VM: each opened disk's bundle state of the same GUID, and its
/// files (`Snapshots/{GUID}.mem`, `.sav`, `.pvc`, `.png`) when they exist.
fn snapshot(
    state: SavedState,
    disks: &[VmDisk],
    config: &Config,
    from: Option<&Path>,
    ctx: &OpenCtx<'_>,
) -> VmSnapshot {
    let child = format!("{}{}", vmsnap_hdd::SNAPSHOT_PREFIX, state.guid.as_str());
    let sdisks = disks
        .iter()
        .filter_map(|d| {
            let l = d.link.as_ref().filter(|l| l.opened())?.layer.as_ref()?;
            let found = l.children().into_iter().find(|c| c.name == child);
            Some(SnapshotDisk {
                node: d.device.node.clone(),
                missing: found
                    .is_none()
                    .then(|| format!("the bundle has no snapshot {}", state.guid)),
                layer: found.map(|c| c.layer),
            })
        })
        .collect();
    let files = if config.encryption.is_some() {
        Vec::new()
    } else {
        SNAPSHOT_STATE_FILES
            .iter()
            .filter_map(|ext| {
                let name = format!("{SNAPSHOTS_DIR}/{}{ext}", state.guid);
                ctx.follow_file(RefKind::Companion, from, &name)
                    .by_convention()
            })
            .map(Link::from)
            .collect()
    };
    VmSnapshot {
        state,
        disks: sdisks,
        files,
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
                let mut j = d.device.to_json();
                if let Some(o) = j.as_object_mut() {
                    let layer = d.link.as_ref().and_then(|l| l.layer.as_ref());
                    o.insert("layer".into(), json!(layer.map(|_| d.layer_name())));
                    o.insert(
                        "reference".into(),
                        json!(d.link.as_ref().map(|l| l.reference.name.clone())),
                    );
                    o.insert(
                        "status".into(),
                        json!(d.link.as_ref().map(|l| l.reference.decision.describe())),
                    );
                    let opened = d
                        .link
                        .as_ref()
                        .filter(|l| l.opened())
                        .and_then(|l| l.layer.as_ref());
                    o.insert("format".into(), json!(opened.map(|l| l.name().to_string())));
                    o.insert("size".into(), json!(opened.map(|l| l.len())));
                    // The bundle's image files (every snapshot's), as it opened them.
                    o.insert(
                        "images".into(),
                        json!(opened.map(|l| l
                            .external_refs()
                            .into_iter()
                            .map(|r| r.name)
                            .collect::<Vec<_>>())),
                    );
                    o.insert("not_read".into(), json!(d.not_read));
                }
                j
            })
            .collect();
        let current = self
            .snapshots
            .iter()
            .find(|s| s.state.current)
            .map(|s| s.state.guid.as_str().to_string());
        json!({
            "format": NAME,
            "vm_name": c.vm_name,
            "vm_uuid": c.vm_uuid,
            "app_version": c.app_version,
            "ram_mib": c.ram_mib,
            "cpus": c.cpus,
            "encrypted": c.encryption,
            "disks": disks,
            "snapshot_tree": self.snapshots_file.as_ref().map(link_json),
            "current_snapshot": current,
            "snapshots": self.snapshots_json(),
        })
    }
    fn meta(&self) -> Value {
        json!({ "format": NAME, "describe": self.describe() })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        let mut v = self.own_refs();
        // The bundles' own references (their `.hds` images): the disks are not stacked
        // entries, so nobody else reports them.
        for d in &self.disks {
            if let Some(l) = d
                .link
                .as_ref()
                .filter(|l| l.opened())
                .and_then(|l| l.layer.as_ref())
            {
                v.extend(l.external_refs());
            }
        }
        v
    }
    fn children(&self) -> Vec<NamedLayer> {
        let mut v = Vec::new();
        for d in &self.disks {
            if let Some(layer) = d.link.as_ref().and_then(|l| l.layer.clone()) {
                v.push(NamedLayer {
                    name: d.layer_name(),
                    role: ChildRole::Disk,
                    stackable: false,
                    layer,
                });
            }
        }
        for s in &self.snapshots {
            let p = s.prefix();
            for d in &s.disks {
                if let Some(layer) = d.layer.clone() {
                    v.push(NamedLayer {
                        name: format!("{p}/disk:{}", d.node),
                        role: ChildRole::Disk,
                        stackable: false,
                        layer,
                    });
                }
            }
        }
        v
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_of_a_bundle() {
        assert_eq!(descriptor_name("a.hdd"), "a.hdd/DiskDescriptor.xml");
        assert_eq!(descriptor_name("/x/a.hdd/"), "/x/a.hdd/DiskDescriptor.xml");
        assert_eq!(
            descriptor_name("a.hdd/diskdescriptor.xml"),
            "a.hdd/diskdescriptor.xml"
        );
    }
}
