//! VHDX, structure-aware: every valid VHDX is at least 4 MiB (regions from 1 MiB, CRC-32C
//! on headers, region tables and log entries), which raw-byte fuzzing never produces.
//! The description drives the independent writer of `vmsnap-vhdx`'s tests: geometry,
//! fixed/dynamic/differencing, parent locator entries, block states (full, partial with
//! a sector bitmap, zero, unmapped, undefined), log entries to replay, then patches.

use arbitrary::Arbitrary;
use vmsnap_core::ExternalPolicy;

use super::{apply, description, Patch};
use crate::vhdx_common::{
    add_log, fix_header, fix_region, log_entry, Spec, BAT_AT, DATA_AT, LOG_AT, META_AT, MIB, W,
};

#[derive(Arbitrary, Debug)]
struct Block {
    index: u8,
    state: u8,
    fill: u8,
    present: Vec<bool>,
}

#[derive(Arbitrary, Debug)]
struct LogWrite {
    zero: bool,
    page: u16,
    pages: u8,
    fill: u8,
}

#[derive(Arbitrary, Debug)]
struct LogEntry {
    position: u8,
    seq: u8,
    tail: u8,
    writes: Vec<LogWrite>,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    vsize: u32,
    big_blocks: bool,
    lss_4k: bool,
    pss_512: bool,
    fixed: bool,
    parent: Option<Vec<(String, String)>>,
    blocks: Vec<Block>,
    log: Vec<LogEntry>,
    log_guid: [u8; 16],
    patches: Vec<Patch>,
    keep_bad_checksums: bool,
}

/// The file a description stands for.
fn build(d: &Desc) -> Vec<u8> {
    let block_size: u32 = if d.big_blocks { 2 << 20 } else { 1 << 20 };
    let lss: u32 = if d.lss_4k { 4096 } else { 512 };
    let vsize = (u64::from(d.vsize) % (8 << 20)).div_ceil(u64::from(lss)) * u64::from(lss);
    let mut spec = Spec::dynamic(vsize.max(u64::from(lss)), block_size, lss);
    spec.fixed = d.fixed;
    spec.pss = if d.pss_512 { 512 } else { 4096 };
    if let Some(p) = &d.parent {
        spec.has_parent = true;
        spec.parent = p.iter().take(6).cloned().collect();
    }
    let sectors = (block_size / lss) as usize;
    let mut seen = std::collections::BTreeSet::new();
    for b in d.blocks.iter().take(3) {
        let index = u64::from(b.index % 16);
        if !seen.insert(index) {
            continue;
        }
        let state = u64::from(b.state % 8);
        let data = || vec![b.fill; block_size as usize];
        spec = match state {
            6 => spec.full(index, data()),
            7 => {
                let mut present = b.present.clone();
                present.resize(sectors, b.fill & 1 == 1);
                spec.partial(index, data(), present)
            }
            s => spec.state(index, s),
        };
    }
    let (mut f, _) = spec.build();
    if !d.log.is_empty() {
        let file_len = f.len() as u64;
        let entries: Vec<(usize, Vec<u8>)> = d
            .log
            .iter()
            .take(3)
            .map(|e| {
                let writes: Vec<W> = e
                    .writes
                    .iter()
                    .take(4)
                    .map(|w| {
                        let off = u64::from(w.page) * 4096 % file_len;
                        if w.zero {
                            W::Zero(off, u64::from(w.pages) * 4096)
                        } else {
                            W::Data(off, vec![w.fill; 4096])
                        }
                    })
                    .collect();
                let bytes = log_entry(
                    u64::from(e.seq) + 1,
                    d.log_guid,
                    &writes,
                    file_len,
                    u32::from(e.tail) * 4096,
                );
                (usize::from(e.position % 64) * 4096, bytes)
            })
            .filter(|(pos, bytes)| pos + bytes.len() <= MIB)
            .collect();
        add_log(&mut f, spec.data_write_guid, d.log_guid, &entries);
    }
    let regions = [
        (64 << 10, 4096),      // header 1
        (128 << 10, 4096),     // header 2
        (192 << 10, 64 << 10), // region table 1
        (256 << 10, 64 << 10), // region table 2
        (LOG_AT, MIB),
        (BAT_AT, MIB),
        (META_AT, MIB),
        (DATA_AT, f.len() - DATA_AT),
    ];
    apply(&mut f, &regions, &d.patches);
    if !d.keep_bad_checksums {
        fix_header(&mut f, 64 << 10);
        fix_header(&mut f, 128 << 10);
        fix_region(&mut f, 192 << 10);
        fix_region(&mut f, 256 << 10);
    }
    f
}

/// The `vhdx` target: a built file (structured mode) or the input itself, opened with
/// external files denied, then read, mapped and described whole.
pub fn run(data: &[u8]) {
    match description::<Desc>(data) {
        Some(d) => {
            let f = build(&d);
            if let Some(layer) = crate::open(
                &vmsnap_vhdx::PLUGIN,
                &[],
                crate::file(&f),
                ExternalPolicy::Deny,
            ) {
                vmsnap_testkit::exercise(&layer, 64 << 20);
            }
        }
        None => crate::open_and_exercise(&vmsnap_vhdx::PLUGIN, data),
    }
}
