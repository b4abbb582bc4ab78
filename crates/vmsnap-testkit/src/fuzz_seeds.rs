//! Which committed files seed each fuzz target. One rule, used by `cargo xtask fuzz`, the
//! ClusterFuzzLite build (`cargo xtask fuzz-seed-dirs`) and the stable test that replays
//! every seed through the harness bodies.
//!
//! A target's seeds are its own directory `corpus/<format>/fuzz-seeds/<target>/` (small
//! files written by a recipe, or grown by fuzzing and kept) plus the format's sample
//! files in `corpus/<format>/` (`corpus/*` for the whole-stack targets). Targets whose
//! input is not a whole file (a RAM block's record stream, XPRESS) take only their own
//! directory. Samples over [`SEED_MAX`] are skipped; gzipped samples are listed with
//! [`Seed::gzipped`] set and their decompressed size, for the caller to decide.

use std::path::{Path, PathBuf};

use crate::corpus_dir;

/// The largest sample used as a seed (decompressed size for gzipped ones).
pub const SEED_MAX: u64 = 4 << 20;

/// Targets whose input is not a whole file: their own seeds only.
const OWN_SEEDS_ONLY: &[&str] = &["hyperv_ram", "xpress"];

/// One seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// A name unique among the target's seeds (its path under `corpus/`, `/` → `-`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Whether the file is gzip-compressed (the seed is its decompressed content).
    pub gzipped: bool,
}

/// The target's own seed directory, `corpus/<format>/fuzz-seeds/<target>`.
pub fn own_dir(target: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("fuzz-seeds").join(target))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Where `cargo xtask fuzz` and the seed-growing runs add new seeds for `target`: its own
/// directory, or `corpus/<format>/fuzz-seeds/<target>` for the format the target reads.
pub fn own_dir_or_new(target: &str) -> PathBuf {
    own_dir(target).unwrap_or_else(|| {
        let format = sample_dirs(target)
            .into_iter()
            .next()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "raw".into());
        corpus_dir().join(format).join("fuzz-seeds").join(target)
    })
}

/// The sample directories (under `corpus/`) whose files seed `target`.
fn sample_dirs(target: &str) -> Vec<PathBuf> {
    let corpus = corpus_dir();
    if OWN_SEEDS_ONLY.contains(&target) {
        return Vec::new();
    }
    let by_prefix = target.split('_').next().unwrap_or(target);
    let names: Vec<String> = match target {
        "stack" | "check_streaming" => {
            let mut all: Vec<String> = std::fs::read_dir(&corpus)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            all.sort();
            all
        }
        "elf_core" => vec!["elf".into()],
        "x86_paging" | "segment_map" => Vec::new(),
        _ if corpus.join(target).is_dir() => vec![target.into()],
        _ if corpus.join(by_prefix).is_dir() => vec![by_prefix.into()],
        _ => Vec::new(),
    };
    names
        .into_iter()
        .filter(|n| n != "golden")
        .map(|n| corpus.join(n))
        .collect()
}

/// The decompressed size a gzip file records (its last four bytes, modulo 4 GiB).
fn gzip_size(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(-4)).ok()?;
    let mut b = [0u8; 4];
    f.read_exact(&mut b).ok()?;
    Some(u64::from(u32::from_le_bytes(b)))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

/// Every seed of `target`, in a stable order.
pub fn seeds(target: &str) -> Vec<Seed> {
    let corpus = corpus_dir();
    let mut dirs: Vec<PathBuf> = own_dir(target).into_iter().collect();
    dirs.extend(sample_dirs(target));
    let mut out = Vec::new();
    for d in dirs {
        for f in files_in(&d) {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            let Some(name) = name else { continue };
            if name.ends_with(".sh") || name.ends_with(".txt") {
                continue;
            }
            let gzipped = name.ends_with(".gz");
            let size = if gzipped {
                gzip_size(&f)
            } else {
                f.metadata().ok().map(|m| m.len())
            };
            if size.is_none_or(|s| s > SEED_MAX) {
                continue;
            }
            let rel = f.strip_prefix(&corpus).unwrap_or(&f);
            out.push(Seed {
                name: rel.to_string_lossy().replace('/', "-"),
                path: f,
                gzipped,
            });
        }
    }
    out
}
