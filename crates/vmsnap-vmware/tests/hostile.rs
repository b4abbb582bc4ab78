//! Crafted checkpoints: one per limit or bug the format description names. Each must fail
//! with the expected error kind or open with the expected finding — never panic or hang.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{open_bytes, open_path};
use vmsnap_core::{ErrorKind, ExternalPolicy};
use vmsnap_testkit::scratch_dir;
use vmsnap_vmware::builder::*;

fn mem_group(tags: Vec<T>) -> Ckpt {
    Ckpt {
        magic: 0xbed2_bed2,
        groups: vec![
            G {
                name: "memory".into(),
                tags,
            },
            cpu_group(1, CpuForm::Scalar, 0),
        ],
    }
}

fn with_memory(regs: &[Reg], extra: Vec<T>, mem_pages: u64) -> Ckpt {
    let mut tags = region_tags(regs, Some(regs.len() as u32));
    tags.extend(extra);
    tags.push(block_tag(
        "Memory",
        &[0, 0],
        Sparse::zeros(mem_pages * 4096),
        3,
    ));
    mem_group(tags)
}

fn err_kind(b: Vec<u8>) -> ErrorKind {
    open_bytes(b).map(|_| ()).unwrap_err().kind()
}

#[test]
fn region_index_out_of_range() {
    let regs = [Reg {
        ppn: 0,
        page_num: 0,
        pages: 4,
    }];
    let c = with_memory(&regs, vec![u32_tag("regionPPN", &[5], 9)], 4);
    assert_eq!(err_kind(c.build().image.to_vec()), ErrorKind::Malformed);
    // A region index far out of range (what overflows crash's 3-entry array).
    let c = with_memory(&regs, vec![u32_tag("regionSize", &[u32::MAX], 9)], 4);
    assert_eq!(err_kind(c.build().image.to_vec()), ErrorKind::Malformed);
    // A region below regionsCount missing one of its tags.
    let mut tags = region_tags(&regs, Some(2));
    tags.push(block_tag("Memory", &[0, 0], Sparse::zeros(4096 * 4), 0));
    assert_eq!(
        err_kind(mem_group(tags).build().image.to_vec()),
        ErrorKind::Malformed
    );
}

#[test]
fn regions_overlapping_or_past_the_memory() {
    let overlap = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 4,
        },
        Reg {
            ppn: 2,
            page_num: 4,
            pages: 4,
        },
    ];
    assert_eq!(
        err_kind(with_memory(&overlap, vec![], 8).build().image.to_vec()),
        ErrorKind::Malformed
    );
    let past = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 4,
        },
        Reg {
            ppn: 8,
            page_num: 4,
            pages: 4,
        },
    ];
    assert_eq!(
        err_kind(with_memory(&past, vec![], 6).build().image.to_vec()),
        ErrorKind::Truncated
    );
    // Region end overflowing the address space.
    let wrap = [Reg {
        ppn: 0xFFFF_FFFF,
        page_num: 0,
        pages: 0xFFFF_FFFF,
    }];
    assert!(open_bytes(with_memory(&wrap, vec![], 1).build().image.to_vec()).is_err());
    // Past the end of a .vmem.
    let dir = scratch_dir("vmware-hostile-vmem");
    let regs = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 4,
        },
        Reg {
            ppn: 8,
            page_num: 4,
            pages: 4,
        },
    ];
    mem_group(region_tags(&regs, Some(2)))
        .build()
        .image
        .write_to(&dir.join("h.vmss"))
        .unwrap();
    Sparse::zeros(6 * 4096)
        .write_to(&dir.join("h.vmem"))
        .unwrap();
    for name in ["h.vmss", "h.vmem"] {
        let e = open_path(&dir.join(name), ExternalPolicy::SameDir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated, "{name}: {e}");
    }
    // Too many regions.
    let c = mem_group(vec![u32_tag("regionsCount", &[], u32::MAX)]);
    assert_eq!(err_kind(c.build().image.to_vec()), ErrorKind::LimitExceeded);
}

#[test]
fn tag_lengths_overflowing_the_group() {
    let regs = [Reg {
        ppn: 0,
        page_num: 0,
        pages: 2,
    }];
    let b = with_memory(&regs, vec![], 2).build();
    let (_, mstart, msize) = b.groups[0].clone();
    let mut img = b.image.to_vec();
    // Shrink the memory group so that the Memory block overflows it.
    img[12 + 72..12 + 80].copy_from_slice(&(msize - 4100).to_le_bytes());
    assert_eq!(err_kind(img.clone()), ErrorKind::Malformed);
    // A name running past the group end.
    img[12 + 72..12 + 80].copy_from_slice(&3u64.to_le_bytes());
    img[mstart as usize + 1] = 200;
    assert_eq!(err_kind(img), ErrorKind::Malformed);
    // In a group other than memory it is a finding, and the tags before it are kept.
    let b = with_memory(&regs, vec![], 2).build();
    let (_, _cstart, csize) = b.groups[1].clone();
    let mut img = b.image.to_vec();
    img[12 + 80 + 72..12 + 80 + 80].copy_from_slice(&(csize - 30).to_le_bytes());
    let l = open_bytes(img).unwrap();
    assert!(
        l.findings()
            .iter()
            .any(|f| f.rule == vmsnap_vmware::rule::TAG_STREAM),
        "{:?}",
        l.findings()
    );
    assert!(l.meta()["groups"][1]["error"].is_string());
}

