//! Bounded, sharded caches: L2 tables by host offset, decompressed clusters by L2 entry.
//! A hit costs one uncontended lock and an `Arc` clone; memory is capped by the limits in
//! [`crate::limits`].

use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;
/// Most entries one shard scans (keeps lookups and evictions cheap).
const MAX_PER_SHARD: usize = 64;

struct Slot<T: ?Sized> {
    key: u64,
    used: u64,
    value: Arc<T>,
}

struct Shard<T: ?Sized> {
    tick: u64,
    slots: Vec<Slot<T>>,
}

/// A sharded LRU cache of `Arc<T>` values keyed by `u64`.
pub struct Cache<T: ?Sized> {
    shards: Vec<Mutex<Shard<T>>>,
    per_shard: usize,
}

impl<T: ?Sized> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

fn mix(key: u64) -> usize {
    let x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 59) as usize % SHARDS
}

impl<T: ?Sized> Cache<T> {
    /// A cache holding at most `budget` bytes of values of `item_bytes` each (at least one
    /// per shard).
    pub fn new(budget: u64, item_bytes: u64) -> Self {
        let per = (budget / (SHARDS as u64 * item_bytes.max(1))).clamp(1, MAX_PER_SHARD as u64);
        Cache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tick: 0,
                        slots: Vec::new(),
                    })
                })
                .collect(),
            per_shard: per as usize,
        }
    }

    /// The value for `key`, if cached.
    pub fn get(&self, key: u64) -> Option<Arc<T>> {
        let mut s = self.shards.get(mix(key))?.lock().ok()?;
        s.tick = s.tick.wrapping_add(1);
        let t = s.tick;
        let slot = s.slots.iter_mut().find(|x| x.key == key)?;
        slot.used = t;
        Some(slot.value.clone())
    }

    /// Caches `value` for `key`, evicting the least recently used entry of its shard.
    pub fn insert(&self, key: u64, value: Arc<T>) {
        let Some(m) = self.shards.get(mix(key)) else {
            return;
        };
        let Ok(mut s) = m.lock() else { return };
        s.tick = s.tick.wrapping_add(1);
        let t = s.tick;
        if let Some(slot) = s.slots.iter_mut().find(|x| x.key == key) {
            slot.value = value;
            slot.used = t;
            return;
        }
        if s.slots.len() < self.per_shard {
            s.slots.push(Slot {
                key,
                used: t,
                value,
            });
        } else if let Some(victim) = s.slots.iter_mut().min_by_key(|x| x.used) {
            *victim = Slot {
                key,
                used: t,
                value,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_lru() {
        let c: Cache<[u8]> = Cache::new(16 * 2 * 10, 10);
        assert_eq!(c.per_shard, 2);
        for k in 0..1000u64 {
            c.insert(k, Arc::from(vec![k as u8; 10]));
        }
        let held: usize = c.shards.iter().map(|s| s.lock().unwrap().slots.len()).sum();
        assert!(held <= 32);
        c.insert(5000, Arc::from(vec![1u8; 10]));
        assert_eq!(c.get(5000).unwrap()[0], 1);
        assert!(c.get(1).is_none());
    }
}
