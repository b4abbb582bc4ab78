//! The machine a `.vbox` settings file describes: its media registry (disks and their
//! differencing children), the current state's and every snapshot's hard-disk
//! attachments, and the saved-state files. Parsing only; nothing is opened here.

use roxmltree::Node;
use vmsnap_core::{Error, Finding, Result};

use crate::raw::{
    bus_of, CRYPT_PROPERTIES, MAX_ATTACHMENTS, MAX_CONFIG_BYTES, MAX_MEDIA, MAX_SNAPSHOTS,
    MAX_XML_NODES, NAMESPACE, ROOT,
};
use crate::rule;

/// One medium of the registry (`HardDisk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    /// Its UUID, lower case without braces.
    pub uuid: String,
    /// `location`: the file, relative to the settings file's directory or absolute.
    pub location: String,
    /// `format`: VirtualBox's backend name (`VDI`, `VMDK`, `VHD` …).
    pub format: String,
    /// `type` (`Normal`, `Immutable`, `Writethrough` …), when given.
    pub kind: Option<String>,
    /// The enclosing `HardDisk` (index into [`Machine::media`]): the parent of a
    /// differencing image.
    pub parent: Option<usize>,
    /// How many ancestors it has (0 for a base image).
    pub depth: usize,
    /// Whether it or an ancestor has a `CRYPT/KeyId` or `CRYPT/KeyStore` property.
    pub encrypted: bool,
}

/// One hard disk attached to a controller (`AttachedDevice type="HardDisk"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The controller's `name` (`SATA`, `IDE Controller` …).
    pub controller: String,
    /// The controller's `type` (`AHCI`, `PIIX4`, `LsiLogic` …).
    pub controller_type: String,
    /// The bus of the controller type (`sata`, `ide`, `scsi` …; `other` when unknown).
    pub bus: &'static str,
    /// `port` (SATA port, IDE channel, SCSI target).
    pub port: u32,
    /// `device` (IDE master 0 / slave 1; 0 elsewhere).
    pub device: u32,
    /// The attached image's UUID (lower case, no braces).
    pub image: String,
}

impl Attachment {
    /// The child name before disambiguation: `disk:<bus><port>:<device>`.
    pub fn base_name(&self) -> String {
        format!("disk:{}{}:{}", self.bus, self.port, self.device)
    }
}

/// One snapshot (`Snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its UUID (lower case, no braces).
    pub uuid: String,
    /// `name`.
    pub name: String,
    /// `timeStamp`, as written.
    pub time_stamp: Option<String>,
    /// `stateFile`: the saved state (`.sav`) of a snapshot taken of a running VM.
    pub state_file: Option<String>,
    /// The snapshot it was taken after (index into [`Machine::snapshots`]).
    pub parent: Option<usize>,
    /// Its hard disks.
    pub attachments: Vec<Attachment>,
}

/// The machine.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// The root's `version` (settings version, e.g. `1.19-linux`).
    pub settings_version: Option<String>,
    /// `uuid`.
    pub uuid: String,
    /// `name`.
    pub name: String,
    /// `OSType`.
    pub os_type: Option<String>,
    /// `currentSnapshot`: the snapshot the current state was taken after.
    pub current_snapshot: Option<String>,
    /// `snapshotFolder`.
    pub snapshot_folder: Option<String>,
    /// `stateFile`: the current state's saved state, when the VM is saved.
    pub state_file: Option<String>,
    /// The media registry, parents before their children.
    pub media: Vec<Medium>,
    /// The current state's hard disks.
    pub attachments: Vec<Attachment>,
    /// Every snapshot, parents before their children.
    pub snapshots: Vec<Snapshot>,
    /// What parsing found.
    pub findings: Vec<Finding>,
}

impl Machine {
    /// The medium with `uuid`.
    pub fn medium(&self, uuid: &str) -> Option<usize> {
        self.media.iter().position(|m| m.uuid == uuid)
    }

