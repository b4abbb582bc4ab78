//! A test builder that writes VMware checkpoints from the documented format, with known
//! guest memory. It shares no parsing code with the reader: every constant and layout rule
//! is restated here from the format description (crash-utility's `vmware_vmss.h`,
//! Volatility 2's `vmware.py`), so a misreading in the reader is not mirrored.
//!
//! Images are sparse: a length plus the byte ranges that are not zero, so a > 4 GiB guest
//! costs a few pages of memory and a sparse file.
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// A 4x4 RGB PNG, standing in for the `MKSVMX/imageData` screenshot.
pub const TINY_PNG: [u8; 98] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26, 0x93, 0x09,
    0x29, 0x00, 0x00, 0x00, 0x29, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x0d, 0xc7, 0x31, 0x01, 0x00,
    0x00, 0x0c, 0xc2, 0x30, 0x84, 0x55, 0x18, 0x67, 0x45, 0x21, 0x70, 0xcb, 0x97, 0x24, 0x12, 0x1b,
    0x17, 0x13, 0x04, 0x8b, 0xe3, 0x53, 0xa9, 0xad, 0xeb, 0x67, 0x32, 0x3b, 0x37, 0x0f, 0xa7, 0x63,
    0x13, 0x41, 0x36, 0x1d, 0x49, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42,
    0x60, 0x82,
];

const PAGE: u64 = 4096;

/// Bytes of a sparse image: its length and its non-zero pieces.
#[derive(Debug, Clone, Default)]
pub struct Sparse {
    /// Total length.
    pub len: u64,
    /// `(offset, bytes)` pieces; everything else is zero.
    pub pieces: Vec<(u64, Vec<u8>)>,
}

impl Sparse {
    /// `len` zero bytes.
    pub fn zeros(len: u64) -> Sparse {
        Sparse {
            len,
            pieces: Vec::new(),
        }
    }
    /// Bytes held in memory.
    pub fn bytes(b: Vec<u8>) -> Sparse {
        Sparse {
            len: b.len() as u64,
            pieces: vec![(0, b)],
        }
    }
    /// Sets bytes at `offset` (growing the length if needed).
    pub fn put(&mut self, offset: u64, b: Vec<u8>) {
        self.len = self.len.max(offset + b.len() as u64);
        self.pieces.push((offset, b));
    }
    fn append(&mut self, b: &[u8]) {
        let at = self.len;
        self.put(at, b.to_vec());
    }
    fn append_sparse(&mut self, s: &Sparse) {
        let base = self.len;
        for (o, b) in &s.pieces {
            self.pieces.push((base + o, b.clone()));
        }
        self.len = base + s.len;
    }
    /// The whole image in memory (only for small images).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len as usize];
        for (o, b) in &self.pieces {
            v[*o as usize..*o as usize + b.len()].copy_from_slice(b);
        }
        v
    }
    /// Writes the image as a sparse file.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        f.set_len(self.len)?;
        for (o, b) in &self.pieces {
            f.seek(SeekFrom::Start(*o))?;
            f.write_all(b)?;
        }
        Ok(())
    }
}

/// A tag value as the builder writes it.
#[derive(Debug, Clone)]
pub enum Val {
    /// Inline bytes (0..=61).
    Inline(Vec<u8>),
    /// A block: data, `nbytesinmem` (defaults to the data length), padding, compressed flag.
    Block {
        /// The data as stored.
        data: Sparse,
        /// `nbytesinmem`; `None` = the data length.
        in_mem: Option<u64>,
        /// Padding bytes written before the data (filled with 0xA5 so a reader that skips
        /// them wrongly reads garbage).
        pad: u16,
        /// Value size 62 instead of 63.
        compressed: bool,
    },
}

/// One tag.
#[derive(Debug, Clone)]
pub struct T {
    /// Name.
    pub name: String,
    /// Indices (0..=3).
    pub idx: Vec<u32>,
    /// Value.
    pub val: Val,
}

