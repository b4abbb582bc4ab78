//! Checkpoints written by the builder from the documented format, with known guest
//! memory: the reader must return exactly that memory, CPU state and metadata.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{open_bytes, open_path};
use vmsnap_core::{ExtentKind, ExternalPolicy, FileLayer, Layer, MemSource, Severity};
use vmsnap_testkit::{assert_same_bytes, read_all, scratch_dir};
use vmsnap_vmware::builder::*;

const SEED: u64 = 0x5eed_0000_1234_abcd;

fn two_regions() -> Vec<Reg> {
    vec![
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 16,
        },
        Reg {
            ppn: 32,
            page_num: 16,
            pages: 8,
        },
    ]
}

fn three_regions() -> Vec<Reg> {
    vec![
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 10,
        },
        Reg {
            ppn: 16,
            page_num: 10,
            pages: 6,
        },
        Reg {
            ppn: 40,
            page_num: 16,
            pages: 4,
        },
    ]
}

/// A checkpoint with embedded memory.
fn embedded(magic: u32, regs: &[Reg], count: Option<u32>, pad: u16, form: CpuForm) -> Built {
    let (mem, _) = memory_bytes(regs, SEED, 1);
    let mut tags = if count.is_some() {
        region_tags(regs, count)
    } else {
        Vec::new()
    };
    tags.push(u32_tag("align_mask", &[], 0xffff));
    tags.push(block_tag("Memory", &[0, 0], mem, pad));
    let mut groups = extra_groups(pad);
    groups.insert(
        1,
        G {
            name: "memory".into(),
            tags,
        },
    );
    groups.push(cpu_group(2, form, pad));
    Ckpt { magic, groups }.build()
}

/// A checkpoint whose memory is in the `.vmem`, and that `.vmem`.
fn split(magic: u32, regs: &[Reg], count: Option<u32>, pad: u16, form: CpuForm) -> (Built, Sparse) {
    let (mem, _) = memory_bytes(regs, SEED, 1);
    let mut groups = extra_groups(pad);
    groups.insert(
        1,
        G {
            name: "memory".into(),
            tags: region_tags(regs, count),
        },
    );
    groups.push(cpu_group(3, form, pad));
    (Ckpt { magic, groups }.build(), mem)
}

#[test]
fn embedded_memory_two_regions_with_hole() {
    let regs = two_regions();
    let b = embedded(0xbed2_bed2, &regs, Some(2), 7, CpuForm::Scalar);
    let l = open_bytes(b.image.to_vec()).unwrap();
    assert_eq!(l.len(), 40 * 4096);
    assert_same_bytes(
        &read_all(l.as_ref()),
        &expected_guest(&regs, SEED),
        "guest memory",
    );
    // The hole between the regions is unallocated, the regions map 1:1 into the file.
    let (_, data) = b.tag("memory/Memory[0][0]");
    let data = data.unwrap();
    let e = l.extents(0..l.len()).unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].lower_offset, Some(data));
    assert_eq!(e[1].kind, ExtentKind::Unallocated);
    assert_eq!((e[1].offset, e[1].len), (16 * 4096, 16 * 4096));
    assert_eq!(e[2].lower_offset, Some(data + 16 * 4096));
    let d = l.describe();
    assert_eq!(d["format"], "vmware");
    assert_eq!(d["virtual_size"], 40 * 4096);
    assert_eq!(d["memory_size"], 24 * 4096);
    assert_eq!(d["memory"]["layout"]["source"], "embedded");
    assert_eq!(d["memory"]["regions_count"], 2);
    assert_eq!(d["memory"]["align_mask"], 0xffff);
    assert_eq!(d["header"]["version"], 2);
    assert_eq!(d["header"]["block_size_bits"], 64);
    assert_eq!(d["vcpus"], 2);
    assert_eq!(d["config"]["displayName"], "vmsnap test VM");
    assert_eq!(d["config"]["virtualHW.version"], "19");
    assert_eq!(d["screenshot"]["bytes"], TINY_PNG.len());
    assert!(
        l.findings().iter().all(|f| f.severity == Severity::Info),
        "{:?}",
        l.findings()
    );
    assert!(l.external_refs().is_empty());
}