    /// Parses a settings file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Machine> {
        let doc = vmsnap_core::xml::parse(
            bytes,
            "VirtualBox settings file",
            MAX_CONFIG_BYTES,
            MAX_XML_NODES,
        )?;
        let root = doc.root_element();
        if !is(root, ROOT) {
            return Err(Error::malformed(
                0,
                format!(
                    "the root element is {:?} in namespace {:?}, not VirtualBox in {NAMESPACE}",
                    root.tag_name().name(),
                    root.tag_name().namespace().unwrap_or("")
                ),
            ));
        }
        let machine = child(root, "Machine")
            .ok_or_else(|| Error::malformed(0, "no Machine element: not a machine's settings"))?;
        let mut m = Machine {
            settings_version: root.attribute("version").map(str::to_string),
            uuid: uuid_attr(machine, "uuid")
                .ok_or_else(|| Error::malformed(0, "the Machine element has no valid uuid"))?,
            name: machine.attribute("name").unwrap_or_default().to_string(),
            os_type: machine.attribute("OSType").map(str::to_string),
            current_snapshot: None,
            snapshot_folder: machine.attribute("snapshotFolder").map(str::to_string),
            state_file: machine.attribute("stateFile").map(str::to_string),
            ..Machine::default()
        };
        if let Some(cs) = machine.attribute("currentSnapshot") {
            m.current_snapshot = canonical_uuid(cs);
            if m.current_snapshot.is_none() {
                m.findings.push(Finding::warning(
                    rule::SETTINGS,
                    format!("currentSnapshot {cs:?} is not a UUID"),
                ));
            }
        }
        if child(machine, "Hardware").is_none() {
            return Err(Error::malformed(0, "the Machine element has no Hardware"));
        }
        m.read_media(machine)?;
        m.attachments = m.read_attachments(machine, "the current state")?;
        m.read_snapshots(machine)?;
        if let Some(cs) = &m.current_snapshot {
            if !m.snapshots.iter().any(|s| &s.uuid == cs) {
                m.findings.push(Finding::warning(
                    rule::SETTINGS,
                    format!("currentSnapshot {cs} names no snapshot of this machine"),
                ));
            }
        }
        Ok(m)
    }

    /// `MediaRegistry/HardDisks`, nested `HardDisk`s as differencing children.
    fn read_media(&mut self, machine: Node<'_, '_>) -> Result<()> {
        let Some(disks) = child(machine, "MediaRegistry").and_then(|r| child(r, "HardDisks"))
        else {
            return Ok(());
        };
        // (parent index, element); a stack, so nesting depth costs no recursion.
        let mut todo: Vec<(Option<usize>, Node<'_, '_>)> =
            elements(disks, "HardDisk").map(|n| (None, n)).collect();
        todo.reverse();
        while let Some((parent, n)) = todo.pop() {
            if self.media.len() >= MAX_MEDIA {
                return Err(Error::limit(
                    "media in the registry",
                    self.media.len() as u64 + 1,
                    MAX_MEDIA as u64,
                ));
            }
            let Some(uuid) = uuid_attr(n, "uuid") else {
                self.findings.push(Finding::warning(
                    rule::SETTINGS,
                    format!(
                        "a HardDisk at {:?} has no valid uuid; it and its children are skipped",
                        n.attribute("location").unwrap_or_default()
                    ),
                ));
                continue;
            };
            if self.medium(&uuid).is_some() {
                self.findings.push(Finding::unsafe_(
                    rule::REGISTRY,
                    format!("medium {uuid} is registered twice; the second is skipped"),
                ));
                continue;
            }
            let parent_medium = parent.and_then(|p| self.media.get(p));
            let own_crypt = elements(n, "Property").any(|p| {
                p.attribute("name")
                    .is_some_and(|name| CRYPT_PROPERTIES.contains(&name))
            });
            let medium = Medium {
                uuid,
                location: n.attribute("location").unwrap_or_default().to_string(),
                format: n.attribute("format").unwrap_or_default().to_string(),
                kind: n.attribute("type").map(str::to_string),
                parent,
                depth: parent_medium.map_or(0, |p| p.depth.saturating_add(1)),
                encrypted: own_crypt || parent_medium.is_some_and(|p| p.encrypted),
            };
            self.media.push(medium);
            let me = self.media.len() - 1;
            let mut kids: Vec<_> = elements(n, "HardDisk").map(|c| (Some(me), c)).collect();
            kids.reverse();
            todo.extend(kids);
        }
        Ok(())
    }

    /// The hard disks of `state` (a `Machine` or `Snapshot` element): `StorageControllers`
    /// in `Hardware` (settings 1.17 and later) or beside it (before).
    fn read_attachments(&mut self, state: Node<'_, '_>, what: &str) -> Result<Vec<Attachment>> {
        let controllers = child(state, "Hardware")
            .and_then(|h| child(h, "StorageControllers"))
            .or_else(|| child(state, "StorageControllers"));
        let mut out = Vec::new();
        let Some(controllers) = controllers else {
            return Ok(out);
        };
        for c in elements(controllers, "StorageController") {
            let name = c.attribute("name").unwrap_or_default().to_string();
            let ctype = c.attribute("type").unwrap_or_default().to_string();
            let bus = bus_of(&ctype).unwrap_or("other");
            for d in elements(c, "AttachedDevice") {
                if d.attribute("type") != Some("HardDisk") {
                    continue;
                }
                let (Some(port), Some(device)) = (number(d, "port"), number(d, "device")) else {
                    self.findings.push(Finding::warning(
                        rule::SETTINGS,
                        format!(
                            "{what}: a hard disk on controller {name:?} has a port or device \
                             that is not a number; skipped"
                        ),
                    ));
                    continue;
                };
                let Some(image) = child(d, "Image").and_then(|i| uuid_attr(i, "uuid")) else {
                    self.findings.push(Finding::warning(
                        rule::SETTINGS,
                        format!(
                            "{what}: the hard disk on {name:?} port {port} device {device} \
                             names no image UUID; skipped"
                        ),
                    ));
                    continue;
                };
                if out.len() >= MAX_ATTACHMENTS {
                    return Err(Error::limit(
                        "hard disks attached to one machine state",
                        out.len() as u64 + 1,
                        MAX_ATTACHMENTS as u64,
                    ));
                }
                out.push(Attachment {
                    controller: name.clone(),
                    controller_type: ctype.clone(),
                    bus,
                    port,
                    device,
                    image,
                });
            }
        }
        Ok(out)
    }

    /// The snapshot tree: `Machine/Snapshot`, each one's children in `Snapshots`.
    fn read_snapshots(&mut self, machine: Node<'_, '_>) -> Result<()> {
        let mut todo: Vec<(Option<usize>, Node<'_, '_>)> =
            elements(machine, "Snapshot").map(|n| (None, n)).collect();
        if todo.len() > 1 {
            self.findings.push(Finding::warning(
                rule::SETTINGS,
                format!(
                    "{} first-level Snapshot elements (VirtualBox writes one); all are read",
                    todo.len()
                ),
            ));
        }
        todo.reverse();
        while let Some((parent, n)) = todo.pop() {
            if self.snapshots.len() >= MAX_SNAPSHOTS {
                return Err(Error::limit(
                    "snapshots",
                    self.snapshots.len() as u64 + 1,
                    MAX_SNAPSHOTS as u64,
                ));
            }
            let name = n.attribute("name").unwrap_or_default().to_string();
            let Some(uuid) = uuid_attr(n, "uuid") else {
                self.findings.push(Finding::warning(
                    rule::SETTINGS,
                    format!("snapshot {name:?} has no valid uuid; it and its children are skipped"),
                ));
                continue;
            };
            let attachments = self.read_attachments(n, &format!("snapshot {name:?}"))?;
            self.snapshots.push(Snapshot {
                uuid,
                name,
                time_stamp: n.attribute("timeStamp").map(str::to_string),
                state_file: n.attribute("stateFile").map(str::to_string),
                parent,
                attachments,
            });
            let me = self.snapshots.len() - 1;
            if let Some(kids) = child(n, "Snapshots") {
                let mut kids: Vec<_> = elements(kids, "Snapshot").map(|c| (Some(me), c)).collect();
                kids.reverse();
                todo.extend(kids);
            }
        }
        Ok(())
    }
}

