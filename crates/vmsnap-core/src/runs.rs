//! Block-mapped disks (qcow2, qcow, VMDK sparse extents, VDI, Parallels, QED, VHD, VHDX):
//! the guest disk is runs of bytes that are stored in the image file, recorded as zeros,
//! not stored here (read from the backing or parent disk, or as zeros without one), or
//! stored in a form only the format decodes (a compressed cluster or grain). A format says
//! what the run at an offset is ([`RunMap::run`]) and decodes what it encoded
//! ([`RunMap::read_encoded`]); reading a range and listing its extents run by run is done
//! here once. A format that implements [`RunLayer`] is a [`Layer`] through the one
//! forwarding impl below.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result, ResultExt};
use crate::extent::{push_coalesced, Extent, ExtentKind};
use crate::finding::Finding;
use crate::layer::{check_read, read_within, AddressSpace, Layer, LayerExt, NamedLayer};
use crate::policy::ExternalRef;

/// How a run of a block-mapped disk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunKind {
    /// Stored in the image file from this offset. What lies past the end of the file reads
    /// as zeros, as QEMU reads a cut-short last block.
    Data(u64),
    /// Recorded as zeros.
    Zero,
    /// Not stored here: the backing disk's bytes (zeros past its end), or zeros without one.
    Unallocated,
    /// Stored in a form only the format reads (a compressed cluster or grain, an encrypted
    /// cluster): [`RunMap::read_encoded`] fills it. The key names the stored unit to the
    /// format (an L2 entry, a file offset). Such a run is never continued by another: it
    /// ends with its unit.
    Encoded(u64),
}

impl RunKind {
    /// Whether a block of kind `next`, met `len` bytes after the start of a run of this
    /// kind, continues the run: the same kind, and for data the next bytes of the file.
    #[inline]
    pub fn continued_by(self, len: u64, next: RunKind) -> bool {
        match (self, next) {
            (RunKind::Data(a), RunKind::Data(b)) => a.checked_add(len) == Some(b),
            (RunKind::Encoded(_), _) => false,
            (a, b) => a == b,
        }
    }
}

/// `len` bytes of a disk stored one way (and contiguous in the file, for data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// How the bytes are stored.
    pub kind: RunKind,
    /// Length in bytes.
    pub len: u64,
}

/// The run from byte `within` of block `index` of a disk of `block_size`-byte blocks, at
/// most `max` bytes long: the blocks from there on while they continue it (see
/// [`RunKind::continued_by`]), so that contiguous data is one read of the file.
/// `kind_of(i)` says how block `i` is stored (for data, where its first byte is).
#[inline(always)]
pub fn block_run(
    block_size: u64,
    mut index: u64,
    within: u64,
    max: u64,
    mut kind_of: impl FnMut(u64) -> Result<RunKind>,
) -> Result<Run> {
    let kind = match kind_of(index)? {
        RunKind::Data(at) => RunKind::Data(at.saturating_add(within)),
        other => other,
    };
    let mut len = block_size.saturating_sub(within).min(max);
    while len < max {
        index += 1;
        if !kind.continued_by(len, kind_of(index)?) {
            break;
        }
        len = len.saturating_add(block_size).min(max);
    }
    Ok(Run { kind, len })
}

/// What the extents of [`RunKind::Data`] runs say about the file they are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataExtents {
    /// The file is the layer below this one: data extents carry their offset in it.
    Mapped,
    /// The file is not the layer below (an in-memory overlay, an external data file):
    /// data extents carry no lower offset.
    Unmapped,
    /// The file is the stand-in for one that was not opened
    /// ([`crate::UnavailableLayer`]): data runs are unavailable.
    Unavailable,
}

/// Where the runs of a block-mapped disk read from.
#[derive(Debug, Clone, Copy)]
pub struct RunSources<'a> {
    /// The image file, which [`RunKind::Data`] offsets point into.
    pub file: &'a dyn Layer,
    /// Its length (what lies past it reads as zeros).
    pub file_len: u64,
    /// The backing or parent disk under [`RunKind::Unallocated`] runs, when there is one:
    /// the opened disk, or the [`crate::UnavailableLayer`] standing in for one that was not
    /// opened (whose reads fail and whose extents are unavailable).
    pub backing: Option<&'a dyn Layer>,
    /// The offset in the backing disk of this address space's first byte: 0, but for a
    /// view into a larger disk (a qcow2 VM state, one extent of a VMDK).
    pub backing_base: u64,
    /// What data extents say about the file.
    pub data: DataExtents,
}

