//! The dump's page bitmaps: one bit per page frame, least significant bit first, set when
//! the page exists (first bitmap) or was dumped (second bitmap). The second bitmap is kept
//! with a rank index, because a dumped page's descriptor is found by how many dumped pages
//! come before it.

/// Words per rank entry (512 page frames).
const WORDS_PER_RANK: usize = 8;

/// A bitmap of `pages` page frames with a rank index.
#[derive(Debug, Clone)]
pub struct PageBitmap {
    words: Vec<u64>,
    ranks: Vec<u64>,
    pages: u64,
    count: u64,
}

impl PageBitmap {
    /// The bitmap of the first `pages` bits of `bytes` (bits past them are ignored; bytes
    /// missing for them read as clear).
    pub fn new(bytes: &[u8], pages: u64) -> Self {
        let nwords = usize::try_from(pages.div_ceil(64)).unwrap_or(usize::MAX);
        let mut words: Vec<u64> = bytes
            .chunks(8)
            .take(nwords)
            .map(|c| {
                let mut w = [0u8; 8];
                for (d, s) in w.iter_mut().zip(c) {
                    *d = *s;
                }
                u64::from_le_bytes(w)
            })
            .collect();
        words.resize(nwords.min(words.len().max(nwords)), 0);
        // Clear the bits past the last page.
        if !pages.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (pages % 64)) - 1;
            }
        }
        let mut ranks = Vec::with_capacity(words.len() / WORDS_PER_RANK + 1);
        let mut count = 0u64;
        for chunk in words.chunks(WORDS_PER_RANK) {
            ranks.push(count);
            count += chunk.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        PageBitmap {
            words,
            ranks,
            pages,
            count,
        }
    }

    /// Whether page frame `pfn` is set.
    #[inline]
    pub fn get(&self, pfn: u64) -> bool {
        if pfn >= self.pages {
            return false;
        }
        self.words
            .get((pfn / 64) as usize)
            .is_some_and(|w| w >> (pfn % 64) & 1 != 0)
    }

    /// How many set bits come before `pfn`.
    #[inline]
    pub fn rank(&self, pfn: u64) -> u64 {
        let pfn = pfn.min(self.pages);
        let word = (pfn / 64) as usize;
        let block = word / WORDS_PER_RANK;
        let mut n = self.ranks.get(block).copied().unwrap_or(self.count);
        let first = block * WORDS_PER_RANK;
        for w in self.words.get(first..word).unwrap_or_default() {
            n += u64::from(w.count_ones());
        }
        if !pfn.is_multiple_of(64) {
            if let Some(w) = self.words.get(word) {
                n += u64::from((w & ((1u64 << (pfn % 64)) - 1)).count_ones());
            }
        }
        n
    }

    /// How many bits are set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The words, 64 page frames each.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_the_set_bits_before() {
        let mut bytes = vec![0u8; 200];
        for pfn in [0u64, 3, 64, 511, 512, 513, 1000, 1599] {
            bytes[(pfn / 8) as usize] |= 1 << (pfn % 8);
        }
        let b = PageBitmap::new(&bytes, 1600);
        assert_eq!(b.count(), 8);
        assert!(b.get(511) && b.get(512) && !b.get(2) && !b.get(5000));
        assert_eq!(b.rank(0), 0);
        assert_eq!(b.rank(4), 2);
        assert_eq!(b.rank(512), 4);
        assert_eq!(b.rank(1599), 7);
        assert_eq!(b.rank(1600), 8);
        // Bits past the last page are ignored.
        let c = PageBitmap::new(&bytes, 1000);
        assert_eq!(c.count(), 6);
    }
}
