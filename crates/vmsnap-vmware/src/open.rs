//! Opening: from a checkpoint (`.vmss`/`.vmsn`, memory embedded or in the companion
//! `.vmem`) or from a `.vmem` (metadata in the companion `.vmss`/`.vmsn`). Companions are
//! opened only through the caller's resolver.

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{
    Error, ErrorKind, ExternalRef, Finding, Layer, LayerExt, OpenCtx, RefDecision, RefKind, Result,
    SegmentMap,
};

use crate::checkpoint::Checkpoint;
use crate::compress;
use crate::cpu::cpu_states;
use crate::layer::{Entry, MemorySource, Parts, Vmware};
use crate::memory::{build_map, memory_info, MemoryInfo};
use crate::memsrc::{InflatedBlock, Unreadable};
use crate::raw::{magic_name, MAX_DECODED_MEMORY, PAGE_SIZE};

/// Whether `path` ends in `.vmem` (any case).
pub fn is_vmem_path(path: Option<&Path>) -> bool {
    path.and_then(Path::extension)
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("vmem"))
}

/// `<stem>.<ext>` for the file at `path`, with `ext` upper-cased when the file's own
/// extension is upper case.
fn sibling(path: Option<&Path>, ext: &str) -> Option<String> {
    let path = path?;
    let stem = path.file_stem()?.to_str()?;
    let own = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let upper = !own.is_empty() && own.chars().all(|c| c.is_ascii_uppercase());
    let ext = if upper {
        ext.to_ascii_uppercase()
    } else {
        ext.to_string()
    };
    Some(format!("{stem}.{ext}"))
}

/// Guest size the regions describe (0 without regions).
fn cfg_text(ck: &Checkpoint, findings: &mut Vec<Finding>) -> Option<String> {
    match ck.text("Snapshot", "cfgFile", vmsnap_core::limits::MAX_TEXT_BYTES)? {
        Ok(t) => Some(t),
        Err(e) => {
            findings.push(Finding::warning(
                vmsnap_core::rule::DESCRIPTOR,
                format!("Snapshot/cfgFile unreadable: {e}"),
            ));
            None
        }
    }
}

/// Opens `lower` as a checkpoint or a `.vmem`.
pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vmware> {
    let magic = if lower.len() >= 4 {
        Some(u32::from_le_bytes(lower.read_array::<4>(0)?))
    } else {
        None
    };
    if magic.and_then(magic_name).is_some() {
        open_checkpoint(lower, ctx)
    } else if is_vmem_path(lower.path()) {
        open_vmem(lower, ctx)
    } else {
        Err(Error::malformed(
            0,
            "neither a VMware checkpoint (no known magic) nor a .vmem file",
        )
        .in_layer("vmware"))
    }
}

