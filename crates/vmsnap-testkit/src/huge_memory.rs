//! Guest-memory files that declare a huge guest (≥ 1 TiB) and hold a few pages: what the
//! memory-cap tests (`crates/vmsnap-cli/tests/scale.rs`) and `cargo xtask bench-scale`
//! open. Each is a few KiB on disk (sparse where the format keeps memory at its guest
//! offset). The layouts are restated from the formats' documents, not from the readers.
//! The VMware checkpoint comes from that crate's builder
//! (`vmsnap_vmware::builder::huge_sample`).

use std::path::Path;

/// The page size of every sample here.
pub const PAGE: u64 = 4096;

/// 1 TiB.
pub const TIB: u64 = 1 << 40;

/// Guest-physical pages the samples hold: the first page, one at 1 GiB, one at 512 GiB
/// and the last page below `size`.
pub fn scattered_pages(size: u64) -> Vec<u64> {
    vec![0, 1 << 30, size / 2, size - PAGE]
}

/// A page's known content: its guest-physical address repeated, so a mis-mapping shows.
pub fn page_bytes(gpa: u64) -> Vec<u8> {
    (0..PAGE / 8).flat_map(|_| gpa.to_le_bytes()).collect()
}

/// An ELF64 core (`ET_CORE`, x86-64) of one 4 KiB PT_LOAD per page in `pages` (each at
/// its guest-physical address): huge holes between them. With `zero_fill`, the last
/// PT_LOAD's `p_memsz` reaches `zero_fill` bytes past its start (memory the core declares
/// zero, as `p_memsz > p_filesz` means).
pub fn write_elf_core(path: &Path, pages: &[u64], zero_fill: Option<u64>) {
    let n = pages.len() as u64;
    // Page-aligned data after the headers, as QEMU lays out its cores.
    let pad = (64 + 56 * n).div_ceil(PAGE) * PAGE - (64 + 56 * n);
    let phs: Vec<crate::elf::Ph> = pages
        .iter()
        .enumerate()
        .map(|(i, &gpa)| {
            let memsz = match zero_fill {
                Some(z) if i + 1 == pages.len() => z,
                _ => PAGE,
            };
            crate::elf::Ph::load(gpa, pad + i as u64 * PAGE, PAGE, memsz)
        })
        .collect();
    let mut payload = vec![0u8; pad as usize];
    for &gpa in pages {
        payload.extend_from_slice(&page_bytes(gpa));
    }
    std::fs::write(path, crate::elf::build(true, 4, 62, &phs, &payload)).unwrap();
}

/// A LiME file (`lime` format: a 32-byte header per range — magic `0x4C694D45`, version
/// 1, start, inclusive end, 8 reserved bytes — then the range's bytes) of one page per
/// address in `pages`.
pub fn write_lime(path: &Path, pages: &[u64]) {
    let mut f = Vec::new();
    for &gpa in pages {
        f.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&gpa.to_le_bytes());
        f.extend_from_slice(&(gpa + PAGE - 1).to_le_bytes());
        f.extend_from_slice(&[0u8; 8]);
        f.extend_from_slice(&page_bytes(gpa));
    }
    std::fs::write(path, f).unwrap();
}

/// A real QEMU migration stream (`stream`, e.g. `corpus/qemu/pc-64m.qevm`) whose `pc.ram`
/// block is declared `ram` bytes long: the MEM_SIZE record (total, then per block a
/// length-prefixed name and a big-endian size) is rewritten, every page record is kept,
/// so the pages past the ones QEMU sent are absent. Returns the bytes.
pub fn qemu_stream_declaring(stream: &[u8], ram: u64) -> Vec<u8> {
    let mut d = stream.to_vec();
    let name = b"\x06pc.ram";
    let at = d
        .windows(name.len())
        .position(|w| w == name)
        .expect("a pc.ram block in the MEM_SIZE record");
    let be = |d: &[u8], o: usize| u64::from_be_bytes(d[o..o + 8].try_into().unwrap());
    let size_at = at + name.len();
    let old = be(&d, size_at);
    let total = be(&d, at - 8);
    assert_eq!(total & 0xfff, 4, "the record before pc.ram is MEM_SIZE");
    let new_total = (total & !0xfff) - old + ram;
    d[at - 8..at].copy_from_slice(&(new_total | 4).to_be_bytes());
    d[size_at..size_at + 8].copy_from_slice(&ram.to_be_bytes());
    d
}