fn check_cpus(l: &dyn Layer, n: u32, form: CpuForm) {
    let cpus = l.cpu_state();
    assert_eq!(cpus.len(), n as usize);
    for (c, s) in cpus.iter().enumerate() {
        let c = c as u32;
        assert_eq!(s.index, c);
        assert_eq!(s.arch, "x86_64");
        assert_eq!(s.cr3, cr3_of(c));
        assert_eq!(s.cr0, 0x8005_0033);
        assert_eq!(s.cr4, 0x0037_06f0);
        assert_eq!(s.regs["cr2"], 0xdead_b000);
        assert_eq!(s.regs["rip"], 0xffff_ffff_8100_0000 + u64::from(c));
        assert_eq!(s.regs["cs"], 0x18);
        assert_eq!(s.regs["tr"], 0x48);
        assert_eq!(s.regs["fs_base"], 0x7f00_0000_0000 + u64::from(c));
        assert_eq!(s.regs["gs_base"], 0xffff_8880_0000_0000 + u64::from(c));
        match form {
            CpuForm::Scalar | CpuForm::Block => {
                for (i, g) in vmsnap_vmware::GPREGS.iter().enumerate() {
                    assert_eq!(s.regs[*g], reg_value(c, i), "{g}");
                }
                assert_eq!(s.regs["idtr_base"], 0xffff_fe00_ff52_8000);
                assert_eq!(s.regs["idtr_limit"], 0xfff);
                assert_eq!(s.regs["rflags"], 0x246);
            }
            CpuForm::OldCr => {
                assert!(!s.regs.contains_key("rax"));
                assert_eq!(s.regs["rflags"], 0x202);
            }
        }
    }
}

#[test]
fn cpu_state_scalar_block_and_old_cr_tags() {
    for form in [CpuForm::Scalar, CpuForm::Block, CpuForm::OldCr] {
        let b = embedded(0xbed2_bed2, &two_regions(), Some(2), 3, form);
        let l = open_bytes(b.image.to_vec()).unwrap();
        check_cpus(l.as_ref(), 2, form);
        let d = l.describe();
        assert_eq!(d["cpu"][1]["cr3"], format!("{:#x}", cr3_of(1)));
    }
}

#[test]
fn vmsn_and_vmem_give_the_same_layer_from_either_file() {
    let regs = three_regions();
    let dir = scratch_dir("vmware-split");
    let (b, mem) = split(0xbed2_bed2, &regs, Some(3), 5, CpuForm::Block);
    b.image.write_to(&dir.join("vm-Snapshot1.vmsn")).unwrap();
    mem.write_to(&dir.join("vm-Snapshot1.vmem")).unwrap();
    let want = expected_guest(&regs, SEED);
    for name in ["vm-Snapshot1.vmsn", "vm-Snapshot1.vmem"] {
        let l = open_path(&dir.join(name), ExternalPolicy::SameDir).unwrap();
        assert_eq!(l.len(), 44 * 4096, "{name}");
        assert_same_bytes(&read_all(l.as_ref()), &want, name);
        check_cpus(l.as_ref(), 3, CpuForm::Block);
        let refs = l.external_refs();
        assert_eq!(refs.len(), 1, "{name}: {refs:?}");
        assert!(matches!(
            refs[0].decision,
            vmsnap_core::RefDecision::Opened { .. }
        ));
        let d = l.describe();
        assert_eq!(d["memory"]["regions"].as_array().unwrap().len(), 3);
        assert_eq!(d["memory"]["layout"]["source"], "vmem");
        assert_eq!(d["config"]["guestOS"], "ubuntu-64");
        assert_eq!(l.path().unwrap().file_name().unwrap(), name);
        // Memory comes from the .vmem: extents are 1:1 only when that is the file opened.
        let e = l.extents(0..l.len()).unwrap();
        assert_eq!(e.len(), 5);
        if name.ends_with(".vmem") {
            assert_eq!(e[2].lower_offset, Some(10 * 4096));
        } else {
            assert_eq!(e[2].lower_offset, None);
        }
    }
    // The .vmss name works too, and the .vmss is preferred over the .vmsn.
    std::fs::rename(dir.join("vm-Snapshot1.vmsn"), dir.join("vm-Snapshot1.vmss")).unwrap();
    let l = open_path(&dir.join("vm-Snapshot1.vmem"), ExternalPolicy::SameDir).unwrap();
    assert_eq!(l.len(), 44 * 4096);
    assert_eq!(l.describe()["opened_from"], "vmem");
}

