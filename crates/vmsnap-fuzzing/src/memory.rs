//! Targets whose input is a record stream inside a Hyper-V saved state rather than a
//! whole file: guest RAM blocks and XPRESS.

use crate::hyperv_common;
use hyperv_common::builder::{build, Opts, K, V};
use vmsnap_hyperv::pages::{decode_block, decode_range, PageIndex, BLOCK, PAGE};
use vmsnap_hyperv::{pages, xpress as lz, PLUGIN, RAM_PLUGIN};

/// Every page of `stream` through its page index equals the full decode, when that
/// succeeds; a failed index walk means a failed full decode.
fn check_stream(stream: &[u8]) {
    let mut full = vec![0u8; BLOCK];
    let whole = decode_block(stream, &mut full, 0);
    let Ok(index) = PageIndex::build(stream, 0) else {
        assert!(whole.is_err(), "index walk failed on a block that decodes");
        return;
    };
    if whole.is_err() {
        return;
    }
    let mut page = vec![0u8; PAGE];
    let mut scratch = Vec::new();
    for p in 0..BLOCK / PAGE {
        let (a, b) = (p * PAGE, (p + 1) * PAGE);
        let data_end = b.min(index.produced());
        if data_end <= a {
            page.fill(0);
        } else {
            let (s, e, out) = index.input_range(a, data_end).expect("index range");
            decode_range(
                &stream[s..e],
                s as u64,
                out,
                &index,
                a,
                &mut page,
                &mut scratch,
            )
            .expect("a page of a block that decodes");
        }
        assert!(page == full[a..b], "page {p} differs from the full decode");
    }
}

/// Hyper-V saved-state guest RAM: the input becomes the `RamMemoryBlock0` metadata (first
/// 48 bytes) and the `RamBlock0`/`RamBlock1` values (the rest, split at a fuzzed point) of
/// a well-formed container; the RAM layer is read whole (the read-ahead path), a cold
/// layer page by page in a fuzzed order (the page-only path), and both must agree; the
/// first block also goes straight through the record-stream decoders.
pub fn hyperv_ram(data: &[u8]) {
    if data.len() < 50 {
        return;
    }
    let (meta, rest) = data.split_at(48);
    let cut = usize::from(rest[0]) * rest.len() / 256;
    let (b0, b1) = rest[1..].split_at(cut.min(rest.len() - 1));
    check_stream(b0);
    // Keep the guest small: clamp the page count and start.
    let mut meta = meta.to_vec();
    let pages = u64::from_le_bytes(meta[8..16].try_into().unwrap()) % 2048;
    meta[8..16].copy_from_slice(&pages.to_le_bytes());
    let start = u64::from_le_bytes(meta[24..32].try_into().unwrap()) % 4096;
    meta[24..32].copy_from_slice(&start.to_le_bytes());
    let tree = vec![K::node(
        "savedstate",
        vec![
            K::leaf("VmVersion", V::Int(0x900)),
            K::leaf("RamMemoryBlock0", V::Arr(meta)),
            K::leaf("RamBlock0", V::Arr(b0.to_vec())),
            K::leaf("RamBlock1", V::Arr(b1.to_vec())),
            K::node(
                "savedVM",
                vec![K::leaf("partition_state", V::Arr(b1.to_vec()))],
            ),
        ],
    )];
    let bytes = build(&tree, &Opts::default()).bytes;
    let Ok(layer) = hyperv_common::open_with(bytes.clone(), &[&PLUGIN, &RAM_PLUGIN]) else {
        return;
    };
    vmsnap_testkit::exercise(&layer, 64 << 20);

    // Whole-block reads (full decode) against page reads of a cold layer, in an order
    // taken from the input.
    let Ok(cold) = hyperv_common::open_with(bytes, &[&PLUGIN, &RAM_PLUGIN]) else {
        return;
    };
    let len = layer.len().min(16 << 20);
    let blocks = len.div_ceil(BLOCK as u64);
    let mut whole = vec![0u8; BLOCK];
    let mut page = vec![0u8; PAGE];
    for i in 0..blocks {
        let at = i * BLOCK as u64;
        let n = (len - at).min(BLOCK as u64) as usize;
        if layer.read_at(at, &mut whole[..n]).is_err() {
            continue;
        }
        let pages_n = n.div_ceil(PAGE);
        let step = 1 + usize::from(data[(i as usize) % data.len()]) % 7;
        for k in 0..pages_n {
            let p = (k * step + usize::from(data[k % data.len()])) % pages_n;
            let a = p * PAGE;
            let m = PAGE.min(n - a);
            cold.read_at(at + a as u64, &mut page[..m])
                .expect("a page of a block that reads whole");
            assert!(
                page[..m] == whole[a..a + m],
                "page read differs at {:#x}",
                at + a as u64
            );
        }
    }
}

/// XPRESS plain LZ77 and the RAM-block page-record stream on arbitrary input, into
/// bounded buffers (the first byte picks the output size); a decode reports at most the
/// buffer size.
pub fn xpress(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let mut out = vec![0u8; (usize::from(sel) + 1) * 256];
    if let Ok(n) = lz::decompress(input, &mut out) {
        assert!(n <= out.len());
    }
    let mut block = vec![0u8; pages::BLOCK];
    if let Ok(n) = pages::decode_block(input, &mut block, 0) {
        assert!(n <= pages::BLOCK);
    }
}
