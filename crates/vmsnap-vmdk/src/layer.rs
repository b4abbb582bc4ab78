//! The VMDK disk: a concatenation of extents (the file itself for hosted sparse and COWD
//! files, or the extents a descriptor names), over an optional parent disk.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::policy::{has_parent_component, is_absolute_anywhere, is_protocol};
use vmsnap_core::{
    check_read, push_coalesced, AddressSpace, DiskFormat, Error, ErrorKind, Extent, ExtentKind,
    ExternalRef, Finding, Layer, LayerExt, OpenCtx, RefKind, Result, RunMap, UnavailableLayer,
};

use crate::descriptor::{Access, Descriptor, ExtentLine};
use crate::header::{Marker, SparseHeader};
use crate::raw::*;
use crate::sparse::{SparseExtent, SparsePiece};

/// What an extent reads from.
#[derive(Debug)]
enum Body {
    /// Plain bytes of `file` from `base`.
    Flat { file: Arc<dyn Layer>, base: u64 },
    /// Zeros.
    Zero,
    /// A sparse extent file.
    Sparse(Arc<SparseExtent>),
    /// A raw-device or unknown extent type, not read; reads fail.
    Missing { reason: String },
    /// An extent file that was not opened (refused by the policy, missing): the stand-in,
    /// piece-relative, whose reads fail unless the reader opted into zeros.
    Unavailable(Arc<UnavailableLayer>),
}

#[derive(Debug)]
struct Piece {
    start: u64,
    len: u64,
    body: Body,
    kind: String,
    name: String,
    access: &'static str,
}

/// Which container the disk came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Container {
    /// A hosted sparse (`KDMV`) file with its embedded descriptor.
    Sparse,
    /// A VMDK3 `COWD` file.
    Cowd,
    /// A text descriptor (standalone, or embedded in a capacity-0 KDMV file).
    Descriptor,
}

/// An open VMDK disk.
#[derive(Debug)]
pub struct Vmdk {
    lower: Arc<dyn Layer>,
    container: Container,
    create_type: String,
    header: Option<SparseHeader>,
    footer_used: bool,
    descriptor: Option<Descriptor>,
    pieces: Vec<Piece>,
    len: u64,
    parent: Option<Arc<dyn Layer>>,
    /// The stand-in for a parent that was not opened.
    unavailable_parent: Option<Arc<dyn Layer>>,
    refs: Vec<ExternalRef>,
    findings: Vec<Finding>,
}

/// createTypes QEMU opens as descriptor files.
const QEMU_DESCRIPTOR_TYPES: &[&str] = &[
    "monolithicFlat",
    "vmfs",
    "vmfsSparse",
    "seSparse",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
];
/// createTypes the default (oslo) policy allows.
const SAFE_CREATE_TYPES: &[&str] = &["monolithicSparse", "streamOptimized"];

fn descriptor_finding(msg: impl Into<String>) -> Finding {
    Finding::unsafe_(vmsnap_core::rule::DESCRIPTOR, msg)
}

/// Reads a KDMV header at 0 of `file` and, when its gdOffset is GD_AT_END, validates the
/// footer (V7) and returns the footer's header instead, as QEMU does.
fn sparse_header(file: &dyn Layer, findings: &mut Vec<Finding>) -> Result<(SparseHeader, bool)> {
    let head = file.read_array::<512>(0)?;
    let h = SparseHeader::parse(&head, 0)?;
    if h.gd_offset != GD_AT_END {
        return Ok((h, false));
    }
    let len = file.len();
    let at = len
        .checked_sub(1536)
        .filter(|&a| a >= 512)
        .ok_or_else(|| Error::truncated(len, "GD_AT_END image too short for a footer"))?;
    let t = file.read_array::<1536>(at)?;
    let (fm, rest) = t.split_at(512);
    let (fh, eos) = rest.split_at(512);
    let fm = Marker::parse(fm, at)?;
    let eos = Marker::parse(eos, at + 1024)?;
    let footer = if fh.get(..4) == Some(KDMV_MAGIC.as_slice()) {
        Some(SparseHeader::parse(fh, at + 512)?)
    } else {
        None
    };
    let qemu_ok = footer.is_some()
        && fm.size == 0
        && fm.kind == MARKER_FOOTER
        && eos.val == 0
        && eos.size == 0
        && eos.kind == MARKER_EOS;
    let Some(f) = footer.filter(|_| qemu_ok) else {
        findings.push(Finding::unsafe_(crate::rule::FOOTER, "V7: invalid GD_AT_END footer").at(at));
        return Err(Error::malformed(
            at,
            "invalid footer: GD_AT_END needs a footer marker, a KDMV footer and an EOS marker",
        ));
    };
    let mut bad = Vec::new();
    if f.version != h.version {
        bad.push("version differs from the header");
    }
    if f.desc_offset != h.desc_offset || f.desc_size != h.desc_size {
        bad.push("descriptor offset/size differ from the header");
    }
    if !fm.zero_pad {
        bad.push("footer marker padding is not zero");
    }
    if !eos.zero_pad {
        bad.push("end-of-stream marker padding is not zero");
    }
    if f.gd_offset == GD_AT_END {
        bad.push("footer gdOffset is GD_AT_END too");
    }
    for b in bad {
        findings.push(Finding::unsafe_(crate::rule::FOOTER, format!("V7: {b}")).at(at + 512));
    }
    Ok((f, true))
}

