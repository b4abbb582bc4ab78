//! A small, bounded translation cache: 4096 direct-mapped entries in 16 locked shards,
//! keyed by virtual page number. Snapshots never change, so entries never go stale.

use std::sync::Mutex;

const SHARDS: usize = 16;
const WAYS: usize = 256;

/// A cached translation of one 4 KiB virtual page: its physical page, or unmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// Physical address of the 4 KiB page.
    Mapped(u64),
    /// Not mapped.
    Unmapped,
}

/// The cache.
#[derive(Debug)]
pub struct TranslationCache {
    shards: Vec<Mutex<Vec<(u64, Cached)>>>,
}

impl Default for TranslationCache {
    fn default() -> Self {
        TranslationCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(vec![(u64::MAX, Cached::Unmapped); WAYS]))
                .collect(),
        }
    }
}

impl TranslationCache {
    fn slot(vpn: u64) -> (usize, usize) {
        ((vpn as usize / WAYS) % SHARDS, vpn as usize % WAYS)
    }

    /// The cached translation of page `vpn`.
    pub fn get(&self, vpn: u64) -> Option<Cached> {
        let (s, w) = Self::slot(vpn);
        let shard = self.shards.get(s)?.lock().ok()?;
        match shard.get(w) {
            Some(&(k, v)) if k == vpn => Some(v),
            _ => None,
        }
    }

    /// Remembers the translation of page `vpn`.
    pub fn put(&self, vpn: u64, v: Cached) {
        let (s, w) = Self::slot(vpn);
        if let Some(Ok(mut shard)) = self.shards.get(s).map(|m| m.lock()) {
            if let Some(e) = shard.get_mut(w) {
                *e = (vpn, v);
            }
        }
    }
}
