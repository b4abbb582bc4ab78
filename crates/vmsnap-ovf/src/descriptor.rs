//! The OVF descriptor parsed: its file references, its disks, and each virtual system's
//! storage controllers and disk drives, with the inner layer name each drive gets.
//!
//! Layer names: a disk drive (`ResourceType` 17) attached through `Parent` to a controller
//! is `disk:<bus><n>:<unit>`. `<bus>` is `ide` (`ResourceType` 5), `scsi` (6), and for
//! "other storage device" (20) `sata` (`ResourceSubType` `AHCI`, `vmware.sata.ahci`, any
//! subtype naming SATA) or `nvme` (a subtype naming NVMe; any other subtype is `storage`).
//! `<n>` is the controller's `Address` when it is a number, else how many controllers of
//! the same bus come before it in the section; `<unit>` is the drive's
//! `AddressOnParent` when it is a number, else how many drives of that controller come
//! before it. A drive with no (known) controller is `disk:<diskId>` (or `disk:<fileId>`
//! for `ovf:/file/` host resources); a name already taken falls back to that too. In a
//! `VirtualSystemCollection` of several systems, each name is prefixed with
//! `system:<VirtualSystem ovf:id>/`.

use roxmltree::Node;
use serde_json::{json, Value};
use vmsnap_core::{Error, Finding, Result};

use crate::raw::{
    HOST_DISK, HOST_FILE, MAX_COLLECTION_DEPTH, MAX_ELEMENTS, MAX_SYSTEMS, NS_OVF1, NS_OVF2, RT_CD,
    RT_DISK, RT_DVD, RT_IDE, RT_OTHER_STORAGE, RT_SCSI,
};
use crate::rule::DESCRIPTOR;
use crate::units::bytes_per_unit;
use crate::xml::{self, attr, child, children, text};

/// A `References/File`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// `ovf:id`.
    pub id: String,
    /// `ovf:href`: a name relative to the descriptor (or a member of the OVA).
    pub href: String,
    /// `ovf:size`, when given and a number.
    pub size: Option<u64>,
    /// `ovf:compression` (`gzip`), when given.
    pub compression: Option<String>,
    /// `ovf:chunkSize`: the file is split into `href.000000000`, `href.000000001`, ….
    pub chunk_size: Option<u64>,
}

impl FileRef {
    /// Why this file cannot be read in place (compressed or chunked), if it cannot.
    pub fn unsupported(&self) -> Option<String> {
        if let Some(c) = &self.compression {
            if !c.is_empty() && c != "identity" {
                return Some(format!(
                    "ovf:compression=\"{c}\": compressed files are not read (decompress the \
                     package's member first)"
                ));
            }
        }
        self.chunk_size.map(|c| {
            format!(
                "ovf:chunkSize=\"{c}\": chunked files ({}.000000000, …) are not read",
                self.href
            )
        })
    }
}

/// A `DiskSection/Disk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDef {
    /// `ovf:diskId`.
    pub id: String,
    /// `ovf:fileRef` (absent for a blank disk created on import).
    pub file_ref: Option<String>,
    /// `ovf:capacity` as written.
    pub capacity_text: Option<String>,
    /// `ovf:capacityAllocationUnits` (default `byte`).
    pub units: Option<String>,
    /// The capacity in bytes, when capacity and units are numbers this reader knows.
    pub capacity: Option<u64>,
    /// `ovf:populatedSize`.
    pub populated_size: Option<u64>,
    /// `ovf:format` (a URI: VMware's `vmdk.html#streamOptimized`, …).
    pub format: Option<String>,
}

/// A storage controller of a virtual system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// `InstanceID`.
    pub instance_id: String,
    /// `ide`, `scsi`, `sata`, `nvme` or `storage`.
    pub bus: &'static str,
    /// The controller's number on its bus (see the module docs).
    pub number: u64,
    /// `ResourceType`.
    pub resource_type: u32,
    /// `ResourceSubType` (`lsilogic`, `AHCI`, `PIIX4`, …).
    pub subtype: Option<String>,
    /// `ElementName`, else `Caption`.
    pub element_name: Option<String>,
}