#[test]
fn denied_companion_is_unavailable_with_a_finding() {
    let regs = three_regions();
    let dir = scratch_dir("vmware-deny");
    let (b, mem) = split(0xbed2_bed2, &regs, Some(3), 0, CpuForm::Scalar);
    b.image.write_to(&dir.join("a.vmss")).unwrap();
    mem.write_to(&dir.join("a.vmem")).unwrap();
    let l = open_path(&dir.join("a.vmss"), ExternalPolicy::Deny).unwrap();
    assert_eq!(l.len(), 44 * 4096);
    // Memory in the refused .vmem is unavailable (it read as zeros before the one rule
    // for unavailable references); the layout keeps its holes.
    let e = l.read_at(0, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unavailable);
    assert!(e.to_string().contains("companion file \"a.vmem\""), "{e}");
    let ext = l.extents(0..l.len()).unwrap();
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Unavailable));
    assert!(ext.iter().all(|e| e.kind != ExtentKind::Data));
    let z = common::open_layer_missing(
        Arc::new(FileLayer::open(dir.join("a.vmss")).unwrap()),
        ExternalPolicy::Deny,
        vmsnap_core::MissingPolicy::Zeros,
    )
    .unwrap();
    assert!(read_all(z.as_ref()).iter().all(|&x| x == 0));
    let f = l.findings();
    assert!(
        f.iter()
            .any(|f| f.rule == vmsnap_core::rule::COMPANION_FILE && f.severity == Severity::Unsafe),
        "{f:?}"
    );
    assert_eq!(l.describe()["memory"]["layout"]["source"], "missing");
    assert_eq!(l.external_refs().len(), 1);
    // From the .vmem with the policy denying the metadata: identity-mapped, with a warning.
    let l = open_path(&dir.join("a.vmem"), ExternalPolicy::Deny).unwrap();
    assert_eq!(l.len(), 20 * 4096);
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::COMPANION_FILE));
    assert_eq!(l.external_refs().len(), 2);
    let mut p = vec![0u8; 4096];
    l.read_at(10 * 4096, &mut p).unwrap();
    assert_eq!(p, page(16, SEED));
}

