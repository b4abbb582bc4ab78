//! The top-level walk of a QEVM stream: header, configuration, sections with footers,
//! commands, EOF and the vmdesc trailer. RAM records are noted (stream offset per page),
//! never copied; device sections are skipped exactly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::limits::MAX_ITEMS;
use vmsnap_core::{Error, Finding, Layer, Result};

use crate::cursor::Cursor;
use crate::raw::{limits::*, *};
use crate::vmdesc::{walk, FieldAt, VmDesc};

/// A mapped-ram per-block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedRam {
    /// Header version.
    pub version: u32,
    /// Page size.
    pub page_size: u64,
    /// Stream offset of the dirty bitmap (already corrected by `delta`).
    pub bitmap_offset: u64,
    /// Stream offset of the page area (already corrected by `delta`).
    pub pages_offset: u64,
}

/// One RAM block of the MEM_SIZE list.
#[derive(Debug, Clone)]
pub struct Block {
    /// idstr, e.g. `pc.ram`.
    pub name: String,
    /// used_length in bytes.
    pub size: u64,
    /// `mr->addr` (x-ignore-shared streams only).
    pub mr_addr: Option<u64>,
    /// mapped-ram header.
    pub mapped: Option<MappedRam>,
}

/// One section seen in the stream.
#[derive(Debug, Clone)]
pub struct Section {
    /// Section id.
    pub id: u32,
    /// idstr.
    pub name: String,
    /// Instance id.
    pub instance: u32,
    /// Version id.
    pub version: u32,
    /// Stream offset of its first record.
    pub offset: u64,
    /// Stream offset of its payload.
    pub payload: u64,
    /// Payload bytes (for device sections).
    pub size: u64,
    /// How its payload was skipped.
    pub skipped_by: &'static str,
}

/// Page records sent back to back, held as one: `n` pages from key `key`, each a fill of
/// `val` (`FILL_BIT | byte`) or data at `val + k × stride`. QEMU sends untouched memory as
/// a ZERO record per page (9 bytes): a 1 TiB guest is 2³⁸ of them, and kept one by one
/// they took 16 bytes each; runs take a few per RAM block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRun {
    /// Key of the first page.
    pub key: u64,
    /// Pages.
    pub n: u64,
    /// Fill value, or stream offset of the first page's data.
    pub val: u64,
    /// Distance between data pages in the stream (0 for fills).
    pub stride: u64,
}

impl RecordRun {
    /// Key past the last page.
    pub fn end(&self) -> u64 {
        self.key.saturating_add(self.n)
    }

    /// Pages `from ..` of this run (`from` within it).
    pub fn tail(&self, from: u64) -> RecordRun {
        let skip = from.saturating_sub(self.key).min(self.n);
        RecordRun {
            key: self.key + skip,
            n: self.n - skip,
            val: if self.val & FILL_BIT != 0 {
                self.val
            } else {
                self.val.saturating_add(skip.saturating_mul(self.stride))
            },
            stride: self.stride,
        }
    }
}

/// Appends the record `(key, val)` to `runs`, extending the last run when it continues it
/// (next page of the same block, same fill, or data evenly spaced after the last page).
pub fn push_record(runs: &mut Vec<RecordRun>, key: u64, val: u64, ps: u64) {
    if let Some(last) = runs.last_mut() {
        let same_block = last.key >> PAGE_BITS == key >> PAGE_BITS;
        if same_block && last.end() == key {
            let fill = val & FILL_BIT != 0;
            if fill && last.val == val {
                last.n += 1;
                return;
            }
            if !fill && last.val & FILL_BIT == 0 {
                if last.n == 1 && val > last.val && val - last.val >= ps {
                    last.stride = val - last.val;
                    last.n = 2;
                    return;
                }
                let next = last
                    .stride
                    .checked_mul(last.n)
                    .and_then(|d| last.val.checked_add(d));
                if last.n > 1 && next == Some(val) {
                    last.n += 1;
                    return;
                }
            }
        }
    }
    runs.push(RecordRun {
        key,
        n: 1,
        val,
        stride: if val & FILL_BIT != 0 { 0 } else { ps },
    });
}
/// Marks a fill record's value.
pub const FILL_BIT: u64 = 1 << 63;
/// Bits of a page index in a record key.
pub const PAGE_BITS: u32 = 40;

