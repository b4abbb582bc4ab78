//! Which file of a backing chain holds each range of the input's disk, and whether it is
//! stored compressed, as `qemu-img map` says (`depth`, `compressed`): the origins `map
//! --json` and Python's `Layer.extents()` give.
//!
//! Each file of the chain is opened again on its own, with no reference allowed: its own
//! extents are then exactly what it stores (data it maps 1:1, data it does not — a
//! compressed cluster or grain — and zeros), and what it leaves to its backing file reads
//! as unallocated. The first file, from the top, that stores a range holds it. The readers
//! themselves are not changed for this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{
    ExternalPolicy, FileLayer, Layer, OpenCtx, Options, RefDecision, RefKind, Registry, Resolver,
    Result, Sniff,
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

/// Opens `path` as the disk format it probes as, with no reference allowed.
fn open_alone(path: &Path, registry: &Registry) -> Result<Member> {
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
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let ctx = OpenCtx::new(&resolver, registry, &options);
    Ok(Member {
        layer: (plugin.open)(file, &ctx)?,
        compresses: compresses(plugin.name),
    })
}

/// The origin of every byte of `0..size` of the input's disk `disk` (the layer stacked on
/// `input`), or `None` when a member cannot be opened alone (then nothing is claimed).
pub fn origins(
    input: &Path,
    resolver: &Resolver,
    registry: &Registry,
    disk: &Arc<dyn Layer>,
) -> Option<Vec<Origin>> {
    let size = disk.len();
    let files = chain_files(input, resolver);
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
    resolve_origins(&members, size).ok()
}