/// One [`RunKind::Encoded`] run of a read, for the format to fill.
#[derive(Debug)]
pub struct EncodedRead<'a> {
    /// The run's key.
    pub key: u64,
    /// Where the run starts (an offset in the address space of [`RunMap::run`]).
    pub pos: u64,
    /// Its bytes: all of the run, or the part of it the read covers.
    pub buf: &'a mut [u8],
}

/// An address space made of runs (see the module docs): [`RunMap::read_runs`] and
/// [`RunMap::run_extents`] read and list it. Offsets are not checked against any length
/// here; [`RunLayer`]s get that from the [`Layer`] impl.
pub trait RunMap {
    /// State kept between the runs of one read or listing (a cached piece of a table or
    /// bitmap); `()` for none.
    type Cursor: Default;

    /// The run at `pos`, 1 to `max` bytes long.
    fn run(&self, pos: u64, max: u64, cursor: &mut Self::Cursor) -> Result<Run>;

    /// Where the runs read from.
    fn sources(&self) -> RunSources<'_>;

    /// The cursor a listing of extents starts with (a reading cursor by default).
    fn listing_cursor(&self) -> Self::Cursor {
        Self::Cursor::default()
    }

    /// Fills the [`RunKind::Encoded`] runs of one read, after its other runs (so that a
    /// format may decode them together, on several threads). A format that makes no such
    /// runs keeps the default, which fails.
    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        match reads.first() {
            None => Ok(()),
            Some(r) => Err(Error::malformed(
                r.pos,
                "internal: an encoded run in a disk that stores none",
            )),
        }
    }

    /// Fills `buf` from `offset` run by run.
    #[inline]
    fn read_runs(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = self.sources();
        let mut cursor = Self::Cursor::default();
        let mut encoded = Vec::new();
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let want = rest.len() as u64;
            let run = self.run(pos, want, &mut cursor)?;
            let n = run_len(run, want, pos)?;
            let (now, later) = std::mem::take(&mut rest).split_at_mut(n as usize);
            match run.kind {
                RunKind::Data(at) => {
                    read_within(src.file, src.file_len, at, now).during("reading stored data")?
                }
                RunKind::Zero => now.fill(0),
                RunKind::Unallocated => {
                    read_backing(src.backing, src.backing_base.saturating_add(pos), now)
                        .during("reading the backing disk")?
                }
                RunKind::Encoded(key) => encoded.push(EncodedRead { key, pos, buf: now }),
            }
            rest = later;
            pos += n;
        }
        if encoded.is_empty() {
            return Ok(());
        }
        self.read_encoded(&mut encoded)
    }

    /// The extents of `range` run by run, with the backing disk's extents under
    /// unallocated runs.
    fn run_extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let src = self.sources();
        let mut cursor = self.listing_cursor();
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < range.end {
            let run = self.run(pos, range.end - pos, &mut cursor)?;
            let n = run_len(run, range.end - pos, pos)?;
            match run.kind {
                RunKind::Data(_) if src.data == DataExtents::Unavailable => {
                    push_coalesced(&mut out, Extent::of(ExtentKind::Unavailable, pos, n))
                }
                RunKind::Data(at) => {
                    let have = src.file_len.saturating_sub(at).min(n);
                    let lower = (src.data == DataExtents::Mapped).then_some(at);
                    push_coalesced(&mut out, Extent::data(pos, have, lower));
                    if have < n {
                        push_coalesced(
                            &mut out,
                            Extent::of(ExtentKind::Zero, pos + have, n - have),
                        );
                    }
                }
                RunKind::Zero => push_coalesced(&mut out, Extent::of(ExtentKind::Zero, pos, n)),
                RunKind::Encoded(_) => push_coalesced(&mut out, Extent::data(pos, n, None)),
                RunKind::Unallocated => {
                    backing_extents_from(&mut out, src.backing, src.backing_base, pos..pos + n)?
                }
            }
            pos += n;
        }
        Ok(out)
    }
}

