//! Block-mapped disks (VDI, Parallels, QED, VHD, VHDX): the guest disk is runs of bytes
//! that are stored in the image file, recorded as zeros, or not stored here (read from the
//! backing or parent disk, or as zeros without one). A format says what the run at an
//! offset is ([`RunMap::run`]); reading a range and listing its extents run by run is done
//! here once.

use std::ops::Range;

use crate::error::{Error, Result, ResultExt};
use crate::extent::{push_coalesced, Extent, ExtentKind};
use crate::layer::{check_read, read_within, Layer, LayerExt};

/// How a run of a block-mapped disk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Stored in the image file from this offset. What lies past the end of the file reads
    /// as zeros, as QEMU reads a cut-short last block.
    Data(u64),
    /// Recorded as zeros.
    Zero,
    /// Not stored here: the backing disk's bytes (zeros past its end), or zeros without one.
    Unallocated,
}

impl RunKind {
    /// Whether a block of kind `next`, met `len` bytes after the start of a run of this
    /// kind, continues the run: the same kind, and for data the next bytes of the file.
    #[inline]
    pub fn continued_by(self, len: u64, next: RunKind) -> bool {
        match (self, next) {
            (RunKind::Data(a), RunKind::Data(b)) => a.checked_add(len) == Some(b),
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
    /// Whether data offsets are offsets in the layer below this one, so extents say where
    /// data lies (not when `file` is an in-memory overlay over it).
    pub maps_lower: bool,
}

/// A layer whose address space is runs (see the module docs). Its `read_at` and `extents`
/// are [`RunMap::read_runs`] and [`RunMap::run_extents`].
pub trait RunMap: Layer {
    /// State kept between the runs of one read or listing (a cached piece of a table or
    /// bitmap); `()` for none.
    type Cursor: Default;

    /// The run at `pos` (inside the layer), 1 to `max` bytes long.
    fn run(&self, pos: u64, max: u64, cursor: &mut Self::Cursor) -> Result<Run>;

    /// Where the runs read from.
    fn sources(&self) -> RunSources<'_>;

    /// [`Layer::read_at`]: fills `buf` from `offset` run by run.
    #[inline]
    fn read_runs(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let src = self.sources();
        let mut cursor = Self::Cursor::default();
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let want = rest.len() as u64;
            let run = self.run(pos, want, &mut cursor).in_layer(self.name())?;
            let n = run_len(run, want, pos).in_layer(self.name())?;
            let (now, later) = rest.split_at_mut(n as usize);
            match run.kind {
                RunKind::Data(at) => read_within(src.file, src.file_len, at, now)
                    .in_layer(self.name())
                    .during("reading stored data")?,
                RunKind::Zero => now.fill(0),
                RunKind::Unallocated => {
                    read_backing(src.backing, pos, now).during("reading the backing disk")?
                }
            }
            rest = later;
            pos += n;
        }
        Ok(())
    }

    /// [`Layer::extents`]: the extents of `range` (clamped to the layer) run by run, with
    /// the backing disk's extents under unallocated runs.
    fn run_extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        let src = self.sources();
        let mut cursor = Self::Cursor::default();
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let run = self
                .run(pos, end - pos, &mut cursor)
                .in_layer(self.name())?;
            let n = run_len(run, end - pos, pos).in_layer(self.name())?;
            match run.kind {
                RunKind::Data(at) => {
                    let have = src.file_len.saturating_sub(at).min(n);
                    let lower = src.maps_lower.then_some(at);
                    push_coalesced(&mut out, Extent::data(pos, have, lower));
                    if have < n {
                        push_coalesced(
                            &mut out,
                            Extent::of(ExtentKind::Zero, pos + have, n - have),
                        );
                    }
                }
                RunKind::Zero => push_coalesced(&mut out, Extent::of(ExtentKind::Zero, pos, n)),
                RunKind::Unallocated => backing_extents(&mut out, src.backing, pos..pos + n)?,
            }
            pos += n;
        }
        Ok(out)
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
    let mut from = range.start;
    if let Some(b) = backing {
        let stop = b.len().min(range.end);
        if range.start < stop {
            for e in b.extents(range.start..stop)? {
                push_coalesced(out, Extent::of(e.kind, e.offset, e.len));
            }
            from = stop;
        }
    }
    push_coalesced(
        out,
        Extent::of(
            ExtentKind::Unallocated,
            from,
            range.end.saturating_sub(from),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::layer::{AddressSpace, FileLayer};
    use crate::source::MemSource;

    /// A disk of 4-byte blocks over a 20-byte file: `map[i]` is block `i`.
    #[derive(Debug)]
    struct Blocks {
        file: FileLayer,
        backing: Option<Arc<dyn Layer>>,
        map: Vec<RunKind>,
    }

    impl Layer for Blocks {
        fn name(&self) -> &str {
            "blocks"
        }
        fn space(&self) -> AddressSpace {
            AddressSpace::GuestDisk
        }
        fn len(&self) -> u64 {
            4 * self.map.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            self.read_runs(offset, buf)
        }
        fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
            self.run_extents(range)
        }
        fn lower(&self) -> Vec<Arc<dyn Layer>> {
            Vec::new()
        }
        fn describe(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn path(&self) -> Option<&Path> {
            None
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
                maps_lower: true,
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
