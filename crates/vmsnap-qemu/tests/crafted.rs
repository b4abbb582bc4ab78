//! Hostile and unusual streams crafted from the real pc sample: pages re-sent, out of
//! order, unsupported flags, truncation, bogus lengths, missing vmdesc.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};
use vmsnap_qemu::{QemuMemory, PLUGIN};
use vmsnap_testkit::corpus;

fn real() -> Vec<u8> {
    std::fs::read(corpus("qemu/pc-64m.qevm")).unwrap()
}

fn open(bytes: Vec<u8>) -> vmsnap_core::Result<QemuMemory> {
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    QemuMemory::open(lower, &ctx)
}

fn read(m: &QemuMemory, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    m.read_at(at, &mut b).unwrap();
    b
}

/// (RAM section id, EOF offset) of the real sample.
fn anchors(bytes: &[u8]) -> (u32, usize) {
    let m = open(bytes.to_vec()).unwrap();
    let meta = m.meta();
    let id = meta["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ram")
        .unwrap()["id"]
        .as_u64()
        .unwrap() as u32;
    let eof = m.describe()["vmdesc"]["offset"]
        .as_u64()
        .map(|o| o - 1)
        .unwrap_or(0) as usize;
    assert_eq!(bytes[eof], 0);
    (id, eof)
}

/// A RAM PART section built from `records` (already encoded), EOS and footer.
fn part(id: u32, records: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(records);
    v.extend_from_slice(&0x10u64.to_be_bytes());
    v.push(0x7e);
    v.extend_from_slice(&id.to_be_bytes());
    v
}

fn rec(addr: u64, flags: u64, named: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = (addr | flags | if named { 0 } else { 0x20 })
        .to_be_bytes()
        .to_vec();
    if named {
        v.push(6);
        v.extend_from_slice(b"pc.ram");
    }
    v.extend_from_slice(payload);
    v
}

/// The real stream with `extra` inserted right before EOF.
fn with_extra(extra: &[u8]) -> Vec<u8> {
    let b = real();
    let (_, eof) = anchors(&b);
    let mut out = b[..eof].to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(&b[eof..]);
    out
}

#[test]
fn page_sent_twice_reads_as_its_last_copy() {
    let b = real();
    let (id, _) = anchors(&b);
    let before = open(b).unwrap();
    assert!(read(&before, 0x200000, 4096).iter().any(|&x| x != 0));
    let mut r = rec(0x200000, 0x08, true, &[0xAB; 4096]);
    r.extend(rec(0x3000000, 0x02, false, &[0]));
    let m = open(with_extra(&part(id, &r))).unwrap();
    assert_eq!(read(&m, 0x200000, 4096), vec![0xAB; 4096]);
    assert_eq!(read(&m, 0x3000000, 4096), vec![0; 4096]);
    // The rest of the blob at 0x3000000 (16 KiB) is unchanged.
    assert_eq!(read(&m, 0x3001000, 4096), read(&before, 0x3001000, 4096));
    assert_eq!(m.describe()["ram_records"]["resent"], 2);
    assert!(m
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_qemu::rule::RESENT_PAGES));
    // The ram:pc.ram child agrees.
    let mut c = vec![0u8; 4096];
    m.children()[0].layer.read_at(0x200000, &mut c).unwrap();
    assert_eq!(c, vec![0xAB; 4096]);
}

#[test]
fn pages_out_of_order_read_back_in_place() {
    let (id, _) = anchors(&real());
    let mut r = Vec::new();
    for (i, p) in [5u64, 3, 4, 1, 2].iter().enumerate() {
        r.extend(rec(0x800000 + p * 4096, 0x08, i == 0, &[*p as u8; 4096]));
    }
    r.extend(rec(0x800000, 0x02, false, &[0x5a]));
    let m = open(with_extra(&part(id, &r))).unwrap();
    assert_eq!(read(&m, 0x800000, 4096), vec![0x5a; 4096]);
    for p in 1..=5u64 {
        assert_eq!(read(&m, 0x800000 + p * 4096, 4096), vec![p as u8; 4096]);
    }
    // A read spanning all of them.
    let all = read(&m, 0x800000 + 100, 5 * 4096);
    assert_eq!(all[0], 0x5a);
    assert_eq!(all[4096], 1);
    assert_eq!(all[5 * 4096 - 1], 5);
}