/// A [`Layer`] whose address space is runs: it says what a layer says besides its bytes,
/// and the impl below reads and lists it through [`RunMap`], with the bounds check and the
/// error context every layer gives. The methods mean what [`Layer`]'s of the same names
/// do; call them through `Layer` (a format crate implements this trait by its path,
/// without importing it, so that the two traits' methods are never both in scope).
// `is_empty` is `Layer`'s, from `len`.
#[allow(clippy::len_without_is_empty)]
pub trait RunLayer: RunMap + Send + Sync + fmt::Debug {
    /// [`Layer::name`].
    fn name(&self) -> &str;
    /// [`Layer::space`]: a guest disk unless said otherwise.
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    /// [`Layer::len`].
    fn len(&self) -> u64;
    /// [`Layer::lower`].
    fn lower(&self) -> Vec<Arc<dyn Layer>>;
    /// [`Layer::describe`].
    fn describe(&self) -> serde_json::Value;
    /// [`Layer::meta`] (defaults to [`RunLayer::describe`]).
    fn meta(&self) -> serde_json::Value {
        self.describe()
    }
    /// [`Layer::findings`].
    fn findings(&self) -> Vec<Finding> {
        Vec::new()
    }
    /// [`Layer::external_refs`].
    fn external_refs(&self) -> Vec<ExternalRef> {
        Vec::new()
    }
    /// [`Layer::children`].
    fn children(&self) -> Vec<NamedLayer> {
        Vec::new()
    }
    /// [`Layer::path`].
    fn path(&self) -> Option<&Path> {
        None
    }
}

impl<T: RunLayer> Layer for T {
    fn name(&self) -> &str {
        RunLayer::name(self)
    }
    fn space(&self) -> AddressSpace {
        RunLayer::space(self)
    }
    fn len(&self) -> u64 {
        RunLayer::len(self)
    }
    #[inline]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        // The context is looked up only when a read fails.
        self.read_runs(offset, buf).map_err(|e| {
            let e = e.in_layer(RunLayer::name(self));
            match RunLayer::path(self) {
                Some(p) => e.in_file(p),
                None => e,
            }
        })
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(RunLayer::len(self));
        if range.start >= end {
            return Ok(Vec::new());
        }
        self.run_extents(range.start..end)
            .in_layer(RunLayer::name(self))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        RunLayer::lower(self)
    }
    fn describe(&self) -> serde_json::Value {
        RunLayer::describe(self)
    }
    fn meta(&self) -> serde_json::Value {
        RunLayer::meta(self)
    }
    fn findings(&self) -> Vec<Finding> {
        RunLayer::findings(self)
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        RunLayer::external_refs(self)
    }
    fn children(&self) -> Vec<NamedLayer> {
        RunLayer::children(self)
    }
    fn path(&self) -> Option<&Path> {
        RunLayer::path(self)
    }
}

/// The length of `run`, checked to be 1 to `max` bytes so that no loop over runs stalls
/// or overruns.
#[inline(always)]
fn run_len(run: Run, max: u64, pos: u64) -> Result<u64> {
    if run.len == 0 || run.len > max {
        return Err(bad_run(run, max, pos));
    }
    Ok(run.len)
}

#[cold]
#[inline(never)]
fn bad_run(run: Run, max: u64, pos: u64) -> Error {
    Error::malformed(
        pos,
        format!("internal: run of {} bytes where 1 to {max} fit", run.len),
    )
}

/// Fills `buf` with the bytes of `backing` at `offset`, zeros past its end; all zeros
/// without a backing disk. A backing disk that was not opened is an
/// [`crate::UnavailableLayer`], never `None`: its read fails (or reads zeros by opt-in).
#[inline]
pub fn read_backing(backing: Option<&dyn Layer>, offset: u64, buf: &mut [u8]) -> Result<()> {
    match backing {
        Some(b) => b.read_padded(offset, buf),
        None => {
            buf.fill(0);
            Ok(())
        }
    }
}

/// Appends to `out` the extents of `range` as `backing` has them (without lower offsets:
/// they are not offsets in this disk's file), and unallocated past its end or without one.
#[inline]
pub fn backing_extents(
    out: &mut Vec<Extent>,
    backing: Option<&dyn Layer>,
    range: Range<u64>,
) -> Result<()> {
    backing_extents_from(out, backing, 0, range)
}

