//! XPRESS plain LZ77 and the RAM-block page-record stream: arbitrary input decoded into
//! bounded buffers; the first byte picks the output size. Must never panic or write out
//! of bounds, and a successful decode reports at most the buffer size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnap_hyperv::{pages, xpress};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let mut out = vec![0u8; (usize::from(sel) + 1) * 256];
    if let Ok(n) = xpress::decompress(input, &mut out) {
        assert!(n <= out.len());
    }
    let mut block = vec![0u8; pages::BLOCK];
    if let Ok(n) = pages::decode_block(input, &mut block, 0) {
        assert!(n <= pages::BLOCK);
    }
});
