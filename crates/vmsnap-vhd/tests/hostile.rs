//! Crafted VHDs: one per bound and per known bug, with the expected error kind or finding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::{ErrorKind, Severity};
use vmsnap_testkit::{assert_same_bytes, read_all};

fn base() -> (Spec, Vec<u8>) {
    let s = Spec::dynamic(256 * 1024, 64 * 1024)
        .block(1, pattern(1, 65536), None)
        .block(3, pattern(2, 65536), None);
    let b = s.build();
    (s, b)
}

fn kind(bytes: Vec<u8>) -> ErrorKind {
    open_bytes(bytes).unwrap_err().kind()
}

fn set_dyn(f: &mut [u8], off: usize, v: &[u8]) {
    f[512 + off..512 + off + v.len()].copy_from_slice(v);
    fix_dyn(f);
}

#[test]
fn bad_footer_checksum_is_a_finding_and_reads_still_work() {
    let (s, mut f) = base();
    let n = f.len();
    f[64] ^= 1;
    f[n - 512 + 64] ^= 1;
    let l = open_bytes(f).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhd::rule::FOOTER && x.message.contains("checksum")));
    assert_eq!(l.describe()["footer_checksum_ok"], false);
    assert_same_bytes(&read_all(l.as_ref()), &s.expected(None), "data");
}

#[test]
fn footer_copies_that_differ_are_a_finding_and_a_bad_copy_at_0_is_unsafe() {
    let (_, mut f) = base();
    f[64] ^= 1; // copy at 0 now has a bad checksum; EOF copy is good
    let l = open_bytes(f).unwrap();
    let fs = l.findings();
    assert!(
        fs.iter()
            .any(|x| x.rule == vmsnap_vhd::rule::FOOTER && x.message.contains("differ")),
        "{fs:?}"
    );
    // QEMU reads only the copy at 0 and refuses the image: unsafe, though vmsnap reads on.
    assert!(fs.iter().any(|x| x.severity == Severity::Unsafe
        && x.message.contains("Incorrect header checksum")
        && x.message.contains("the one at EOF")));
    assert_eq!(l.describe()["footer_checksum_ok"], true);
    // Missing EOF copy.
    let (_, mut f) = base();
    let n = f.len();
    f[n - 512..n - 504].copy_from_slice(b"xxxxxxxx");
    let l = open_bytes(f).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_vhd::rule::FOOTER && x.message.contains("no footer")));
}

#[test]
fn no_footer_anywhere_is_malformed() {
    assert_eq!(kind(vec![0u8; 4096]), ErrorKind::Malformed);
    assert_eq!(kind(vec![0u8; 100]), ErrorKind::Truncated);
}

#[test]
fn block_size_must_be_a_power_of_two_at_least_512_and_bounded() {
    let (_, f) = base();
    for (bs, want) in [
        (0u32, ErrorKind::Malformed),
        (256, ErrorKind::Malformed),
        (65536 + 512, ErrorKind::Malformed),
        (1 << 30, ErrorKind::LimitExceeded),
    ] {
        let mut g = f.clone();
        set_dyn(&mut g, 32, &bs.to_be_bytes());
        assert_eq!(kind(g), want, "block size {bs}");
    }
}

#[test]
fn page_table_too_small_and_bat_entry_count_cap() {
    let (_, f) = base();
    let mut g = f.clone();
    set_dyn(&mut g, 28, &3u32.to_be_bytes()); // 3 × 64 KiB < 256 KiB
    assert_eq!(kind(g), ErrorKind::Malformed);
    let mut g = f.clone();
    set_dyn(&mut g, 28, &u32::MAX.to_be_bytes());
    assert_eq!(kind(g), ErrorKind::LimitExceeded);
}

#[test]
fn bat_outside_the_file_and_block_past_eof_are_truncated() {
    let (_, f) = base();
    let mut g = f.clone();
    set_dyn(&mut g, 16, &(1u64 << 40).to_be_bytes());
    assert_eq!(kind(g), ErrorKind::Truncated);
    let mut g = f.clone();
    g[1536 + 4..1536 + 8].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
    assert_eq!(kind(g), ErrorKind::Truncated);
    // Dynamic header offset outside the file.
    let mut g = f.clone();
    g[16..24].copy_from_slice(&(1u64 << 50).to_be_bytes());
    fix_footer(&mut g, 0);
    assert_eq!(kind(g), ErrorKind::Truncated);
    // Dynamic header without its cookie.
    let mut g = f;
    set_dyn(&mut g, 0, b"notspars");
    assert_eq!(kind(g), ErrorKind::Malformed);
}

#[test]
fn bat_entry_into_metadata_is_a_finding() {
    let (_, mut f) = base();
    f[1536 + 4..1536 + 8].copy_from_slice(&1u32.to_be_bytes()); // block at sector 1
    let l = open_bytes(f).unwrap();
    assert!(l.findings().iter().any(|x| x.rule == vmsnap_vhd::rule::BAT));
    let _ = read_all(l.as_ref());
}

#[test]
fn virtual_size_above_qemus_2040_gib_cap_is_refused() {
    let mut s = Spec::dynamic(0xFF00_0000u64 * 512 + 512, 1 << 21);
    s.max_table_entries = Some(1);
    // One BAT entry only: the size check comes before the page-table check.
    assert_eq!(kind(s.build()), ErrorKind::LimitExceeded);
}

#[test]
fn fixed_disk_larger_than_its_data_is_truncated() {
    let mut f = fixed(&[0u8; 4096], *b"win ", (1, 1, 1));
    let at = f.len() - 512;
    f[at + 48..at + 56].copy_from_slice(&(1u64 << 30).to_be_bytes());
    fix_footer(&mut f, at);
    assert_eq!(kind(f), ErrorKind::Truncated);
}

#[test]
fn huge_parent_locator_is_a_finding_not_an_allocation() {
    let mut s = Spec::dynamic(65536, 4096).differencing([1; 16], "p.vhd");
    s.locators.push((*b"W2ru", vec![0u8; 16]));
    let mut f = s.build();
    // Third locator: claim 4 GiB of data.
    let e = 512 + 576 + 2 * 24;
    f[e + 8..e + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    fix_dyn(&mut f);
    let l = open_bytes(f).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_core::rule::PARENT && x.message.contains("limit")));
    assert!(l
        .findings()
        .iter()
        .any(|x| x.rule == vmsnap_core::rule::PARENT && x.severity == Severity::Unsafe));
}

#[test]
fn reads_past_the_end_fail() {
    let (_, f) = base();
    let l = open_bytes(f).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(
        l.read_at(l.len() - 1, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert!(l.read_at(u64::MAX, &mut b).is_err());
}