/// An inline u32 tag.
pub fn u32_tag(name: &str, idx: &[u32], v: u32) -> T {
    T {
        name: name.into(),
        idx: idx.to_vec(),
        val: Val::Inline(v.to_le_bytes().to_vec()),
    }
}
/// An inline u64 tag.
pub fn u64_tag(name: &str, idx: &[u32], v: u64) -> T {
    T {
        name: name.into(),
        idx: idx.to_vec(),
        val: Val::Inline(v.to_le_bytes().to_vec()),
    }
}
/// An inline tag of raw bytes.
pub fn bytes_tag(name: &str, idx: &[u32], v: &[u8]) -> T {
    T {
        name: name.into(),
        idx: idx.to_vec(),
        val: Val::Inline(v.to_vec()),
    }
}
/// A block tag.
pub fn block_tag(name: &str, idx: &[u32], data: Sparse, pad: u16) -> T {
    T {
        name: name.into(),
        idx: idx.to_vec(),
        val: Val::Block {
            data,
            in_mem: None,
            pad,
            compressed: false,
        },
    }
}

/// One group.
#[derive(Debug, Clone)]
pub struct G {
    /// Name (< 64 bytes).
    pub name: String,
    /// Tags.
    pub tags: Vec<T>,
}

/// A whole checkpoint.
#[derive(Debug, Clone)]
pub struct Ckpt {
    /// Magic.
    pub magic: u32,
    /// Groups.
    pub groups: Vec<G>,
}

/// What was written where.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The file.
    pub image: Sparse,
    /// `(name, tags offset, size)` per group.
    pub groups: Vec<(String, u64, u64)>,
    /// `(group/name[idx], tag word offset, data offset for blocks)`.
    pub tags: Vec<(String, u64, Option<u64>)>,
}

impl Built {
    /// Offset of the tag word of the first tag called `full` (`group/name[i]`).
    pub fn tag(&self, full: &str) -> (u64, Option<u64>) {
        self.tags
            .iter()
            .find(|t| t.0 == full)
            .map(|t| (t.1, t.2))
            .unwrap_or_else(|| panic!("no tag {full}"))
    }
}

impl Ckpt {
    /// Writes the checkpoint: 12-byte header, 80-byte group descriptors, then each group's
    /// tag stream ending in a null tag.
    pub fn build(&self) -> Built {
        // Version 0 magics (low nibble 0) use 32-bit block sizes.
        let wide = self.magic & 0xF != 0;
        let mut img = Sparse::default();
        img.append(&self.magic.to_le_bytes());
        img.append(&0u32.to_le_bytes());
        img.append(&(self.groups.len() as u32).to_le_bytes());
        let table_at = img.len;
        img.append(&vec![0u8; 80 * self.groups.len()]);
        let mut out = Built::default();
        let mut table = Vec::new();
        for g in &self.groups {
            let start = img.len;
            for t in &g.tags {
                let word_at = img.len;
                let (valsize, data_at) = match &t.val {
                    Val::Inline(b) => {
                        assert!(b.len() < 62);
                        (b.len() as u16, None)
                    }
                    Val::Block { compressed, .. } => (if *compressed { 62 } else { 63 }, Some(())),
                };
                let word: u16 =
                    ((t.name.len() as u16) << 8) | ((t.idx.len() as u16) << 6) | valsize;
                img.append(&word.to_le_bytes());
                img.append(t.name.as_bytes());
                for i in &t.idx {
                    img.append(&i.to_le_bytes());
                }
                let mut data_off = None;
                match &t.val {
                    Val::Inline(b) => img.append(b),
                    Val::Block {
                        data, in_mem, pad, ..
                    } => {
                        let in_mem = in_mem.unwrap_or(data.len);
                        if wide {
                            img.append(&data.len.to_le_bytes());
                            img.append(&in_mem.to_le_bytes());
                        } else {
                            img.append(&(data.len as u32).to_le_bytes());
                            img.append(&(in_mem as u32).to_le_bytes());
                        }
                        img.append(&pad.to_le_bytes());
                        img.append(&vec![0xA5u8; *pad as usize]);
                        data_off = Some(img.len);
                        img.append_sparse(data);
                    }
                }
                let _ = data_at;
                let mut full = format!("{}/{}", g.name, t.name);
                for i in &t.idx {
                    full.push_str(&format!("[{i}]"));
                }
                out.tags.push((full, word_at, data_off));
            }
            img.append(&[0, 0]);
            let size = img.len - start;
            let mut d = vec![0u8; 80];
            d[..g.name.len()].copy_from_slice(g.name.as_bytes());
            d[64..72].copy_from_slice(&start.to_le_bytes());
            d[72..80].copy_from_slice(&size.to_le_bytes());
            table.extend_from_slice(&d);
            out.groups.push((g.name.clone(), start, size));
        }
        img.put(table_at, table);
        out.image = img;
        out
    }
}