#[test]
fn large_guest_with_pci_hole_sparse_vmem_and_embedded() {
    // 3 GiB below the hole, 1 GiB from 4 GiB, 64 KiB at 6 GiB: a 6 GiB+ guest.
    let regs = vec![
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 0xC0000,
        },
        Reg {
            ppn: 0x100000,
            page_num: 0xC0000,
            pages: 0x40000,
        },
        Reg {
            ppn: 0x180000,
            page_num: 0x100000,
            pages: 0x10,
        },
    ];
    let (mem, written) = memory_bytes(&regs, SEED, 0x4000);
    let dir = scratch_dir("vmware-large");
    let mut groups = extra_groups(0);
    groups.insert(
        1,
        G {
            name: "memory".into(),
            tags: region_tags(&regs, Some(3)),
        },
    );
    groups.push(cpu_group(1, CpuForm::Scalar, 0));
    Ckpt {
        magic: 0xbed2_bed2,
        groups: groups.clone(),
    }
    .build()
    .image
    .write_to(&dir.join("big.vmss"))
    .unwrap();
    mem.write_to(&dir.join("big.vmem")).unwrap();
    // The same memory embedded, with padding.
    let mut g2 = groups.clone();
    g2[1]
        .tags
        .push(block_tag("Memory", &[0, 0], mem.clone(), 4095));
    Ckpt {
        magic: 0xbed3_bed3,
        groups: g2,
    }
    .build()
    .image
    .write_to(&dir.join("big-embedded.vmsn"))
    .unwrap();
    for name in ["big.vmss", "big.vmem", "big-embedded.vmsn"] {
        let l = open_path(&dir.join(name), ExternalPolicy::SameDir).unwrap();
        assert_eq!(l.len(), (0x180000 + 0x10) * 4096, "{name}");
        let mut buf = vec![0u8; 4096];
        for &ppn in &written {
            l.read_at(ppn * 4096, &mut buf).unwrap();
            assert_eq!(buf, page(ppn, SEED), "{name} page {ppn:#x}");
        }
        // A page in the PCI hole and one in the gap above 5 GiB read as zeros.
        for ppn in [0xC0000u64, 0xFFFFF, 0x140000, 0x17FFFF] {
            buf.fill(0xFF);
            l.read_at(ppn * 4096, &mut buf).unwrap();
            assert!(buf.iter().all(|&x| x == 0), "{name} hole page {ppn:#x}");
        }
        // A read straddling the 3 GiB boundary: memory then hole.
        let mut two = vec![0u8; 8192];
        l.read_at(0xBFFFF * 4096, &mut two).unwrap();
        assert_eq!(&two[..4096], &page(0xBFFFF, SEED)[..]);
        assert!(two[4096..].iter().all(|&x| x == 0));
        let e = l.extents(0..l.len()).unwrap();
        // The regions are present (data, or zero where the sparse file has a hole), the
        // rest unallocated; every written page is data.
        let mut present: Vec<(bool, u64, u64)> = Vec::new();
        for x in &e {
            let p = x.kind != ExtentKind::Unallocated;
            match present.last_mut() {
                Some((q, o, n)) if *q == p && *o + *n == x.offset => *n += x.len,
                _ => present.push((p, x.offset, x.len)),
            }
        }
        assert_eq!(
            present,
            vec![
                (true, 0, 3 << 30),
                (false, 3 << 30, 1 << 30),
                (true, 4 << 30, 1 << 30),
                (false, 5 << 30, 1 << 30),
                (true, 6 << 30, 0x10000),
            ],
            "{name}"
        );
        for &ppn in &written {
            let at = ppn * 4096;
            assert!(
                e.iter()
                    .any(|x| x.kind == ExtentKind::Data && x.offset <= at && at + 4096 <= x.end()),
                "{name}: page {ppn:#x} is not in a data extent"
            );
        }
        assert!(l.read_at(l.len() - 1, &mut [0u8; 2]).is_err());
    }
}

#[test]
fn version0_uses_32bit_block_sizes_and_single_run() {
    for magic in [0xbed2_bed0u32, 0xbed0_bed0] {
        let regs = [Reg {
            ppn: 0,
            page_num: 0,
            pages: 12,
        }];
        // No regionsCount: the Memory block is one run from guest address 0.
        let b = embedded(magic, &regs, None, 9, CpuForm::OldCr);
        let l = open_bytes(b.image.to_vec()).unwrap();
        assert_eq!(l.len(), 12 * 4096);
        assert_same_bytes(
            &read_all(l.as_ref()),
            &expected_guest(&regs, SEED),
            "v0 memory",
        );
        let d = l.describe();
        assert_eq!(d["header"]["version"], 0);
        assert_eq!(d["header"]["block_size_bits"], 32);
        assert_eq!(d["memory"]["regions_count"], serde_json::Value::Null);
        check_cpus(l.as_ref(), 2, CpuForm::OldCr);
        assert_eq!(d["config"]["memsize"], "4096");
    }
}

