//! Which file of a backing chain holds each range of the input's disk, and whether it is
//! stored compressed, as `qemu-img map` says (`depth`, `compressed`): the origins `map
//! --json` and Python's `Layer.extents()` give.
//!
//! Each file of the chain is opened again on its own, with no reference allowed but the
//! files holding its own data (VMDK extents, a qcow2 data file): its own extents are then
//! exactly what it stores (data it maps 1:1, data it does not — a
//! compressed cluster or grain — and zeros), and what it leaves to its backing file reads
//! as unallocated. The first file, from the top, that stores a range holds it. The readers
//! themselves are not changed for this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{
    Error, ErrorKind, ExternalPolicy, FileLayer, FileSource, Layer, OpenCtx, Options, RefDecision,
    RefKind, Registry, Resolver, Result, Sniff, Source,
};

use crate::map::{compresses, resolve_origins, Member, Origin};

/// The files of the input's backing/parent chain, top first (`input`, as given, at depth
/// 0), from what `resolver` opened.
pub fn chain_files(input: &Path, resolver: &Resolver) -> Vec<PathBuf> {
    let mut files = vec![input.to_path_buf()];
    for r in resolver.log() {
        if let (RefKind::Backing | RefKind::Parent, RefDecision::Opened { path, .. }) =
            (r.kind, r.decision)
        {
            files.push(path);
        }
    }
    files
}

/// The files the input's references opened that hold a chain member's own data rather than
/// another member: VMDK extents, qcow2 data files, Parallels images.
fn storage_refs(resolver: &Resolver) -> Vec<PathBuf> {
    resolver
        .log()
        .into_iter()
        .filter(|r| matches!(r.kind, RefKind::Extent | RefKind::DataFile))
        .filter_map(|r| match r.decision {
            RefDecision::Opened { path, .. } => path.canonicalize().ok(),
            _ => None,
        })
        .collect()
}

/// Opens `path` as the disk format it probes as, with no reference allowed but the files
/// that store its own data (`storage`, from [`storage_refs`]): its backing file or parent
/// stays unopened, so its extents are what it stores itself.
fn open_alone(path: &Path, registry: &Registry, storage: &[PathBuf]) -> Result<Member> {
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path)?);
    let sniff = Sniff::read(file.as_ref())?;
    let window = sniff.window(file.as_ref());
    let plugin = registry.disk_for(&window);
    let Some(plugin) = plugin else {
        // A raw file stores everything it has.
        return Ok(Member {
            layer: file,
            compresses: false,
        });
    };
    let storage = storage.to_vec();
    let resolver = Resolver::with_opener(ExternalPolicy::Any, move |p| match p.canonicalize() {
        Ok(real) if storage.contains(&real) => {
            Ok(Arc::new(FileSource::open(&real)?) as Arc<dyn Source>)
        }
        _ => Err(Error::new(
            ErrorKind::PolicyDenied,
            "not a file of this member's own data",
        )),
    });
    let options = Options::new();
    let ctx = OpenCtx::new(&resolver, registry, &options);
    Ok(Member {
        layer: (plugin.open)(file, &ctx)?,
        compresses: compresses(plugin.name),
    })
}

/// How deep [`storage_file`] looks below a member for the files it reads.
const MAX_STORAGE_DEPTH: usize = 16;

/// The file a member's 1:1 data lies in: its own file when it reads no other, the one other
/// file it reads, at any depth below it (a descriptor's single extent, a qcow2 data file, a
/// Parallels bundle's one image), `None` when it reads several (extents split over files,
/// a bundle's snapshot images: an offset would not say in which).
fn storage_file(member_file: &Path, layer: &Arc<dyn Layer>) -> Option<PathBuf> {
    let own = member_file.canonicalize().ok()?;
    let mut others: Vec<PathBuf> = Vec::new();
    let mut level = layer.lower();
    for _ in 0..MAX_STORAGE_DEPTH {
        if level.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for lower in level {
            if let Some(p) = lower.path().and_then(|p| p.canonicalize().ok()) {
                if p != own && !others.contains(&p) {
                    others.push(p);
                    if others.len() > 1 {
                        return None;
                    }
                }
            }
            next.extend(lower.lower());
        }
        level = next;
    }
    match others.as_slice() {
        [] => Some(member_file.to_path_buf()),
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Where each range of the input's disk is stored, as `map` reports it.
#[derive(Debug, Clone)]
pub struct ChainOrigins {
    /// The origin of every byte of the disk.
    pub origins: Vec<Origin>,
    /// By depth, the file the data of that chain member lies in (`None`: in several).
    pub files: Vec<Option<PathBuf>>,
}

impl ChainOrigins {
    /// The file holding `origin`'s bytes, for display.
    pub fn file_of(&self, origin: Option<&Origin>) -> Option<String> {
        let depth = origin?.depth?;
        let file = self.files.get(depth)?.as_ref()?;
        Some(file.display().to_string())
    }
}

/// The origin of every byte of `0..size` of the input's disk `disk` (the layer stacked on
/// `input`), or `None` when a member cannot be opened alone (then nothing is claimed).
/// An origin's offset is dropped where its member's data lies in several files.
pub fn origins(
    input: &Path,
    resolver: &Resolver,
    registry: &Registry,
    disk: &Arc<dyn Layer>,
) -> Option<ChainOrigins> {
    let size = disk.len();
    let chain = chain_files(input, resolver);
    let members: Vec<Member> = if chain.len() == 1 {
        // The input alone: the stacked disk is that file's own view, and opening it again
        // would hold its tables (a Parallels BAT, a qcow L1) twice.
        vec![Member {
            layer: disk.clone(),
            compresses: compresses(disk.name()),
        }]
    } else {
        let storage = storage_refs(resolver);
        chain
            .iter()
            .map(|f| open_alone(f, registry, &storage))
            .collect::<Result<_>>()
            .ok()?
    };
    let files: Vec<Option<PathBuf>> = chain
        .iter()
        .zip(&members)
        .map(|(f, m)| storage_file(f, &m.layer))
        .collect();
    let mut origins = resolve_origins(&members, size).ok()?;
    for o in &mut origins {
        if o.depth
            .is_some_and(|d| files.get(d).is_none_or(Option::is_none))
        {
            o.offset = None;
        }
    }
    Some(ChainOrigins { origins, files })
}
