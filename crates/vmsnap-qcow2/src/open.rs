//! Opening: header, extensions, limits, L1, snapshots, bitmaps, external references
//! (backing file and data file through the policy), findings.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    Bytes, DiskFormat, Error, ExternalRef, Finding, Findings, Layer, LayerExt, MissingPolicy,
    OpenCtx, OptionType, PluginOption, RefDecision, RefKind, Result,
};

use crate::checks::{self, Region};
use crate::header::Header;
use crate::image::{DataFile, Image};
use crate::limits::*;
use crate::raw;
use crate::snapshot::{self, Snapshot};

/// The option that sizes the L2 table cache, in bytes.
pub const OPT_L2_CACHE_SIZE: &str = "qcow2.l2-cache-size";

/// The declared `qcow2.l2-cache-size` option.
pub(crate) const L2_CACHE_SIZE: PluginOption = PluginOption {
    name: OPT_L2_CACHE_SIZE,
    ty: OptionType::Size,
    help: "bytes of L2 tables kept in memory per image (default 32M)",
};

/// Everything `open` found, before it is wrapped into layers.
#[derive(Debug)]
pub struct Opened {
    /// The engine.
    pub image: Arc<Image>,
    /// Active L1.
    pub l1: Arc<[u64]>,
    /// Snapshots.
    pub snapshots: Vec<Snapshot>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// External references.
    pub refs: Vec<ExternalRef>,
    /// Bitmaps listed from the directory.
    pub bitmaps: Vec<Value>,
    /// LUKS header summary, when encrypted with LUKS.
    pub luks: Option<Value>,
    /// Backing file state for describe().
    pub backing_state: Value,
}

/// Reads and validates the header and extensions of `file`.
pub fn read_header(file: &dyn Layer) -> Result<Header> {
    let len = file.len();
    if len < 8 {
        return Err(Error::truncated(0, "file too short for a qcow2 header"));
    }
    let mut first = vec![0u8; len.min(512) as usize];
    file.read_at(0, &mut first)?;
    let b = Bytes::new(&first, 0);
    if b.slice(0, 4)? != raw::MAGIC {
        return Err(Error::malformed(0, "not a qcow2 image (bad magic)"));
    }
    let version = b.u32_be(raw::off::VERSION)?;
    let cluster_bits = b.u32_be(raw::off::CLUSTER_BITS).unwrap_or(0);
    let cluster0 = if (2..=3).contains(&version)
        && (MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits)
    {
        let mut c = vec![0u8; len.min(1u64 << cluster_bits) as usize];
        file.read_at(0, &mut c)?;
        c
    } else {
        first
    };
    let mut h = Header::parse_fixed(&cluster0, len)?;
    h.parse_extensions(&cluster0)?;
    h.check_unknown_features()?;
    Ok(h)
}

fn policy_ref(kind: RefKind, name: &str) -> ExternalRef {
    ExternalRef {
        kind,
        name: name.to_string(),
        decision: RefDecision::Listed,
    }
}

/// A backing file as opened: the reference, and the layer unallocated clusters read from.
pub(crate) struct Backing {
    /// The reference and what became of it.
    pub reference: ExternalRef,
    /// The opened backing disk, or the stand-in for one that was not opened.
    pub layer: Arc<dyn Layer>,
    /// Whether it was opened.
    pub opened: bool,
}

/// Opens the backing file `name` of `file` through the policy (as `format` when given,
/// probed otherwise). A backing file that is denied or cannot be opened is stood in for by
/// an unavailable layer of `len` bytes (reads fail, or read zeros by opt-in) with the
/// reason in the reference; only exceeding the chain-depth cap is an error.
pub(crate) fn open_backing(
    file: &Arc<dyn Layer>,
    name: &str,
    format: Option<&str>,
    ctx: &OpenCtx<'_>,
    referrer: &str,
    len: u64,
) -> Result<Backing> {
    let f = ctx
        .follow_disk(
            RefKind::Backing,
            file.path(),
            name,
            DiskFormat::Named(format),
            |_| Ok(()),
        )
        .deny_too_deep()?;
    Ok(Backing {
        layer: f.layer_or_stand_in(ctx, referrer, file.path(), len),
        opened: f.opened(),
        reference: f.reference,
    })
}

