//! L2 table access: tables are read in 4 KiB chunks of 512 entries and kept in a bounded
//! cache, so a table of any size (up to 1 GiB with 16 × 64 MiB clusters) costs memory only
//! for the parts in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vmsnap_core::{Layer, Result, ResultExt};

use crate::raw::{L2_CACHE_CHUNKS, L2_CHUNK_ENTRIES};

/// One chunk of L2 entries.
pub type Chunk = Arc<[u64; L2_CHUNK_ENTRIES]>;

/// A bounded cache of L2 chunks keyed by their file offset, with FIFO eviction.
#[derive(Debug, Default)]
pub struct L2Cache {
    inner: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    index: HashMap<u64, usize>,
    slots: Vec<(u64, Chunk)>,
    hand: usize,
}

impl L2Cache {
    /// The chunk at file offset `at`, read from `lower` on a miss.
    pub fn get(&self, lower: &dyn Layer, at: u64) -> Result<Chunk> {
        if let Ok(s) = self.inner.lock() {
            if let Some(c) = s.index.get(&at).and_then(|&i| s.slots.get(i)) {
                return Ok(c.1.clone());
            }
        }
        // Read outside the lock; a concurrent miss on the same chunk just reads it twice.
        let mut raw = [0u8; L2_CHUNK_ENTRIES * 8];
        lower
            .read_at(at, &mut raw)
            .in_layer("qed")
            .during("reading an L2 table")?;
        let mut entries = [0u64; L2_CHUNK_ENTRIES];
        for (e, b) in entries.iter_mut().zip(raw.chunks_exact(8)) {
            *e = <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
        }
        let chunk: Chunk = Arc::new(entries);
        if let Ok(mut s) = self.inner.lock() {
            s.insert(at, chunk.clone());
        }
        Ok(chunk)
    }
}

impl Slots {
    fn insert(&mut self, at: u64, chunk: Chunk) {
        if self.index.contains_key(&at) {
            return;
        }
        if self.slots.len() < L2_CACHE_CHUNKS {
            self.index.insert(at, self.slots.len());
            self.slots.push((at, chunk));
            return;
        }
        let i = self.hand % self.slots.len();
        self.hand = i + 1;
        if let Some(slot) = self.slots.get_mut(i) {
            self.index.remove(&slot.0);
            *slot = (at, chunk);
            self.index.insert(at, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::{FileLayer, MemSource};

    #[test]
    fn cache_is_bounded_and_correct() {
        let mut bytes = vec![0u8; 4096 * 8];
        for (i, c) in bytes.chunks_exact_mut(8).enumerate() {
            c.copy_from_slice(&(i as u64).to_le_bytes());
        }
        let l = FileLayer::new(Arc::new(MemSource::new(bytes)));
        let c = L2Cache::default();
        for round in 0..3 {
            for k in 0..8u64 {
                let ch = c.get(&l, k * 4096).unwrap();
                assert_eq!(ch[0], k * 512, "round {round}");
                assert_eq!(ch[511], k * 512 + 511);
            }
        }
        assert!(c.get(&l, 8 * 4096).is_err());
        let s = c.inner.lock().unwrap();
        assert!(s.slots.len() <= L2_CACHE_CHUNKS);
        assert_eq!(s.index.len(), s.slots.len());
    }
}