fn open_checkpoint(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vmware> {
    let ck = Checkpoint::parse(lower.clone())?;
    let mut findings = ck.findings.clone();
    let info =
        memory_info(&ck).map_err(|e| e.in_layer("vmware").during("reading the memory group"))?;
    findings.extend(info.findings.iter().cloned());
    let cpus = cpu_states(&ck, &mut findings);
    let cfg = cfg_text(&ck, &mut findings);
    let mut refs = Vec::new();
    let (map, mem, source): (SegmentMap, Arc<dyn Layer>, MemorySource) = match info.embedded {
        Some(b) if b.nbytes > 0 && !b.compressed => {
            if b.nbytes != b.nbytes_in_mem {
                findings.push(Finding::warning(
                    crate::rule::MEMORY,
                    format!("Memory block has nbytes {:#x} but nbytesinmem {:#x}; the bytes in the file are used", b.nbytes, b.nbytes_in_mem),
                ).at(b.data_offset));
            }
            let map = build_map(&info.regions, b.data_offset, b.nbytes)
                .map_err(|e| e.in_layer("vmware"))?;
            (
                map,
                lower.clone(),
                MemorySource::Embedded {
                    offset: b.data_offset,
                    len: b.nbytes,
                    compression: None,
                },
            )
        }
        Some(b) if b.nbytes > 0 => {
            // Compressed memory: decoded only when it is verifiably zlib (see compress.rs).
            let mut head = [0u8; 2];
            lower.read_at(b.data_offset, &mut head)?;
            let algo = compress::sniff(&head);
            let plausible = b.nbytes_in_mem <= MAX_DECODED_MEMORY
                && b.nbytes_in_mem <= b.nbytes.saturating_mul(1100);
            let mem: Arc<dyn Layer> = if algo == "zlib" && plausible {
                Arc::new(InflatedBlock::new(lower.clone(), b))
            } else {
                let why = if algo == "zlib" {
                    format!(
                        "compressed Memory block of {:#x} bytes in memory exceeds the decode limit",
                        b.nbytes_in_mem
                    )
                } else {
                    "the Memory block is compressed with an unknown algorithm (no public format description; crash-utility refuses it too)".to_string()
                };
                findings.push(
                    Finding::warning(crate::rule::COMPRESSED_MEMORY, why.clone()).at(b.data_offset),
                );
                Arc::new(Unreadable::new(lower.clone(), b.nbytes_in_mem, why))
            };
            let map =
                build_map(&info.regions, 0, b.nbytes_in_mem).map_err(|e| e.in_layer("vmware"))?;
            (
                map,
                mem,
                MemorySource::Embedded {
                    offset: b.data_offset,
                    len: b.nbytes,
                    compression: Some(algo),
                },
            )
        }
        _ => companion_memory(&lower, &info, cfg.as_deref(), ctx, &mut findings, &mut refs)?,
    };
    Ok(Vmware::from_parts(Parts {
        lower,
        entry: Entry::Checkpoint,
        checkpoint: Some(ck),
        info,
        map,
        mem,
        source,
        cpus,
        cfg,
        findings,
        refs,
    }))
}

/// How many bytes of the `.vmem` the regions use (the end of the furthest region in it);
/// without regions, the guest's `memsize` (MiB) from the configuration text.
fn vmem_len(info: &MemoryInfo, cfg: Option<&str>) -> u64 {
    if info.regions.is_empty() {
        return cfg.and_then(cfg_memsize).unwrap_or(0);
    }
    info.regions
        .iter()
        .filter_map(|r| r.page_num.checked_add(r.pages)?.checked_mul(PAGE_SIZE))
        .max()
        .unwrap_or(0)
}

/// `memsize = "N"` (MiB) from `.vmx` text, in bytes.
fn cfg_memsize(cfg: &str) -> Option<u64> {
    cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("memsize") {
            return None;
        }
        v.trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()?
            .checked_mul(1 << 20)
            .filter(|&n| n <= vmsnap_core::limits::MAX_VIRTUAL_SIZE)
    })
}

/// The memory of a checkpoint whose memory lives in the `.vmem` beside it: the opened
/// file, or the stand-in for one that was not opened (reads fail unless the resolver
/// opted into zeros; the regions keep their layout).
fn companion_memory(
    lower: &Arc<dyn Layer>,
    info: &MemoryInfo,
    cfg: Option<&str>,
    ctx: &OpenCtx<'_>,
    findings: &mut Vec<Finding>,
    refs: &mut Vec<ExternalRef>,
) -> Result<(SegmentMap, Arc<dyn Layer>, MemorySource)> {
    let (r, opened) = match sibling(lower.path(), "vmem") {
        Some(name) => {
            let f = ctx.follow_file(RefKind::Companion, lower.path(), &name);
            let opened = match (f.layer, f.open_error) {
                (Some(l), _) => Ok(l),
                (None, e) => {
                    Err(e.unwrap_or_else(|| Error::new(ErrorKind::NotFound, "not opened")))
                }
            };
            (f.reference, opened)
        }
        None => (
            ExternalRef {
                kind: RefKind::Companion,
                name: String::new(),
                decision: RefDecision::Failed {
                    reason: "the checkpoint has no file name to find its .vmem by".into(),
                },
            },
            Err(Error::new(ErrorKind::NotFound, "no file name")),
        ),
    };
    let name = r.name.clone();
    refs.push(r.clone());
    match opened {
        Ok(vmem) => {
            let map = build_map(&info.regions, 0, vmem.len())
                .map_err(|e| e.in_layer("vmware").during("mapping the .vmem"))?;
            let path = match &r.decision {
                RefDecision::Opened { path, .. } => Some(path.display().to_string()),
                _ => None,
            };
            Ok((map, vmem, MemorySource::Vmem { name, path }))
        }
        Err(e) => {
            let mut f = r.finding();
            f.severity = vmsnap_core::Severity::Unsafe;
            f.message = format!(
                "guest memory is in {name:?}, which was not opened ({e}); memory is unavailable"
            );
            findings.push(f);
            let len = vmem_len(info, cfg);
            let stand_in = ctx.resolver.unavailable(&r, "vmware", lower.path(), len);
            let stand_in: Arc<dyn Layer> =
                Arc::new(Arc::unwrap_or_clone(stand_in).in_space(vmsnap_core::AddressSpace::File));
            let map = build_map(&info.regions, 0, len)
                .map_err(|e| e.in_layer("vmware").during("mapping the missing .vmem"))?;
            Ok((
                map,
                stand_in,
                MemorySource::Missing {
                    name: (!name.is_empty()).then_some(name),
                    reason: e.to_string(),
                },
            ))
        }
    }
}

