//! Small, bounded translation caches: direct-mapped entries in locked shards. Snapshots
//! never change, so entries never go stale. Two are used: one per 4 KiB page (a TLB) and
//! one per last-level table region (the page-structure cache real CPUs have too), so a
//! TLB miss usually costs one entry read instead of a whole walk.

use std::sync::Mutex;

const SHARDS: usize = 16;

/// A cached translation of one 4 KiB virtual page: its physical page, or unmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// Physical address of the 4 KiB page.
    Mapped(u64),
    /// Not mapped.
    Unmapped,
}

/// What covers one last-level region (2 MiB, or 4 MiB in 32-bit paging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// A last-level table at this physical address.
    Table(u64),
    /// A large page; the physical address of the region's first byte.
    Large(u64),
    /// Nothing is mapped in the region.
    Unmapped,
}

/// One shard: `ways` slots of (key, value).
type Shard<V> = Mutex<Vec<Option<(u64, V)>>>;

/// A direct-mapped cache of `SHARDS * ways` entries.
#[derive(Debug)]
pub struct DirectCache<V: Copy> {
    ways: usize,
    shards: Vec<Shard<V>>,
}

impl<V: Copy> DirectCache<V> {
    /// A cache of `SHARDS * ways` entries.
    pub fn new(ways: usize) -> Self {
        DirectCache {
            ways,
            shards: (0..SHARDS).map(|_| Mutex::new(vec![None; ways])).collect(),
        }
    }

    fn slot(&self, key: u64) -> (usize, usize) {
        let k = key as usize;
        ((k / self.ways) % SHARDS, k % self.ways)
    }

    /// The cached value for `key`.
    pub fn get(&self, key: u64) -> Option<V> {
        let (s, w) = self.slot(key);
        let shard = self.shards.get(s)?.lock().ok()?;
        match shard.get(w) {
            Some(Some((k, v))) if *k == key => Some(*v),
            _ => None,
        }
    }

    /// Remembers `v` for `key`.
    pub fn put(&self, key: u64, v: V) {
        let (s, w) = self.slot(key);
        if let Some(Ok(mut shard)) = self.shards.get(s).map(|m| m.lock()) {
            if let Some(e) = shard.get_mut(w) {
                *e = Some((key, v));
            }
        }
    }
}
