//! ELF cores (and kdump-compressed detection): arbitrary bytes probed and opened through
//! the `elf-core` plugin, then the layer (and its `virtual` child) read whole.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("elf_core").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