#[test]
fn every_magic_is_accepted() {
    for magic in [
        0xbed2_bed0u32,
        0xbad1_bad1,
        0xbad2_bad2,
        0xbed2_bed2,
        0xbed3_bed3,
        0xbed0_bed0,
    ] {
        let regs = two_regions();
        let b = embedded(magic, &regs, Some(2), 1, CpuForm::Scalar);
        let l = open_bytes(b.image.to_vec()).unwrap();
        assert_same_bytes(
            &read_all(l.as_ref()),
            &expected_guest(&regs, SEED),
            &format!("{magic:#x}"),
        );
        assert_eq!(l.describe()["header"]["magic"], format!("{magic:#010x}"));
    }
}

#[test]
fn vmem_without_regions_is_identity_mapped() {
    let dir = scratch_dir("vmware-noregions");
    for count in [None, Some(0)] {
        let mut tags = vec![u32_tag("align_mask", &[], 0)];
        if let Some(c) = count {
            tags.push(u32_tag("regionsCount", &[], c));
        }
        let groups = vec![
            G {
                name: "memory".into(),
                tags,
            },
            cpu_group(1, CpuForm::Scalar, 0),
        ];
        Ckpt {
            magic: 0xbad1_bad1,
            groups,
        }
        .build()
        .image
        .write_to(&dir.join("s.vmss"))
        .unwrap();
        let regs = [Reg {
            ppn: 0,
            page_num: 0,
            pages: 8,
        }];
        let (mem, _) = memory_bytes(&regs, SEED, 1);
        mem.write_to(&dir.join("s.vmem")).unwrap();
        for name in ["s.vmss", "s.vmem"] {
            let l = open_path(&dir.join(name), ExternalPolicy::SameDir).unwrap();
            assert_same_bytes(&read_all(l.as_ref()), &expected_guest(&regs, SEED), name);
        }
    }
}

