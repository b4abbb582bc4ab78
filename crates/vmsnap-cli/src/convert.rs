//! `vmsnap convert`: a layer to a raw image (or memory to an ELF core or LiME file,
//! [`crate::export`]) through the core output writer
//! ([`vmsnap::core::sink`]): a regular file is written beside the target and renamed into
//! place when complete, a block device in place with its holes zeroed, `/dev/null`
//! discards, and standard output, a pipe or a FIFO get the bytes in order.
//!
//! For positional outputs the work is spread over several threads: zero and unallocated
//! extents are skipped (the output is sparse), and so are all-zero blocks inside data
//! extents. A stream is read ahead by the same threads and written in order.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use vmsnap::core::sink::{Output, OutputKind, OutputOptions, PositionalOutput, StreamOutput};
use vmsnap::core::{Error, ExtentKind, IoBuffer, Layer, Result};

use crate::cli::ConvertArgs;
use crate::open::open_for_data;
use crate::ordered::read_in_order;
use crate::Outcome;

/// Work is handed out in pieces of this many bytes.
const PIECE: u64 = 4 << 20;

/// Runs `convert`.
pub fn run(args: &ConvertArgs) -> Result<Outcome> {
    let opened = open_for_data(&args.open)?;
    let layer = crate::export::layer_to_write(&opened.stack, &args.layer, args.format)?;
    let threads = if args.threads == 0 {
        vmsnap::core::parallelism().max(2)
    } else {
        args.threads.max(1)
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        // Drawn on stderr only when it is a terminal.
        let b = ProgressBar::new(layer.len());
        b.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let options = OutputOptions::new()
        .protect(opened.files())
        .target_is_zero(args.target_is_zero);
    crate::interrupt::remove_unfinished_outputs_on_signal();
    let out = Output::create(&args.output, layer.len(), &options)?;
    convert_layer(layer.as_ref(), out, threads, &bar)?;
    bar.finish_and_clear();
    Ok(Outcome::Ok)
}

/// Writes `layer` to `out` with `threads` workers and commits it; on error the output is
/// dropped uncommitted (a file output then leaves nothing behind).
pub fn convert_layer(
    layer: &dyn Layer,
    out: Output,
    threads: usize,
    bar: &ProgressBar,
) -> Result<()> {
    let pieces = plan(layer)?;
    match out {
        Output::Positional(p) => {
            copy_positional(layer, &p, &pieces, threads, bar)?;
            p.commit()?;
        }
        Output::Stream(mut s) => {
            copy_stream(layer, &mut s, &pieces, threads, bar)?;
            s.commit()?;
        }
        // An output kind this writer does not know.
        _ => {
            return Err(Error::unsupported(
                "this kind of output is not supported here",
            ))
        }
    }
    bar.set_position(layer.len());
    Ok(())
}

/// One piece of the layer: read it, or a hole (zero or unallocated: reads as zeros
/// without reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    offset: u64,
    len: u64,
    read: bool,
}

/// The whole layer in order, cut into pieces: extents to read (data, and unavailable ones,
/// whose reads fail unless the user opted into zeros — never silently skipped) at most
/// [`PIECE`] bytes each, and holes.
fn plan(layer: &dyn Layer) -> Result<Vec<Piece>> {
    let mut pieces: Vec<Piece> = Vec::new();
    for e in layer.extents(0..layer.len())? {
        let read = matches!(e.kind, ExtentKind::Data | ExtentKind::Unavailable);
        if !read {
            match pieces.last_mut() {
                Some(last) if !last.read && last.offset + last.len == e.offset => last.len += e.len,
                _ => pieces.push(Piece {
                    offset: e.offset,
                    len: e.len,
                    read,
                }),
            }
            continue;
        }
        let mut off = e.offset;
        let end = e.end();
        while off < end {
            let n = (end - off).min(PIECE - off % PIECE);
            pieces.push(Piece {
                offset: off,
                len: n,
                read,
            });
            off += n;
        }
    }
    Ok(pieces)
}