/// A guest page's known content: every 8-byte word is `(gpa of the word) ^ seed`, so any
/// mis-mapping shows.
pub fn page(ppn: u64, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(PAGE as usize);
    for w in 0..PAGE / 8 {
        v.extend_from_slice(&((ppn * PAGE + w * 8) ^ seed).to_le_bytes());
    }
    v
}

/// A region: guest page `ppn`, memory page `page_num`, `pages` long.
#[derive(Debug, Clone, Copy)]
pub struct Reg {
    /// First guest page.
    pub ppn: u64,
    /// First page in the memory file / block.
    pub page_num: u64,
    /// Pages.
    pub pages: u64,
}

/// Guest memory laid out by regions: the memory bytes (with every page written, or only
/// the first, last and every `stride`-th page of each region for huge guests) and the
/// list of pages written.
pub fn memory_bytes(regs: &[Reg], seed: u64, stride: u64) -> (Sparse, Vec<u64>) {
    let len = regs
        .iter()
        .map(|r| (r.page_num + r.pages) * PAGE)
        .max()
        .unwrap_or(0);
    let mut s = Sparse::zeros(len);
    let mut written = Vec::new();
    for r in regs {
        // Only the pages written are visited: a 1 TiB region costs a few steps.
        let step = usize::try_from(stride.max(1)).unwrap_or(usize::MAX);
        let last = r.pages.checked_sub(1);
        let chosen = (0..r.pages)
            .step_by(step)
            .chain(last.filter(|l| l % stride.max(1) != 0));
        for p in chosen {
            s.put((r.page_num + p) * PAGE, page(r.ppn + p, seed));
            written.push(r.ppn + p);
        }
    }
    (s, written)
}

/// A guest of `pages` 4 KiB pages of declared memory as VMware lays out a big one (3 GiB
/// below the PCI hole, the rest from 4 GiB) in a `.vmss` and a sparse `.vmem` of the same
/// size, with only the first and last page of each region and every `stride`-th page
/// written: (files, regions, pages written). For the scale benchmark and memory-cap tests.
pub fn huge_sample(pages: u64, stride: u64) -> (Vec<(&'static str, Sparse)>, Vec<Reg>, Vec<u64>) {
    let low = pages.min(0xC0000);
    let mut regs = vec![Reg {
        ppn: 0,
        page_num: 0,
        pages: low,
    }];
    if pages > low {
        regs.push(Reg {
            ppn: 0x100000,
            page_num: low,
            pages: pages - low,
        });
    }
    let (mem, written) = memory_bytes(&regs, CORPUS_SEED, stride);
    let count = u32::try_from(regs.len()).unwrap_or(u32::MAX);
    let b = Ckpt {
        magic: 0xbed2_bed2,
        groups: sample_groups(
            G {
                name: "memory".into(),
                tags: region_tags(&regs, Some(count)),
            },
            1,
            CpuForm::Scalar,
            0,
        ),
    }
    .build();
    (
        vec![("huge.vmss", b.image), ("huge.vmem", mem)],
        regs,
        written,
    )
}

/// The `memory` group's region tags (and `regionsCount` unless `count` is `None`).
pub fn region_tags(regs: &[Reg], count: Option<u32>) -> Vec<T> {
    let mut v = Vec::new();
    if let Some(c) = count {
        v.push(u32_tag("regionsCount", &[], c));
    }
    for (i, r) in regs.iter().enumerate() {
        let i = i as u32;
        v.push(u32_tag("regionPageNum", &[i], r.page_num as u32));
        v.push(u32_tag("regionPPN", &[i], r.ppn as u32));
        v.push(u32_tag("regionSize", &[i], r.pages as u32));
    }
    v
}

/// Registers of vCPU `cpu` the builder writes (distinct per CPU and register).
pub fn reg_value(cpu: u32, reg: usize) -> u64 {
    0x1111_0000_0000_0000 | (u64::from(cpu) << 32) | (reg as u64 * 0x101)
}

/// CR3 of vCPU `cpu`.
pub fn cr3_of(cpu: u32) -> u64 {
    0x1ab000 + u64::from(cpu) * 0x1000
}

/// How CPU tags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuForm {
    /// One tag per register, `CR64[cpu][n]`, `IDTR[cpu][1|2]`.
    Scalar,
    /// `gpregs[cpu]` (128 bytes), `CR64[cpu]` (72 bytes), `IDTR[cpu]` (10 bytes).
    Block,
    /// Older 32-bit style: `CR[cpu][n]` as u32, `EFLAGS`.
    OldCr,
}

