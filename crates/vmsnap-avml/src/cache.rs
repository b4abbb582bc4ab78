//! A small direct-mapped cache of decoded chunks, shared by the ranges of one file: a
//! read of a few bytes decodes its chunk once, and the reads after it in the same chunk
//! copy from here.

use std::sync::{Arc, Mutex};

use crate::raw::CACHE_SLOTS;

/// One slot: a chunk's number in the file and its decoded bytes.
type Slot = Mutex<Option<(u64, Arc<[u8]>)>>;

/// Decoded chunks by their number in the file (consecutive chunks use different slots).
#[derive(Debug)]
pub struct ChunkCache {
    slots: Vec<Slot>,
}

impl ChunkCache {
    /// An empty cache of [`CACHE_SLOTS`] chunks.
    pub fn new() -> Self {
        ChunkCache {
            slots: (0..CACHE_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, number: u64) -> Option<&Slot> {
        self.slots.get((number % CACHE_SLOTS as u64) as usize)
    }

    /// Chunk `number`, if cached.
    pub fn get(&self, number: u64) -> Option<Arc<[u8]>> {
        let s = self.slot(number)?.lock().ok()?;
        match &*s {
            Some((k, v)) if *k == number => Some(v.clone()),
            _ => None,
        }
    }

    /// Caches chunk `number`, replacing what shared its slot.
    pub fn insert(&self, number: u64, bytes: Arc<[u8]>) {
        if let Some(Ok(mut s)) = self.slot(number).map(Mutex::lock) {
            *s = Some((number, bytes));
        }
    }
}

impl Default for ChunkCache {
    fn default() -> Self {
        Self::new()
    }
}
