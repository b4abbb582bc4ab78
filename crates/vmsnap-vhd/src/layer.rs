//! The VHD layer: open (footer copies, checksum, size rule, dynamic header, BAT, parent)
//! and reads through the BAT and, for differencing disks, the sector bitmaps.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    none_opened, BitOrder, BitmapCache, Error, ExternalRef, Finding, Findings, Layer, LayerExt,
    OpenCtx, OptionType, PluginOption, RefKind, Result, ResultExt, Run, RunKind, RunMap,
    RunSources, SectorBitmap,
};

use crate::parent::{resolve, ParentName};
use crate::raw::{
    size_rule, uuid_text, DynHeader, Footer, SizeRule, BAT_UNALLOCATED, DYN_HEADER_SIZE,
    FOOTER_COOKIE, FOOTER_SIZE, MAX_BAT_ENTRIES, MAX_BLOCK_SIZE, MAX_TOTAL_SECTORS, SECTOR,
    TYPE_DIFFERENCING, TYPE_DYNAMIC, TYPE_FIXED,
};

/// Option key overriding the size rule (`chs` or `current_size`), like QEMU's
/// `force_size_calc`.
pub const OPT_FORCE_SIZE: &str = "vhd.force_size_calc";

/// The declared `vhd.force_size_calc` option.
pub(crate) const FORCE_SIZE: PluginOption = PluginOption {
    name: OPT_FORCE_SIZE,
    ty: OptionType::Choice(&["chs", "current_size"]),
    help: "which footer field gives the virtual size (default: qemu-img 10's rule by creator)",
};

/// Which kind of VHD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subformat {
    /// Raw data followed by a footer.
    Fixed,
    /// Sparse, through a BAT.
    Dynamic,
    /// Sparse over a parent.
    Differencing,
}

impl Subformat {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subformat::Fixed => "fixed",
            Subformat::Dynamic => "dynamic",
            Subformat::Differencing => "differencing",
        }
    }
}

#[derive(Debug)]
struct Sparse {
    header: DynHeader,
    bat: Vec<u32>,
    block_size: u64,
    bitmap_size: u64,
}

/// An open VHD disk.
#[derive(Debug)]
pub struct Vhd {
    lower: Arc<dyn Layer>,
    file_len: u64,
    footer: Footer,
    subformat: Subformat,
    size: u64,
    rule: SizeRule,
    sparse: Option<Sparse>,
    parent: Option<Arc<dyn Layer>>,
    /// The stand-in for a parent that was not opened.
    unavailable: Option<Arc<dyn Layer>>,
    parent_names: Vec<ParentName>,
    refs: Vec<ExternalRef>,
    findings: Findings,
}

fn read_footer(lower: &dyn Layer, at: u64) -> Result<Option<Footer>> {
    let raw: [u8; 512] = lower.read_array(at)?;
    if raw.get(..8) != Some(FOOTER_COOKIE.as_slice()) {
        return Ok(None);
    }
    Footer::parse(&raw, at).map(Some)
}

