//! Hyper-V saved-state guest RAM: the fuzz input becomes the `RamMemoryBlock0` metadata
//! (first 48 bytes) and the `RamBlock0`/`RamBlock1` values (the rest, split at a
//! fuzzed point) of a well-formed container written by the test builder; the RAM layer
//! is opened and read whole (sequential 64 KiB reads: the read-ahead path). A second,
//! cold layer is read page by page in a fuzzed order (the page-only path), and every
//! page must read as it does from whole-block decoding wherever that succeeded. The
//! first block's bytes are also run straight through the record-stream decoders: the
//! full decode and the page-index decode must agree.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("hyperv_ram").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