fn open_vmem(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vmware> {
    let mut findings = Vec::new();
    let mut refs = Vec::new();
    let mut found = None;
    for ext in ["vmss", "vmsn"] {
        let Some(name) = sibling(lower.path(), ext) else {
            break;
        };
        let f = ctx.follow_file(RefKind::Companion, lower.path(), &name);
        refs.push(f.reference);
        if let Some(meta) = f.layer {
            found = Some((name, meta));
            break;
        }
    }
    // Keep only the reference that was followed when one was; otherwise every attempt.
    if found.is_some() {
        refs.retain(|r| matches!(r.decision, RefDecision::Opened { .. }));
    }
    let source = MemorySource::Vmem {
        name: lower
            .path()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: lower.path().map(|p| p.display().to_string()),
    };
    let Some((name, meta)) = found else {
        let why = refs
            .first()
            .map(|r| r.finding().message)
            .unwrap_or_else(|| "the .vmem has no file name".into());
        findings.push(Finding::warning(
            vmsnap_core::rule::COMPANION_FILE,
            format!("no .vmss/.vmsn metadata opened beside the .vmem ({why}); memory identity-mapped, which is wrong for guests with more than ~3 GiB (PCI hole)"),
        ));
        let info = MemoryInfo::default();
        let map = build_map(&[], 0, lower.len())?;
        return Ok(Vmware::from_parts(Parts {
            lower: lower.clone(),
            entry: Entry::Vmem,
            checkpoint: None,
            info,
            map,
            mem: lower,
            source,
            cpus: Vec::new(),
            cfg: None,
            findings,
            refs,
        }));
    };
    let parsed = Checkpoint::parse(meta.clone()).and_then(|ck| {
        let info = memory_info(&ck)?;
        Ok((ck, info))
    });
    match parsed {
        Ok((ck, info)) => {
            findings.extend(ck.findings.iter().cloned());
            findings.extend(info.findings.iter().cloned());
            if info.embedded.is_some_and(|b| b.nbytes > 0) {
                findings.push(Finding::info(
                    crate::rule::MEMORY,
                    format!("{name} also embeds a Memory block; the .vmem given is read instead"),
                ));
            }
            let map = build_map(&info.regions, 0, lower.len())
                .map_err(|e| e.in_layer("vmware").during("mapping the .vmem"))?;
            let cpus = cpu_states(&ck, &mut findings);
            let cfg = cfg_text(&ck, &mut findings);
            Ok(Vmware::from_parts(Parts {
                lower: lower.clone(),
                entry: Entry::Vmem,
                checkpoint: Some(ck),
                info,
                map,
                mem: lower,
                source,
                cpus,
                cfg,
                findings,
                refs,
            }))
        }
        Err(e) => {
            findings.push(Finding::warning(
                vmsnap_core::rule::COMPANION_FILE,
                format!("metadata {name:?} is unreadable ({e}); memory identity-mapped, which may be wrong"),
            ));
            let map = build_map(&[], 0, lower.len())?;
            Ok(Vmware::from_parts(Parts {
                lower: lower.clone(),
                entry: Entry::Vmem,
                checkpoint: None,
                info: MemoryInfo::default(),
                map,
                mem: lower,
                source,
                cpus: Vec::new(),
                cfg: None,
                findings,
                refs,
            }))
        }
    }
}