/// Opens one extent file (already resolved) as a sparse extent by its magic.
fn open_sparse_file(file: Arc<dyn Layer>, findings: &mut Vec<Finding>) -> Result<SparseExtent> {
    let magic = file.read_array::<8>(0)?;
    if magic.get(..4) == Some(KDMV_MAGIC.as_slice()) {
        let (h, _) = sparse_header(file.as_ref(), findings)?;
        SparseExtent::kdmv(file, &h)
    } else if magic.get(..4) == Some(COWD_MAGIC.as_slice()) {
        SparseExtent::cowd(file)
    } else if u64::from_le_bytes(magic) == SESPARSE_MAGIC {
        SparseExtent::sesparse(file)
    } else {
        Err(Error::malformed(
            0,
            "sparse extent has no KDMV, COWD or seSparse magic",
        ))
    }
}

impl Vmdk {
    /// Opens a VMDK (KDMV, COWD or text descriptor) on `lower`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_inner(lower, ctx).map_err(|e| e.in_layer("vmdk"))
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let n = lower.len().min(8);
        let magic = lower.read_vec(0, n, 8, "VMDK magic")?;
        let mut v = Vmdk {
            lower: lower.clone(),
            container: Container::Sparse,
            create_type: String::new(),
            header: None,
            footer_used: false,
            descriptor: None,
            pieces: Vec::new(),
            len: 0,
            parent: None,
            unavailable_parent: None,
            refs: Vec::new(),
            findings: Vec::new(),
        };
        if magic.get(..4) == Some(KDMV_MAGIC.as_slice()) {
            v.open_kdmv(ctx)?;
        } else if magic.get(..4) == Some(COWD_MAGIC.as_slice()) {
            v.container = Container::Cowd;
            v.create_type = "vmfsSparse".into();
            let s = SparseExtent::cowd(lower.clone())?;
            v.push_piece(
                s.capacity(),
                Body::Sparse(Arc::new(s)),
                "VMFSSPARSE",
                "",
                "RW",
            )?;
            v.findings
                .push(descriptor_finding("V2: no descriptor found (COWD file)"));
        } else if magic.get(..8) == Some(SESPARSE_MAGIC.to_le_bytes().as_slice()) {
            v.create_type = "seSparse".into();
            let s = SparseExtent::sesparse(lower.clone())?;
            v.push_piece(
                s.capacity(),
                Body::Sparse(Arc::new(s)),
                "SESPARSE",
                "",
                "RW",
            )?;
            v.findings.push(descriptor_finding(
                "V2: no descriptor found (a seSparse extent on its own)",
            ));
        } else {
            v.container = Container::Descriptor;
            let text = lower
                .read_vec(0, lower.len(), MAX_DESCRIPTOR_BYTES, "VMDK descriptor file")
                .map_err(|e| e.during("reading the descriptor file"))?;
            let d = Descriptor::parse(&text)?;
            v.open_descriptor(d, ctx)?;
        }
        v.open_parent(ctx)?;
        Ok(v)
    }

    fn push_piece(
        &mut self,
        len: u64,
        body: Body,
        kind: &str,
        name: &str,
        access: &'static str,
    ) -> Result<()> {
        let start = self.len;
        self.len = start
            .checked_add(len)
            .filter(|&e| e <= vmsnap_core::limits::MAX_VIRTUAL_SIZE)
            .ok_or_else(|| {
                Error::limit(
                    "VMDK virtual size",
                    u64::MAX,
                    vmsnap_core::limits::MAX_VIRTUAL_SIZE,
                )
            })?;
        self.pieces.push(Piece {
            start,
            len,
            body,
            kind: kind.to_string(),
            name: name.to_string(),
            access,
        });
        Ok(())
    }

    fn open_kdmv(&mut self, ctx: &OpenCtx<'_>) -> Result<()> {
        let mut fs = Vec::new();
        let (h, footer) = sparse_header(self.lower.as_ref(), &mut fs)?;
        self.findings.append(&mut fs);
        self.header = Some(h);
        self.footer_used = footer;
        if !(1..=3).contains(&h.version) || h.desc_offset != 1 {
            self.findings.push(
                descriptor_finding(format!(
                    "V1: sparse header version {} / descriptor at sector {} (expected 1..3 at sector 1)",
                    h.version, h.desc_offset
                ))
                .at(4),
            );
        }
        let desc = if h.desc_offset != 0 && h.desc_size != 0 {
            let off = h.desc_offset.checked_mul(SECTOR);
            let size = h.desc_size.saturating_mul(SECTOR);
            let off = off.ok_or_else(|| Error::malformed(28, "descriptor offset overflows"))?;
            let size = size.min(self.lower.len().saturating_sub(off));
            let text = self
                .lower
                .read_vec(off, size, MAX_DESCRIPTOR_BYTES, "VMDK embedded descriptor")
                .map_err(|e| e.during("reading the embedded descriptor"))?;
            Some(Descriptor::parse(&text)?)
        } else {
            self.findings
                .push(descriptor_finding("V2: no descriptor found"));
            None
        };
        if h.capacity == 0 {
            if let Some(d) = desc {
                self.findings.push(descriptor_finding(
                    "KDMV capacity 0 with an embedded descriptor: opened as a descriptor file (its extents are external references)",
                ));
                self.container = Container::Descriptor;
                return self.open_descriptor(d, ctx);
            }
        }
        if h.version == 3 && !h.compressed() {
            self.findings.push(Finding::info(
                crate::rule::UNKNOWN_FEATURES,
                "version 3 (CBT) uncompressed sparse extent: QEMU opens it read-only",
            ));
        }
        if h.unclean != 0 {
            self.findings.push(
                Finding::warning(
                    crate::rule::UNCLEAN_SHUTDOWN,
                    "the uncleanShutdown byte is set",
                )
                .at(72),
            );
        }
        if h.flags & FLAG_NL_TEST != 0 && h.check_bytes != *b"\n \r\n" {
            self.findings.push(
                Finding::warning(
                    crate::rule::NEWLINE_CHECK,
                    "newline check bytes are damaged (text-mode transfer?)",
                )
                .at(73),
            );
        }
        if h.flags & FLAG_RGD != 0 {
            self.findings.push(Finding::info(
                crate::rule::REDUNDANT_GD,
                format!(
                    "redundant grain directory at sector {} (primary at {})",
                    h.rgd_offset, h.gd_offset
                ),
            ));
        }
        let default = if h.compressed() {
            "streamOptimized"
        } else {
            "monolithicSparse"
        };
        self.create_type = desc
            .as_ref()
            .and_then(|d| d.create_type())
            .unwrap_or(default)
            .to_string();
        if let Some(d) = &desc {
            self.check_descriptor(d);
            if let Some(ct) = d.create_type() {
                if !ct.eq_ignore_ascii_case(default) {
                    self.findings.push(Finding::warning(
                        vmsnap_core::rule::DESCRIPTOR,
                        format!("embedded createType {ct:?}; a KDMV file is read as {default}"),
                    ));
                }
            }
        }
        self.descriptor = desc;
        let s = SparseExtent::kdmv(self.lower.clone(), &h)?;
        let cap = s.capacity();
        self.push_piece(cap, Body::Sparse(Arc::new(s)), "SPARSE", "", "RW")
    }

    /// The descriptor checks every container shares: oslo V2–V6 and the createType
    /// allow-list.
    fn check_descriptor(&mut self, d: &Descriptor) {
        self.findings.extend(d.findings.iter().cloned());
        match d.create_type() {
            None => self.findings.push(descriptor_finding("V3: no createType")),
            Some(ct) if !SAFE_CREATE_TYPES.iter().any(|s| s.eq_ignore_ascii_case(ct)) => {
                self.findings.push(descriptor_finding(format!(
                    "V3: unsupported subformat {ct:?}"
                )))
            }
            Some(_) => {}
        }
    }

    fn open_descriptor(&mut self, d: Descriptor, ctx: &OpenCtx<'_>) -> Result<()> {
        self.check_descriptor(&d);
        self.create_type = d.create_type().unwrap_or("").to_string();
        if self.container == Container::Descriptor
            && self.header.is_none()
            && !QEMU_DESCRIPTOR_TYPES
                .iter()
                .chain(["custom"].iter())
                .any(|s| s.eq_ignore_ascii_case(&self.create_type))
        {
            self.findings.push(Finding::warning(
                vmsnap_core::rule::DESCRIPTOR,
                format!(
                    "createType {:?} is not one QEMU opens as a descriptor file",
                    self.create_type
                ),
            ));
        }
        for e in &d.extents {
            self.open_extent(e, ctx)?;
        }
        self.descriptor = Some(d);
        Ok(())
    }

    fn open_extent(&mut self, e: &ExtentLine, ctx: &OpenCtx<'_>) -> Result<()> {
        let len = e.sectors.checked_mul(SECTOR).ok_or_else(|| {
            Error::limit("VMDK extent size (sectors)", e.sectors, u64::MAX / SECTOR)
        })?;
        let access = match e.access {
            Access::Rw => "RW",
            Access::RdOnly => "RDONLY",
            Access::NoAccess => "NOACCESS",
        };
        if e.access != Access::Rw {
            self.findings.push(Finding::warning(
                crate::rule::EXTENT_TYPE,
                format!(
                    "line {}: {access} extent; QEMU skips non-RW extents, so its size differs",
                    e.line
                ),
            ));
        }
        let kind = e.kind.as_str();
        let uses_file = matches!(kind, "FLAT" | "VMFS" | "SPARSE" | "VMFSSPARSE" | "SESPARSE");
        if kind == "ZERO" {
            self.findings.push(Finding::warning(
                crate::rule::EXTENT_TYPE,
                format!(
                    "line {}: ZERO extent; QEMU skips it, so its size differs",
                    e.line
                ),
            ));
            return self.push_piece(len, Body::Zero, kind, &e.name, access);
        }
        if !uses_file {
            self.findings.push(Finding::unsafe_(
                crate::rule::EXTENT_TYPE,
                format!(
                    "line {}: {kind} extent (raw device or unknown) is not read",
                    e.line
                ),
            ));
            let body = Body::Missing {
                reason: format!("{kind} extents are not read"),
            };
            return self.push_piece(len, body, kind, &e.name, access);
        }
        if e.access == Access::NoAccess {
            return self.push_piece(len, Body::Zero, kind, &e.name, access);
        }
        if e.name.is_empty() {
            return Err(Error::malformed(
                0,
                format!("line {}: extent without a file name", e.line),
            ));
        }
        if is_absolute_anywhere(&e.name) || has_parent_component(&e.name) || is_protocol(&e.name) {
            self.findings.push(Finding::unsafe_(
                crate::rule::EXTENT_PATH,
                format!(
                    "line {}: extent {:?} is absolute, has `..` or a protocol prefix",
                    e.line, e.name
                ),
            ));
        }
        match (kind, e.offset) {
            ("FLAT", None) => {
                return Err(Error::malformed(
                    0,
                    format!("line {}: FLAT extent without an offset", e.line),
                ))
            }
            ("VMFS", Some(_)) => {
                return Err(Error::malformed(
                    0,
                    format!("line {}: VMFS extent with an offset", e.line),
                ))
            }
            _ => {}
        }
        let extent = ctx.follow_file(RefKind::Extent, self.lower.path(), &e.name);
        let file: Arc<dyn Layer> = match &extent.layer {
            Some(file) => file.clone(),
            None => {
                let body = Body::Unavailable(extent.stand_in(ctx, "vmdk", self.lower.path(), len));
                self.refs.push(extent.reference);
                return self.push_piece(len, body, kind, &e.name, access);
            }
        };
        self.refs.push(extent.reference);
        let body = match kind {
            "FLAT" | "VMFS" => {
                let base = e.offset.unwrap_or(0).checked_mul(SECTOR).ok_or_else(|| {
                    Error::malformed(0, format!("line {}: extent offset overflows", e.line))
                })?;
                Body::Flat { file, base }
            }
            _ => {
                let mut fs = Vec::new();
                let s = open_sparse_file(file, &mut fs)
                    .map_err(|err| err.during("opening a sparse extent"))?;
                self.findings.append(&mut fs);
                if s.capacity() != len {
                    self.findings.push(Finding::warning(
                        crate::rule::EXTENT_SIZE,
                        format!(
                            "line {}: extent header capacity {} differs from the descriptor's {len}",
                            e.line,
                            s.capacity()
                        ),
                    ));
                }
                Body::Sparse(Arc::new(s))
            }
        };
        self.push_piece(len, body, kind, &e.name, access)
    }

    fn open_parent(&mut self, ctx: &OpenCtx<'_>) -> Result<()> {
        let Some(d) = &self.descriptor else {
            return Ok(());
        };
        let pcid = d.parent_cid();
        let hint = d.parent_hint().map(str::to_string);
        let has_pcid = pcid.is_some_and(|c| c != 0xFFFF_FFFF);
        let Some(hint) = hint else {
            if has_pcid {
                self.findings.push(Finding::unsafe_(
                    vmsnap_core::rule::PARENT,
                    format!(
                        "parentCID {:08x} names a parent but there is no parentFileNameHint",
                        pcid.unwrap_or(0)
                    ),
                ));
            }
            return Ok(());
        };
        if !has_pcid {
            self.findings.push(Finding::warning(
                vmsnap_core::rule::PARENT,
                "parentFileNameHint is set but parentCID is ffffffff (QEMU still opens the hint)",
            ));
        }
        if is_absolute_anywhere(&hint) || has_parent_component(&hint) || is_protocol(&hint) {
            self.findings.push(Finding::unsafe_(
                vmsnap_core::rule::PARENT,
                format!("parentFileNameHint {hint:?} is absolute, has `..` or a protocol prefix"),
            ));
        }
        let followed = ctx
            .follow_disk(
                RefKind::Parent,
                self.lower.path(),
                &hint,
                DiskFormat::Plugin(&crate::PLUGIN),
                |_| Ok(()),
            )
            .deny_too_deep()?;
        let Some(parent) = followed.layer.clone() else {
            // Refused, missing or unreadable: grains the parent supplies are unavailable.
            self.unavailable_parent =
                Some(followed.stand_in(ctx, "vmdk", self.lower.path(), self.len));
            self.refs.push(followed.reference);
            return Ok(());
        };
        self.refs.push(followed.reference);
        let got = parent
            .describe()
            .get("cid")
            .and_then(serde_json::Value::as_u64);
        if let (Some(want), Some(got)) = (pcid, got) {
            if u64::from(want) != got {
                self.findings.push(Finding::unsafe_(
                    crate::rule::PARENT_CID,
                    format!("parentCID {want:08x} does not match the parent's CID {got:08x}"),
                ));
            }
        }
        self.parent = Some(parent);
        Ok(())
    }

    /// The container kind.
    pub fn container(&self) -> Container {
        self.container
    }

    /// The createType (for KDMV files the embedded one, or the implied subformat).
    pub fn create_type(&self) -> &str {
        &self.create_type
    }

    /// The descriptor, when there is one.
    pub fn descriptor(&self) -> Option<&Descriptor> {
        self.descriptor.as_ref()
    }

    /// The parent disk, when it was opened.
    pub fn parent(&self) -> Option<&Arc<dyn Layer>> {
        self.parent.as_ref()
    }

    /// The sparse extent `s` starting at `start`, with the parent its unallocated grains
    /// read from.
    fn sparse_piece<'a>(&'a self, start: u64, s: &'a SparseExtent) -> SparsePiece<'a> {
        SparsePiece {
            extent: s,
            parent: self
                .parent
                .as_deref()
                .or(self.unavailable_parent.as_deref()),
            start,
        }
    }

    fn piece_at(&self, pos: u64) -> Result<&Piece> {
        let i = self.pieces.partition_point(|p| p.start + p.len <= pos);
        self.pieces
            .get(i)
            .ok_or_else(|| Error::out_of_bounds(pos, 1, self.len).in_layer("vmdk"))
    }
}