/// RAM record counts.
#[derive(Debug, Clone, Default)]
pub struct RamStats {
    /// PAGE records.
    pub pages: u64,
    /// ZERO records.
    pub zero: u64,
    /// MULTIFD_FLUSH records.
    pub multifd_flush: u64,
    /// EOS records.
    pub eos: u64,
    /// Pages sent more than once.
    pub resent: u64,
}

/// Everything the walk learnt.
#[derive(Debug)]
pub struct Parsed {
    /// Machine type from the configuration section.
    pub machine: Option<String>,
    /// `configuration/target-page-bits`.
    pub target_page_bits: Option<u32>,
    /// `configuration/capabilities`.
    pub capabilities: Vec<String>,
    /// Target page size used for RAM records.
    pub page_size: u64,
    /// RAM blocks.
    pub blocks: Vec<Block>,
    /// Page records in stream order (later ones win), consecutive ones as runs.
    pub records: Vec<RecordRun>,
    /// Counts.
    pub stats: RamStats,
    /// Sections in stream order.
    pub sections: Vec<Section>,
    /// Command records (command, offset).
    pub commands: Vec<(u16, u64)>,
    /// Whether section footers are present.
    pub footers: bool,
    /// The vmdesc trailer.
    pub vmdesc: Option<VmDesc>,
    /// vmdesc-located fields of each `cpu` section, by instance.
    pub cpu_fields: BTreeMap<u32, Vec<FieldAt>>,
    /// vmdesc-located fields of the host bridge (`I440FX` / `mch`) section.
    pub host_bridge: Option<(String, Vec<FieldAt>)>,
    /// Offset of the EOF byte.
    pub eof_offset: u64,
    /// Offset correction applied to mapped-ram offsets (non-zero inside a wrapper).
    pub mapped_delta: u64,
    /// Findings.
    pub findings: Vec<Finding>,
}

impl Parsed {
    /// Whether this is a mapped-ram stream.
    pub fn is_mapped_ram(&self) -> bool {
        self.capabilities.iter().any(|c| c == "mapped-ram")
    }
}