impl Vhd {
    /// Opens a VHD on `lower`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vhd> {
        Self::open_inner(lower, ctx).in_layer("vhd")
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vhd> {
        let file_size = lower.len();
        let mut findings = Findings::new();
        let tail_at = file_size
            .checked_sub(FOOTER_SIZE)
            .ok_or_else(|| Error::truncated(0, "file is shorter than a VHD footer"))?;
        let head = read_footer(lower.as_ref(), 0).during("reading the footer copy at 0")?;
        let tail = if tail_at == 0 {
            None
        } else {
            read_footer(lower.as_ref(), tail_at).during("reading the footer at EOF")?
        };
        // QEMU decides by location: a footer copy at 0 means a sparse disk. A fixed disk
        // whose guest data starts with `conectix` is told apart by the type fields.
        let head_sparse = head
            .as_ref()
            .is_some_and(|f| f.disk_type == TYPE_DYNAMIC || f.disk_type == TYPE_DIFFERENCING);
        let t = &tail;
        let (footer, subformat) = match (&head, &tail) {
            (Some(h), _) if head_sparse || t.is_none() => {
                let mut primary = h.clone();
                match t {
                    None => findings.push(
                        Finding::warning(
                            crate::rule::FOOTER,
                            "no footer at the end of the file, only the copy at offset 0",
                        )
                        .at(tail_at),
                    ),
                    Some(t) if t.raw != h.raw => {
                        findings.push(
                            Finding::warning(
                                crate::rule::FOOTER,
                                "the footer copy at offset 0 and the footer at EOF differ",
                            )
                            .at(tail_at),
                        );
                        if !h.checksum_ok() && t.checksum_ok() {
                            // QEMU reads only the copy at 0 and refuses the image.
                            findings.push(Finding::unsafe_(
                                crate::rule::FOOTER,
                                "the footer copy at 0 has a bad checksum (QEMU: \"Incorrect \
                                 header checksum\"); vmsnap reads the one at EOF",
                            ));
                            primary = t.clone();
                        }
                    }
                    Some(_) => {}
                }
                let sub = match primary.disk_type {
                    TYPE_DIFFERENCING => Subformat::Differencing,
                    TYPE_DYNAMIC => Subformat::Dynamic,
                    other => {
                        return Err(Error::malformed(
                            60,
                            format!("footer at offset 0 has disk type {other}, not dynamic (3) or differencing (4)"),
                        ))
                    }
                };
                (primary, sub)
            }
            (Some(_), None) | (None, None) => {
                return Err(Error::malformed(
                    tail_at,
                    "no `conectix` footer at offset 0 or at the end of the file",
                ))
            }
            (_, Some(t)) => {
                if t.disk_type != TYPE_FIXED {
                    findings.push(
                        Finding::warning(
                            crate::rule::FOOTER,
                            format!(
                                "only a footer at EOF (a fixed disk), but its disk type is {}",
                                t.disk_type
                            ),
                        )
                        .at(t.at + 60),
                    );
                }
                (t.clone(), Subformat::Fixed)
            }
        };
        if !footer.checksum_ok() {
            // QEMU refuses the image (`-f vpc`): never safe.
            findings.push(
                Finding::unsafe_(
                    crate::rule::FOOTER,
                    format!(
                        "footer checksum is {:#010x}, computed {:#010x} (QEMU refuses this image)",
                        footer.checksum, footer.computed_checksum
                    ),
                )
                .at(footer.at + 64),
            );
        }
        let force = match FORCE_SIZE.choice(ctx.options)? {
            Some("chs") => Some(SizeRule::Chs),
            Some(_) => Some(SizeRule::CurrentSize),
            None => None,
        };
        let rule = size_rule(&footer, force);
        let size = match rule {
            SizeRule::Chs => footer.chs_bytes(),
            SizeRule::CurrentSize => footer.current_size,
        };
        let max = MAX_TOTAL_SECTORS * SECTOR;
        if size > max {
            return Err(Error::limit("virtual size", size, max).at(footer.at + 48));
        }
        if rule == SizeRule::Chs && footer.chs_bytes() != footer.current_size {
            findings.push(Finding::info(
                crate::rule::VIRTUAL_SIZE,
                format!(
                    "virtual size {size} from CHS {}/{}/{} (current_size is {}), qemu-img 10's rule for creator {:?}",
                    footer.cylinders, footer.heads, footer.spt, footer.current_size, footer.creator()
                ),
            ));
        }
        let mut vhd = Vhd {
            lower: lower.clone(),
            file_len: file_size,
            footer,
            subformat,
            size,
            rule,
            sparse: None,
            parent: None,
            unavailable: None,
            parent_names: Vec::new(),
            refs: Vec::new(),
            findings,
        };
        if subformat == Subformat::Fixed {
            if size > tail_at {
                return Err(Error::truncated(
                    tail_at,
                    format!("fixed disk of {size} bytes but only {tail_at} bytes of data before the footer"),
                ));
            }
            return Ok(vhd);
        }
        vhd.open_sparse(ctx)?;
        Ok(vhd)
    }

