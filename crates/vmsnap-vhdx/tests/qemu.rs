//! VHDX files made by qemu-img (corpus/vhdx/make.sh, run into a scratch directory) and by
//! the builder where qemu-img cannot make them (4 KiB logical sectors, a dirty log),
//! read byte-exact against `qemu-img convert -O raw`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use vmsnap_core::{ExtentKind, ExternalPolicy, Layer, SniffWindow};
use vmsnap_testkit::{assert_same_bytes, read_all, run, run_ok, scratch_dir, workspace_root};

fn samples() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch_dir("vhdx-samples");
        run(Command::new("bash")
            .arg(workspace_root().join("corpus/vhdx/make.sh"))
            .arg(&d)
            .current_dir(workspace_root()));
        d
    })
}

fn check(path: &std::path::Path) -> std::sync::Arc<dyn Layer> {
    let l = open_path(path, ExternalPolicy::Deny).unwrap();
    let want = oracle(path, &["-f", "vhdx"]);
    assert_same_bytes(&read_all(l.as_ref()), &want, &path.display().to_string());
    l
}

#[test]
fn qemu_dynamic_1m_blocks() {
    let p = samples().join("dynamic-1m.vhdx");
    let b = std::fs::read(&p).unwrap();
    let w = SniffWindow::of_bytes(&b[..65536], &b[b.len() - 65536..], b.len() as u64);
    assert!((vmsnap_vhdx::PLUGIN.probe)(&w).is_yes());
    let l = check(&p);
    let d = l.describe();
    assert_eq!(d["format"], "vhdx");
    assert_eq!(d["virtual_size"], 8 << 20);
    assert_eq!(d["subformat"], "dynamic");
    assert_eq!(d["block_size"], 1 << 20);
    assert_eq!(d["logical_sector_size"], 512);
    assert_eq!(d["chunk_ratio"], 4096);
    assert_eq!(d["block_states"]["fully_present"], 3);
    assert_eq!(d["log"]["replayed"], false);
    assert!(d["creator"].as_str().unwrap().starts_with("QEMU"));
    let ext = l.extents(0..l.len()).unwrap();
    let data: u64 = ext
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| e.len)
        .sum();
    assert_eq!(data, 3 << 20);
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Zero));
    assert!(l.findings().is_empty(), "{:?}", l.findings());
}

#[test]
fn qemu_dynamic_32m_blocks_with_partial_last_block() {
    let l = check(&samples().join("dynamic-32m.vhdx"));
    assert_eq!(l.len(), 40 << 20);
    assert_eq!(l.describe()["block_size"], 32 << 20);
    assert_eq!(l.describe()["block_states"]["fully_present"], 2);
}

#[test]
fn qemu_fixed() {
    let l = check(&samples().join("fixed-1m.vhdx"));
    assert_eq!(l.describe()["subformat"], "fixed");
    // qemu marks unwritten blocks ZERO even in fixed images (block_state_zero).
    assert_eq!(l.describe()["block_states"]["fully_present"], 2);
    assert_eq!(l.describe()["block_states"]["zero"], 2);
    let ext = l.extents(0..l.len()).unwrap();
    assert!(ext
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .all(|e| e.lower_offset.is_some()));
}

#[test]
fn builder_4k_logical_sectors() {
    let mut s = Spec::dynamic(6 << 20, 1 << 20, 4096)
        .full(0, pattern(1, 1 << 20))
        .state(1, 2)
        .full(4, pattern(2, 1 << 20))
        .state(5, 3);
    s.pss = 4096;
    let (f, _) = s.build();
    let d = scratch_dir("vhdx-4k");
    let p = d.join("4k.vhdx");
    std::fs::write(&p, &f).unwrap();
    // qemu-img 10 refuses 4 KiB logical sectors ("Operation not supported"), so the
    // builder's expectation is the oracle here.
    let l = open_path(&p, ExternalPolicy::Deny).unwrap();
    assert_eq!(l.describe()["logical_sector_size"], 4096);
    assert_eq!(l.describe()["chunk_ratio"], 32768);
    assert_same_bytes(
        &read_all(l.as_ref()),
        &s.expected(None),
        "builder expectation",
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A dirty log whose replay changes data and the BAT. QEMU refuses to read it read-only;
/// `qemu-img check -r all` replays it (on a copy), and that replayed copy is the oracle.
#[test]
fn dirty_log_is_replayed_in_memory_like_qemu_replays_it() {
    let bs = 1usize << 20;
    let mut s = Spec::dynamic(4 << 20, bs as u32, 512).full(0, pattern(0x10, bs));
    s.extra.push(pattern(0x20, bs)); // becomes block 2 through the log
    let (mut f, lay) = s.build();
    let guid = [0x4C; 16];
    let len = f.len() as u64;
    let b0 = lay.block_at[&0] as u64;
    // Active sequence 10, 11 at the start of the log; a stale entry (sequence 5) after
    // a gap. (QEMU accepts any valid entry as the second of a run, so a stale entry right
    // before the active one would be replayed by QEMU too: see tests/hostile.rs.)
    let e10 = log_entry(
        10,
        guid,
        &[
            W::Data(b0 + 8192, pattern(0x30, 4096)),
            W::Zero(b0 + 4096, 4096),
        ],
        len,
        0,
    );
    let p2 = e10.len();
    // Rewrite the BAT sector holding block 2's entry: point it at the extra block.
    let bat_at = lay.bat_entry_at(2);
    let sector_at = bat_at / 4096 * 4096;
    let mut bat_sector = f[sector_at..sector_at + 4096].to_vec();
    let e = (lay.extra_at[0] as u64) | 6;
    bat_sector[bat_at - sector_at..bat_at - sector_at + 8].copy_from_slice(&e.to_le_bytes());
    let e11 = log_entry(11, guid, &[W::Data(sector_at as u64, bat_sector)], len, 0);
    let p3 = p2 + e11.len() + 4096;
    let stale = log_entry(5, guid, &[W::Data(b0, vec![0xEE; 4096])], len, p3 as u32);
    add_log(
        &mut f,
        s.data_write_guid,
        guid,
        &[(0, e10), (p2, e11), (p3, stale)],
    );

    let mut want = s.expected(None);
    want[8192..12288].copy_from_slice(&pattern(0x30, 4096));
    want[4096..8192].fill(0);
    want[2 * bs..3 * bs].copy_from_slice(&pattern(0x20, bs));

    let d = scratch_dir("vhdx-log");
    let p = d.join("dirty.vhdx");
    std::fs::write(&p, &f).unwrap();
    let l = open_path(&p, ExternalPolicy::Deny).unwrap();
    assert_same_bytes(&read_all(l.as_ref()), &want, "replayed in memory");
    let desc = l.describe();
    assert_eq!(desc["log"]["replayed"], true);
    assert_eq!(desc["log"]["entries"], 2);
    assert_eq!(desc["log"]["first_sequence"], 10);
    assert_eq!(desc["log"]["writes"], 3);
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhdx::rule::LOG));
    // The file is unchanged.
    assert_eq!(std::fs::read(&p).unwrap(), f);

    // QEMU agrees once it has replayed the log itself.
    let copy = d.join("replayed.vhdx");
    std::fs::copy(&p, &copy).unwrap();
    run_ok(
        Command::new("qemu-img")
            .args(["check", "-r", "all", "-f", "vhdx"])
            .arg(&copy),
    );
    let qemu = oracle(&copy, &["-f", "vhdx"]);
    assert_same_bytes(&read_all(l.as_ref()), &qemu, "qemu's replay");
    let _ = std::fs::remove_dir_all(&d);
}