/// Copies the read pieces to a positional output from `threads` workers; holes are zeroed
/// only where the output needs it (a block device).
fn copy_positional(
    layer: &dyn Layer,
    out: &PositionalOutput,
    pieces: &[Piece],
    threads: usize,
    bar: &ProgressBar,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let zero_holes = out.holes_need_writing();
    // Buffered writes to one file serialise on its inode lock in the kernel, where waiting
    // threads spin: two writers spent a third of their time spinning and ran at half the
    // speed of one. So reading (and decompressing) is parallel, writing one at a time.
    let write_lock = Mutex::new(());
    let lock = (out.kind() == OutputKind::File).then_some(&write_lock);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = IoBuffer::new(PIECE as usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&piece) = pieces.get(i) else {
                        break;
                    };
                    let r = if piece.read {
                        copy_piece(layer, out, piece, &mut buf, zero_holes, lock)
                    } else if zero_holes {
                        out.zero_range(piece.offset, piece.len)
                    } else {
                        Ok(())
                    };
                    if let Err(e) = r {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    }
                    if piece.read {
                        let d = done.fetch_add(piece.len, Ordering::Relaxed) + piece.len;
                        bar.set_position(d);
                    }
                }
            });
        }
    });
    match failure.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reads one piece and writes its non-zero blocks (under `lock`, when given); its zero
/// blocks are left as holes, or zeroed when `zero_holes`.
fn copy_piece(
    layer: &dyn Layer,
    out: &PositionalOutput,
    piece: Piece,
    buf: &mut [u8],
    zero_holes: bool,
    lock: Option<&Mutex<()>>,
) -> Result<()> {
    let chunk = buf.get_mut(..piece.len as usize).unwrap_or_default();
    layer.read_at(piece.offset, chunk)?;
    let runs = non_zero_runs(chunk);
    let _guard = lock.map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
    let mut pos = 0usize;
    for run in runs {
        if zero_holes && run.start > pos {
            out.zero_range(piece.offset + pos as u64, (run.start - pos) as u64)?;
        }
        let bytes = chunk.get(run.clone()).unwrap_or_default();
        out.write_at(piece.offset + run.start as u64, bytes)?;
        pos = run.end;
    }
    if zero_holes && chunk.len() > pos {
        out.zero_range(piece.offset + pos as u64, (chunk.len() - pos) as u64)?;
    }
    Ok(())
}

/// Writes every piece in order to a stream: holes as zeros, read pieces read ahead by
/// `threads` workers.
fn copy_stream(
    layer: &dyn Layer,
    out: &mut StreamOutput,
    pieces: &[Piece],
    threads: usize,
    bar: &ProgressBar,
) -> Result<()> {
    let reads: Vec<(u64, usize)> = pieces
        .iter()
        .filter(|p| p.read)
        .map(|p| (p.offset, p.len as usize))
        .collect();
    let mut next_read = 0usize;
    read_in_order(layer, &reads, threads, |got| -> Result<bool> {
        // Called once per read piece, in order; holes before it are written first.
        let Some(&(offset, _)) = reads.get(next_read) else {
            return Ok(false);
        };
        next_read += 1;
        let gap = offset.saturating_sub(out.written());
        out.write_zeros(gap)?;
        out.write_all(got)?;
        bar.set_position(out.written());
        Ok(true)
    })?;
    let tail = out.len().saturating_sub(out.written());
    out.write_zeros(tail)
}

/// The runs of `chunk` that are not all-zero [`ZERO_BLOCK`]s, each as one byte range.
fn non_zero_runs(chunk: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, block) in chunk.chunks(ZERO_BLOCK).enumerate() {
        if is_zero(block) {
            continue;
        }
        let start = i * ZERO_BLOCK;
        let end = start + block.len();
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
}

/// Zero detection granularity: the output's holes are at least this large.
const ZERO_BLOCK: usize = 64 * 1024;

fn is_zero(b: &[u8]) -> bool {
    // OR-folding fixed-size chunks vectorises; checking between chunks keeps the early exit
    // for data blocks, which are rarely zero past their first bytes.
    b.chunks(256)
        .all(|c| c.iter().fold(0u8, |acc, &x| acc | x) == 0)
}

#[cfg(test)]
mod tests;
