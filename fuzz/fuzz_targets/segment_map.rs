//! The core segment map: arbitrary segment lists (overlapping, zero-length, wrapping,
//! past the end) under both overlap rules, then reads and extents over the whole space.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("segment_map").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