impl Controller {
    /// `scsi0`.
    pub fn name(&self) -> String {
        format!("{}{}", self.bus, self.number)
    }
}

/// A disk drive (`ResourceType` 17) of a virtual system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// The inner layer name (`disk:scsi0:0`; see the module docs).
    pub layer: String,
    /// Its controller's name (`scsi0`), when its `Parent` names one.
    pub controller: Option<String>,
    /// Its unit on the controller.
    pub unit: Option<u64>,
    /// `HostResource` as written.
    pub host_resource: String,
    /// The `DiskSection` disk it names (`ovf:/disk/<id>`).
    pub disk_id: Option<String>,
    /// The file it names: the disk's `fileRef`, or `ovf:/file/<id>`.
    pub file_id: Option<String>,
    /// `ElementName`, else `Caption`.
    pub element_name: Option<String>,
}

/// A `VirtualSystem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// `ovf:id`.
    pub id: String,
    /// `Name`, if any.
    pub name: Option<String>,
    /// `OperatingSystemSection/Description`, else its `ovf:id`.
    pub os: Option<String>,
    /// `System/VirtualSystemType` (`vmx-13`, `virtualbox-2.2`).
    pub system_type: Option<String>,
    /// Memory in MiB and CPU count (`ResourceType` 4 and 3), as written.
    pub memory: Option<String>,
    /// See [`System::memory`].
    pub cpus: Option<String>,
    /// The storage controllers.
    pub controllers: Vec<Controller>,
    /// The disk drives.
    pub drives: Vec<Drive>,
    /// CD/DVD drives (not read).
    pub optical_drives: usize,
}

/// The parsed descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// 1 (`envelope/1`) or 2 (`envelope/2`).
    pub major: u8,
    /// `ovf:version` of the envelope, as written.
    pub version: Option<String>,
    /// `References/File`.
    pub files: Vec<FileRef>,
    /// `DiskSection/Disk`.
    pub disks: Vec<DiskDef>,
    /// The virtual systems (those of a collection, in document order).
    pub systems: Vec<System>,
    /// What the descriptor has wrong that does not stop reading it.
    pub findings: Vec<Finding>,
}

fn number(s: Option<&str>) -> Option<u64> {
    s.and_then(|t| t.trim().parse().ok())
}

/// The one `Item` field reader: `rasd:X` in 1.x and `Item`s of 2.x, `sasd:X` in 2.x
/// `StorageItem`s; both by local name.
struct Item<'a, 'i> {
    node: Node<'a, 'i>,
}

impl<'a> Item<'a, '_> {
    fn get(&self, name: &'static str) -> Option<&'a str> {
        text(self.node, name)
    }
    fn resource_type(&self) -> Option<u32> {
        self.get("ResourceType").and_then(|t| t.parse().ok())
    }
    fn label(&self) -> Option<String> {
        self.get("ElementName")
            .or_else(|| self.get("Caption"))
            .map(str::to_string)
    }
}

/// The bus of a controller item, if it is one.
fn bus(resource_type: u32, subtype: Option<&str>) -> Option<&'static str> {
    let sub = subtype.unwrap_or("").to_ascii_lowercase();
    match resource_type {
        RT_IDE => Some("ide"),
        RT_SCSI => Some("scsi"),
        RT_OTHER_STORAGE if sub.contains("nvme") => Some("nvme"),
        RT_OTHER_STORAGE if sub.contains("ahci") || sub.contains("sata") => Some("sata"),
        RT_OTHER_STORAGE => Some("storage"),
        _ => None,
    }
}