/// Reads the header and configuration from `head` only, for probes: `(version, machine,
/// mapped_ram)`.
pub fn sniff(head: &[u8]) -> Option<(u32, bool)> {
    let magic = u32::from_be_bytes(head.get(0..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
    let mut mapped = false;
    if head.get(8) == Some(&SEC_CONFIGURATION) {
        let n = u32::from_be_bytes(head.get(9..13)?.try_into().ok()?) as usize;
        let rest = head.get(13usize.checked_add(n)?..)?;
        // Look for the capability name within the configuration's subsections.
        let window = rest.get(..rest.len().min(4096))?;
        mapped = window
            .windows(b"\x0amapped-ram".len())
            .any(|w| w == b"\x0amapped-ram");
    }
    Some((version, mapped))
}

struct Walker<'a> {
    cur: Cursor,
    p: Parsed,
    ram_section: Option<u32>,
    block_by_name: HashMap<String, usize>,
    last_block: Option<usize>,
    ids: HashMap<u32, usize>,
    lower: &'a Arc<dyn Layer>,
}

/// Walks the whole stream in `lower`.
pub fn parse(lower: &Arc<dyn Layer>) -> Result<Parsed> {
    let vmdesc = VmDesc::locate(lower.as_ref())?;
    let mut cur = Cursor::new(lower.clone(), 0);
    let magic = cur.be32("stream magic")?;
    if magic != MAGIC {
        return Err(Error::malformed(
            0,
            format!("not a QEVM stream (magic {magic:#010x})"),
        ));
    }
    let version = cur.be32("stream version")?;
    if version == VERSION_COMPAT {
        return Err(Error::unsupported("QEVM stream version 2 (obsolete compat format)").at(4));
    }
    if version != VERSION {
        return Err(Error::malformed(
            4,
            format!("QEVM stream version {version}, expected 3"),
        ));
    }
    let page_size = vmdesc.as_ref().and_then(VmDesc::page_size).unwrap_or(4096);
    let mut w = Walker {
        cur,
        p: Parsed {
            machine: None,
            target_page_bits: None,
            capabilities: Vec::new(),
            page_size,
            blocks: Vec::new(),
            records: Vec::new(),
            stats: RamStats::default(),
            sections: Vec::new(),
            commands: Vec::new(),
            footers: true,
            vmdesc,
            cpu_fields: BTreeMap::new(),
            host_bridge: None,
            eof_offset: 0,
            mapped_delta: 0,
            findings: Vec::new(),
        },
        ram_section: None,
        block_by_name: HashMap::new(),
        last_block: None,
        ids: HashMap::new(),
        lower,
    };
    w.run()?;
    w.p.page_size = w.page_size()?;
    Ok(w.p)
}

impl Walker<'_> {
    fn page_size(&self) -> Result<u64> {
        let ps = match self.p.target_page_bits {
            Some(b) if b < 32 => 1u64 << b,
            Some(b) => return Err(Error::malformed(0, format!("target page bits {b}"))),
            None => self.p.page_size,
        };
        if !ps.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) {
            return Err(Error::malformed(
                0,
                format!("target page size {ps} is not supported"),
            ));
        }
        Ok(ps)
    }

    fn run(&mut self) -> Result<()> {
        if self.cur.peek_u8("first section")? == SEC_CONFIGURATION {
            self.configuration()?;
        }
        self.p.page_size = self.page_size()?;
        loop {
            let at = self.cur.pos();
            let ty = self.cur.u8("section type")?;
            match ty {
                SEC_EOF => {
                    self.p.eof_offset = at;
                    break;
                }
                SEC_START | SEC_FULL => self.section_start(at, ty)?,
                SEC_PART | SEC_END => self.section_part(at)?,
                SEC_COMMAND => {
                    let cmd = self.cur.be16("command")?;
                    let len = self.cur.be16("command length")?;
                    if cmd == CMD_PACKAGED {
                        return Err(Error::unsupported(
                            "QEMU_VM_COMMAND 8 (packaged postcopy stream)",
                        )
                        .at(at));
                    }
                    self.cur.skip(u64::from(len), "command data")?;
                    if self.p.commands.len() < MAX_SECTIONS as usize {
                        self.p.commands.push((cmd, at));
                    }
                }
                SEC_CONFIGURATION => {
                    return Err(Error::malformed(at, "second configuration section"));
                }
                _ => {
                    return Err(Error::malformed(
                        at,
                        format!("unknown section type {ty:#04x}"),
                    ))
                }
            }
        }
        let after = self.p.eof_offset + 1;
        match &self.p.vmdesc {
            Some(d) if d.offset != after => {
                self.p.findings.push(
                    Finding::warning(
                        crate::rule::VMDESC,
                        format!(
                            "device description trailer at {:#x} does not follow EOF at {:#x}",
                            d.offset, self.p.eof_offset
                        ),
                    )
                    .at(d.offset),
                );
            }
            None if after < self.cur.stream_len() => {
                self.p.findings.push(
                    Finding::info(
                        crate::rule::VMDESC,
                        format!(
                            "no device description trailer; {} bytes follow EOF",
                            self.cur.stream_len() - after
                        ),
                    )
                    .at(after),
                );
            }
            _ => {}
        }
        if self.ram_section.is_none() {
            return Err(Error::malformed(0, "stream has no RAM section"));
        }
        Ok(())
    }

    fn configuration(&mut self) -> Result<()> {
        self.cur.u8("configuration")?;
        let at = self.cur.pos();
        let n = self.cur.be32("machine type length")?;
        if n > 256 {
            return Err(Error::limit("machine type length", u64::from(n), 256).at(at));
        }
        let name = self.cur.bytes(n as usize, "machine type")?;
        self.p.machine = Some(String::from_utf8_lossy(&name).into_owned());
        while self.cur.peek_u8("configuration subsection")? == SEC_SUBSECTION {
            let at = self.cur.pos();
            self.cur.u8("subsection")?;
            let name = self.cur.str8("subsection name")?;
            let _v = self.cur.be32("subsection version")?;
            match name.as_str() {
                "configuration/target-page-bits" => {
                    self.p.target_page_bits = Some(self.cur.be32("target page bits")?);
                }
                "configuration/capabilities" => {
                    let count = self.cur.be32("capability count")?;
                    if count > 256 {
                        return Err(Error::limit("capability count", u64::from(count), 256).at(at));
                    }
                    for _ in 0..count {
                        let c = self.cur.str8("capability")?;
                        self.p.capabilities.push(c);
                    }
                }
                "configuration/uuid" => self.cur.skip(16, "uuid")?,
                _ => {
                    return Err(Error::unsupported(format!(
                        "configuration subsection {name} is not known"
                    ))
                    .at(at))
                }
            }
        }
        Ok(())
    }

    fn note_section(&mut self, s: Section) -> Result<()> {
        if self.p.sections.len() as u64 >= MAX_SECTIONS {
            return Err(Error::limit("sections", MAX_SECTIONS + 1, MAX_SECTIONS));
        }
        self.ids.insert(s.id, self.p.sections.len());
        self.p.sections.push(s);
        Ok(())
    }

    fn section_start(&mut self, at: u64, ty: u8) -> Result<()> {
        let id = self.cur.be32("section id")?;
        let name = self.cur.str8("section idstr")?;
        let instance = self.cur.be32("instance id")?;
        let version = self.cur.be32("version id")?;
        if name == "ram" {
            if version != 4 {
                return Err(Error::unsupported(format!(
                    "RAM section version {version} (only 4 is known)"
                ))
                .at(at));
            }
            if self.ram_section.is_some() && self.ram_section != Some(id) {
                return Err(Error::malformed(at, "second RAM section"));
            }
            self.ram_section = Some(id);
            self.note_section(Section {
                id,
                name,
                instance,
                version,
                offset: at,
                payload: self.cur.pos(),
                size: 0,
                skipped_by: "ram",
            })?;
            self.ram_records(true)?;
            // The RAM section tells us whether footers are on: its payload is
            // self-delimiting.
            self.p.footers = self.cur.peek_u8("section footer")? == SEC_FOOTER;
            return self.footer(id);
        }
        let start = self.cur.pos();
        let skipped_by = self.skip_device(id, &name, instance, ty)?;
        let size = self.cur.pos() - start;
        self.note_section(Section {
            id,
            name,
            instance,
            version,
            offset: at,
            payload: start,
            size,
            skipped_by,
        })?;
        self.footer(id)
    }

    fn section_part(&mut self, at: u64) -> Result<()> {
        let id = self.cur.be32("section id")?;
        if Some(id) == self.ram_section {
            self.ram_records(false)?;
            return self.footer(id);
        }
        let name = self
            .ids
            .get(&id)
            .and_then(|&i| self.p.sections.get(i))
            .map(|s| s.name.clone());
        match name {
            None => Err(Error::malformed(
                at,
                format!("PART/END of unknown section id {id}"),
            )),
            Some(n) if self.p.footers => {
                self.scan_footer(id)?;
                self.p.findings.push(
                    Finding::info(
                        crate::rule::DEVICE_SECTION,
                        format!("iterative section {n} skipped by footer scan"),
                    )
                    .at(at),
                );
                self.footer(id)
            }
            Some(n) => Err(Error::unsupported(format!(
                "iterative section {n} cannot be skipped without section footers"
            ))
            .at(at)),
        }
    }

    fn footer(&mut self, id: u32) -> Result<()> {
        if !self.p.footers {
            return Ok(());
        }
        let at = self.cur.pos();
        let b = self.cur.u8("section footer")?;
        let fid = self.cur.be32("section footer id")?;
        if b != SEC_FOOTER || fid != id {
            return Err(Error::malformed(
                at,
                format!("section footer mismatch: found {b:#04x} id {fid}, expected 0x7e id {id}"),
            ));
        }
        Ok(())
    }

    fn skip_device(&mut self, id: u32, name: &str, instance: u32, _ty: u8) -> Result<&'static str> {
        let desc = self
            .p
            .vmdesc
            .as_ref()
            .and_then(|d| d.device(name, u64::from(instance)))
            .cloned();
        if let Some(desc) = desc {
            let at = self.cur.pos();
            let want_fields = name == "cpu" || name.ends_with("/I440FX") || name.ends_with("/mch");
            let mut fields = Vec::new();
            walk(&mut self.cur, &desc, want_fields.then_some(&mut fields))
                .map_err(|e| e.during("skipping a device section by its vmdesc"))?;
            // The walk must land on the footer; otherwise the vmdesc disagrees.
            if self.p.footers && self.cur.peek_u8("section footer")? != SEC_FOOTER {
                return Err(Error::malformed(
                    self.cur.pos(),
                    format!(
                        "device section {name} (from {at:#x}) does not end where its vmdesc says"
                    ),
                ));
            }
            if name == "cpu" {
                if self.p.cpu_fields.len() < MAX_CPUS {
                    self.p.cpu_fields.insert(instance, fields);
                }
            } else if want_fields {
                self.p.host_bridge = Some((name.to_string(), fields));
            }
            return Ok("vmdesc");
        }
        if !self.p.footers {
            return Err(Error::unsupported(format!(
                "device section {name} has no vmdesc description and the stream has no section footers"
            ))
            .at(self.cur.pos()));
        }
        self.scan_footer(id)?;
        Ok("footer-scan")
    }

    /// Finds the footer of section `id` from the cursor: `0x7e be32(id)` followed by
    /// something that validates as the next record; leaves the cursor on the footer.
    fn scan_footer(&mut self, id: u32) -> Result<()> {
        let start = self.cur.pos();
        let len = self.lower.len();
        let limit = start.saturating_add(MAX_FOOTER_SCAN).min(len);
        let pat = {
            let mut p = [SEC_FOOTER, 0, 0, 0, 0];
            p[1..].copy_from_slice(&id.to_be_bytes());
            p
        };
        let mut chunk = vec![0u8; 64 * 1024];
        let mut pos = start;
        while pos < limit {
            let n = ((limit - pos).min(chunk.len() as u64 + 4)) as usize;
            let n = n.min(chunk.len());
            let buf = chunk.get_mut(..n).unwrap_or_default();
            self.lower.read_at(pos, buf)?;
            for (i, w) in buf.windows(5).enumerate() {
                if w == pat {
                    let cand = pos + i as u64;
                    if self.plausible_next(cand + 5)? {
                        self.cur.seek(cand)?;
                        return Ok(());
                    }
                }
            }
            pos += (n as u64).saturating_sub(4).max(1);
        }
        Err(Error::malformed(
            start,
            format!("no valid footer for section id {id} found (device section without vmdesc)"),
        ))
    }

    fn plausible_next(&self, at: u64) -> Result<bool> {
        let len = self.lower.len();
        if at >= len {
            return Ok(false);
        }
        let n = (len - at).min(300) as usize;
        let mut b = vec![0u8; n];
        self.lower.read_at(at, &mut b)?;
        let be32 = |o: usize| {
            b.get(o..o + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_be_bytes)
        };
        Ok(match b.first().copied() {
            Some(SEC_EOF) => n == 1 || b.get(1) == Some(&SEC_VMDESC),
            Some(SEC_START | SEC_FULL) => {
                let l = b.get(5).copied().unwrap_or(0) as usize;
                let name_ok = l > 0
                    && b.get(6..6 + l)
                        .is_some_and(|s| s.iter().all(|c| c.is_ascii_graphic()));
                let inst = be32(6 + l);
                let ver = be32(10 + l);
                name_ok && inst.is_some_and(|v| v < 1 << 16) && ver.is_some_and(|v| v < 1 << 16)
            }
            Some(SEC_PART | SEC_END) => be32(1).is_some_and(|i| self.ids.contains_key(&i)),
            Some(SEC_COMMAND) => be32(1).is_some_and(|v| (v >> 16) <= 16),
            _ => false,
        })
    }

    fn block_named(&mut self, at: u64) -> Result<usize> {
        let name = self.cur.str8("RAM block name")?;
        match self.block_by_name.get(&name) {
            Some(&i) => Ok(i),
            None => Err(Error::malformed(
                at,
                format!("RAM record names unknown block {name:?}"),
            )),
        }
    }

    fn ram_records(&mut self, start: bool) -> Result<()> {
        let ps = self.p.page_size;
        loop {
            let at = self.cur.pos();
            let v = self.cur.be64("RAM record")?;
            let flags = v & (ps - 1);
            let addr = v & !(ps - 1);
            if flags & !RAM_FLAG_MASK != 0 {
                return Err(Error::malformed(
                    at,
                    format!("RAM record flags {flags:#x} are not valid"),
                ));
            }
            let kind = flags & !RAM_CONTINUE;
            match kind {
                RAM_MEM_SIZE => {
                    if !start || !self.p.blocks.is_empty() {
                        return Err(Error::malformed(
                            at,
                            "MEM_SIZE record outside the RAM section start",
                        ));
                    }
                    self.mem_size(at, addr)?;
                }
                RAM_ZERO | RAM_PAGE => {
                    let block = if flags & RAM_CONTINUE != 0 {
                        self.last_block.ok_or_else(|| {
                            Error::malformed(at, "CONTINUE record with no previous block")
                        })?
                    } else {
                        self.block_named(at)?
                    };
                    self.last_block = Some(block);
                    let size = self.p.blocks.get(block).map_or(0, |b| b.size);
                    if addr >= size {
                        return Err(Error::malformed(
                            at,
                            format!("page offset {addr:#x} is past the end of its block ({size:#x} bytes)"),
                        ));
                    }
                    let key = ((block as u64) << PAGE_BITS) | (addr / ps);
                    let val = if kind == RAM_ZERO {
                        self.p.stats.zero += 1;
                        FILL_BIT | u64::from(self.cur.u8("fill byte")?)
                    } else {
                        self.p.stats.pages += 1;
                        let off = self.cur.pos();
                        self.cur.skip(ps, "page data")?;
                        off
                    };
                    push_record(&mut self.p.records, key, val, ps);
                }
                RAM_EOS => {
                    self.p.stats.eos += 1;
                    return Ok(());
                }
                RAM_MULTIFD_FLUSH => self.p.stats.multifd_flush += 1,
                RAM_XBZRLE | RAM_COMPRESS_PAGE | RAM_HOOK | RAM_FULL => {
                    return Err(Error::unsupported(format!(
                        "RAM record with flag {} ({kind:#x}) at offset {at:#x} is not supported",
                        ram_flag_name(kind)
                    ))
                    .at(at));
                }
                _ => {
                    return Err(Error::malformed(
                        at,
                        format!("RAM record with flags {flags:#x} (none or several page kinds)"),
                    ))
                }
            }
        }
    }

    fn mem_size(&mut self, at: u64, total: u64) -> Result<()> {
        if total > MAX_GUEST_RAM {
            return Err(Error::limit("total guest RAM", total, MAX_GUEST_RAM).at(at));
        }
        let ignore_shared = self.p.capabilities.iter().any(|c| c == "x-ignore-shared");
        let mapped = self.p.is_mapped_ram();
        let mut sum = 0u64;
        while sum < total {
            let bat = self.cur.pos();
            if self.p.blocks.len() as u64 >= MAX_ITEMS {
                return Err(Error::limit("RAM blocks", MAX_ITEMS + 1, MAX_ITEMS).at(bat));
            }
            let name = self.cur.str8("RAM block name")?;
            let size = self.cur.be64("RAM block length")?;
            sum = sum
                .checked_add(size)
                .filter(|&s| s <= total)
                .ok_or_else(|| {
                    Error::malformed(bat, format!("RAM block {name} of {size:#x} bytes exceeds the declared total {total:#x}"))
                })?;
            if size % self.p.page_size != 0 {
                return Err(Error::malformed(
                    bat,
                    format!("RAM block {name} size {size:#x} is not page aligned"),
                ));
            }
            let mr_addr = if ignore_shared {
                Some(self.cur.be64("block address")?)
            } else {
                None
            };
            let mapped = if mapped {
                Some(self.mapped_header(&name, size)?)
            } else {
                None
            };
            if self
                .block_by_name
                .insert(name.clone(), self.p.blocks.len())
                .is_some()
            {
                return Err(Error::malformed(
                    bat,
                    format!("RAM block {name} listed twice"),
                ));
            }
            self.p.blocks.push(Block {
                name,
                size,
                mr_addr,
                mapped,
            });
        }
        Ok(())
    }

    fn mapped_header(&mut self, name: &str, size: u64) -> Result<MappedRam> {
        let at = self.cur.pos();
        let version = self.cur.be32("mapped-ram version")?;
        let page_size = self.cur.be64("mapped-ram page size")?;
        let bitmap = self.cur.be64("mapped-ram bitmap offset")?;
        let pages = self.cur.be64("mapped-ram pages offset")?;
        if version != MAPPED_RAM_VERSION {
            return Err(Error::unsupported(format!(
                "mapped-ram header version {version} for block {name}"
            ))
            .at(at));
        }
        if page_size != self.p.page_size {
            return Err(Error::malformed(
                at,
                format!(
                    "mapped-ram page size {page_size} differs from the stream's {}",
                    self.p.page_size
                ),
            ));
        }
        // bitmap_offset is the position right after the header, in the coordinates of
        // the file QEMU wrote; a wrapper (libvirt) shifts them all by the same amount.
        let here = self.cur.pos();
        let delta = bitmap.checked_sub(here).ok_or_else(|| {
            Error::malformed(
                at,
                format!("mapped-ram bitmap offset {bitmap:#x} is before its header"),
            )
        })?;
        if self.p.blocks.iter().any(|b| b.mapped.is_some()) && delta != self.p.mapped_delta {
            return Err(Error::malformed(
                at,
                "mapped-ram offsets of blocks disagree",
            ));
        }
        self.p.mapped_delta = delta;
        let pages_offset = pages
            .checked_sub(delta)
            .ok_or_else(|| Error::malformed(at, "mapped-ram pages offset"))?;
        let bitmap_len = bitmap_bytes(size, page_size);
        if pages_offset < here.saturating_add(bitmap_len) {
            return Err(Error::malformed(
                at,
                format!("mapped-ram pages offset {pages:#x} overlaps the bitmap"),
            ));
        }
        let next = pages_offset
            .checked_add(size)
            .ok_or_else(|| Error::malformed(at, "mapped-ram block end overflows"))?;
        if next > self.cur.stream_len() {
            return Err(Error::truncated(
                at,
                format!("mapped-ram block {name} ends at {next:#x}, past the end of the stream"),
            ));
        }
        self.cur.seek(next)?;
        Ok(MappedRam {
            version,
            page_size,
            bitmap_offset: here,
            pages_offset,
        })
    }
}

/// Size of a mapped-ram dirty bitmap: BITS_TO_LONGS(pages) × 8.
pub fn bitmap_bytes(size: u64, page_size: u64) -> u64 {
    (size / page_size.max(1)).div_ceil(64) * 8
}

/// A JSON summary of sections for describe().
pub fn sections_json(p: &Parsed) -> Value {
    Value::Array(
        p.sections
            .iter()
            .map(|s| {
                json!({"id": s.id, "name": s.name, "instance": s.instance, "version": s.version,
                       "offset": s.offset, "payload": s.payload, "size": s.size, "skipped_by": s.skipped_by})
            })
            .collect(),
    )
}