#[test]
fn block_nbytes_past_eof() {
    let regs = [Reg {
        ppn: 0,
        page_num: 0,
        pages: 2,
    }];
    let b = with_memory(&regs, vec![], 2).build();
    let (_, data) = b.tag("memory/Memory[0][0]");
    let nbytes_at = (data.unwrap() - 3 - 2 - 16) as usize;
    let mut img = b.image.to_vec();
    // Group size 0 (unbounded): the block runs past the end of the file.
    img[12 + 72..12 + 80].copy_from_slice(&0u64.to_le_bytes());
    img[nbytes_at..nbytes_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_eq!(err_kind(img.clone()), ErrorKind::Truncated);
    img[nbytes_at..nbytes_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        err_kind(img),
        ErrorKind::Truncated | ErrorKind::Malformed
    ));
}

#[test]
fn group_table_past_eof() {
    let b = with_memory(
        &[Reg {
            ppn: 0,
            page_num: 0,
            pages: 1,
        }],
        vec![],
        1,
    )
    .build();
    let mut img = b.image.to_vec();
    img[8..12].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(err_kind(img.clone()), ErrorKind::Truncated);
    img[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(err_kind(img.clone()), ErrorKind::LimitExceeded);
    // A group whose tags start past the end: memory is fatal, another group a finding.
    let mut img = b.image.to_vec();
    img[12 + 64..12 + 72].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert_eq!(err_kind(img), ErrorKind::Malformed);
    let mut img = b.image.to_vec();
    img[12 + 80 + 64..12 + 80 + 72].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let l = open_bytes(img).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_vmware::rule::GROUP_TABLE));
    // Truncated header.
    assert_eq!(
        err_kind(b.image.to_vec()[..10].to_vec()),
        ErrorKind::Truncated
    );
}

#[test]
fn endless_tag_stream_is_bounded() {
    // No terminator, unbounded group: the stream ends at the end of the file.
    let mut img = Vec::new();
    img.extend_from_slice(&0xbed2_bed2u32.to_le_bytes());
    img.extend_from_slice(&0u32.to_le_bytes());
    img.extend_from_slice(&1u32.to_le_bytes());
    let mut d = vec![0u8; 80];
    d[..3].copy_from_slice(b"cpu");
    d[64..72].copy_from_slice(&92u64.to_le_bytes());
    img.extend_from_slice(&d);
    let tiny = [0x00u8, 0x01, b'x']; // name "x", no indices, empty value
    for _ in 0..1000 {
        img.extend_from_slice(&tiny);
    }
    let l = open_bytes(img.clone()).unwrap();
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_vmware::rule::TAG_STREAM));
    assert_eq!(l.describe()["tags"], 1000);
    // More tags than the limit.
    for _ in 0..(1usize << 20) {
        img.extend_from_slice(&tiny);
    }
    assert_eq!(err_kind(img), ErrorKind::LimitExceeded);
}

#[test]
fn region_tags_without_regions_count_are_ignored_with_a_finding() {
    let regs = [Reg {
        ppn: 4,
        page_num: 0,
        pages: 2,
    }];
    let mut tags = region_tags(&regs, None);
    tags.push(block_tag("Memory", &[0, 0], Sparse::zeros(3 * 4096), 0));
    let l = open_bytes(mem_group(tags).build().image.to_vec()).unwrap();
    assert_eq!(l.len(), 3 * 4096);
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_vmware::rule::MEMORY));
}

#[test]
fn truncated_and_corrupted_checkpoints_never_panic() {
    let regs = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 2,
        },
        Reg {
            ppn: 4,
            page_num: 2,
            pages: 1,
        },
    ];
    let mut c = with_memory(&regs, vec![], 3);
    c.groups.extend(extra_groups(5));
    c.groups.push(cpu_group(2, CpuForm::Block, 3));
    let img = c.build().image.to_vec();
    for n in (0..img.len()).step_by(17) {
        if let Ok(l) = open_bytes(img[..n].to_vec()) {
            vmsnap_testkit::exercise(&l, 1 << 20);
        }
    }
    let mut rng = vmsnap_testkit::image::Rng::new(7);
    for _ in 0..200 {
        let mut m = img.clone();
        for _ in 0..4 {
            let at = rng.below(m.len().min(4096) as u64) as usize;
            m[at] = rng.next_u64() as u8;
        }
        if let Ok(l) = open_bytes(m) {
            vmsnap_testkit::exercise(&l, 1 << 20);
        }
    }
}
