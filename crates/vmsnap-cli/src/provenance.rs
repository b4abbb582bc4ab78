//! Which file of a backing chain holds each extent, and whether it is stored compressed,
//! as `qemu-img map` says (`depth`, `compressed`).
//!
//! Each file of the chain is opened again on its own, with no reference allowed: its own
//! extents are then exactly what it stores (data it maps 1:1, data it does not — a
//! compressed cluster or grain — and zeros), and what it leaves to its backing file reads
//! as unallocated. The first file, from the top, that stores a range holds it. The readers
//! themselves are not changed for this.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use vmsnap::core::{
    Extent, ExtentKind, ExternalPolicy, FileLayer, Layer, OpenCtx, Options, PluginKind,
    RefDecision, RefKind, Registry, Resolver, Result, Sniff,
};

use crate::open::Opened;

pub use vmsnap_report::map::Origin;

/// One file of the chain, opened alone.
struct Member {
    layer: Arc<dyn Layer>,
    /// Whether data it does not map 1:1 is compressed in this format.
    compresses: bool,
}

/// The files of the input's backing/parent chain, top first (the input at depth 0).
pub fn chain_files(opened: &Opened) -> Vec<PathBuf> {
    let mut files = vec![opened.input.clone()];
    for r in opened.resolver.log() {
        if let (RefKind::Backing | RefKind::Parent, RefDecision::Opened { path }) =
            (r.kind, r.decision)
        {
            files.push(path);
        }
    }
    files
}

/// Opens `path` as the disk format it probes as, with no reference allowed.
fn open_alone(path: &PathBuf, registry: &Registry) -> Result<Member> {
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path)?);
    let sniff = Sniff::read(file.as_ref())?;
    let window = sniff.window(file.as_ref());
    let plugin = registry
        .plugins()
        .iter()
        .filter(|p| p.kind == PluginKind::Disk)
        .find(|p| (p.probe)(&window).is_yes());
    let Some(plugin) = plugin else {
        // A raw file stores everything it has.
        return Ok(Member {
            layer: file,
            compresses: false,
        });
    };
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let ctx = OpenCtx {
        resolver: &resolver,
        registry,
        depth: 0,
        options: &options,
    };
    Ok(Member {
        layer: (plugin.open)(file, &ctx)?,
        compresses: compresses(plugin.name),
    })
}

/// Whether a format stores clusters compressed (they then have no offset in the file).
fn compresses(format: &str) -> bool {
    matches!(format, "qcow2" | "qcow" | "vmdk")
}

/// The origin of every byte of `0..size` of the input's disk, or `None` when a member
/// cannot be opened alone (then nothing is claimed).
pub fn origins(opened: &Opened, registry: &Registry, disk: &Arc<dyn Layer>) -> Option<Vec<Origin>> {
    let size = disk.len();
    let files = chain_files(opened);
    let members: Vec<Member> = if files.len() == 1 {
        // The input alone: the stacked disk is that file's own view, and opening it again
        // would hold its tables (a Parallels BAT, a qcow L1) twice.
        vec![Member {
            layer: disk.clone(),
            compresses: compresses(disk.name()),
        }]
    } else {
        files
            .iter()
            .map(|f| open_alone(f, registry))
            .collect::<Result<_>>()
            .ok()?
    };
    let mut out = Vec::new();
    resolve(&members, 0, 0..size, &mut out).ok()?;
    Some(out)
}

fn resolve(
    members: &[Member],
    depth: usize,
    range: Range<u64>,
    out: &mut Vec<Origin>,
) -> Result<()> {
    let Some(m) = members.get(depth) else {
        push(out, range, None, false, None);
        return Ok(());
    };
    let end = range.end.min(m.layer.len());
    let mut pos = range.start;
    if pos < end {
        for e in m.layer.extents(pos..end)? {
            if e.offset > pos {
                resolve(members, depth + 1, pos..e.offset, out)?;
            }
            let (s, t) = (e.offset.max(pos), e.end().min(end));
            if s >= t {
                continue;
            }
            match e.kind {
                ExtentKind::Data => {
                    let compressed = m.compresses && e.lower_offset.is_none();
                    let at = e
                        .lower_offset
                        .map(|l| l.saturating_add(s.saturating_sub(e.offset)));
                    push(out, s..t, Some(depth), compressed, at);
                }
                ExtentKind::Zero => push(out, s..t, Some(depth), false, None),
                _ => resolve(members, depth + 1, s..t, out)?,
            }
            pos = t;
        }
    }
    if pos < range.end {
        // Past this member's end (or its extents): what is below, if anything.
        if pos >= m.layer.len() {
            push(out, pos..range.end, None, false, None);
        } else {
            resolve(members, depth + 1, pos..range.end, out)?;
        }
    }
    Ok(())
}

fn push(
    out: &mut Vec<Origin>,
    range: Range<u64>,
    depth: Option<usize>,
    compressed: bool,
    offset: Option<u64>,
) {
    if range.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        let len = last.range.end.saturating_sub(last.range.start);
        let contiguous = match (last.offset, offset) {
            (None, None) => true,
            (Some(a), Some(b)) => a.checked_add(len) == Some(b),
            _ => false,
        };
        if last.range.end == range.start
            && last.depth == depth
            && last.compressed == compressed
            && contiguous
        {
            last.range.end = range.end;
            return;
        }
    }
    out.push(Origin {
        range,
        depth,
        compressed,
        offset,
    });
}

/// `extents` split where their origin changes, each with its origin. Where the two views
/// disagree (the stacked disk says stored and no file stores it, or the reverse) the piece
/// gets no origin: nothing is claimed that is not known.
pub fn annotate(extents: &[Extent], origins: &[Origin]) -> Vec<(Extent, Option<Origin>)> {
    let mut out = Vec::new();
    let mut i = 0;
    for e in extents {
        let mut pos = e.offset;
        while i < origins.len() && origins.get(i).is_some_and(|o| o.range.end <= pos) {
            i += 1;
        }
        while pos < e.end() {
            let Some(o) = origins.get(i).filter(|o| o.range.start <= pos) else {
                out.push((piece(e, pos, e.end()), None));
                break;
            };
            let stop = o.range.end.min(e.end());
            let stored = matches!(e.kind, ExtentKind::Data | ExtentKind::Zero);
            // Only a file that stores the piece is an origin.
            let origin = Some(o.from(pos)).filter(|o| o.depth.is_some() && stored);
            let p = piece(e, pos, stop);
            match out.last_mut() {
                // Runs nothing stores stay one extent, as the stacked view has them.
                Some((last, None)) if origin.is_none() && last.continues_with(&p) => {
                    last.len = last.len.saturating_add(p.len);
                }
                _ => out.push((p, origin)),
            }
            pos = stop;
            if o.range.end <= pos {
                i += 1;
            }
        }
    }
    out
}

fn piece(e: &Extent, start: u64, end: u64) -> Extent {
    Extent {
        offset: start,
        len: end.saturating_sub(start),
        kind: e.kind,
        lower_offset: e
            .lower_offset
            .map(|l| l.saturating_add(start.saturating_sub(e.offset))),
    }
}
