//! A small bounded cache of decoded RAM blocks (least recently used out), shared by the
//! decoders and read-ahead helpers of one RAM layer.
//!
//! Each block is in one of four states: absent, queued for read-ahead, being decoded
//! (claimed by one thread), or cached. Decoding happens outside the lock, so threads
//! decode different blocks in parallel, and a claim makes sure no block is decoded twice
//! at once: a reader that needs a block another thread is decoding waits for it.
//! Buffers of evicted blocks are reused, and so are the buffers compressed input is read
//! into. Page indexes of blocks read page by page are kept in a second, larger cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::pages::PageIndex;

/// Most spare buffers kept of each kind: a read-ahead window decodes several blocks
/// before the inserts that free their predecessors' buffers, and a fresh 1 MiB buffer
/// costs 256 page faults.
const SPARE_BUFFERS: usize = 16;

/// Decoded blocks by number, with the blocks being decoded and queued.
#[derive(Debug)]
pub(crate) struct BlockCache {
    inner: Mutex<Inner>,
    /// Signalled whenever a claim ends.
    settled: Condvar,
    capacity: usize,
    inputs: Mutex<Vec<Vec<u8>>>,
    indexes: Mutex<Indexes>,
    index_capacity: usize,
}

#[derive(Debug, Default)]
struct Indexes {
    tick: u64,
    items: HashMap<u64, (Arc<PageIndex>, u64)>,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    /// (block, bytes, last use).
    items: Vec<(u64, Arc<Vec<u8>>, u64)>,
    spare: Vec<Vec<u8>>,
    /// Blocks claimed by a thread that is decoding them.
    decoding: Vec<u64>,
    /// Blocks waiting for a read-ahead helper, in the order they will be read. Never
    /// non-empty without a helper running to drain it.
    queued: VecDeque<u64>,
    /// Read-ahead helper threads running.
    helpers: usize,
    /// Blocks whose last whole decode failed (most recent last, at most `capacity`), so
    /// read-ahead does not try them again and again.
    failed: VecDeque<u64>,
}

impl Inner {
    fn cached(&mut self, n: u64) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let t = self.tick;
        let item = self.items.iter_mut().find(|(k, _, _)| *k == n)?;
        item.2 = t;
        Some(item.1.clone())
    }

    fn state(&self, n: u64) -> BlockState {
        if self.items.iter().any(|(k, _, _)| *k == n) {
            BlockState::Cached
        } else if self.decoding.contains(&n) {
            BlockState::Decoding
        } else if self.queued.contains(&n) {
            BlockState::Queued
        } else if self.failed.contains(&n) {
            BlockState::Failed
        } else {
            BlockState::Absent
        }
    }
}

/// Where a block is in its way to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum BlockState {
    /// Neither cached, nor being decoded, nor queued.
    Absent,
    /// Waiting for a read-ahead helper.
    Queued,
    /// A thread is decoding it.
    Decoding,
    /// Decoded and cached.
    Cached,
    /// Its last whole decode failed.
    Failed,
}

/// The outcome of [`BlockCache::claim`].
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Claim<'a> {
    /// The block is cached.
    Cached(Arc<Vec<u8>>),
    /// The caller decodes it and hands the result to the ticket.
    Mine(Ticket<'a>),
    /// Another thread is decoding it (only when the caller did not want to wait).
    Busy,
}

/// The right to decode one block. Dropping it without [`Ticket::finish`] (a failed
/// decode) releases the claim, so waiting readers decode the block themselves and see
/// the error for their own read.
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    cache: &'a BlockCache,
    block: u64,
    finished: bool,
}

impl Ticket<'_> {
    /// Caches the decoded block and releases the claim.
    pub fn finish(mut self, data: Vec<u8>) -> Arc<Vec<u8>> {
        self.finished = true;
        let mut g = self.cache.lock();
        g.failed.retain(|&k| k != self.block);
        self.cache.insert_locked(&mut g, self.block, Arc::new(data))
        // The claim itself ends in `drop`.
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut g = self.cache.lock();
        g.decoding.retain(|&k| k != self.block);
        if !self.finished && !g.failed.contains(&self.block) {
            if g.failed.len() >= self.cache.capacity {
                g.failed.pop_front();
            }
            g.failed.push_back(self.block);
        }
        drop(g);
        self.cache.settled.notify_all();
    }
}

