//! A small bounded FIFO cache shared by grain tables and decompressed grains.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Keeps at most `max_items` entries and `max_bytes` bytes; the oldest go first.
#[derive(Debug)]
pub struct Fifo<V: ?Sized> {
    map: HashMap<u64, Arc<V>>,
    order: VecDeque<(u64, u64)>,
    bytes: u64,
    max_items: usize,
    max_bytes: u64,
}

impl<V: ?Sized> Fifo<V> {
    /// An empty cache with the given bounds.
    pub fn new(max_items: usize, max_bytes: u64) -> Self {
        Fifo {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: u64) -> Option<Arc<V>> {
        self.map.get(&key).cloned()
    }

    /// Inserts `value` of `size` bytes, evicting the oldest entries to stay in bounds.
    pub fn insert(&mut self, key: u64, value: Arc<V>, size: u64) {
        if size > self.max_bytes || self.map.contains_key(&key) {
            return;
        }
        while self.map.len() >= self.max_items || self.bytes.saturating_add(size) > self.max_bytes {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&k);
            self.bytes = self.bytes.saturating_sub(s);
        }
        self.map.insert(key, value);
        self.order.push_back((key, size));
        self.bytes = self.bytes.saturating_add(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let mut c: Fifo<[u8]> = Fifo::new(2, 100);
        c.insert(1, Arc::from(vec![0u8; 10]), 10);
        c.insert(2, Arc::from(vec![0u8; 10]), 10);
        c.insert(3, Arc::from(vec![0u8; 10]), 10);
        assert!(c.get(1).is_none());
        assert!(c.get(3).is_some());
        c.insert(4, Arc::from(vec![0u8; 95]), 95);
        assert!(c.get(2).is_none() && c.get(3).is_none() && c.get(4).is_some());
        c.insert(5, Arc::from(vec![0u8; 101]), 101);
        assert!(c.get(5).is_none());
    }
}
