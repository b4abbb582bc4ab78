//! `DiskDescriptor.xml`: the disk's parameters, its storages and its snapshot tree, every
//! count bounded and every reference between them checked.

use std::collections::BTreeMap;

use roxmltree::Node;
use serde_json::{json, Value};
use vmsnap_core::{Error, Result};

use crate::guid::Guid;
use crate::raw::{
    DEFAULT_TOP_GUID, DISK_PARAMETERS, MAX_IMAGES, MAX_SHOTS, MAX_STORAGES, ROOT, SECTOR_SIZE,
    SNAPSHOTS, STORAGE_DATA,
};
use crate::xml;

/// `Disk_Parameters`: what the descriptor says of the disk as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskParameters {
    /// `Disk_size`, in sectors.
    pub disk_size: Option<u64>,
    /// `Cylinders`.
    pub cylinders: Option<u64>,
    /// `Heads`.
    pub heads: Option<u64>,
    /// `Sectors` (per track).
    pub sectors: Option<u64>,
    /// `PhysicalSectorSize`.
    pub physical_sector_size: Option<u64>,
    /// `UID`.
    pub uid: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `Encryption/Engine` when it is not the null GUID: the disk is encrypted.
    pub encryption_engine: Option<String>,
}

/// One image of a storage: the storage's bytes in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `GUID`: the snapshot (`Shot`) it belongs to.
    pub guid: Guid,
    /// `Type`: `Plain` (raw) or `Compressed` (an expanding Parallels image).
    pub kind: String,
    /// `File`: its file name, relative to the bundle directory (or absolute).
    pub file: String,
}

/// One storage: sectors `start..end` of the disk, stored in one image per snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `Start`, in sectors.
    pub start: u64,
    /// `End`, in sectors (exclusive).
    pub end: u64,
    /// `Blocksize`, in sectors, when given.
    pub blocksize: Option<u64>,
    /// Its images.
    pub images: Vec<Image>,
}

impl Storage {
    /// Its length in bytes (checked at parse time not to overflow).
    pub fn len(&self) -> u64 {
        (self.end - self.start) * SECTOR_SIZE
    }

    /// Whether it holds no sectors (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The image of snapshot `guid`.
    pub fn image(&self, guid: &Guid) -> Option<&Image> {
        self.images.iter().find(|i| &i.guid == guid)
    }
}

/// One snapshot (`Shot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// `GUID`.
    pub guid: Guid,
    /// `ParentGUID`, `None` for the null GUID.
    pub parent: Option<Guid>,
}

/// The parsed descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `Disk_Parameters`.
    pub params: DiskParameters,
    /// The storages in disk order, contiguous from sector 0.
    pub storages: Vec<Storage>,
    /// The snapshots in an order where every parent comes before its children.
    pub shots: Vec<Shot>,
    /// The current state: `TopGUID`, or the default top GUID when absent.
    pub top: Guid,
    /// Whether `TopGUID` was written.
    pub top_written: bool,
}

impl Descriptor {
    /// Parses and checks `bytes`, the descriptor file.
    pub fn parse(bytes: &[u8]) -> Result<Descriptor> {
        let doc = xml::parse(bytes)?;
        let root = doc.root_element();
        if root.tag_name().name() != ROOT {
            return Err(Error::malformed(
                xml::at(root),
                format!(
                    "the root element is <{}>, not <{ROOT}>",
                    root.tag_name().name()
                ),
            ));
        }
        let params = match xml::child(root, DISK_PARAMETERS) {
            Some(p) => parse_params(p)?,
            None => DiskParameters::default(),
        };
        let storages = parse_storages(xml::required(root, STORAGE_DATA)?)?;
        let snaps = xml::required(root, SNAPSHOTS)?;
        let (top, top_written) = match xml::child(snaps, "TopGUID") {
            Some(t) => (Guid::parse(t.text().unwrap_or(""), xml::at(t))?, true),
            None => (Guid::parse(DEFAULT_TOP_GUID, 0)?, false),
        };
        let shots = order_shots(parse_shots(snaps)?, xml::at(snaps))?;
        if !shots.iter().any(|s| s.guid == top) {
            return Err(Error::malformed(
                xml::at(snaps),
                format!("the current state {top} is not a <Shot>"),
            ));
        }
        for (i, s) in storages.iter().enumerate() {
            for shot in &shots {
                if s.image(&shot.guid).is_none() {
                    return Err(Error::malformed(
                        xml::at(snaps),
                        format!("storage {i} has no image of snapshot {}", shot.guid),
                    ));
                }
            }
        }
        Ok(Descriptor {
            params,
            storages,
            shots,
            top,
            top_written,
        })
    }

    /// The disk's length in bytes: the end of the last storage.
    pub fn len(&self) -> u64 {
        self.storages
            .last()
            .map_or(0, |s| s.end.saturating_mul(SECTOR_SIZE))
    }

    /// Whether the disk has no storage (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.storages.is_empty()
    }

    /// The snapshot `guid`.
    pub fn shot(&self, guid: &Guid) -> Option<&Shot> {
        self.shots.iter().find(|s| &s.guid == guid)
    }

    /// The parameters as JSON.
    pub fn params_json(&self) -> Value {
        let p = &self.params;
        json!({
            "disk_size_sectors": p.disk_size,
            "cylinders": p.cylinders,
            "heads": p.heads,
            "sectors": p.sectors,
            "physical_sector_size": p.physical_sector_size,
            "uid": p.uid,
            "name": p.name,
            "encryption_engine": p.encryption_engine,
        })
    }
}