/// Whether `n` is the settings element `name`.
fn is(n: Node<'_, '_>, name: &str) -> bool {
    n.is_element() && n.has_tag_name((NAMESPACE, name))
}

/// The first child element `name`.
fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(*c, name))
}

/// Every child element `name`.
fn elements<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| is(*c, name))
}

/// An unsigned attribute; absent means 0 (the schema's default).
fn number(n: Node<'_, '_>, attr: &str) -> Option<u32> {
    match n.attribute(attr) {
        None => Some(0),
        Some(v) => v.trim().parse().ok(),
    }
}

/// A UUID attribute in canonical form.
fn uuid_attr(n: Node<'_, '_>, attr: &str) -> Option<String> {
    n.attribute(attr).and_then(canonical_uuid)
}

/// `{8-4-4-4-12}` hex (braces optional) as lower case without braces; `None` if it is not
/// one.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(s);
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_canonical() {
        assert_eq!(
            canonical_uuid("{43BC428F-B6BD-495C-A032-346909D9B6D7}").as_deref(),
            Some("43bc428f-b6bd-495c-a032-346909d9b6d7")
        );
        assert_eq!(canonical_uuid("43bc428f-b6bd-495c-a032-346909d9b6d"), None);
        assert_eq!(
            canonical_uuid("{43bc428f+b6bd-495c-a032-346909d9b6d7}"),
            None
        );
    }

    #[test]
    fn old_settings_keep_controllers_beside_hardware() {
        let xml = r#"<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-linux">
          <Machine uuid="{00000000-0000-0000-0000-000000000001}" name="old">
            <MediaRegistry><HardDisks>
              <HardDisk uuid="{00000000-0000-0000-0000-0000000000aa}" location="a.vdi" format="VDI">
                <HardDisk uuid="{00000000-0000-0000-0000-0000000000bb}" location="S/b.vdi" format="VDI">
                  <Property name="CRYPT/KeyId" value="k"/>
                </HardDisk>
              </HardDisk>
            </HardDisks></MediaRegistry>
            <Hardware/>
            <StorageControllers>
              <StorageController name="IDE Controller" type="PIIX4">
                <AttachedDevice type="HardDisk" port="1" device="1">
                  <Image uuid="{00000000-0000-0000-0000-0000000000BB}"/></AttachedDevice>
                <AttachedDevice type="DVD" port="0" device="0"/>
              </StorageController>
            </StorageControllers>
          </Machine></VirtualBox>"#;
        let m = Machine::parse(xml.as_bytes()).unwrap();
        assert_eq!(m.media.len(), 2);
        assert_eq!(m.media[1].parent, Some(0));
        assert_eq!(m.media[1].depth, 1);
        assert!(m.media[1].encrypted && !m.media[0].encrypted);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].base_name(), "disk:ide1:1");
        assert_eq!(
            m.attachments[0].image,
            "00000000-0000-0000-0000-0000000000bb"
        );
    }

    #[test]
    fn not_a_machine_is_refused() {
        for xml in [
            "<VirtualBox xmlns='http://www.virtualbox.org/'><Global/></VirtualBox>",
            "<VirtualBox><Machine uuid='{00000000-0000-0000-0000-000000000001}'/></VirtualBox>",
            "<VirtualBox xmlns='http://www.virtualbox.org/'><Machine uuid='x'><Hardware/></Machine></VirtualBox>",
            "<VirtualBox xmlns='http://www.virtualbox.org/'><Machine",
        ] {
            assert!(Machine::parse(xml.as_bytes()).is_err(), "{xml}");
        }
    }
}
