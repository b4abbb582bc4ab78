//! Formats that are not address spaces of their own but make an image a polyglot: ISO9660,
//! GPT and MBR, with OpenStack's GPT/MBR rules (G1–G3). The formats vmsnap recognises but
//! does not read are in [`crate::signature`] and [`crate::luks`].

use vmsnap_core::{Bytes, Finding};

/// ISO9660 (or UDF) volume descriptors at 32 KiB.
pub fn is_iso(head: &[u8]) -> bool {
    // Descriptors are 2048 bytes from 32768: type(1) "CD001"/"BEA01"/"NSR0x" version(1).
    (0..4).any(|i| {
        let at = 32768 + i * 2048 + 1;
        matches!(
            head.get(at..at + 5),
            Some(b"CD001" | b"BEA01" | b"NSR02" | b"NSR03")
        )
    })
}

/// A GPT header (`EFI PART`) at LBA 1, for 512- or 4096-byte sectors.
pub fn is_gpt(head: &[u8]) -> bool {
    head.get(512..520) == Some(b"EFI PART") || head.get(4096..4104) == Some(b"EFI PART")
}

/// An MBR as OpenStack's GPT inspector sees one: the boot signature, in a sector that is
/// not a FAT boot sector (two FATs, fixed-disk media byte). Its partition entries are
/// judged by [`mbr_findings`], so an MBR with none in use is found and fails G3.
pub fn is_mbr(head: &[u8]) -> bool {
    let b = Bytes::new(head, 0);
    let fat = b.u8(0x10).is_ok_and(|n| n == 2) && b.u8(0x15).is_ok_and(|m| m == 0xF8);
    b.u16_le(510).is_ok_and(|s| s == 0xAA55) && !fat
}

/// OpenStack's MBR rules: boot bytes 0x00/0x80 (G1), a protective entry alone and well
/// formed (G2), some entry in use (G3). Only meaningful when [`is_mbr`] or [`is_gpt`].
pub fn mbr_findings(head: &[u8]) -> Vec<Finding> {
    let b = Bytes::new(head, 0);
    let mut out = Vec::new();
    let entry = |i: usize| b.slice(446 + i * 16, 16).ok();
    let mut used = 0;
    for i in 0..4 {
        let Some(e) = entry(i) else { continue };
        let boot = e.first().copied().unwrap_or(0);
        let kind = e.get(4).copied().unwrap_or(0);
        if boot != 0 && boot != 0x80 {
            out.push(
                Finding::unsafe_(
                    crate::rule::MBR,
                    format!("partition entry {i} has boot byte {boot:#04x}"),
                )
                .at(446 + i as u64 * 16),
            );
        }
        if kind != 0 {
            used += 1;
        }
        if kind == 0xEE {
            let chs = e.get(1..4).unwrap_or(&[]);
            let lba = e
                .get(8..12)
                .and_then(|x| x.try_into().ok())
                .map(u32::from_le_bytes);
            if i != 0 || chs != [0, 2, 0] || lba != Some(1) {
                out.push(Finding::unsafe_(
                    crate::rule::MBR,
                    format!("protective partition entry {i} is malformed (start CHS {chs:02x?}, LBA {lba:?})"),
                ));
            }
        }
    }
    let protective = entry(0).and_then(|e| e.get(4).copied()) == Some(0xEE);
    if protective && used > 1 {
        out.push(Finding::unsafe_(
            crate::rule::MBR,
            "a protective MBR has other partition entries",
        ));
    }
    if used == 0 {
        out.push(Finding::unsafe_(
            crate::rule::MBR,
            "no partition entry is in use",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(entries: &[(u8, u8, [u8; 3], u32)]) -> Vec<u8> {
        let mut v = vec![0u8; 40960];
        for (i, (boot, kind, chs, lba)) in entries.iter().enumerate() {
            let at = 446 + i * 16;
            v[at] = *boot;
            v[at + 1..at + 4].copy_from_slice(chs);
            v[at + 4] = *kind;
            v[at + 8..at + 12].copy_from_slice(&lba.to_le_bytes());
        }
        v[510] = 0x55;
        v[511] = 0xAA;
        v
    }

    #[test]
    fn detects_and_judges_partition_tables() {
        let mut gpt = mbr(&[(0, 0xEE, [0, 2, 0], 1)]);
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert!(is_gpt(&gpt) && is_mbr(&gpt));
        assert!(mbr_findings(&gpt).is_empty());
        let bad_boot = mbr(&[(0x12, 0x83, [0, 1, 0], 2048)]);
        assert_eq!(mbr_findings(&bad_boot).len(), 1);
        let bad_pmbr = mbr(&[(0, 0xEE, [0, 2, 0], 2), (0, 0x83, [0, 0, 0], 9)]);
        assert_eq!(mbr_findings(&bad_pmbr).len(), 2);
        let unused = mbr(&[]);
        assert!(is_mbr(&unused));
        let mut fat = unused.clone();
        fat[0x10] = 2;
        fat[0x15] = 0xF8;
        assert!(!is_mbr(&fat));
        assert_eq!(
            mbr_findings(&unused)[0].message,
            "no partition entry is in use"
        );
        let mut iso = vec![0u8; 40960];
        iso[32769..32774].copy_from_slice(b"CD001");
        assert!(is_iso(&iso) && !is_gpt(&iso));
    }
}
