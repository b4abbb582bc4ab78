//! VMware checkpoints: arbitrary bytes opened through the `vmware` plugin on a MemSource
//! (no path, so no companion is looked up), then every read, extent and metadata view.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("vmware").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
