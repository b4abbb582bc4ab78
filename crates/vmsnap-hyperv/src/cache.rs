//! A small bounded cache of decoded RAM blocks (least recently used out), shared by the
//! decoders of one RAM layer. Decoding happens outside the lock, so threads decode
//! different blocks in parallel; buffers of evicted blocks are reused, and so are the
//! buffers compressed input is read into. Page indexes of blocks read page by page are
//! kept in a second, larger bounded cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::pages::PageIndex;

/// Most spare buffers kept of each kind: a read-ahead window decodes several blocks
/// before the inserts that free their predecessors' buffers, and a fresh 1 MiB buffer
/// costs 256 page faults.
const SPARE_BUFFERS: usize = 16;

/// Decoded blocks by number.
#[derive(Debug)]
pub struct BlockCache {
    inner: Mutex<Inner>,
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
    items: Vec<(u64, Arc<Vec<u8>>, u64)>,
    spare: Vec<Vec<u8>>,
}

impl BlockCache {
    /// A cache of at most `capacity` decoded blocks and `index_capacity` page indexes.
    pub fn new(capacity: usize, index_capacity: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            inputs: Mutex::new(Vec::new()),
            indexes: Mutex::new(Indexes::default()),
            index_capacity: index_capacity.max(1),
        }
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

    /// The decoded block `n`, if cached.
    pub fn get(&self, n: u64) -> Option<Arc<Vec<u8>>> {
        let mut g = self.inner.lock().ok()?;
        g.tick += 1;
        let t = g.tick;
        let item = g.items.iter_mut().find(|(k, _, _)| *k == n)?;
        item.2 = t;
        Some(item.1.clone())
    }

    /// Whether block `n` is cached (without touching its age).
    pub fn contains(&self, n: u64) -> bool {
        self.inner
            .lock()
            .map(|g| g.items.iter().any(|(k, _, _)| *k == n))
            .unwrap_or(false)
    }

    /// A buffer of `len` bytes to decode into (a recycled one when possible).
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        let spare = self.inner.lock().ok().and_then(|mut g| g.spare.pop());
        match spare {
            Some(mut v) => {
                v.resize(len, 0);
                v
            }
            None => vec![0u8; len],
        }
    }

    /// Stores block `n`, evicting the least recently used one when full.
    pub fn insert(&self, n: u64, data: Vec<u8>) -> Arc<Vec<u8>> {
        let data = Arc::new(data);
        let Ok(mut g) = self.inner.lock() else {
            return data;
        };
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
}
