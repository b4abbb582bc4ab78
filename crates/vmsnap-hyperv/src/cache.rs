//! A small bounded cache of decoded RAM blocks (least recently used out), shared by the
//! decoders of one RAM layer. Decoding happens outside the lock, so threads decode
//! different blocks in parallel; buffers of evicted blocks are reused.

use std::sync::{Arc, Mutex};

/// Decoded blocks by number.
#[derive(Debug)]
pub struct BlockCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    items: Vec<(u64, Arc<Vec<u8>>, u64)>,
    spare: Vec<Vec<u8>>,
}

impl BlockCache {
    /// A cache of at most `capacity` blocks.
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
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
                    if g.spare.len() < 4 {
                        g.spare.push(v);
                    }
                }
            }
        }
        g.items.push((n, data.clone(), t));
        data
    }
}