    fn open_sparse(&mut self, ctx: &OpenCtx<'_>) -> Result<()> {
        let file_size = self.lower.len();
        let at = self.footer.data_offset;
        let raw = self
            .lower
            .read_vec(at, DYN_HEADER_SIZE, DYN_HEADER_SIZE, "dynamic disk header")
            .during("reading the dynamic disk header")?;
        let hdr = DynHeader::parse(&raw, at)?;
        if hdr.checksum != hdr.computed_checksum {
            self.findings.push(
                Finding::warning(
                    crate::rule::DYNAMIC_HEADER,
                    format!(
                        "dynamic header checksum is {:#010x}, computed {:#010x}",
                        hdr.checksum, hdr.computed_checksum
                    ),
                )
                .at(at + 36),
            );
        }
        let bs = hdr.block_size;
        if bs < 512 || !bs.is_power_of_two() {
            return Err(Error::malformed(
                at + 32,
                format!("block size {bs} is not a power of two of at least 512"),
            ));
        }
        if bs > MAX_BLOCK_SIZE {
            return Err(
                Error::limit("block size", u64::from(bs), u64::from(MAX_BLOCK_SIZE)).at(at + 32),
            );
        }
        if hdr.max_table_entries > MAX_BAT_ENTRIES {
            return Err(Error::limit(
                "BAT entries",
                u64::from(hdr.max_table_entries),
                u64::from(MAX_BAT_ENTRIES),
            )
            .at(at + 28));
        }
        let block_size = u64::from(bs);
        let capacity = u64::from(hdr.max_table_entries) * block_size;
        if capacity < self.size {
            return Err(Error::malformed(
                at + 28,
                format!(
                    "page table too small: {} entries of {block_size} bytes cover {capacity} bytes, less than the virtual size {}",
                    hdr.max_table_entries, self.size
                ),
            ));
        }
        let needed = self.size.div_ceil(block_size);
        let bat_bytes = needed * 4;
        let bat: Vec<u32> = vmsnap_core::read_table(
            self.lower.as_ref(),
            hdr.table_offset,
            needed,
            vmsnap_core::limits::MAX_TABLE_BYTES,
            "BAT",
            u32::from_be_bytes,
        )
        .during("reading the BAT")?;
        // Bitmap: one bit per sector, padded to a whole sector.
        let bitmap_size = (block_size / SECTOR / 8).div_ceil(SECTOR) * SECTOR;
        let meta_end = hdr.table_offset.saturating_add(bat_bytes);
        let mut overlaps = 0u64;
        for (i, &e) in bat.iter().enumerate() {
            if e == BAT_UNALLOCATED {
                continue;
            }
            let start = u64::from(e) * SECTOR;
            let end = start + bitmap_size + block_size;
            if end > file_size {
                return Err(Error::truncated(
                    hdr.table_offset + i as u64 * 4,
                    format!(
                        "BAT entry {i} puts block data at {start:#x}..{end:#x}, past the end of the file ({file_size:#x}): the image has been truncated"
                    ),
                ));
            }
            if start < meta_end.max(at + DYN_HEADER_SIZE) {
                overlaps += 1;
            }
        }
        if overlaps > 0 {
            self.findings.push(
                Finding::warning(
                    crate::rule::BAT,
                    format!(
                        "{overlaps} BAT entries point into the footer copy, dynamic header or BAT"
                    ),
                )
                .at(hdr.table_offset),
            );
        }
        if self.subformat == Subformat::Differencing {
            let out = resolve(&self.lower, &hdr, ctx)?;
            for f in out.findings {
                self.findings.push(f);
            }
            if let Some(p) = &out.layer {
                if p.len() != self.size {
                    self.findings.push(Finding::warning(
                        vmsnap_core::rule::PARENT,
                        format!(
                            "parent virtual size {} differs from this disk's {}",
                            p.len(),
                            self.size
                        ),
                    ));
                }
            }
            if out.layer.is_none() {
                // No candidate opened: the blocks the parent supplies are unavailable.
                let name = out
                    .names
                    .first()
                    .map_or_else(|| hdr.parent_name.clone(), |n| n.name.clone());
                let r = none_opened(RefKind::Parent, &name, &out.refs);
                let stand_in: Arc<dyn Layer> =
                    ctx.resolver
                        .unavailable(&r, "vhd", self.lower.path(), self.size);
                self.unavailable = Some(stand_in);
            }
            self.parent = out.layer;
            self.refs = out.refs;
            self.parent_names = out.names;
        } else if hdr.parent_uuid != [0; 16] || !hdr.locators.is_empty() {
            self.findings.push(Finding::warning(
                vmsnap_core::rule::PARENT,
                "a dynamic (not differencing) disk has parent fields set; they are ignored",
            ));
        }
        self.sparse = Some(Sparse {
            header: hdr,
            bat,
            block_size,
            bitmap_size,
        });
        Ok(())
    }

    /// Which kind of VHD this is.
    pub fn subformat(&self) -> Subformat {
        self.subformat
    }

    /// The footer in use.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The opened parent, for differencing disks.
    pub fn parent(&self) -> Option<&Arc<dyn Layer>> {
        self.parent.as_ref()
    }
}

