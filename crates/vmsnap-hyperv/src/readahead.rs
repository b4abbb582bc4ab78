//! Read-ahead for compressed guest RAM: a reader that continues where a recent read
//! stopped (dd, cat, convert) gets the next blocks decoded by helper threads while it
//! copies the ones already decoded, and a read larger than a block gets the blocks it
//! spans decoded in parallel. Small random reads get nothing: they decode only their
//! pages.
//!
//! Helpers are started on demand, one per core not already busy reading this layer, and
//! stop when the queue is empty; the cache's claims keep any block from being decoded
//! twice at once. The read-ahead owns its helpers: dropping it empties the queue and joins
//! them, so no thread of the library outlives the layer (or keeps its input alive).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vmsnap_core::Layer;

use crate::cache::{BlockCache, BlockState};
use crate::decoder::BlockDecoder;
use crate::limits::{RAM_READ_AHEAD_BLOCKS, RAM_READ_STREAMS};
use crate::pages::{BLOCK, PAGE};

/// Where recent reads ended, to tell sequential readers (each read starting where one
/// of them stopped) from random ones.
#[derive(Debug, Default)]
struct Streams {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    tick: u64,
    /// (end of a recent read, when it was made).
    ends: [(Option<u64>, u64); RAM_READ_STREAMS],
}

impl Streams {
    /// Records a read of `start..end`; whether it starts within a page of where a
    /// recent read ended.
    fn note(&self, start: u64, end: u64) -> bool {
        let Ok(mut g) = self.slots.lock() else {
            return false;
        };
        g.tick = g.tick.wrapping_add(1);
        let t = g.tick;
        let page = PAGE as u64;
        let near = |e: u64| start <= e.saturating_add(page) && start.saturating_add(page) >= e;
        if let Some(s) = g.ends.iter_mut().find(|(e, _)| e.is_some_and(near)) {
            *s = (Some(end), t);
            return true;
        }
        if let Some(s) = g.ends.iter_mut().min_by_key(|(_, age)| *age) {
            *s = (Some(end), t);
        }
        false
    }
}

/// The read-ahead state of one RAM layer.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    /// Compressed blocks by guest-physical start (a block split over two segments is
    /// listed twice).
    blocks: Vec<(u64, Arc<BlockDecoder>)>,
    /// The same decoders by block number, for helpers.
    by_number: Arc<HashMap<u64, Arc<BlockDecoder>>>,
    cache: Arc<BlockCache>,
    streams: Streams,
    /// Threads inside a read of this layer.
    readers: AtomicUsize,
    /// Helper threads started and not yet known to have finished; joined on drop.
    helpers: Mutex<Vec<JoinHandle<()>>>,
}

/// Counts a reader while it lives.
#[derive(Debug)]
pub(crate) struct Reading<'a>(&'a AtomicUsize);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReadAhead {
    /// Read-ahead over `blocks` (compressed blocks by guest-physical start), decoding
    /// into `cache`.
    pub fn new(mut blocks: Vec<(u64, Arc<BlockDecoder>)>, cache: Arc<BlockCache>) -> Self {
        blocks.sort_by_key(|(g, _)| *g);
        let by_number = blocks
            .iter()
            .map(|(_, d)| (d.number(), d.clone()))
            .collect();
        ReadAhead {
            blocks,
            by_number: Arc::new(by_number),
            cache,
            streams: Streams::default(),
            readers: AtomicUsize::new(0),
            helpers: Mutex::new(Vec::new()),
        }
    }

