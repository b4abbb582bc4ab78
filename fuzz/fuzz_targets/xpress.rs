//! XPRESS plain LZ77 and the RAM-block page-record stream: arbitrary input decoded into
//! bounded buffers; the first byte picks the output size. Must never panic or write out
//! of bounds, and a successful decode reports at most the buffer size.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("xpress").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