impl Descriptor {
    /// Parses the descriptor's bytes. Not an OVF envelope: [`Error::declined`].
    pub fn parse(bytes: &[u8]) -> Result<Descriptor> {
        let doc = xml::parse(bytes)?;
        let root = doc.root_element();
        let ns = root.tag_name().namespace().unwrap_or("");
        let major = match ns {
            NS_OVF1 => 1,
            NS_OVF2 => 2,
            _ => {
                return Err(Error::declined(format!(
                    "the root element is {{{ns}}}{}, not an OVF Envelope",
                    root.tag_name().name()
                )))
            }
        };
        if root.tag_name().name() != "Envelope" {
            return Err(Error::declined("the root element is not an OVF Envelope"));
        }
        let mut findings = Vec::new();
        let files = parse_files(root, &mut findings)?;
        let disks = parse_disks(root, &mut findings)?;
        let mut nodes = Vec::new();
        collect_systems(root, 0, &mut nodes)?;
        let prefix = nodes.len() > 1;
        let mut systems: Vec<System> = Vec::new();
        for n in nodes {
            systems.push(parse_system(n, &disks, prefix, &mut findings)?);
        }
        Ok(Descriptor {
            major,
            version: attr(root, "version").map(str::to_string),
            files,
            disks,
            systems,
            findings,
        })
    }

    /// The file `id` names.
    pub fn file(&self, id: &str) -> Option<&FileRef> {
        self.files.iter().find(|f| f.id == id)
    }

    /// The disk `id` names.
    pub fn disk(&self, id: &str) -> Option<&DiskDef> {
        self.disks.iter().find(|d| d.id == id)
    }

    /// Every drive of every system.
    pub fn drives(&self) -> impl Iterator<Item = &Drive> {
        self.systems.iter().flat_map(|s| s.drives.iter())
    }

    /// The descriptor as JSON (for `meta`).
    pub fn to_json(&self) -> Value {
        json!({
            "ovf_major": self.major,
            "ovf_version": self.version,
            "files": self.files.iter().map(|f| json!({
                "id": f.id, "href": f.href, "size": f.size,
                "compression": f.compression, "chunk_size": f.chunk_size,
            })).collect::<Vec<_>>(),
            "disks": self.disks.iter().map(|d| json!({
                "id": d.id, "file_ref": d.file_ref, "capacity": d.capacity_text,
                "capacity_allocation_units": d.units, "capacity_bytes": d.capacity,
                "populated_size": d.populated_size, "format": d.format,
            })).collect::<Vec<_>>(),
            "systems": self.systems.iter().map(System::to_json).collect::<Vec<_>>(),
        })
    }
}

impl System {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "os": self.os,
            "system_type": self.system_type,
            "memory_mib": self.memory,
            "cpus": self.cpus,
            "controllers": self.controllers.iter().map(|c| json!({
                "name": c.name(), "instance_id": c.instance_id, "resource_type": c.resource_type,
                "subtype": c.subtype, "element_name": c.element_name,
            })).collect::<Vec<_>>(),
            "optical_drives": self.optical_drives,
        })
    }
}

fn limited<'a, 'i>(
    it: impl Iterator<Item = Node<'a, 'i>>,
    what: &str,
) -> Result<Vec<Node<'a, 'i>>> {
    let v: Vec<Node<'a, 'i>> = it.take(MAX_ELEMENTS + 1).collect();
    if v.len() > MAX_ELEMENTS {
        return Err(Error::limit(what, v.len() as u64, MAX_ELEMENTS as u64));
    }
    Ok(v)
}

fn parse_files(root: Node<'_, '_>, findings: &mut Vec<Finding>) -> Result<Vec<FileRef>> {
    let Some(refs) = child(root, "References") else {
        return Ok(Vec::new());
    };
    let mut v: Vec<FileRef> = Vec::new();
    for f in limited(children(refs, "File"), "OVF References/File elements")? {
        let (Some(id), Some(href)) = (attr(f, "id"), attr(f, "href")) else {
            findings.push(
                Finding::warning(DESCRIPTOR, "a References/File without ovf:id or ovf:href")
                    .at(xml::at(f)),
            );
            continue;
        };
        if v.iter().any(|x| x.id == id) {
            findings.push(
                Finding::warning(
                    DESCRIPTOR,
                    format!("File id {id:?} repeated: the first is used"),
                )
                .at(xml::at(f)),
            );
            continue;
        }
        v.push(FileRef {
            id: id.to_string(),
            href: href.to_string(),
            size: number(attr(f, "size")),
            compression: attr(f, "compression").map(str::to_string),
            chunk_size: number(attr(f, "chunkSize")),
        });
    }
    Ok(v)
}