/// `stream` (a real QEMU stream with vmdesc, as [`qemu_stream_declaring`] takes) with a
/// RAM part section before its EOF holding one zero-page record per page of `pc.ram`
/// from page `first` on, `count` of them: what QEMU sends for untouched memory (9 bytes a
/// page) when mapped-ram is off.
pub fn qemu_stream_with_zero_records(stream: &[u8], first: u64, count: u64) -> Vec<u8> {
    let at = stream
        .windows(4)
        .position(|w| w == b"\x03ram")
        .expect("a ram section");
    assert_eq!(
        stream[at - 5],
        0x01,
        "SECTION_START before the ram section's name"
    );
    let id = &stream[at - 4..at];
    // EOF (0x00), then the vmdesc: 0x06, its big-endian length, the JSON to the end.
    let eof = (0..stream.len().saturating_sub(6))
        .rev()
        .find(|&i| {
            stream[i] == 0
                && stream[i + 1] == 0x06
                && stream.get(i + 6) == Some(&b'{')
                && i + 6 + u32::from_be_bytes(stream[i + 2..i + 6].try_into().unwrap()) as usize
                    == stream.len()
        })
        .expect("EOF before the vmdesc");
    let mut out = stream[..eof].to_vec();
    out.push(0x02); // SECTION_PART
    out.extend_from_slice(id);
    for i in 0..count {
        let addr = (first + i) * PAGE;
        if i == 0 {
            out.extend_from_slice(&(addr | 0x02).to_be_bytes()); // ZERO, block named
            out.push(6);
            out.extend_from_slice(b"pc.ram");
        } else {
            out.extend_from_slice(&(addr | 0x02 | 0x20).to_be_bytes()); // ZERO | CONTINUE
        }
        out.push(0); // the fill byte
    }
    out.extend_from_slice(&0x10u64.to_be_bytes()); // EOS
    out.push(0x7e); // footer
    out.extend_from_slice(id);
    out.extend_from_slice(&stream[eof..]);
    out
}

/// A real QEMU mapped-ram file (`stream`, e.g. `corpus/qemu/pc-64m-mapped.qevm.gz`
/// unpacked; `pc.ram` its first RAM block) rewritten to `path` with `pc.ram` declared
/// `ram` bytes long: its bitmap grows to `ram / 4096` bits (its own bits kept, plus one
/// per offset in `extra`, each page holding [`page_bytes`] of its offset in the block),
/// its pages region to `ram` (aligned to 1 MiB as QEMU aligns it), and the blocks and
/// device state after it move up, their mapped-ram offsets rewritten. Sparse: a few MiB
/// on disk however large `ram` is (ext4 holds files up to 16 TiB).
pub fn write_qemu_mapped_ram_declaring(path: &Path, stream: &[u8], ram: u64, extra: &[u64]) {
    use std::io::{Seek, SeekFrom, Write};
    let be64 = |o: usize| u64::from_be_bytes(stream[o..o + 8].try_into().unwrap());
    let name = b"\x06pc.ram";
    let at = stream
        .windows(name.len())
        .position(|w| w == name)
        .expect("a pc.ram block in the MEM_SIZE record");
    let total = be64(at - 8);
    assert_eq!(total & 0xfff, 4, "the record before pc.ram is MEM_SIZE");
    let total = total & !0xfff;
    let size_at = at + name.len();
    let old = be64(size_at);
    // MappedRamHeader: be32 version, be64 page size, bitmap offset, pages offset.
    let hdr = size_at + 8;
    assert_eq!(be64(hdr + 4), PAGE, "4 KiB pages");
    let hdr_end = hdr + 28;
    assert_eq!(
        be64(hdr + 12),
        hdr_end as u64,
        "the bitmap follows the header"
    );
    let old_pages = be64(hdr + 20) as usize;
    let old_end = old_pages + old as usize;
    let bits = |size: u64| (size / PAGE).div_ceil(64) * 8;
    let new_pages = (hdr_end as u64 + bits(ram)).next_multiple_of(1 << 20);
    let shift = new_pages + ram - old_end as u64;
    // The head, with the new sizes and pages offset.
    let mut head = stream[..hdr_end].to_vec();
    head[at - 8..at].copy_from_slice(&((total - old + ram) | 4).to_be_bytes());
    head[size_at..size_at + 8].copy_from_slice(&ram.to_be_bytes());
    head[hdr + 20..hdr + 28].copy_from_slice(&new_pages.to_be_bytes());
    // The tail: the other blocks' entries get their offsets moved by `shift`.
    let mut tail = stream[old_end..].to_vec();
    let (mut sum, mut pos) = (old, old_end);
    while sum < total {
        let h = pos + 1 + stream[pos] as usize + 8;
        sum += be64(h - 8);
        for field in [h + 12, h + 20] {
            let t = field - old_end;
            tail[t..t + 8].copy_from_slice(&(be64(field) + shift).to_be_bytes());
        }
        pos = be64(h + 20) as usize + be64(h - 8) as usize;
    }
    let old_bitmap = &stream[hdr_end..hdr_end + bits(old) as usize];
    let mut f = std::fs::File::create(path).unwrap();
    let mut put = |off: u64, b: &[u8]| {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(b).unwrap();
    };
    put(0, &head);
    put(hdr_end as u64, old_bitmap);
    for (i, byte) in old_bitmap.iter().enumerate() {
        for k in 0..8 {
            if byte & (1 << k) != 0 {
                let p = (i * 8 + k) as u64 * PAGE;
                let src = old_pages + p as usize;
                put(new_pages + p, &stream[src..src + PAGE as usize]);
            }
        }
    }
    let mut bytes = std::collections::BTreeMap::new();
    for &off in extra {
        let page = off / PAGE;
        let old_byte = old_bitmap.get((page / 8) as usize).copied().unwrap_or(0);
        *bytes.entry(page / 8).or_insert(old_byte) |= 1 << (page % 8);
        put(new_pages + page * PAGE, &page_bytes(off));
    }
    for (i, byte) in bytes {
        put(hdr_end as u64 + i, &[byte]);
    }
    put(new_pages + ram, &tail);
}