impl vmsnap_core::RunLayer for Vhd {
    fn name(&self) -> &str {
        "vhd"
    }
    fn len(&self) -> u64 {
        self.size
    }

    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        if let Some(p) = &self.parent {
            v.push(p.clone());
        }
        v
    }

    fn describe(&self) -> serde_json::Value {
        let f = &self.footer;
        let mut d = json!({
            "format": "vhd",
            "virtual_size": self.size,
            "subformat": self.subformat.as_str(),
            "size_rule": self.rule.as_str(),
            "current_size": f.current_size,
            "original_size": f.original_size,
            "chs": { "cylinders": f.cylinders, "heads": f.heads, "sectors_per_track": f.spt },
            "creator_app": f.creator(),
            "creator_version": format!("{}.{}", f.creator_version >> 16, f.creator_version & 0xffff),
            "creator_os": String::from_utf8_lossy(&f.creator_os),
            "timestamp": vmsnap_core::time::iso8601_utc(u64::from(f.timestamp) + 946_684_800),
            "unique_id": uuid_text(&f.uuid),
            "saved_state": f.saved_state != 0,
            "disk_type": f.disk_type,
            "footer_checksum_ok": f.checksum_ok(),
        });
        if let (Some(s), Some(obj)) = (&self.sparse, d.as_object_mut()) {
            let allocated = s.bat.iter().filter(|&&e| e != BAT_UNALLOCATED).count();
            obj.insert("block_size".into(), json!(s.block_size));
            obj.insert("bat_entries".into(), json!(s.header.max_table_entries));
            obj.insert("allocated_blocks".into(), json!(allocated));
            if self.subformat == Subformat::Differencing {
                obj.insert(
                    "parent".into(),
                    json!({
                        "unique_id": uuid_text(&s.header.parent_uuid),
                        "timestamp": vmsnap_core::time::iso8601_utc(u64::from(s.header.parent_timestamp) + 946_684_800),
                        "name": s.header.parent_name,
                        "locators": s.header.locators.iter().map(|l| json!({
                            "platform": String::from_utf8_lossy(&l.code),
                            "length": l.length,
                            "offset": l.offset,
                        })).collect::<Vec<_>>(),
                        "names": self.parent_names.iter().map(|n| json!({
                            "source": n.source, "stored": n.stored, "name": n.name,
                        })).collect::<Vec<_>>(),
                        "opened": self.parent.is_some(),
                        "unopened_reads": if self.parent.is_some() { "parent" } else { "unavailable" },
                    }),
                );
            }
        }
        d
    }

    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }

    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }

    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

impl RunMap for Vhd {
    type Cursor = BitmapCache;

    /// A fixed disk is one run of data. Sparse disks go block by block: an unallocated
    /// block is the parent's (zeros without one); an allocated block of a dynamic disk is
    /// data (QEMU ignores its bitmap); an allocated block of a differencing disk is data or
    /// the parent's sector by sector, per its bitmap (MSB-first; a set bit means this file
    /// holds the sector).
    #[inline(always)]
    fn run(&self, pos: u64, max: u64, bitmap: &mut BitmapCache) -> Result<Run> {
        let Some(s) = &self.sparse else {
            return Ok(Run {
                kind: RunKind::Data(pos),
                len: max,
            });
        };
        let within = pos % s.block_size;
        let len = (s.block_size - within).min(max);
        let blk = usize::try_from(pos / s.block_size).unwrap_or(usize::MAX);
        let entry = s.bat.get(blk).copied().unwrap_or(BAT_UNALLOCATED);
        if entry == BAT_UNALLOCATED {
            return Ok(Run {
                kind: RunKind::Unallocated,
                len,
            });
        }
        let block_at = u64::from(entry) * SECTOR;
        let data = RunKind::Data(block_at + s.bitmap_size + within);
        if self.subformat != Subformat::Differencing {
            return Ok(Run { kind: data, len });
        }
        let map = SectorBitmap {
            at: block_at,
            first_bit: 0,
            sector: SECTOR,
            order: BitOrder::MsbFirst,
        };
        let (present, len) = map.run(self.lower.as_ref(), bitmap, within, len)?;
        let kind = if present { data } else { RunKind::Unallocated };
        Ok(Run { kind, len })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.lower.as_ref(),
            file_len: self.file_len,
            backing: self.parent.as_deref().or(self.unavailable.as_deref()),
            backing_base: 0,
            data: vmsnap_core::DataExtents::Mapped,
        }
    }
}