/// [`backing_extents`] for an address space whose byte 0 is byte `base` of the backing
/// disk: the extents of `base + range` there, at offsets of `range`.
fn backing_extents_from(
    out: &mut Vec<Extent>,
    backing: Option<&dyn Layer>,
    base: u64,
    range: Range<u64>,
) -> Result<()> {
    let (start, end) = (
        base.saturating_add(range.start),
        base.saturating_add(range.end),
    );
    let mut from = start;
    if let Some(b) = backing {
        let stop = b.len().min(end);
        if start < stop {
            for e in b.extents(start..stop)? {
                // Clamped: a lower layer's extents are not trusted to stay in range.
                let s = e.offset.clamp(start, stop);
                let t = e.end().clamp(s, stop);
                push_coalesced(out, Extent::of(e.kind, s - base, t - s));
            }
            from = stop;
        }
    }
    push_coalesced(
        out,
        Extent::of(
            ExtentKind::Unallocated,
            from - base,
            end.saturating_sub(from),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::FileLayer;
    use crate::source::MemSource;

    /// A disk of 4-byte blocks over a 20-byte file: `map[i]` is block `i`.
    #[derive(Debug)]
    struct Blocks {
        file: FileLayer,
        backing: Option<Arc<dyn Layer>>,
        map: Vec<RunKind>,
    }

    impl RunLayer for Blocks {
        fn name(&self) -> &str {
            "blocks"
        }
        fn len(&self) -> u64 {
            4 * self.map.len() as u64
        }
        fn lower(&self) -> Vec<Arc<dyn Layer>> {
            Vec::new()
        }
        fn describe(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    }

    impl RunMap for Blocks {
        type Cursor = ();
        fn run(&self, pos: u64, max: u64, _: &mut ()) -> Result<Run> {
            block_run(4, pos / 4, pos % 4, max, |i| {
                Ok(self.map.get(i as usize).copied().unwrap_or(RunKind::Zero))
            })
        }
        fn sources(&self) -> RunSources<'_> {
            RunSources {
                file: &self.file,
                file_len: self.file.len(),
                backing: self.backing.as_deref(),
                backing_base: 0,
                data: DataExtents::Mapped,
            }
        }
    }

    fn disk(backing: Option<Arc<dyn Layer>>) -> Blocks {
        let file = FileLayer::new(Arc::new(MemSource::new((100u8..120).collect::<Vec<_>>())));
        use RunKind::*;
        let map = vec![
            Data(0),
            Data(4),
            Data(12),
            Zero,
            Unallocated,
            Unallocated,
            Data(16),
        ];
        Blocks { file, backing, map }
    }

    #[test]
    fn runs_join_contiguous_blocks_only() {
        let d = disk(None);
        let run = |pos, max| d.run(pos, max, &mut ()).unwrap();
        assert_eq!(run(1, 100).kind, RunKind::Data(1));
        assert_eq!(run(1, 100).len, 7);
        assert_eq!(run(1, 5).len, 5);
        assert_eq!(run(16, 100).len, 8);
        assert_eq!(run(24, 100).len, 4);
    }

    #[test]
    fn reads_data_zeros_backing_and_pads_past_the_file() {
        let d = disk(None);
        let mut b = [0xAAu8; 28];
        d.read_at(0, &mut b).unwrap();
        let mut want = vec![100, 101, 102, 103, 104, 105, 106, 107];
        want.extend([112, 113, 114, 115]);
        want.extend([0; 12]);
        want.extend([116, 117, 118, 119]);
        assert_eq!(b.to_vec(), want);
        assert!(d.read_at(27, &mut [0u8; 2]).is_err());

        // A 18-byte backing disk: its bytes, then zeros past its end.
        let back: Arc<dyn Layer> =
            Arc::new(FileLayer::new(Arc::new(MemSource::new(vec![7u8; 18]))));
        let d = disk(Some(back));
        let mut b = [0xAAu8; 8];
        d.read_at(16, &mut b).unwrap();
        assert_eq!(b, [7, 7, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn extents_follow_runs_file_end_and_backing() {
        let mut d = disk(None);
        // The last block's data starts 2 bytes before the end of the 20-byte file: the
        // rest of the block reads as zeros.
        if let Some(last) = d.map.last_mut() {
            *last = RunKind::Data(18);
        }
        assert_eq!(
            d.extents(0..100).unwrap(),
            vec![
                Extent::data(0, 8, Some(0)),
                Extent::data(8, 4, Some(12)),
                Extent::of(ExtentKind::Zero, 12, 4),
                Extent::of(ExtentKind::Unallocated, 16, 8),
                Extent::data(24, 2, Some(18)),
                Extent::of(ExtentKind::Zero, 26, 2),
            ]
        );
        let back: Arc<dyn Layer> =
            Arc::new(FileLayer::new(Arc::new(MemSource::new(vec![7u8; 18]))));
        let d = disk(Some(back));
        assert_eq!(
            d.extents(14..22).unwrap(),
            vec![
                Extent::of(ExtentKind::Zero, 14, 2),
                Extent::of(ExtentKind::Data, 16, 2),
                Extent::of(ExtentKind::Unallocated, 18, 4),
            ]
        );
    }
}
