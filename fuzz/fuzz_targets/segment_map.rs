//! The core segment map: arbitrary segment lists (overlapping, zero-length, wrapping,
//! past the end) under both overlap rules, then reads and extents over the whole space.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vmsnap_core::{FileLayer, Layer, MemSource, Overlap, Segment, SegmentMapBuilder};

#[derive(Arbitrary, Debug)]
enum Kind {
    Plain(u16),
    Fill(u8),
    Pattern(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    size: u16,
    last_wins: bool,
    segments: Vec<(u64, u16, Kind)>,
    reads: Vec<(u16, u16)>,
}

fuzz_target!(|input: Input| {
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
    // Sorted and non-overlapping, whatever went in.
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
});