fn parse_disks(root: Node<'_, '_>, findings: &mut Vec<Finding>) -> Result<Vec<DiskDef>> {
    let Some(section) = child(root, "DiskSection") else {
        return Ok(Vec::new());
    };
    let mut v: Vec<DiskDef> = Vec::new();
    for d in limited(children(section, "Disk"), "OVF DiskSection/Disk elements")? {
        let Some(id) = attr(d, "diskId") else {
            findings.push(Finding::warning(DESCRIPTOR, "a Disk without ovf:diskId").at(xml::at(d)));
            continue;
        };
        let capacity_text = attr(d, "capacity").map(str::to_string);
        let units = attr(d, "capacityAllocationUnits").map(str::to_string);
        let per = bytes_per_unit(units.as_deref().unwrap_or("byte"));
        let capacity = number(capacity_text.as_deref())
            .zip(per)
            .and_then(|(c, p)| c.checked_mul(p));
        if capacity.is_none() {
            findings.push(
                Finding::warning(
                    DESCRIPTOR,
                    format!(
                        "disk {id:?}: capacity {capacity_text:?} in units {units:?} is not a \
                         byte count this reader knows: it is not checked"
                    ),
                )
                .at(xml::at(d)),
            );
        }
        v.push(DiskDef {
            id: id.to_string(),
            file_ref: attr(d, "fileRef").map(str::to_string),
            capacity_text,
            units,
            capacity,
            populated_size: number(attr(d, "populatedSize")),
            format: attr(d, "format").map(str::to_string),
        });
    }
    Ok(v)
}

/// The `VirtualSystem`s under `node`, through nested collections.
fn collect_systems<'a, 'i>(
    node: Node<'a, 'i>,
    depth: u32,
    out: &mut Vec<Node<'a, 'i>>,
) -> Result<()> {
    if depth > MAX_COLLECTION_DEPTH {
        return Err(Error::limit(
            "VirtualSystemCollection nesting",
            u64::from(depth),
            u64::from(MAX_COLLECTION_DEPTH),
        ));
    }
    for c in node.children().filter(Node::is_element) {
        match c.tag_name().name() {
            "VirtualSystem" => {
                if out.len() >= MAX_SYSTEMS {
                    return Err(Error::limit(
                        "virtual systems",
                        out.len() as u64 + 1,
                        MAX_SYSTEMS as u64,
                    ));
                }
                out.push(c);
            }
            "VirtualSystemCollection" => collect_systems(c, depth + 1, out)?,
            _ => {}
        }
    }
    Ok(())
}

/// The id a `HostResource` names: `("disk", id)` or `("file", id)`.
fn host_target(host: &str) -> Option<(&'static str, &str)> {
    let h = host.strip_prefix("ovf:").unwrap_or(host);
    if let Some(id) = h.strip_prefix(HOST_DISK) {
        return Some(("disk", id));
    }
    h.strip_prefix(HOST_FILE).map(|id| ("file", id))
}

