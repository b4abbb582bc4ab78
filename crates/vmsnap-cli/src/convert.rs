//! `vmsnap convert`: a layer to a raw file. Zero and unallocated extents are skipped (the
//! output is sparse), all-zero blocks inside data extents are skipped too, and the work is
//! spread over several threads writing with positional writes.

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use vmsnap::core::{Error, ExtentKind, Layer, Result};

use crate::cli::ConvertArgs;
use crate::open::{open_for_data, select};
use crate::Outcome;

/// Work is handed out in pieces of this many bytes.
const PIECE: u64 = 4 << 20;

/// Runs `convert`.
pub fn run(args: &ConvertArgs) -> Result<Outcome> {
    let opened = open_for_data(&args.open)?;
    let sel = select(&opened.stack, &args.layer)?;
    let threads = if args.threads == 0 {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2)
    } else {
        args.threads.max(1)
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        // Drawn on stderr only when it is a terminal.
        let b = ProgressBar::new(sel.layer.len());
        b.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    convert_layer(sel.layer.as_ref(), &args.output, threads, &bar)?;
    bar.finish_and_clear();
    Ok(Outcome::Ok)
}

/// Writes `layer` to `out` as a sparse raw file using `threads` workers.
pub fn convert_layer(
    layer: &dyn Layer,
    out: &std::path::Path,
    threads: usize,
    bar: &ProgressBar,
) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(out)
        .map_err(|e| Error::from(e).in_file(out).during("creating the output"))?;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if regular {
        // Truncate first so stale data never survives in holes, then size it.
        file.set_len(0)
            .and_then(|_| file.set_len(layer.len()))
            .map_err(|e| Error::from(e).in_file(out).during("sizing the output"))?;
    }
    let pieces = plan(layer)?;
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; PIECE as usize];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(off, len)) = pieces.get(i) else {
                        break;
                    };
                    let r = copy_piece(layer, &file, off, len, &mut buf, regular);
                    if let Err(e) = r {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e.in_file(out));
                        }
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    }
                    let d = done.fetch_add(len, Ordering::Relaxed) + len;
                    bar.set_position(d);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    bar.set_position(layer.len());
    Ok(())
}

/// The data ranges of `layer`, cut into pieces of at most [`PIECE`] bytes.
fn plan(layer: &dyn Layer) -> Result<Vec<(u64, u64)>> {
    let mut pieces = Vec::new();
    for e in layer.extents(0..layer.len())? {
        if e.kind != ExtentKind::Data {
            continue;
        }
        let mut off = e.offset;
        let end = e.end();
        while off < end {
            let n = (end - off).min(PIECE - off % PIECE);
            pieces.push((off, n));
            off += n;
        }
    }
    Ok(pieces)
}

fn copy_piece(
    layer: &dyn Layer,
    file: &File,
    off: u64,
    len: u64,
    buf: &mut [u8],
    sparse: bool,
) -> Result<()> {
    let chunk = buf.get_mut(..len as usize).unwrap_or_default();
    layer.read_at(off, chunk)?;
    // Skip all-zero 64 KiB blocks so the output stays sparse like the source.
    const BLOCK: usize = 64 * 1024;
    for (i, block) in chunk.chunks(BLOCK).enumerate() {
        if sparse && is_zero(block) {
            continue;
        }
        pwrite_all(file, block, off + (i * BLOCK) as u64)
            .map_err(|e| Error::from(e).during("writing the output"))?;
    }
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    words.into_iter().all(|w| w == [0u8; 8]) && tail.iter().all(|&x| x == 0)
}

#[cfg(unix)]
fn pwrite_all(file: &File, buf: &[u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, off)
}

#[cfg(not(unix))]
fn pwrite_all(file: &File, buf: &[u8], off: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = file;
    f.seek(SeekFrom::Start(off))?;
    f.write_all(buf)
}
