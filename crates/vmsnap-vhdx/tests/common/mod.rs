//! A VHDX writer written from MS-VHDX, independent of the reader: fixed layout (log at
//! 1 MiB, BAT at 2 MiB, metadata at 3 MiB, blocks from 4 MiB), with log entries, parent
//! locators and sector bitmaps. It knows what it wrote, so tests compare with it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, Result,
};

pub const MIB: usize = 1 << 20;
pub const LOG_AT: usize = MIB;
pub const BAT_AT: usize = 2 * MIB;
pub const META_AT: usize = 3 * MIB;
pub const DATA_AT: usize = 4 * MIB;

/// GUID text → stored bytes (data1..3 little-endian).
pub fn g(s: &str) -> [u8; 16] {
    let h: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ]
}

pub fn crc(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

fn put(f: &mut [u8], at: usize, v: &[u8]) {
    f[at..at + v.len()].copy_from_slice(v);
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

#[derive(Clone)]
pub struct Blk {
    pub index: u64,
    pub state: u64,
    /// `block_size` bytes (for states 6 and 7).
    pub data: Option<Vec<u8>>,
    /// Sectors present (state 7).
    pub present: Option<Vec<bool>>,
}

#[derive(Clone)]
pub enum W {
    Data(u64, Vec<u8>),
    Zero(u64, u64),
}

#[derive(Clone)]
pub struct Spec {
    pub vsize: u64,
    pub block_size: u32,
    pub lss: u32,
    pub pss: u32,
    pub fixed: bool,
    pub has_parent: bool,
    pub parent: Vec<(String, String)>,
    pub data_write_guid: [u8; 16],
    pub blocks: Vec<Blk>,
    /// Blocks written in the file but not referenced by the BAT (for log tests).
    pub extra: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub block_at: BTreeMap<u64, usize>,
    pub extra_at: Vec<usize>,
    pub chunk_ratio: u64,
}

impl Layout {
    pub fn bat_entry_at(&self, b: u64) -> usize {
        BAT_AT + ((b + b / self.chunk_ratio) * 8) as usize
    }
}

impl Spec {
    pub fn dynamic(vsize: u64, block_size: u32, lss: u32) -> Spec {
        Spec {
            vsize,
            block_size,
            lss,
            pss: 4096,
            fixed: false,
            has_parent: false,
            parent: Vec::new(),
            data_write_guid: [0xD1; 16],
            blocks: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub fn full(mut self, index: u64, data: Vec<u8>) -> Spec {
        assert_eq!(data.len(), self.block_size as usize);
        self.blocks.push(Blk {
            index,
            state: 6,
            data: Some(data),
            present: None,
        });
        self
    }

    pub fn partial(mut self, index: u64, data: Vec<u8>, present: Vec<bool>) -> Spec {
        self.blocks.push(Blk {
            index,
            state: 7,
            data: Some(data),
            present: Some(present),
        });
        self
    }

    pub fn state(mut self, index: u64, state: u64) -> Spec {
        self.blocks.push(Blk {
            index,
            state,
            data: None,
            present: None,
        });
        self
    }

    /// Differencing over a parent whose data write GUID is `linkage`, at `file`.
    pub fn child_of(mut self, linkage: [u8; 16], file: &str) -> Spec {
        self.has_parent = true;
        let l = format!("{{{}}}", guid_text(&linkage));
        self.parent = vec![
            ("parent_linkage".into(), l),
            ("relative_path".into(), format!(".\\{file}")),
            ("absolute_win32_path".into(), format!("C:\\vms\\{file}")),
        ];
        self
    }

    pub fn chunk_ratio(&self) -> u64 {
        (1u64 << 23) * u64::from(self.lss) / u64::from(self.block_size)
    }

    pub fn expected(&self, parent: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![0u8; self.vsize as usize];
        if let Some(p) = parent {
            let n = p.len().min(out.len());
            out[..n].copy_from_slice(&p[..n]);
        }
        let bs = self.block_size as usize;
        let lss = self.lss as usize;
        for b in &self.blocks {
            let base = b.index as usize * bs;
            let end = (base + bs).min(out.len());
            match b.state {
                6 => out[base..end].copy_from_slice(&b.data.as_ref().unwrap()[..end - base]),
                7 => {
                    let d = b.data.as_ref().unwrap();
                    for (s, &p) in b.present.as_ref().unwrap().iter().enumerate() {
                        let at = base + s * lss;
                        if p && at < end {
                            out[at..at + lss].copy_from_slice(&d[s * lss..s * lss + lss]);
                        }
                    }
                }
                0 if self.has_parent => {}
                _ => out[base..end].fill(0),
            }
        }
        out
    }

    pub fn build(&self) -> (Vec<u8>, Layout) {
        let cr = self.chunk_ratio();
        let bs = self.block_size as usize;
        let mut lay = Layout {
            chunk_ratio: cr,
            ..Layout::default()
        };
        let mut f = vec![0u8; DATA_AT];
        put(&mut f, 0, b"vhdxfile");
        put(&mut f, 8, &utf16("vmsnap test builder"));
        // Blocks.
        let mut bitmaps: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for b in &self.blocks {
            if let Some(d) = &b.data {
                let at = f.len();
                f.extend_from_slice(d);
                f.resize(at + bs, 0);
                lay.block_at.insert(b.index, at);
            }
            if let Some(p) = &b.present {
                let c = b.index / cr;
                let bm = bitmaps.entry(c).or_insert_with(|| vec![0u8; MIB]);
                let first = (b.index % cr) as usize * (bs / self.lss as usize);
                for (s, &on) in p.iter().enumerate() {
                    if on {
                        let bit = first + s;
                        bm[bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
        }
        let mut bitmap_at = BTreeMap::new();
        for (c, bm) in &bitmaps {
            let at = f.len();
            f.extend_from_slice(bm);
            bitmap_at.insert(*c, at);
        }
        for e in &self.extra {
            let at = f.len();
            f.extend_from_slice(e);
            f.resize(at + bs, 0);
            lay.extra_at.push(at);
        }
        // BAT.
        for b in &self.blocks {
            let off = lay.block_at.get(&b.index).copied().unwrap_or(0) as u64;
            let at = lay.bat_entry_at(b.index);
            put(&mut f, at, &(off | b.state).to_le_bytes());
        }
        for (c, at) in &bitmap_at {
            let i = c * (cr + 1) + cr;
            put(
                &mut f,
                BAT_AT + (i * 8) as usize,
                &((*at as u64) | 6).to_le_bytes(),
            );
        }
        // Metadata.
        let m = META_AT;
        put(&mut f, m, b"metadata");
        let mut items: Vec<([u8; 16], Vec<u8>, u32)> = vec![
            (
                g("CAA16737-FA36-4D43-B3B6-33F0AA44E76B"),
                [
                    self.block_size.to_le_bytes(),
                    (u32::from(self.fixed) | (u32::from(self.has_parent) << 1)).to_le_bytes(),
                ]
                .concat(),
                4,
            ),
            (
                g("2FA54224-CD1B-4876-B211-5DBED83BF4B8"),
                self.vsize.to_le_bytes().to_vec(),
                6,
            ),
            (g("BECA12AB-B2E6-4523-93EF-C309E000C746"), vec![0x83; 16], 6),
            (
                g("8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),
                self.lss.to_le_bytes().to_vec(),
                6,
            ),
            (
                g("CDA348C7-445D-4471-9CC9-E9885251C556"),
                self.pss.to_le_bytes().to_vec(),
                6,
            ),
        ];
        if self.has_parent || !self.parent.is_empty() {
            let mut pl = g("B04AEFB7-D19E-4A81-B789-25B8E9445913").to_vec();
            pl.extend_from_slice(&0u16.to_le_bytes());
            pl.extend_from_slice(&(self.parent.len() as u16).to_le_bytes());
            let mut strings = Vec::new();
            let base = 20 + 12 * self.parent.len();
            let mut table = Vec::new();
            for (k, v) in &self.parent {
                let (k, v) = (utf16(k), utf16(v));
                let ko = base + strings.len();
                strings.extend_from_slice(&k);
                let vo = base + strings.len();
                strings.extend_from_slice(&v);
                table.extend_from_slice(&(ko as u32).to_le_bytes());
                table.extend_from_slice(&(vo as u32).to_le_bytes());
                table.extend_from_slice(&(k.len() as u16).to_le_bytes());
                table.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
            pl.extend_from_slice(&table);
            pl.extend_from_slice(&strings);
            items.push((g("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"), pl, 6));
        }
        put(&mut f, m + 10, &(items.len() as u16).to_le_bytes());
        let mut data_off = 64 * 1024;
        for (i, (guid, data, flags)) in items.iter().enumerate() {
            let e = m + 32 + i * 32;
            put(&mut f, e, guid);
            put(&mut f, e + 16, &(data_off as u32).to_le_bytes());
            put(&mut f, e + 20, &(data.len() as u32).to_le_bytes());
            put(&mut f, e + 24, &flags.to_le_bytes());
            put(&mut f, m + data_off, data);
            data_off += data.len().div_ceil(8) * 8;
        }
        // Region tables.
        let mut rt = vec![0u8; 64 * 1024];
        put(&mut rt, 0, b"regi");
        put(&mut rt, 8, &2u32.to_le_bytes());
        put(&mut rt, 16, &g("2DC27766-F623-4200-9D64-115E9BFD4A08"));
        put(&mut rt, 32, &(BAT_AT as u64).to_le_bytes());
        put(&mut rt, 40, &(MIB as u32).to_le_bytes());
        put(&mut rt, 44, &1u32.to_le_bytes());
        put(&mut rt, 48, &g("8B7CA206-4790-4B9A-B8FE-575F050F886E"));
        put(&mut rt, 64, &(META_AT as u64).to_le_bytes());
        put(&mut rt, 72, &(MIB as u32).to_le_bytes());
        put(&mut rt, 76, &1u32.to_le_bytes());
        let c = crc(&rt);
        put(&mut rt, 4, &c.to_le_bytes());
        put(&mut f, 192 * 1024, &rt);
        put(&mut f, 256 * 1024, &rt);
        write_headers(&mut f, self.data_write_guid, [0; 16]);
        (f, lay)
    }
}

/// Writes both headers (sequence 1 and 2) with `log_guid`.
pub fn write_headers(f: &mut [u8], data_write_guid: [u8; 16], log_guid: [u8; 16]) {
    for (i, at) in [64 * 1024usize, 128 * 1024].into_iter().enumerate() {
        let mut h = vec![0u8; 4096];
        put(&mut h, 0, b"head");
        put(&mut h, 8, &(i as u64 + 1).to_le_bytes());
        put(&mut h, 16, &[0xF1; 16]);
        put(&mut h, 32, &data_write_guid);
        put(&mut h, 48, &log_guid);
        put(&mut h, 66, &1u16.to_le_bytes());
        put(&mut h, 68, &(MIB as u32).to_le_bytes());
        put(&mut h, 72, &(LOG_AT as u64).to_le_bytes());
        let c = crc(&h);
        put(&mut h, 4, &c.to_le_bytes());
        put(f, at, &h);
    }
}

/// One log entry's bytes: `writes` tagged with `seq` and `guid`.
pub fn log_entry(seq: u64, guid: [u8; 16], writes: &[W], file_len: u64, tail: u32) -> Vec<u8> {
    let n_data = writes.iter().filter(|w| matches!(w, W::Data(..))).count();
    let desc_sectors = (64 + 32 * writes.len()).div_ceil(4096);
    let len = (desc_sectors + n_data) * 4096;
    let mut e = vec![0u8; len];
    put(&mut e, 0, b"loge");
    put(&mut e, 8, &(len as u32).to_le_bytes());
    put(&mut e, 12, &tail.to_le_bytes());
    put(&mut e, 16, &seq.to_le_bytes());
    put(&mut e, 24, &(writes.len() as u32).to_le_bytes());
    put(&mut e, 32, &guid);
    put(&mut e, 48, &file_len.to_le_bytes());
    put(&mut e, 56, &file_len.to_le_bytes());
    let mut ds = desc_sectors;
    for (i, w) in writes.iter().enumerate() {
        let d = 64 + i * 32;
        match w {
            W::Data(off, data) => {
                assert_eq!(data.len(), 4096);
                put(&mut e, d, b"desc");
                put(&mut e, d + 4, &data[4092..4096]);
                put(&mut e, d + 8, &data[0..8]);
                put(&mut e, d + 16, &off.to_le_bytes());
                put(&mut e, d + 24, &seq.to_le_bytes());
                let s = ds * 4096;
                put(&mut e, s, b"data");
                put(&mut e, s + 4, &((seq >> 32) as u32).to_le_bytes());
                put(&mut e, s + 8, &data[8..4092]);
                put(&mut e, s + 4092, &(seq as u32).to_le_bytes());
                ds += 1;
            }
            W::Zero(off, zl) => {
                put(&mut e, d, b"zero");
                put(&mut e, d + 8, &zl.to_le_bytes());
                put(&mut e, d + 16, &off.to_le_bytes());
                put(&mut e, d + 24, &seq.to_le_bytes());
            }
        }
    }
    let c = crc(&e);
    put(&mut e, 4, &c.to_le_bytes());
    e
}

/// Puts log entries at log positions and marks both headers dirty with `guid`.
pub fn add_log(
    f: &mut [u8],
    data_write_guid: [u8; 16],
    guid: [u8; 16],
    entries: &[(usize, Vec<u8>)],
) {
    for (pos, e) in entries {
        put(f, LOG_AT + pos, e);
    }
    write_headers(f, data_write_guid, guid);
}

/// Recomputes the CRC of the header at `at`.
pub fn fix_header(f: &mut [u8], at: usize) {
    f[at + 4..at + 8].fill(0);
    let c = crc(&f[at..at + 4096]);
    put(f, at + 4, &c.to_le_bytes());
}

/// Recomputes the CRC of the region table at `at`.
pub fn fix_region(f: &mut [u8], at: usize) {
    f[at + 4..at + 8].fill(0);
    let c = crc(&f[at..at + 65536]);
    put(f, at + 4, &c.to_le_bytes());
}

pub fn guid_text(b: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 7) as u8).wrapping_mul(13).wrapping_add(seed) | 1)
        .collect()
}

pub fn registry() -> Registry {
    Registry::empty().with(&vmsnap_vhdx::PLUGIN).unwrap()
}

pub fn open_bytes_with(bytes: Vec<u8>, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    let reg = registry();
    let r = Resolver::new(policy);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    (vmsnap_vhdx::PLUGIN.open)(lower, &ctx)
}

pub fn open_bytes(bytes: Vec<u8>) -> Result<Arc<dyn Layer>> {
    open_bytes_with(bytes, ExternalPolicy::Deny)
}

pub fn open_path(path: &std::path::Path, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    open_path_missing(path, policy, vmsnap_core::MissingPolicy::Error)
}

/// Opens a file through the plugin with `policy`, reading references that were not
/// opened as `missing` says.
#[allow(dead_code)]
pub fn open_path_missing(
    path: &std::path::Path,
    policy: ExternalPolicy,
    missing: vmsnap_core::MissingPolicy,
) -> Result<Arc<dyn Layer>> {
    let reg = registry();
    let r = Resolver::new(policy).with_missing(missing);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(path)?);
    (vmsnap_vhdx::PLUGIN.open)(lower, &ctx)
}

/// `qemu_img_raw` under a process-wide lock (the testkit's oracle shares one scratch
/// directory per process).
pub fn oracle(path: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}
