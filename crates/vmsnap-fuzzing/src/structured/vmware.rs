//! VMware checkpoints, structure-aware: the crate's own builder (`vmsnap_vmware::builder`,
//! restated from the format description, not from the reader) writes the header, the group
//! table and each group's tag stream from the description — memory regions with their
//! `Memory` block embedded or in a companion `.vmem`, vCPUs in each register form, the
//! screenshot and configuration groups, and tags of any known or unknown name with inline,
//! block, padded or compressed values — then patches inside the header, the group table or
//! a group. The checkpoint (or its `.vmem`) is opened with its companion served from memory.

use std::collections::HashMap;

use arbitrary::Arbitrary;
use vmsnap_vmware::builder::{
    block_tag, cpu_group, extra_groups, memory_bytes, region_tags, Ckpt, CpuForm, Reg, Sparse, Val,
    G, T,
};

use super::{apply, at_path, description, in_memory, zlib, Patch};

const MAGICS: [u32; 7] = [
    0xbed2_bed0,
    0xbed0_bed0,
    0xbad1_bad1,
    0xbad2_bad2,
    0xbed2_bed2,
    0xbed3_bed3,
    0x1234_5678,
];
const GROUPS: &[&str] = &[
    "memory",
    "cpu",
    "Checkpoint",
    "Snapshot",
    "MKSVMX",
    "vmware",
];
const TAGS: &[&str] = &[
    "regionsCount",
    "regionPPN",
    "regionPageNum",
    "regionSize",
    "Memory",
    "align_mask",
    "cpu:numVCPUs",
    "numVCPUs",
    "gpregs",
    "CR64",
    "CR",
    "cr3",
    "rip",
    "S",
    "S.base64",
    "IDTR",
    "GDTR",
    "EFLAGS",
    "imageData",
    "cfgFile",
];

#[derive(Arbitrary, Debug)]
enum Value {
    Inline(Vec<u8>),
    Block {
        data: Vec<u8>,
        in_mem: Option<u32>,
        pad: u8,
        compressed: bool,
        zlib: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Tag {
    name: u8,
    other: Option<String>,
    idx: Vec<u8>,
    value: Value,
}

#[derive(Arbitrary, Debug)]
struct Group {
    name: u8,
    tags: Vec<Tag>,
}

#[derive(Arbitrary, Debug)]
struct Memory {
    regions: Vec<(u8, u8, u8)>,
    count: Option<u8>,
    in_vmem: bool,
    extra_pages: u8,
    pad: u8,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    magic: u8,
    memory: Option<Memory>,
    cpus: Option<(u8, u8)>,
    extra: Option<u8>,
    groups: Vec<Group>,
    open_vmem: bool,
    upper_case: bool,
    patches: Vec<Patch>,
}

fn tag(t: &Tag) -> T {
    let name = match &t.other {
        Some(o) => o.chars().filter(char::is_ascii_graphic).take(40).collect(),
        None => TAGS[usize::from(t.name) % TAGS.len()].to_string(),
    };
    let idx = t.idx.iter().take(3).map(|&i| u32::from(i % 8)).collect();
    let val = match &t.value {
        Value::Inline(b) => Val::Inline(b.iter().copied().take(61).collect()),
        Value::Block {
            data,
            in_mem,
            pad,
            compressed,
            zlib: z,
        } => {
            let data: Vec<u8> = data.iter().copied().take(8192).collect();
            let stored = if *z { zlib(&data) } else { data };
            Val::Block {
                data: Sparse::bytes(stored),
                in_mem: in_mem.map(u64::from),
                pad: u16::from(*pad),
                compressed: *compressed,
            }
        }
    };
    T { name, idx, val }
}

/// The checkpoint and its `.vmem` (empty when the memory is embedded or absent).
fn build(d: &Desc) -> (Vec<u8>, Vec<u8>, Vec<(usize, usize)>) {
    let mut groups = Vec::new();
    let mut vmem = Vec::new();
    if let Some(m) = &d.memory {
        let regs: Vec<Reg> = m
            .regions
            .iter()
            .take(6)
            .map(|&(ppn, page_num, pages)| Reg {
                ppn: u64::from(ppn),
                page_num: u64::from(page_num % 64),
                pages: u64::from(pages % 16),
            })
            .collect();
        let mut tags = region_tags(&regs, m.count.map(|c| u32::from(c % 8)));
        let (mut mem, _) = memory_bytes(&regs, 0x5eed, 1);
        mem.len += u64::from(m.extra_pages % 4) * 4096;
        if m.in_vmem {
            vmem = mem.to_vec();
        } else {
            tags.push(block_tag("Memory", &[0, 0], mem, u16::from(m.pad)));
        }
        groups.push(G {
            name: "memory".into(),
            tags,
        });
    }
    if let Some((n, form)) = d.cpus {
        let form = [CpuForm::Scalar, CpuForm::Block, CpuForm::OldCr][usize::from(form % 3)];
        groups.push(cpu_group(u32::from(n % 4), form, u16::from(n >> 4)));
    }
    if let Some(pad) = d.extra {
        groups.extend(extra_groups(u16::from(pad)));
    }
    for g in d.groups.iter().take(4) {
        let name = GROUPS[usize::from(g.name) % GROUPS.len()].to_string();
        let tags = g.tags.iter().take(16).map(tag).collect();
        groups.push(G { name, tags });
    }
    let ck = Ckpt {
        magic: MAGICS[usize::from(d.magic) % MAGICS.len()],
        groups,
    };
    let built = ck.build();
    let mut regions = vec![(0usize, 12 + 80 * built.groups.len())];
    regions.extend(
        built
            .groups
            .iter()
            .map(|&(_, at, len)| (at as usize, len as usize)),
    );
    (built.image.to_vec(), vmem, regions)
}

/// The `vmware` target's structured mode: false when `data` is not a description.
pub fn run(data: &[u8]) -> bool {
    let Some(d) = description::<Desc>(data) else {
        return false;
    };
    let (mut ckpt, vmem, regions) = build(&d);
    apply(&mut ckpt, &regions, &d.patches);
    let (ck_name, vmem_name) = if d.upper_case {
        ("vm.VMSS", "vm.VMEM")
    } else {
        ("vm.vmss", "vm.vmem")
    };
    let mut files = HashMap::new();
    let top = if d.open_vmem {
        files.insert(ck_name.to_string(), ckpt.into());
        at_path(vmem, vmem_name)
    } else {
        if !vmem.is_empty() {
            files.insert(vmem_name.to_string(), vmem.into());
        }
        at_path(ckpt, ck_name)
    };
    crate::plain::vmware_on(top, &in_memory(files));
    true
}
