//! Targets whose input is a typed value decoded with `arbitrary` (as libFuzzer's typed
//! `fuzz_target!` does): x86 page walks, the core segment map.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use vmsnap::core::{FileLayer, Layer, MemSource, Overlap, Segment, SegmentMapBuilder};
use vmsnap_x86::{Mode, VirtualLayer};

/// `T` from the whole input, or `None` when it does not decode.
fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// x86 page walks over arbitrary physical memory and root, in every mode: translation,
/// reads and mapping enumeration end. The physical memory is the rest of the input as it
/// is (a `&[u8]`: arbitrary's `Vec<u8>` would interleave a continuation byte with each
/// byte, so page tables could not be pasted in).
pub fn x86_paging(input: &[u8]) {
    let Some((mode, root, addrs, memory)) = decode::<(u8, u64, Vec<u64>, &[u8])>(input) else {
        return;
    };
    let mode = match mode % 5 {
        0 => Mode::Bits32 { pse: false },
        1 => Mode::Bits32 { pse: true },
        2 => Mode::Pae,
        3 => Mode::Level4,
        _ => Mode::Level5,
    };
    let phys: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(memory.to_vec()))));
    let v = VirtualLayer::new(phys, mode, root % 0x10_0000, true);
    let mut buf = [0u8; 64];
    for a in addrs.iter().take(64) {
        let off = a % v.len();
        let _ = v.walk(off);
        let n = ((v.len() - off) as usize).min(buf.len());
        let _ = v.read_at(off, &mut buf[..n]);
    }
    let _ = v.mappings_bounded(0..v.len(), 200_000);
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Plain(u16),
    Fill(u8),
    Pattern(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct SegmentInput {
    size: u16,
    last_wins: bool,
    segments: Vec<(u64, u16, Kind)>,
    reads: Vec<(u16, u16)>,
}

/// The core segment map: arbitrary segment lists (overlapping, zero-length, wrapping,
/// past the end) under both overlap rules, then reads and extents over the whole space.
pub fn segment_map(data: &[u8]) {
    let Some(input) = decode::<SegmentInput>(data) else {
        return;
    };
    let lower = FileLayer::new(Arc::new(MemSource::new(vec![0x5Au8; 2 << 16])));
    let size = u64::from(input.size);
    let rule = if input.last_wins {
        Overlap::LastWins
    } else {
        Overlap::Reject
    };
    let mut b = SegmentMapBuilder::new(size, rule);
    for (start, len, kind) in input.segments.into_iter().take(256) {
        let len = u64::from(len);
        let seg = match kind {
            Kind::Plain(lo) => Segment::plain(start, len, u64::from(lo)),
            Kind::Fill(x) => Segment::fill(start, len, x),
            Kind::Pattern(p) => Segment::pattern(start, len, &p),
        };
        let _ = b.push(seg);
    }
    let Ok(map) = b.build() else { return };
    for w in map.segments().windows(2) {
        assert!(w[0].end() <= w[1].start);
    }
    let ext = map.extents(0..size);
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), size);
    for (off, len) in input.reads.into_iter().take(64) {
        let mut buf = vec![0u8; usize::from(len)];
        let r = map.read(&lower, u64::from(off), &mut buf);
        // The lower layer covers every plain segment, so only range decides.
        assert_eq!(r.is_ok(), u64::from(off) + u64::from(len) <= size);
    }
    let _ = lower.len();
}