/// Opens `file` as qcow2.
pub fn open(file: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Opened> {
    let h = read_header(file.as_ref())?;
    let cs = h.cluster_size();
    let file_len = file.len();
    let mut findings = Findings::new();
    let mut refs = Vec::new();

    // Active L1: big enough for the disk, within the limits and the file.
    let needed = h.size_to_l1(h.size);
    if u64::from(h.l1_size) * 8 > MAX_L1_BYTES {
        return Err(
            Error::limit("active L1 table", u64::from(h.l1_size) * 8, MAX_L1_BYTES)
                .at(raw::off::L1_SIZE as u64),
        );
    }
    if u64::from(h.l1_size) < needed {
        return Err(Error::malformed(
            raw::off::L1_SIZE as u64,
            format!(
                "L1 table has {} entries, the {}-byte disk needs {needed}",
                h.l1_size, h.size
            ),
        ));
    }
    let l1 = crate::image::load_l1(
        file.as_ref(),
        &h,
        h.l1_table_offset,
        h.l1_size,
        "active L1 table",
    )
    .map_err(|e| e.during("reading the active L1 table"))?;

    // Refcount table: not needed for reading, but QEMU refuses what it refuses.
    let rt_bytes = u64::from(h.refcount_table_clusters) << h.cluster_bits;
    if h.refcount_table_clusters == 0 {
        return Err(Error::malformed(
            raw::off::REFCOUNT_CLUSTERS as u64,
            "the image has no refcount table (refcount_table_clusters is 0)",
        ));
    }
    if rt_bytes > MAX_REFTABLE_BYTES {
        return Err(Error::limit("refcount table", rt_bytes, MAX_REFTABLE_BYTES)
            .at(raw::off::REFCOUNT_CLUSTERS as u64));
    }
    if h.refcount_table_offset & (cs - 1) != 0 {
        return Err(Error::malformed(
            raw::off::REFCOUNT_OFFSET as u64,
            format!(
                "refcount table offset {:#x} is not cluster aligned",
                h.refcount_table_offset
            ),
        ));
    }

    let snapshots = snapshot::read_table(file.as_ref(), &h)
        .map_err(|e| e.during("reading the snapshot table"))?;
    if !snapshots.is_empty() && h.has_data_file() {
        findings.push(Finding::warning(
            crate::rule::SNAPSHOTS,
            "internal snapshots in an image with an external data file (not allowed by the spec)",
        ));
    }

    // Metadata placement.
    let mut regions = vec![
        Region {
            what: "header cluster".into(),
            start: 0,
            len: cs,
        },
        Region {
            what: "active L1 table".into(),
            start: h.l1_table_offset,
            len: u64::from(h.l1_size) * 8,
        },
        Region {
            what: "refcount table".into(),
            start: h.refcount_table_offset,
            len: rt_bytes,
        },
    ];
    if !snapshots.is_empty() {
        regions.push(Region {
            what: "snapshot table".into(),
            start: h.snapshots_offset,
            len: snapshot::table_len(&snapshots, &h),
        });
    }
    for s in &snapshots {
        let bytes = u64::from(s.l1_size) * 8;
        if bytes > MAX_L1_BYTES {
            findings.push(Finding::unsafe_(
                crate::rule::TABLE_SIZE,
                format!(
                    "L1 table of snapshot {:?} has {bytes} bytes, above the limit of {MAX_L1_BYTES}",
                    s.id
                ),
            ).at(s.entry_offset));
        } else if s.l1_table_offset & (cs - 1) != 0 {
            findings.push(
                Finding::unsafe_(
                    crate::rule::METADATA_OVERLAP,
                    format!("L1 table of snapshot {:?} is not cluster aligned", s.id),
                )
                .at(s.entry_offset),
            );
        } else {
            regions.push(Region {
                what: format!("L1 table of snapshot {:?}", s.id),
                start: s.l1_table_offset,
                len: bytes,
            });
        }
    }
    if let Some(b) = h.bitmaps {
        regions.push(Region {
            what: "bitmap directory".into(),
            start: b.directory_offset,
            len: b.directory_size,
        });
    }
    if let Some(c) = h.crypto {
        regions.push(Region {
            what: "encryption header".into(),
            start: c.offset,
            len: c.length,
        });
    }
    checks::header_findings(&h, &mut findings);
    checks::placement_findings(&mut regions, file_len, &mut findings);
    checks::snapshot_findings(&snapshots, &mut findings);

    let bitmaps = match read_bitmaps(file.as_ref(), &h) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding::warning(
                crate::rule::BITMAPS,
                format!("bitmap directory unreadable: {e}"),
            ));
            Vec::new()
        }
    };
    let luks = h.crypto.and_then(|c| read_luks(file.as_ref(), c.offset));

    // External data file: through the policy only, opened as raw bytes (never probed).
    let data = if h.has_data_file() {
        match h.data_file_name() {
            None => {
                let r = ExternalRef {
                    kind: RefKind::DataFile,
                    name: String::new(),
                    decision: RefDecision::Failed {
                        reason: "the image sets the external data file flag but names no file"
                            .into(),
                    },
                };
                let l =
                    ctx.resolver
                        .unavailable(&r, "qcow2", file.path(), h.size.saturating_add(cs));
                refs.push(r);
                DataFile::Unavailable(l)
            }
            Some(name) => {
                let data = ctx.follow_file(RefKind::DataFile, file.path(), &name);
                let f = data.reference.finding();
                findings.push(Finding {
                    message: format!("{} (external data file)", f.message),
                    ..f
                });
                refs.push(data.reference.clone());
                match &data.layer {
                    Some(l) => DataFile::External(l.clone()),
                    // Host offsets equal guest offsets in a data file: it spans the disk.
                    None => DataFile::Unavailable(data.stand_in(
                        ctx,
                        "qcow2",
                        file.path(),
                        h.size.saturating_add(cs),
                    )),
                }
            }
        }
    } else {
        if let Some(name) = h.data_file_name() {
            refs.push(policy_ref(RefKind::DataFile, &name));
        }
        DataFile::Same
    };

    // Backing file: through the policy, format forced from the extension when present.
    let mut backing = None;
    let mut backing_state = Value::Null;
    if let Some(name) = h.backing_name() {
        let b = open_backing(
            &file,
            &name,
            h.backing_format.as_deref(),
            ctx,
            "qcow2",
            h.size,
        )?;
        let f = b.reference.finding();
        let msg = if b.opened {
            f.message.clone()
        } else {
            format!("{}; unallocated clusters are unavailable", f.message)
        };
        findings.push(Finding { message: msg, ..f }.at(h.backing_file_offset));
        backing_state = json!({
            "name": name,
            "format": h.backing_format,
            "opened": b.opened,
            "backing_layer": b.opened.then(|| b.layer.name().to_string()),
            "unallocated_reads": if b.opened {
                "backing file".to_string()
            } else {
                match ctx.resolver.missing() {
                    MissingPolicy::Error => "error (backing file not opened)".to_string(),
                    MissingPolicy::Zeros => {
                        "zeros (backing file not opened, --missing=zeros)".to_string()
                    }
                    other => format!("{0} (backing file not opened, --missing={0})", other.as_str()),
                }
            },
        });
        refs.push(b.reference);
        backing = Some(b.layer);
    }

    let cache = L2_CACHE_SIZE.number(ctx.options)?;
    let image = Arc::new(Image::new(file, h, data, backing, cache));
    Ok(Opened {
        image,
        l1,
        snapshots,
        findings: findings.to_vec(),
        refs,
        bitmaps,
        luks,
        backing_state,
    })
}