    /// Whether there is no compressed block to read ahead.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Counts the calling thread as a reader until the guard drops (a core reading is
    /// a core a helper should not compete with).
    pub fn enter(&self) -> Reading<'_> {
        self.readers.fetch_add(1, Ordering::Relaxed);
        Reading(&self.readers)
    }

    /// Called before a read of `len` bytes at `start` from `lower` (the container's
    /// replayed image): queues the blocks worth decoding whole ahead of the reader,
    /// starts helpers for them, and decodes queued blocks while helpers finish the ones
    /// this read needs.
    pub fn before_read<L: Layer + 'static>(&self, lower: &Arc<L>, start: u64, len: u64) {
        if self.is_empty() {
            return;
        }
        let end = start.saturating_add(len);
        let ahead = if self.streams.note(start, end) {
            // Enough to keep every core busy, and few enough to stay cached until read.
            RAM_READ_AHEAD_BLOCKS
                .max(vmsnap_core::parallelism().saturating_mul(2))
                .min(self.cache.capacity() / 4)
        } else if len > BLOCK as u64 {
            0
        } else {
            return;
        };
        let wanted = self.wanted(start, end, ahead);
        self.enqueue(lower, wanted, ahead);
        self.help(lower.as_ref(), start, end);
    }

    /// Queues `wanted` (a window of `ahead` blocks past the read) once half the window
    /// is used, so helpers decode several blocks per start, and starts helpers.
    fn enqueue<L: Layer + 'static>(&self, lower: &Arc<L>, wanted: Vec<u64>, ahead: usize) {
        let refill = wanted
            .iter()
            .take(wanted.len().saturating_sub(ahead / 2).max(1))
            .any(|&n| self.cache.state(n) == BlockState::Absent);
        if !refill {
            return;
        }
        let busy = self.readers.load(Ordering::Relaxed);
        let max_helpers = vmsnap_core::parallelism().saturating_sub(busy);
        let start_n = self
            .cache
            .enqueue(wanted, self.cache.capacity() / 2, max_helpers);
        for _ in 0..start_n {
            let (cache, by_number, lower) =
                (self.cache.clone(), self.by_number.clone(), lower.clone());
            let spawned = std::thread::Builder::new()
                .name("vmsnap-hyperv-readahead".into())
                .spawn(move || helper(&cache, &by_number, lower.as_ref()));
            match spawned {
                Ok(handle) => self.keep(handle),
                // No thread (resource limits): the readers decode for themselves.
                Err(_) => self.cache.helper_not_started(),
            }
        }
    }

    /// Keeps `handle` for the join on drop, letting go of helpers that have finished so
    /// the list stays as short as the number of live helpers.
    fn keep(&self, handle: JoinHandle<()>) {
        let mut helpers = self.helpers.lock().unwrap_or_else(|p| p.into_inner());
        helpers.retain(|h| !h.is_finished());
        helpers.push(handle);
    }

    /// Decodes the queued blocks this read needs itself, and while one it needs is being
    /// decoded by another thread, decodes other queued blocks instead of waiting: a
    /// reader right behind a helper would otherwise wait for it block after block, and
    /// only one core would decode.
    fn help(&self, lower: &dyn Layer, start: u64, end: u64) {
        let first = self
            .blocks
            .partition_point(|(g, _)| g.saturating_add(BLOCK as u64) <= start);
        for (g, d) in self.blocks.get(first..).unwrap_or_default() {
            if *g >= end {
                break;
            }
            loop {
                match self.cache.state(d.number()) {
                    BlockState::Queued => {
                        let _ = d.decoded(lower, true);
                    }
                    BlockState::Decoding => {
                        if let Some(other) = self
                            .cache
                            .take_queued()
                            .and_then(|n| self.by_number.get(&n))
                        {
                            let _ = other.decoded(lower, false);
                            continue;
                        }
                    }
                    _ => {}
                }
                // Cached, failed (the read reports it), absent (the read decodes its
                // pages), or still being decoded with nothing else to do (it waits).
                break;
            }
        }
    }

    /// Block numbers worth decoding whole for a read of `start..end`, in reading order:
    /// the blocks starting inside it (a partly read first block is decoded page by
    /// page), then up to `ahead` blocks after it.
    fn wanted(&self, start: u64, end: u64, ahead: usize) -> Vec<u64> {
        let first = self.blocks.partition_point(|(g, _)| *g < start);
        let mut out: Vec<u64> = Vec::new();
        let mut past = 0usize;
        for (g, d) in self.blocks.get(first..).unwrap_or_default() {
            let n = d.number();
            if out.last() == Some(&n) {
                continue; // a block split over two segments counts once
            }
            if *g >= end {
                if past >= ahead {
                    break;
                }
                past += 1;
            }
            out.push(n);
        }
        out
    }
}

impl Drop for ReadAhead {
    /// Cancels what is queued and waits for the helpers: each finishes the block it is
    /// decoding (at most one block, about a millisecond) and finds the queue empty.
    fn drop(&mut self) {
        self.cache.cancel_queue();
        let helpers = std::mem::take(self.helpers.get_mut().unwrap_or_else(|p| p.into_inner()));
        for h in helpers {
            // A helper that panicked has nothing left to clean up; its blocks stay
            // unclaimed for nobody.
            let _ = h.join();
        }
    }
}

/// A helper thread: decodes queued blocks until the queue is empty. Errors are left for
/// the reads that need the block to report.
fn helper(cache: &BlockCache, by_number: &HashMap<u64, Arc<BlockDecoder>>, lower: &dyn Layer) {
    while let Some(n) = cache.next_for_helper() {
        if let Some(d) = by_number.get(&n) {
            let _ = d.decoded(lower, false);
        }
    }
}