fn parse_system(
    node: Node<'_, '_>,
    disks: &[DiskDef],
    prefix: bool,
    findings: &mut Vec<Finding>,
) -> Result<System> {
    let id = attr(node, "id").unwrap_or("").to_string();
    let mut items = Vec::new();
    for section in children(node, "VirtualHardwareSection") {
        for c in section.children().filter(Node::is_element) {
            if matches!(c.tag_name().name(), "Item" | "StorageItem") {
                items.push(Item { node: c });
            }
            if items.len() > MAX_ELEMENTS {
                return Err(Error::limit(
                    "OVF hardware items",
                    items.len() as u64,
                    MAX_ELEMENTS as u64,
                ));
            }
        }
    }
    let mut controllers: Vec<Controller> = Vec::new();
    for it in &items {
        let Some(rt) = it.resource_type() else {
            continue;
        };
        let sub = it.get("ResourceSubType");
        let Some(bus) = bus(rt, sub) else { continue };
        let before = controllers.iter().filter(|c| c.bus == bus).count() as u64;
        controllers.push(Controller {
            instance_id: it.get("InstanceID").unwrap_or("").to_string(),
            bus,
            number: number(it.get("Address")).unwrap_or(before),
            resource_type: rt,
            subtype: sub.map(str::to_string),
            element_name: it.label(),
        });
    }
    let pre = if prefix {
        format!("system:{id}/")
    } else {
        String::new()
    };
    let mut drives: Vec<Drive> = Vec::new();
    let mut optical_drives = 0;
    let (mut memory, mut cpus) = (None, None);
    for it in &items {
        match it.resource_type() {
            Some(RT_DISK) => {}
            Some(RT_CD | RT_DVD) => {
                optical_drives += 1;
                continue;
            }
            Some(3) => {
                cpus = it.get("VirtualQuantity").map(str::to_string);
                continue;
            }
            Some(4) => {
                memory = it.get("VirtualQuantity").map(str::to_string);
                continue;
            }
            _ => continue,
        }
        let Some(host) = it.get("HostResource") else {
            findings.push(
                Finding::warning(DESCRIPTOR, "a disk drive item without HostResource")
                    .at(xml::at(it.node)),
            );
            continue;
        };
        let (disk_id, file_id) = match host_target(host) {
            Some(("disk", d)) => (
                Some(d.to_string()),
                disks
                    .iter()
                    .find(|x| x.id == d)
                    .and_then(|x| x.file_ref.clone()),
            ),
            Some((_, f)) => (None, Some(f.to_string())),
            None => {
                findings.push(
                    Finding::warning(
                        DESCRIPTOR,
                        format!("disk drive HostResource {host:?} names neither ovf:/disk/ nor ovf:/file/"),
                    )
                    .at(xml::at(it.node)),
                );
                continue;
            }
        };
        if let Some(d) = &disk_id {
            if !disks.iter().any(|x| &x.id == d) {
                findings.push(
                    Finding::warning(
                        DESCRIPTOR,
                        format!("disk drive {host:?} names no DiskSection disk"),
                    )
                    .at(xml::at(it.node)),
                );
            }
        }
        let ctrl = it
            .get("Parent")
            .and_then(|p| controllers.iter().find(|c| c.instance_id == p));
        let unit = ctrl.map(|c| {
            let before = drives
                .iter()
                .filter(|d| d.controller.as_deref() == Some(c.name().as_str()))
                .count() as u64;
            number(it.get("AddressOnParent")).unwrap_or(before)
        });
        let fallback = format!(
            "{pre}disk:{}",
            disk_id.as_deref().or(file_id.as_deref()).unwrap_or("")
        );
        let mut layer = match (ctrl, unit) {
            (Some(c), Some(u)) => format!("{pre}disk:{}:{u}", c.name()),
            _ => fallback.clone(),
        };
        if drives.iter().any(|d| d.layer == layer) {
            findings.push(Finding::warning(
                DESCRIPTOR,
                format!("two disk drives at {layer}: the second is named {fallback}"),
            ));
            layer = fallback;
        }
        if drives.iter().any(|d| d.layer == layer) {
            findings.push(Finding::warning(
                DESCRIPTOR,
                format!("disk drive {host:?} repeats {layer}: it is skipped"),
            ));
            continue;
        }
        drives.push(Drive {
            layer,
            controller: ctrl.map(Controller::name),
            unit,
            host_resource: host.to_string(),
            disk_id,
            file_id,
            element_name: it.label(),
        });
    }
    let os = child(node, "OperatingSystemSection")
        .and_then(|o| text(o, "Description").or_else(|| attr(o, "id")))
        .map(str::to_string);
    let system_type = children(node, "VirtualHardwareSection")
        .find_map(|s| child(s, "System"))
        .and_then(|s| text(s, "VirtualSystemType"))
        .map(str::to_string);
    Ok(System {
        id,
        name: text(node, "Name").map(str::to_string),
        os,
        system_type,
        memory,
        cpus,
        controllers,
        drives,
        optical_drives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(fields: &str) -> String {
        format!("<Item>{fields}</Item>")
    }

    fn system(id: &str, items: &[String]) -> String {
        format!(
            r#"<VirtualSystem ovf:id="{id}"><VirtualHardwareSection>{}</VirtualHardwareSection></VirtualSystem>"#,
            items.concat()
        )
    }

    fn envelope(body: &str) -> Descriptor {
        let text = format!(
            r#"<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="r">
            <References><File ovf:id="f1" ovf:href="a.vmdk"/><File ovf:id="f2" ovf:href="b.img"/></References>
            <DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection>
            {body}</Envelope>"#
        );
        Descriptor::parse(text.as_bytes()).unwrap()
    }

    fn layers(d: &Descriptor) -> Vec<&str> {
        d.drives().map(|x| x.layer.as_str()).collect()
    }

    #[test]
    fn names_follow_address_and_order_and_fall_back_to_ids() {
        let ctrl = |id: &str, rt: u32, sub: &str, addr: &str| {
            item(&format!(
                "<rasd:InstanceID>{id}</rasd:InstanceID><rasd:ResourceType>{rt}</rasd:ResourceType>\
                 <rasd:ResourceSubType>{sub}</rasd:ResourceSubType>{addr}"
            ))
        };
        let drive = |parent: &str, unit: &str, host: &str| {
            item(&format!(
                "<rasd:ResourceType>17</rasd:ResourceType><rasd:Parent>{parent}</rasd:Parent>{unit}\
                 <rasd:HostResource>{host}</rasd:HostResource>"
            ))
        };
        let d = envelope(&system(
            "vm",
            &[
                ctrl("1", 20, "vmware.nvme.controller", ""),
                ctrl("2", 20, "vmware.nvme.controller", ""),
                ctrl("3", 5, "PIIX4", "<rasd:Address>1</rasd:Address>"),
                // No AddressOnParent: the drive's rank on its controller.
                drive("2", "", "ovf:/disk/d1"),
                drive("2", "", "ovf:/file/f2"),
                drive(
                    "3",
                    "<rasd:AddressOnParent>1</rasd:AddressOnParent>",
                    "ovf:/disk/d1",
                ),
                // Same place again: named by its disk id; no controller: by its file id.
                drive(
                    "3",
                    "<rasd:AddressOnParent>1</rasd:AddressOnParent>",
                    "ovf:/file/f2",
                ),
                drive("9", "", "/file/f1"),
            ],
        ));
        assert_eq!(
            layers(&d),
            [
                "disk:nvme1:0",
                "disk:nvme1:1",
                "disk:ide1:1",
                "disk:f2",
                "disk:f1"
            ]
        );
        assert_eq!(d.disks[0].capacity, Some(1 << 30));
        assert_eq!(d.drives().next().unwrap().file_id.as_deref(), Some("f1"));
        assert!(d
            .findings
            .iter()
            .any(|f| f.message.contains("two disk drives")));
    }

    #[test]
    fn a_collection_prefixes_each_systems_names() {
        let drive = item(
            "<rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d1</rasd:HostResource>",
        );
        let body = format!(
            "<VirtualSystemCollection ovf:id=\"c\">{}<VirtualSystemCollection>{}</VirtualSystemCollection></VirtualSystemCollection>",
            system("web", std::slice::from_ref(&drive)),
            system("db", std::slice::from_ref(&drive)),
        );
        let d = envelope(&body);
        assert_eq!(layers(&d), ["system:web/disk:d1", "system:db/disk:d1"]);
        // One system alone: no prefix.
        assert_eq!(layers(&envelope(&system("one", &[drive]))), ["disk:d1"]);
    }

    #[test]
    fn other_xml_is_declined() {
        let e = Descriptor::parse(b"<Envelope xmlns=\"urn:x\"/>").unwrap_err();
        assert_eq!(e.kind(), vmsnap_core::ErrorKind::Declined);
        let e = Descriptor::parse(b"<a").unwrap_err();
        assert_eq!(e.kind(), vmsnap_core::ErrorKind::Malformed);
    }
}