const GP: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rbp", "rsp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// The `cpu` group for `n` vCPUs in `form`.
pub fn cpu_group(n: u32, form: CpuForm, pad: u16) -> G {
    let mut tags = vec![u32_tag("cpu:numVCPUs", &[], n)];
    for c in 0..n {
        let crs = [0x8005_0033u64, 0, 0xdead_b000, cr3_of(c), 0x0037_06f0];
        match form {
            CpuForm::Scalar => {
                for (i, g) in GP.iter().enumerate() {
                    tags.push(u64_tag(g, &[c], reg_value(c, i)));
                }
                for (k, v) in crs.iter().enumerate() {
                    tags.push(u64_tag("CR64", &[c, k as u32], *v));
                }
                tags.push(u32_tag("IDTR", &[c, 0], 0xfff));
                tags.push(u32_tag("IDTR", &[c, 1], 0xff52_8000));
                tags.push(u32_tag("IDTR", &[c, 2], 0xffff_fe00));
                tags.push(u32_tag("eflags", &[c], 0x246));
            }
            CpuForm::Block => {
                let mut g = Vec::new();
                for i in 0..16 {
                    g.extend_from_slice(&reg_value(c, i).to_le_bytes());
                }
                tags.push(block_tag("gpregs", &[c], Sparse::bytes(g), pad));
                let mut cr = Vec::new();
                for k in 0..9 {
                    cr.extend_from_slice(&crs.get(k).copied().unwrap_or(0).to_le_bytes());
                }
                tags.push(block_tag("CR64", &[c], Sparse::bytes(cr), pad));
                let mut idtr = 0xfffu16.to_le_bytes().to_vec();
                idtr.extend_from_slice(&0xffff_fe00_ff52_8000u64.to_le_bytes());
                tags.push(block_tag("IDTR", &[c], Sparse::bytes(idtr), 0));
                tags.push(u32_tag("EFLAGS", &[c], 0x246));
            }
            CpuForm::OldCr => {
                for (k, v) in crs.iter().enumerate() {
                    tags.push(u32_tag("CR", &[c, k as u32], *v as u32));
                }
                tags.push(u32_tag("EFLAGS", &[c], 0x202));
            }
        }
        tags.push(u64_tag("rip", &[c], 0xffff_ffff_8100_0000 + u64::from(c)));
        for s in 0..8u32 {
            tags.push(u32_tag("S", &[c, s], 0x10 + s * 8));
        }
        tags.push(u64_tag(
            "S.base64",
            &[c, 4],
            0x7f00_0000_0000 + u64::from(c),
        ));
        tags.push(u64_tag(
            "S.base64",
            &[c, 5],
            0xffff_8880_0000_0000 + u64::from(c),
        ));
    }
    G {
        name: "cpu".into(),
        tags,
    }
}

/// A sample `.vmx` text for `Snapshot/cfgFile`.
pub const CFG_TEXT: &str = ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"vmsnap test VM\"\nguestOS = \"ubuntu-64\"\nmemsize = \"4096\"\nnumvcpus = \"2\"\n";

/// Groups every sample carries besides `memory` and `cpu`: a `Checkpoint` group, the
/// `Snapshot` configuration and the `MKSVMX` screenshot.
pub fn extra_groups(pad: u16) -> Vec<G> {
    vec![
        G {
            name: "Checkpoint".into(),
            tags: vec![
                u32_tag("ProductVersion", &[], 0x0011_0005),
                bytes_tag("id", &[], b"vmsnap-builder\0"),
            ],
        },
        G {
            name: "Snapshot".into(),
            tags: vec![block_tag(
                "cfgFile",
                &[],
                Sparse::bytes(CFG_TEXT.as_bytes().to_vec()),
                pad,
            )],
        },
        G {
            name: "MKSVMX".into(),
            tags: vec![
                u32_tag("imageWidth", &[], 4),
                u32_tag("imageHeight", &[], 4),
                block_tag("imageData", &[], Sparse::bytes(TINY_PNG.to_vec()), pad),
            ],
        },
    ]
}