#[test]
fn screenshot_and_tags_extract_and_meta_is_lossless() {
    let b = embedded(0xbed2_bed2, &two_regions(), Some(2), 11, CpuForm::Scalar);
    let bytes = b.image.to_vec();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes.clone()))));
    assert_eq!(
        vmsnap_vmware::extract_tag(file.clone(), "imageData", 1 << 20).unwrap(),
        TINY_PNG
    );
    assert_eq!(
        vmsnap_vmware::extract_tag(file.clone(), "MKSVMX/imageData", 1 << 20).unwrap(),
        TINY_PNG
    );
    assert_eq!(
        vmsnap_vmware::extract_tag(file.clone(), "memory/regionPPN[1]", 64).unwrap(),
        32u32.to_le_bytes()
    );
    assert_eq!(
        vmsnap_vmware::extract_tag(file.clone(), "nope", 64)
            .unwrap_err()
            .kind(),
        vmsnap_core::ErrorKind::NotFound
    );
    let l = open_bytes(bytes).unwrap();
    let m = l.meta();
    let groups = m["groups"].as_array().unwrap();
    let names: Vec<_> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Checkpoint", "memory", "Snapshot", "MKSVMX", "cpu"]);
    for (g, (name, off, size)) in groups.iter().zip(&b.groups) {
        assert_eq!(g["name"], name.as_str());
        assert_eq!(g["offset"], *off);
        assert_eq!(g["size"], *size);
        assert_eq!(g["terminator"], *off + *size - 2);
    }
    let mks = &groups[3]["tags"];
    assert_eq!(mks[0]["name"], "imageWidth");
    assert_eq!(mks[0]["value"], "0x4");
    assert_eq!(mks[2]["kind"], "block");
    assert_eq!(mks[2]["padsize"], 11);
    assert_eq!(mks[2]["nbytes"], 98);
    assert!(mks[2]["hex"].as_str().unwrap().starts_with("89504e47"));
    let mem = &groups[1]["tags"];
    assert_eq!(mem[1]["name"], "regionPageNum[0]");
    assert_eq!(mem[1]["offset"], b.tag("memory/regionPageNum[0]").0);
    let block = mem
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "Memory")
        .unwrap();
    assert_eq!(block["name"], "Memory[0][0]");
    assert_eq!(block["nbytes"], 24 * 4096);
    assert_eq!(block["hex_head"].as_str().unwrap().len(), 128);
    let ck = &groups[0]["tags"];
    assert_eq!(ck[1]["text"], "vmsnap-builder");
    // Every tag the builder wrote is in the tree, at its offset.
    let all: Vec<u64> = groups
        .iter()
        .flat_map(|g| {
            g["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["offset"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(all, b.tags.iter().map(|t| t.1).collect::<Vec<_>>());
    assert_eq!(m["summary"]["format"], "vmware");
}

#[test]
fn compressed_memory_block_zlib_and_unknown() {
    use std::io::Write;
    let regs = two_regions();
    let (mem, _) = memory_bytes(&regs, SEED, 1);
    let raw = mem.to_vec();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let zdata = z.finish().unwrap();
    for (data, ok) in [(zdata, true), (vec![0x42u8; 900], false)] {
        let mut tags = region_tags(&regs, Some(2));
        tags.push(T {
            name: "Memory".into(),
            idx: vec![0, 0],
            val: Val::Block {
                data: Sparse::bytes(data),
                in_mem: Some(raw.len() as u64),
                pad: 2,
                compressed: true,
            },
        });
        let b = Ckpt {
            magic: 0xbed2_bed2,
            groups: vec![G {
                name: "memory".into(),
                tags,
            }],
        }
        .build();
        let l = open_bytes(b.image.to_vec()).unwrap();
        assert_eq!(l.len(), 40 * 4096);
        let d = l.describe();
        assert_eq!(d["compressed_blocks"], 1);
        let m = l.meta();
        let t = &m["groups"][0]["tags"][7];
        assert_eq!(t["kind"], "compressed_block");
        if ok {
            assert_eq!(d["memory"]["layout"]["compression"], "zlib");
            assert_eq!(t["compression"], "zlib");
            assert_same_bytes(
                &read_all(l.as_ref()),
                &expected_guest(&regs, SEED),
                "zlib memory",
            );
        } else {
            assert_eq!(t["compression"], "unknown");
            let e = l.read_at(0, &mut [0u8; 16]).unwrap_err();
            assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unsupported);
            assert!(l
                .findings()
                .iter()
                .any(|f| f.rule == vmsnap_vmware::rule::COMPRESSED_MEMORY));
            // Holes still read as zeros.
            let mut z = [1u8; 16];
            l.read_at(20 * 4096, &mut z).unwrap();
            assert_eq!(z, [0u8; 16]);
        }
    }
}

#[test]
fn probe_accepts_checkpoints_and_vmem_names_only() {
    use vmsnap_core::{AddressSpace, Probe, SniffWindow};
    let b = embedded(0xbed2_bed2, &two_regions(), Some(2), 0, CpuForm::Scalar)
        .image
        .to_vec();
    let w = SniffWindow::of_bytes(&b[..b.len().min(65536)], &[], b.len() as u64);
    assert_eq!((vmsnap_vmware::PLUGIN.probe)(&w), Probe::Yes);
    let zeros = vec![0u8; 8192];
    let mut w = SniffWindow::of_bytes(&zeros, &zeros, 8192);
    assert!(!(vmsnap_vmware::PLUGIN.probe)(&w).is_yes());
    let p = std::path::PathBuf::from("/x/y.VMEM");
    w.path = Some(&p);
    assert_eq!((vmsnap_vmware::PLUGIN.probe)(&w), Probe::Yes);
    w.size = 8191;
    assert!(!(vmsnap_vmware::PLUGIN.probe)(&w).is_yes());
    w.size = 8192;
    w.space = AddressSpace::GuestPhysical;
    assert!(!vmsnap_vmware::PLUGIN.recognises(&w).is_yes());
    // Magic but a group table past the end.
    let mut h = b[..12].to_vec();
    h[8..12].copy_from_slice(&1000u32.to_le_bytes());
    let w = SniffWindow::of_bytes(&h, &h, 12);
    assert!(!(vmsnap_vmware::PLUGIN.probe)(&w).is_yes());
}