fn parse_params(p: Node<'_, '_>) -> Result<DiskParameters> {
    let engine = match xml::child(p, "Encryption").and_then(|e| xml::child(e, "Engine")) {
        Some(e) => {
            let t = e.text().unwrap_or("").trim();
            if t.is_empty() {
                None
            } else {
                let g = Guid::parse(t, xml::at(e))?;
                (!g.is_null()).then(|| g.to_string())
            }
        }
        None => None,
    };
    Ok(DiskParameters {
        disk_size: xml::number(p, "Disk_size")?,
        cylinders: xml::number(p, "Cylinders")?,
        heads: xml::number(p, "Heads")?,
        sectors: xml::number(p, "Sectors")?,
        physical_sector_size: xml::number(p, "PhysicalSectorSize")?,
        uid: xml::text(p, "UID").map(str::to_owned),
        name: xml::text(p, "Name").map(str::to_owned),
        encryption_engine: engine,
    })
}

fn parse_storages(data: Node<'_, '_>) -> Result<Vec<Storage>> {
    let mut out: Vec<Storage> = Vec::new();
    let mut images = 0usize;
    for s in xml::children(data, "Storage") {
        if out.len() >= MAX_STORAGES {
            return Err(
                Error::limit("storages", out.len() as u64 + 1, MAX_STORAGES as u64).at(xml::at(s)),
            );
        }
        let start = xml::required_number(s, "Start")?;
        let end = xml::required_number(s, "End")?;
        let expected = out.last().map_or(0, |p| p.end);
        if start != expected || end <= start {
            return Err(Error::malformed(
                xml::at(s),
                format!(
                    "storage {} covers sectors {start}..{end}; it should start at {expected} and not be empty",
                    out.len()
                ),
            ));
        }
        let bytes = end.saturating_mul(SECTOR_SIZE);
        if bytes > vmsnap_core::limits::MAX_VIRTUAL_SIZE {
            return Err(Error::limit(
                "disk size in bytes",
                bytes,
                vmsnap_core::limits::MAX_VIRTUAL_SIZE,
            )
            .at(xml::at(s)));
        }
        let mut imgs = Vec::new();
        for i in xml::children(s, "Image") {
            images += 1;
            if images > MAX_IMAGES {
                return Err(Error::limit("images", images as u64, MAX_IMAGES as u64).at(xml::at(i)));
            }
            let g = xml::required(i, "GUID")?;
            let guid = Guid::parse(g.text().unwrap_or(""), xml::at(g))?;
            if imgs.iter().any(|x: &Image| x.guid == guid) {
                return Err(Error::malformed(
                    xml::at(i),
                    format!("storage {} has two images of snapshot {guid}", out.len()),
                ));
            }
            let file = xml::required_text(i, "File")?;
            if file.is_empty() {
                return Err(Error::malformed(
                    xml::at(i),
                    "an <Image> with an empty <File>",
                ));
            }
            imgs.push(Image {
                guid,
                kind: xml::required_text(i, "Type")?.to_owned(),
                file: file.to_owned(),
            });
        }
        out.push(Storage {
            start,
            end,
            blocksize: xml::number(s, "Blocksize")?,
            images: imgs,
        });
    }
    if out.is_empty() {
        return Err(Error::malformed(
            xml::at(data),
            "<StorageData> has no <Storage>",
        ));
    }
    Ok(out)
}

fn parse_shots(snaps: Node<'_, '_>) -> Result<Vec<Shot>> {
    let mut out: Vec<Shot> = Vec::new();
    for s in xml::children(snaps, "Shot") {
        if out.len() >= MAX_SHOTS {
            return Err(
                Error::limit("snapshots", out.len() as u64 + 1, MAX_SHOTS as u64).at(xml::at(s)),
            );
        }
        let g = xml::required(s, "GUID")?;
        let guid = Guid::parse(g.text().unwrap_or(""), xml::at(g))?;
        let p = xml::required(s, "ParentGUID")?;
        let parent = Guid::parse(p.text().unwrap_or(""), xml::at(p))?;
        if out.iter().any(|x| x.guid == guid) {
            return Err(Error::malformed(
                xml::at(s),
                format!("snapshot {guid} is listed twice"),
            ));
        }
        out.push(Shot {
            guid,
            parent: (!parent.is_null()).then_some(parent),
        });
    }
    Ok(out)
}

/// Orders `shots` parents first; refuses a parent that is not listed and a loop.
fn order_shots(shots: Vec<Shot>, at: u64) -> Result<Vec<Shot>> {
    let index: BTreeMap<&Guid, usize> = shots
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.guid, i))
        .collect();
    // Depth of each shot: the number of ancestors, found by walking at most
    // `shots.len()` parents (more is a loop).
    let mut depth = Vec::with_capacity(shots.len());
    for s in &shots {
        let mut d = 0usize;
        let mut cur = s;
        while let Some(p) = &cur.parent {
            let Some(&pi) = index.get(p) else {
                return Err(Error::malformed(
                    at,
                    format!(
                        "snapshot {} names parent {p}, which is not listed",
                        cur.guid
                    ),
                ));
            };
            d += 1;
            if d > shots.len() {
                return Err(Error::malformed(
                    at,
                    format!("the snapshots' parents loop (through {})", s.guid),
                ));
            }
            match shots.get(pi) {
                Some(n) => cur = n,
                None => break,
            }
        }
        depth.push(d);
    }
    let mut order: Vec<(usize, Shot)> = depth.into_iter().zip(shots).collect();
    order.sort_by_key(|(d, _)| *d);
    Ok(order.into_iter().map(|(_, s)| s).collect())
}