impl Layer for Vmdk {
    fn name(&self) -> &str {
        "vmdk"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let p = self.piece_at(pos)?;
            let rel = pos - p.start;
            let n = usize::try_from(p.len - rel)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let Some(chunk) = buf.get_mut(done..done + n) else {
                break;
            };
            let r = match &p.body {
                Body::Flat { file, base } => file.read_padded(base.saturating_add(rel), chunk),
                Body::Zero => {
                    chunk.fill(0);
                    Ok(())
                }
                Body::Sparse(s) => self.sparse_piece(p.start, s).read_runs(rel, chunk),
                Body::Unavailable(u) => u.read_at(rel, chunk),
                Body::Missing { reason } => Err(Error::new(
                    ErrorKind::PolicyDenied,
                    format!("extent {:?} was not opened: {reason}", p.name),
                )),
            };
            r.map_err(|e| e.in_layer("vmdk").at(pos))?;
            done += n;
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        let mut out = Vec::new();
        let mut pos = range.start;
        let mut last_piece = usize::MAX;
        while pos < end {
            let p = self.piece_at(pos)?;
            let idx = self.pieces.partition_point(|q| q.start + q.len <= pos);
            let rel = pos - p.start;
            let n = (p.len - rel).min(end - pos);
            let mut pieces = Vec::new();
            match &p.body {
                Body::Flat { base, .. } => {
                    pieces.push(Extent::data(pos, n, Some(base.saturating_add(rel))))
                }
                Body::Zero => pieces.push(Extent::of(ExtentKind::Zero, pos, n)),
                Body::Missing { .. } => pieces.push(Extent::of(ExtentKind::Unallocated, pos, n)),
                Body::Unavailable(_) => pieces.push(Extent::of(ExtentKind::Unavailable, pos, n)),
                Body::Sparse(s) => {
                    // Unallocated grains list what the parent has there (unavailable when
                    // it was not opened), as `read_at` reads it.
                    pieces = self.sparse_piece(p.start, s).run_extents(rel..rel + n)?;
                    for e in &mut pieces {
                        e.offset += p.start;
                    }
                }
            }
            for (i, e) in pieces.into_iter().enumerate() {
                // Lower offsets of different extent files must not run together.
                if i == 0 && idx != last_piece && e.lower_offset.is_some() {
                    out.push(e);
                } else {
                    push_coalesced(&mut out, e);
                }
            }
            last_piece = idx;
            pos += n;
        }
        Ok(out)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        for p in &self.pieces {
            let f = match &p.body {
                Body::Flat { file, .. } => Some(file.clone()),
                Body::Sparse(s) => Some(s.file().clone()),
                _ => None,
            };
            if let Some(f) = f {
                if !v.iter().any(|x| Arc::ptr_eq(x, &f)) {
                    v.push(f);
                }
            }
        }
        if let Some(p) = &self.parent {
            v.push(p.clone());
        }
        v
    }
    fn describe(&self) -> serde_json::Value {
        let d = self.descriptor.as_ref();
        let single = match self.pieces.as_slice() {
            [Piece {
                body: Body::Sparse(s),
                ..
            }] => Some(s.clone()),
            _ => None,
        };
        json!({
            "format": "vmdk",
            "virtual_size": self.len,
            "container": format!("{:?}", self.container).to_ascii_lowercase(),
            "create_type": self.create_type,
            "cluster_size": single.as_ref().map(|s| s.grain()),
            "compressed": self.header.is_some_and(|h| h.compressed()),
            "cid": d.and_then(Descriptor::cid),
            "parent_cid": d.and_then(Descriptor::parent_cid),
            "parent_hint": d.and_then(Descriptor::parent_hint),
            "parent_opened": self.parent.is_some(),
            "adapter_type": d.and_then(|d| d.ddb.get("ddb.adapterType")),
            "hw_version": d.and_then(|d| d.ddb.get("ddb.virtualHWVersion")),
            "footer_used": self.footer_used,
            "header": self.header.map(|h| h.to_json()),
            "extents": self.pieces.iter().map(|p| json!({
                "start": p.start,
                "length": p.len,
                "type": p.kind,
                "access": p.access,
                "file": p.name,
                "opened": !matches!(p.body, Body::Missing { .. } | Body::Unavailable(_)),
                "sparse": match &p.body { Body::Sparse(s) => Some(s.describe()), _ => None },
            })).collect::<Vec<_>>(),
            "notes": "extents(): lower_offset is an offset in the extent's own file; unallocated grains read from the parent when it was opened, zeros otherwise; extents that were not opened fail to read",
        })
    }
    fn meta(&self) -> serde_json::Value {
        let mut v = self.describe();
        if let (Some(o), Some(d)) = (v.as_object_mut(), &self.descriptor) {
            o.insert("descriptor".into(), d.to_json());
        }
        v
    }
    fn findings(&self) -> Vec<Finding> {
        let mut f = self.findings.clone();
        f.extend(self.refs.iter().map(ExternalRef::finding));
        if let Some(p) = &self.parent {
            f.extend(p.findings());
        }
        f.truncate(vmsnap_core::limits::MAX_FINDINGS);
        f
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        let mut r = self.refs.clone();
        if let Some(p) = &self.parent {
            r.extend(p.external_refs());
        }
        r
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
