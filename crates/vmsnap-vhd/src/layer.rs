//! The VHD layer: open (footer copies, checksum, size rule, dynamic header, BAT, parent)
//! and reads through the BAT and, for differencing disks, the sector bitmaps.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    check_read, push_coalesced, AddressSpace, Error, Extent, ExtentKind, ExternalRef, Finding,
    Findings, Layer, LayerExt, OpenCtx, Result, ResultExt,
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

/// Which kind of VHD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    footer: Footer,
    subformat: Subformat,
    size: u64,
    rule: SizeRule,
    sparse: Option<Sparse>,
    parent: Option<Arc<dyn Layer>>,
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
                            "footer",
                            "no footer at the end of the file, only the copy at offset 0",
                        )
                        .at(tail_at),
                    ),
                    Some(t) if t.raw != h.raw => {
                        findings.push(
                            Finding::warning(
                                "footer",
                                "the footer copy at offset 0 and the footer at EOF differ",
                            )
                            .at(tail_at),
                        );
                        if !h.checksum_ok() && t.checksum_ok() {
                            findings.push(Finding::warning(
                                "footer",
                                "the footer copy at 0 has a bad checksum; the one at EOF is used",
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
                            "footer",
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
            findings.push(
                Finding::warning(
                    "footer",
                    format!(
                        "footer checksum is {:#010x}, computed {:#010x} (QEMU refuses this image)",
                        footer.checksum, footer.computed_checksum
                    ),
                )
                .at(footer.at + 64),
            );
        }
        let force = match ctx.options.get(OPT_FORCE_SIZE) {
            None => None,
            Some("chs") => Some(SizeRule::Chs),
            Some("current_size") => Some(SizeRule::CurrentSize),
            Some(v) => {
                return Err(Error::new(
                    vmsnap_core::ErrorKind::InvalidArgument,
                    format!("{OPT_FORCE_SIZE}={v}: expected `chs` or `current_size`"),
                ))
            }
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
                "virtual_size",
                format!(
                    "virtual size {size} from CHS {}/{}/{} (current_size is {}), qemu-img 10's rule for creator {:?}",
                    footer.cylinders, footer.heads, footer.spt, footer.current_size, footer.creator()
                ),
            ));
        }
        let mut vhd = Vhd {
            lower: lower.clone(),
            footer,
            subformat,
            size,
            rule,
            sparse: None,
            parent: None,
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
                    "dynamic_header",
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
        let bat_raw = self
            .lower
            .read_vec(
                hdr.table_offset,
                bat_bytes,
                vmsnap_core::limits::MAX_TABLE_BYTES,
                "BAT",
            )
            .during("reading the BAT")?;
        let bat: Vec<u32> = bat_raw
            .chunks_exact(4)
            .map(|c| {
                c.try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(BAT_UNALLOCATED)
            })
            .collect();
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
                    "bat",
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
                        "parent",
                        format!(
                            "parent virtual size {} differs from this disk's {}",
                            p.len(),
                            self.size
                        ),
                    ));
                }
            }
            self.parent = out.layer;
            self.refs = out.refs;
            self.parent_names = out.names;
        } else if hdr.parent_uuid != [0; 16] || !hdr.locators.is_empty() {
            self.findings.push(Finding::warning(
                "parent",
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

    /// Reads `buf.len()` bytes of the parent at `pos` (zeros past its end or without one).
    fn read_parent(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        match &self.parent {
            Some(p) => {
                let avail = p.len().saturating_sub(pos).min(buf.len() as u64) as usize;
                let (head, rest) = buf.split_at_mut(avail);
                if !head.is_empty() {
                    p.read_at(pos, head)?;
                }
                rest.fill(0);
                Ok(())
            }
            None => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// Reads part of an allocated block of a differencing disk, sector by sector per the
    /// bitmap (MSB-first; a set bit means this file holds the sector).
    fn read_diff(
        &self,
        s: &Sparse,
        block_at: u64,
        pos: u64,
        within: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let mut bitmap = [0u8; 512];
        let mut done = 0usize;
        let mut cached: Option<u64> = None;
        while done < buf.len() {
            let w = within + done as u64;
            let sector = w / SECTOR;
            let chunk_idx = sector / (8 * 512);
            if cached != Some(chunk_idx) {
                let off = chunk_idx * 512;
                let n = (s.bitmap_size - off).min(512) as usize;
                let dst = bitmap.get_mut(..n).unwrap_or(&mut []);
                self.lower.read_at(block_at + off, dst)?;
                cached = Some(chunk_idx);
            }
            let bit_in_chunk = sector % (8 * 512);
            let byte = bitmap
                .get((bit_in_chunk / 8) as usize)
                .copied()
                .unwrap_or(0);
            let present = byte & (0x80 >> (bit_in_chunk % 8)) != 0;
            // Extend the run while the bit stays the same within this bitmap chunk.
            let mut end_sector = sector + 1;
            let chunk_end = (chunk_idx + 1) * 8 * 512;
            while end_sector < chunk_end {
                let b = end_sector % (8 * 512);
                let byte = bitmap.get((b / 8) as usize).copied().unwrap_or(0);
                if (byte & (0x80 >> (b % 8)) != 0) != present {
                    break;
                }
                end_sector += 1;
            }
            let run_end = (end_sector * SECTOR).min(within + buf.len() as u64);
            let n = (run_end - w) as usize;
            let dst = buf
                .get_mut(done..done + n)
                .ok_or_else(|| Error::malformed(pos, "internal: bad run"))?;
            if present {
                self.lower.read_at(block_at + s.bitmap_size + w, dst)?;
            } else {
                self.read_parent(pos + done as u64, dst)?;
            }
            done += n;
        }
        Ok(())
    }

    fn parent_extents(&self, out: &mut Vec<Extent>, range: Range<u64>) -> Result<()> {
        let Some(p) = &self.parent else {
            push_coalesced(
                out,
                Extent::of(
                    ExtentKind::Unallocated,
                    range.start,
                    range.end - range.start,
                ),
            );
            return Ok(());
        };
        let pend = range.end.min(p.len());
        if range.start < pend {
            for e in p.extents(range.start..pend)? {
                push_coalesced(out, Extent::of(e.kind, e.offset, e.len));
            }
        }
        let from = pend.max(range.start);
        if from < range.end {
            push_coalesced(
                out,
                Extent::of(ExtentKind::Unallocated, from, range.end - from),
            );
        }
        Ok(())
    }
}

impl Layer for Vhd {
    fn name(&self) -> &str {
        "vhd"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let Some(s) = &self.sparse else {
            return self.lower.read_at(offset, buf).in_layer("vhd");
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let blk = pos / s.block_size;
            let within = pos % s.block_size;
            let n = (s.block_size - within).min((buf.len() - done) as u64) as usize;
            let dst = buf
                .get_mut(done..done + n)
                .ok_or_else(|| Error::malformed(pos, "internal: bad chunk"))?;
            let entry = s.bat.get(blk as usize).copied().unwrap_or(BAT_UNALLOCATED);
            if entry == BAT_UNALLOCATED {
                self.read_parent(pos, dst)?;
            } else {
                let block_at = u64::from(entry) * SECTOR;
                if self.subformat == Subformat::Differencing {
                    self.read_diff(s, block_at, pos, within, dst)?;
                } else {
                    // QEMU ignores the bitmap of dynamic disks: allocated means data.
                    self.lower
                        .read_at(block_at + s.bitmap_size + within, dst)
                        .in_layer("vhd")?;
                }
            }
            done += n;
        }
        Ok(())
    }

    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.size);
        let mut out = Vec::new();
        if range.start >= end {
            return Ok(out);
        }
        let Some(s) = &self.sparse else {
            out.push(Extent::data(
                range.start,
                end - range.start,
                Some(range.start),
            ));
            return Ok(out);
        };
        let mut pos = range.start;
        while pos < end {
            let blk = pos / s.block_size;
            let within = pos % s.block_size;
            let n = (s.block_size - within).min(end - pos);
            let entry = s.bat.get(blk as usize).copied().unwrap_or(BAT_UNALLOCATED);
            if entry == BAT_UNALLOCATED {
                if self.subformat == Subformat::Differencing {
                    self.parent_extents(&mut out, pos..pos + n)?;
                } else {
                    push_coalesced(&mut out, Extent::of(ExtentKind::Unallocated, pos, n));
                }
            } else {
                let data_at = u64::from(entry) * SECTOR + s.bitmap_size + within;
                if self.subformat == Subformat::Differencing {
                    // Sector granularity: a 1-sector read of the bitmap per sector would be
                    // slow, so read it for the block part once.
                    let first = within / SECTOR;
                    let last = (within + n).div_ceil(SECTOR);
                    let boff = first / 8;
                    let blen = (last.div_ceil(8) - boff).min(s.bitmap_size - boff);
                    let bm = self.lower.read_vec(
                        u64::from(entry) * SECTOR + boff,
                        blen,
                        s.bitmap_size,
                        "sector bitmap",
                    )?;
                    let mut sp = pos;
                    while sp < pos + n {
                        let sec = (within + (sp - pos)) / SECTOR;
                        let idx = sec - boff * 8;
                        let byte = bm.get((idx / 8) as usize).copied().unwrap_or(0);
                        let present = byte & (0x80 >> (idx % 8)) != 0;
                        let sec_end = ((sec + 1) * SECTOR - within + pos).min(pos + n);
                        if present {
                            push_coalesced(
                                &mut out,
                                Extent::data(sp, sec_end - sp, Some(data_at + (sp - pos))),
                            );
                        } else {
                            self.parent_extents(&mut out, sp..sec_end)?;
                        }
                        sp = sec_end;
                    }
                } else {
                    push_coalesced(&mut out, Extent::data(pos, n, Some(data_at)));
                }
            }
            pos += n;
        }
        Ok(out)
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
            "timestamp": u64::from(f.timestamp) + 946_684_800,
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
                        "timestamp": u64::from(s.header.parent_timestamp) + 946_684_800,
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
                        "unopened_reads": if self.parent.is_some() { "parent" } else { "zeros" },
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