/// Lists the bitmap directory (names, granularity, flags); bitmaps are not read.
fn read_bitmaps(file: &dyn Layer, h: &Header) -> Result<Vec<Value>> {
    let Some(ext) = h.bitmaps else {
        return Ok(Vec::new());
    };
    if h.autoclear & raw::AUTOCLEAR_BITMAPS == 0 {
        return Ok(Vec::new());
    }
    let buf = file.read_vec(
        ext.directory_offset,
        ext.directory_size,
        MAX_BITMAP_DIRECTORY_BYTES,
        "bitmap directory",
    )?;
    let b = Bytes::new(&buf, ext.directory_offset);
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..ext.nb_bitmaps {
        let e = b.sub(pos, raw::BITMAP_ENTRY_LEN as usize)?;
        let name_size = usize::from(e.u16_be(18)?);
        let extra = e.u32_be(20)? as usize;
        let name = b.slice(pos + raw::BITMAP_ENTRY_LEN as usize + extra, name_size)?;
        let flags = e.u32_be(12)?;
        out.push(json!({
            "name": String::from_utf8_lossy(name),
            "bitmap_table_offset": e.u64_be(0)?,
            "bitmap_table_size": e.u32_be(8)?,
            "flags": flags,
            "in_use": flags & 1 != 0,
            "auto": flags & 2 != 0,
            "type": e.u8(16)?,
            "granularity": 1u64.checked_shl(u32::from(e.u8(17)?)).unwrap_or(0),
            "extra_data_size": extra,
        }));
        pos = (pos + raw::BITMAP_ENTRY_LEN as usize + extra + name_size).div_ceil(8) * 8;
    }
    Ok(out)
}

/// A summary of the LUKS header the encryption extension points at.
fn read_luks(file: &dyn Layer, offset: u64) -> Option<Value> {
    let hdr: [u8; 208] = file.read_array(offset).ok()?;
    let b = Bytes::new(&hdr, offset);
    if b.slice(0, 6).ok()? != b"LUKS\xba\xbe" {
        return Some(json!({"magic": "missing"}));
    }
    let text = |o: usize| {
        let s = b.slice(o, 32).unwrap_or(&[]);
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(s.get(..end).unwrap_or(&[])).into_owned()
    };
    Some(json!({
        "version": b.u16_be(6).ok()?,
        "cipher_name": text(8),
        "cipher_mode": text(40),
        "hash_spec": text(72),
        "payload_offset": b.u32_be(104).ok()?,
        "key_bytes": b.u32_be(108).ok()?,
    }))
}