impl BlockCache {
    /// A cache of at most `capacity` decoded blocks and `index_capacity` page indexes.
    pub fn new(capacity: usize, index_capacity: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner::default()),
            settled: Condvar::new(),
            capacity: capacity.max(1),
            inputs: Mutex::new(Vec::new()),
            indexes: Mutex::new(Indexes::default()),
            index_capacity: index_capacity.max(1),
        }
    }

    /// Blocks the cache holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No update of `Inner` can be left half done by a panic, so a poisoned lock is
        // still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decoded block `n`, if cached.
    #[cfg(test)]
    pub fn get(&self, n: u64) -> Option<Arc<Vec<u8>>> {
        self.lock().cached(n)
    }

    /// Whether block `n` is cached (without touching its age).
    pub fn contains(&self, n: u64) -> bool {
        self.state(n) == BlockState::Cached
    }

    /// Where block `n` is.
    pub fn state(&self, n: u64) -> BlockState {
        self.lock().state(n)
    }

    /// The cached block `n`, or the right to decode it. When another thread is decoding
    /// it, waits for that thread when `wait` is set (then returns its result, or the
    /// right to try again if it failed), else returns [`Claim::Busy`].
    pub fn claim(&self, n: u64, wait: bool) -> Claim<'_> {
        let mut g = self.lock();
        loop {
            if let Some(b) = g.cached(n) {
                return Claim::Cached(b);
            }
            if !g.decoding.contains(&n) {
                g.queued.retain(|&k| k != n);
                g.decoding.push(n);
                return Claim::Mine(Ticket {
                    cache: self,
                    block: n,
                    finished: false,
                });
            }
            if !wait {
                return Claim::Busy;
            }
            g = self.settled.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Queues the blocks of `blocks` that are absent (up to `limit` queued in all) for
    /// read-ahead helpers, when helpers may run: at most `max_helpers` in all, and
    /// nothing is queued when none may. Returns how many new helpers the caller must
    /// start; they are already counted, and each calls [`BlockCache::next_for_helper`]
    /// until it returns `None` (or [`BlockCache::helper_not_started`]).
    pub fn enqueue(
        &self,
        blocks: impl IntoIterator<Item = u64>,
        limit: usize,
        max_helpers: usize,
    ) -> usize {
        let mut g = self.lock();
        if g.helpers == 0 && max_helpers == 0 {
            return 0;
        }
        for n in blocks {
            if g.queued.len() >= limit {
                break;
            }
            if g.state(n) == BlockState::Absent {
                g.queued.push_back(n);
            }
        }
        let start = g.queued.len().min(max_helpers).saturating_sub(g.helpers);
        g.helpers += start;
        start
    }

    /// The next queued block for a helper, taken off the queue; `None` when the queue
    /// is empty, and the helper is then no longer counted and must stop.
    pub fn next_for_helper(&self) -> Option<u64> {
        let mut g = self.lock();
        let n = g.queued.pop_front();
        if n.is_none() {
            g.helpers = g.helpers.saturating_sub(1);
            drop(g);
            self.settled.notify_all();
        }
        n
    }

    /// Empties the queue: helpers stop after the block they are decoding.
    pub fn cancel_queue(&self) {
        self.lock().queued.clear();
    }

    /// The next queued block, taken off the queue by a reader that would otherwise wait
    /// (helpers use [`BlockCache::next_for_helper`]).
    pub fn take_queued(&self) -> Option<u64> {
        self.lock().queued.pop_front()
    }

    /// A counted helper could not be started: uncounts it, and when no helper is left,
    /// drops the queue (queued blocks are then decoded by their readers).
    pub fn helper_not_started(&self) {
        let mut g = self.lock();
        g.helpers = g.helpers.saturating_sub(1);
        if g.helpers == 0 {
            g.queued.clear();
        }
        drop(g);
        self.settled.notify_all();
    }

    /// Waits until no block is queued or being decoded and no helper runs (tests use it
    /// to observe read-ahead; readers never need to).
    pub fn wait_idle(&self) {
        let mut g = self.lock();
        while !g.decoding.is_empty() || !g.queued.is_empty() || g.helpers > 0 {
            g = self.settled.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A buffer of `len` bytes to decode into (a recycled one when possible).
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        let spare = self.lock().spare.pop();
        match spare {
            Some(mut v) => {
                v.resize(len, 0);
                v
            }
            None => vec![0u8; len],
        }
    }

    fn insert_locked(&self, g: &mut Inner, n: u64, data: Arc<Vec<u8>>) -> Arc<Vec<u8>> {
        g.tick += 1;
        let t = g.tick;
        if let Some(item) = g.items.iter_mut().find(|(k, _, _)| *k == n) {
            item.2 = t;
            return item.1.clone();
        }
        if g.items.len() >= self.capacity {
            let oldest = g
                .items
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, _, age))| *age)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                let (_, old, _) = g.items.swap_remove(i);
                if let Ok(v) = Arc::try_unwrap(old) {
                    if g.spare.len() < SPARE_BUFFERS {
                        g.spare.push(v);
                    }
                }
            }
        }
        g.items.push((n, data.clone(), t));
        data
    }

    /// A buffer to read compressed input into (a recycled one when possible; its
    /// length is whatever it last had, so callers grow it and use a prefix).
    pub fn input(&self) -> Vec<u8> {
        self.inputs
            .lock()
            .ok()
            .and_then(|mut g| g.pop())
            .unwrap_or_default()
    }

    /// Returns an input buffer for reuse.
    pub fn recycle_input(&self, v: Vec<u8>) {
        if let Ok(mut g) = self.inputs.lock() {
            if g.len() < SPARE_BUFFERS {
                g.push(v);
            }
        }
    }

    /// The page index of block `n`, if cached.
    pub fn index(&self, n: u64) -> Option<Arc<PageIndex>> {
        let mut g = self.indexes.lock().ok()?;
        g.tick += 1;
        let t = g.tick;
        let item = g.items.get_mut(&n)?;
        item.1 = t;
        Some(item.0.clone())
    }

    /// Stores the page index of block `n`, evicting the least recently used when full.
    pub fn insert_index(&self, n: u64, index: Arc<PageIndex>) {
        let Ok(mut g) = self.indexes.lock() else {
            return;
        };
        g.tick += 1;
        let t = g.tick;
        if g.items.len() >= self.index_capacity && !g.items.contains_key(&n) {
            // O(capacity) per eviction, only on a miss that also walked a whole block.
            let oldest = g
                .items
                .iter()
                .min_by_key(|(_, (_, age))| *age)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                g.items.remove(&k);
            }
        }
        g.items.insert(n, (index, t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl BlockCache {
        fn insert(&self, n: u64, data: Vec<u8>) {
            let Claim::Mine(t) = self.claim(n, false) else {
                panic!("block {n} not absent")
            };
            t.finish(data);
        }

        fn queued(&self) -> usize {
            self.lock().queued.len()
        }
    }

    #[test]
    fn a_claim_is_exclusive_and_released_on_drop() {
        let c = BlockCache::new(2, 2);
        let Claim::Mine(t) = c.claim(7, false) else {
            panic!("first claim")
        };
        assert_eq!(c.state(7), BlockState::Decoding);
        assert!(matches!(c.claim(7, false), Claim::Busy));
        drop(t); // a failed decode
        assert_eq!(c.state(7), BlockState::Failed);
        assert_eq!(c.enqueue([7], 4, 1), 0, "failed blocks are not read ahead");
        let Claim::Mine(t) = c.claim(7, false) else {
            panic!("claim after release")
        };
        t.finish(vec![1; 4]);
        assert!(matches!(c.claim(7, false), Claim::Cached(b) if b[..] == [1; 4]));
    }

    #[test]
    fn a_waiting_reader_gets_the_other_threads_block() {
        let c = Arc::new(BlockCache::new(2, 2));
        let Claim::Mine(t) = c.claim(1, true) else {
            panic!()
        };
        let c2 = c.clone();
        let waiter = std::thread::spawn(move || match c2.claim(1, true) {
            Claim::Cached(b) => b[0],
            _ => 0,
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.finish(vec![9; 4]);
        assert_eq!(waiter.join().unwrap(), 9);
    }

    #[test]
    fn queue_takes_absent_blocks_only_up_to_the_limit() {
        let c = BlockCache::new(4, 2);
        c.insert(1, vec![0]);
        // No helper may run: nothing is queued.
        assert_eq!(c.enqueue([0, 2], 3, 0), 0);
        assert_eq!(c.queued(), 0);
        assert_eq!(
            c.enqueue([0, 1, 2, 2, 3, 4], 3, 2),
            2,
            "two helpers to start"
        );
        assert_eq!(c.state(1), BlockState::Cached);
        assert_eq!(c.state(3), BlockState::Queued);
        assert_eq!(c.state(4), BlockState::Absent);
        // Helpers already running are counted.
        assert_eq!(c.enqueue([5], 9, 2), 0);
        // A reader claiming a queued block takes it off the queue.
        let Claim::Mine(_t) = c.claim(2, true) else {
            panic!()
        };
        assert_eq!(c.next_for_helper(), Some(0));
        assert_eq!(c.next_for_helper(), Some(3));
        assert_eq!(c.next_for_helper(), Some(5));
        assert_eq!(c.next_for_helper(), None, "first helper stops");
        c.helper_not_started();
        assert_eq!(c.enqueue([6], 9, 0), 0, "no helper left, none may start");
        assert_eq!(c.queued(), 0);
    }

    #[test]
    fn eviction_is_least_recently_used() {
        let c = BlockCache::new(2, 2);
        c.insert(1, vec![1]);
        c.insert(2, vec![2]);
        assert!(c.get(1).is_some());
        c.insert(3, vec![3]);
        assert!(c.contains(1) && c.contains(3) && !c.contains(2));
    }
}