/// Expected guest-physical bytes of a small layout (every page written): region pages
/// hold [`page`], holes are zero.
pub fn expected_guest(regs: &[Reg], seed: u64) -> Vec<u8> {
    let size = regs
        .iter()
        .map(|r| (r.ppn + r.pages) * PAGE)
        .max()
        .unwrap_or(0);
    let mut v = vec![0u8; size as usize];
    for r in regs {
        for p in 0..r.pages {
            let at = ((r.ppn + p) * PAGE) as usize;
            v[at..at + PAGE as usize].copy_from_slice(&page(r.ppn + p, seed));
        }
    }
    v
}

/// Seed of the corpus samples' guest memory.
pub const CORPUS_SEED: u64 = 0x5eed_0000_1234_abcd;

/// One corpus sample: its files, the file to open, and its regions (guest memory is
/// [`expected_guest`] of them with [`CORPUS_SEED`]).
#[derive(Debug, Clone)]
pub struct Sample {
    /// `(file name, contents)`.
    pub files: Vec<(&'static str, Sparse)>,
    /// Regions of the guest.
    pub regions: Vec<Reg>,
    /// vCPUs and how their tags are written.
    pub cpus: (u32, CpuForm),
    /// Whether every block has padsize 0 (what Volatility 3 can read).
    pub no_padding: bool,
}

fn sample_groups(mem: G, cpus: u32, form: CpuForm, pad: u16) -> Vec<G> {
    let mut g = extra_groups(pad);
    g.insert(1, mem);
    g.push(cpu_group(cpus, form, pad));
    g
}

/// The corpus samples (each well under 256 KiB).
pub fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    // Embedded memory, two regions with a hole, padding 7, scalar CPU tags.
    let regs = vec![
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
    ];
    let (mem, _) = memory_bytes(&regs, CORPUS_SEED, 1);
    let mut tags = region_tags(&regs, Some(2));
    tags.push(block_tag("Memory", &[0, 0], mem, 7));
    let b = Ckpt {
        magic: 0xbed2_bed2,
        groups: sample_groups(
            G {
                name: "memory".into(),
                tags,
            },
            2,
            CpuForm::Scalar,
            7,
        ),
    }
    .build();
    out.push(Sample {
        files: vec![("embedded.vmss", b.image)],
        regions: regs,
        cpus: (2, CpuForm::Scalar),
        no_padding: false,
    });
    // .vmsn + .vmem, three regions with holes, padding 5, block CPU tags.
    let regs = vec![
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
    ];
    let (mem, _) = memory_bytes(&regs, CORPUS_SEED, 1);
    let b = Ckpt {
        magic: 0xbad1_bad1,
        groups: sample_groups(
            G {
                name: "memory".into(),
                tags: region_tags(&regs, Some(3)),
            },
            2,
            CpuForm::Block,
            5,
        ),
    }
    .build();
    out.push(Sample {
        files: vec![("padded.vmsn", b.image), ("padded.vmem", mem.clone())],
        regions: regs.clone(),
        cpus: (2, CpuForm::Block),
        no_padding: false,
    });
    // The same without padding: what Volatility 3 reads correctly.
    let b = Ckpt {
        magic: 0xbed2_bed2,
        groups: sample_groups(
            G {
                name: "memory".into(),
                tags: region_tags(&regs, Some(3)),
            },
            1,
            CpuForm::Scalar,
            0,
        ),
    }
    .build();
    out.push(Sample {
        files: vec![("plain.vmss", b.image), ("plain.vmem", mem)],
        regions: regs,
        cpus: (1, CpuForm::Scalar),
        no_padding: true,
    });
    // Version 0 (32-bit block sizes), embedded single run, old CR tags.
    let regs = vec![Reg {
        ppn: 0,
        page_num: 0,
        pages: 12,
    }];
    let (mem, _) = memory_bytes(&regs, CORPUS_SEED, 1);
    let tags = vec![
        u32_tag("align_mask", &[], 0xffff),
        block_tag("Memory", &[0, 0], mem, 9),
    ];
    let b = Ckpt {
        magic: 0xbed2_bed0,
        groups: sample_groups(
            G {
                name: "memory".into(),
                tags,
            },
            2,
            CpuForm::OldCr,
            9,
        ),
    }
    .build();
    out.push(Sample {
        files: vec![("v0.vmss", b.image)],
        regions: regs,
        cpus: (2, CpuForm::OldCr),
        no_padding: false,
    });
    out
}