#[test]
fn unsupported_flags_name_the_flag_and_offset() {
    let (id, eof) = anchors(&real());
    for (flag, name) in [
        (0x40u64, "XBZRLE"),
        (0x100, "COMPRESS_PAGE"),
        (0x80, "HOOK"),
        (0x01, "FULL"),
    ] {
        let r = rec(0x200000, flag, true, &[1, 0, 0]);
        let e = open(with_extra(&part(id, &r))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{name}");
        let at = eof as u64 + 5;
        assert!(e.to_string().contains(name), "{e}");
        assert!(e.to_string().contains(&format!("{at:#x}")), "{e}");
    }
}

#[test]
fn bogus_records_and_lengths_are_malformed() {
    let (id, _) = anchors(&real());
    // Page past the end of its block.
    let r = rec(64 << 20, 0x08, true, &[0; 4096]);
    assert_eq!(
        open(with_extra(&part(id, &r))).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Unknown block name.
    let mut r = (0x1000u64 | 0x08).to_be_bytes().to_vec();
    r.push(4);
    r.extend_from_slice(b"nope");
    assert_eq!(
        open(with_extra(&part(id, &r))).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // CONTINUE with ZERO and PAGE both set.
    let r = rec(0x1000, 0x0a, true, &[0; 4096]);
    assert_eq!(
        open(with_extra(&part(id, &r))).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // PART of a section id that was never started.
    assert_eq!(
        open(with_extra(&part(9999, &[]))).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // A command whose length runs past the end.
    let mut c = vec![0x08, 0, 2, 0xff, 0xff];
    c.extend_from_slice(&[0; 8]);
    let b = real();
    let (_, eof) = anchors(&b);
    let mut s = b[..eof].to_vec();
    s.extend_from_slice(&c);
    assert_eq!(open(s).unwrap_err().kind(), ErrorKind::Truncated);
    // Unknown section type.
    assert_eq!(
        open(with_extra(&[0x42])).unwrap_err().kind(),
        ErrorKind::Malformed
    );

    // MEM_SIZE: a block longer than the declared total, a total above the limit.
    let b = real();
    let at = b.windows(7).position(|w| w == b"\x06pc.ram").unwrap();
    let mut s = b.clone();
    s[at + 7..at + 15].copy_from_slice(&(1u64 << 40).to_be_bytes());
    assert_eq!(open(s).unwrap_err().kind(), ErrorKind::Malformed);
    let mut s = b.clone();
    s[at - 8..at].copy_from_slice(&((1u64 << 50) | 4).to_be_bytes());
    assert_eq!(open(s).unwrap_err().kind(), ErrorKind::LimitExceeded);
    // Version 2 and a bad magic.
    let mut s = b.clone();
    s[7] = 2;
    assert_eq!(open(s).unwrap_err().kind(), ErrorKind::Unsupported);
    let mut s = b.clone();
    s[0] = b'X';
    assert_eq!(open(s).unwrap_err().kind(), ErrorKind::Malformed);
}

#[test]
fn device_section_footer_mismatch_with_vmdesc_is_malformed() {
    let b = real();
    let m = open(b.clone()).unwrap();
    let meta = m.meta();
    let dev = meta["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skipped_by"] == "vmdesc" && s["name"] == "timer")
        .unwrap()
        .clone();
    let footer = (dev["payload"].as_u64().unwrap() + dev["size"].as_u64().unwrap()) as usize;
    assert_eq!(b[footer], 0x7e);
    let mut s = b.clone();
    s[footer] = 0;
    let e = open(s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
}

#[test]
fn stripped_vmdesc_uses_validated_footer_scan() {
    let b = real();
    let (_, eof) = anchors(&b);
    let full = open(b.clone()).unwrap();
    let m = open(b[..eof + 1].to_vec()).unwrap();
    let meta = m.meta();
    assert!(meta["sections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["skipped_by"] == "footer-scan"));
    assert!(m.cpu_state().is_empty());
    for at in [0x200000u64, 0x1234000, 0x3000000, 0xfffc0000, 0xe0000] {
        assert_eq!(read(&m, at, 8192), read(&full, at, 8192));
    }
}

#[test]
fn truncated_streams_fail_cleanly() {
    let b = real();
    let (_, eof) = anchors(&b);
    for i in 0..40 {
        let cut = 8 + (eof - 8) * i / 40;
        let e = open(b[..cut].to_vec()).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Truncated | ErrorKind::Malformed),
            "cut at {cut}: {e}"
        );
    }
    // Cut inside the vmdesc: no trailer found, the stream still opens.
    assert!(open(b[..eof + 100].to_vec()).is_ok());
}
