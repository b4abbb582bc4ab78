//! A VHD writer written from the spec, independent of the reader: it knows what it wrote,
//! so tests compare the reader with the builder's expectation.
#![allow(dead_code)]
// Builders and readers outside `#[test]` functions, which clippy.toml's test allowances do
// not cover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, Result,
};

pub const SECTOR: usize = 512;

/// One allocated block: its index, `block_size` bytes of data and the sector bitmap
/// (`None` = all sectors present).
#[derive(Clone)]
pub struct Block {
    pub index: u32,
    pub data: Vec<u8>,
    pub present: Option<Vec<bool>>,
}

#[derive(Clone)]
pub struct Spec {
    pub size: u64,
    pub block_size: u32,
    pub disk_type: u32,
    pub creator: [u8; 4],
    pub chs: (u16, u8, u8),
    pub uuid: [u8; 16],
    pub parent_uuid: [u8; 16],
    pub parent_name: String,
    /// (platform code, bytes of the locator data)
    pub locators: Vec<([u8; 4], Vec<u8>)>,
    pub blocks: Vec<Block>,
    /// BAT entries beyond what `blocks` fill (default 0xFFFFFFFF), and the entry count.
    pub max_table_entries: Option<u32>,
}

impl Spec {
    pub fn dynamic(size: u64, block_size: u32) -> Spec {
        Spec {
            size,
            block_size,
            disk_type: 3,
            creator: *b"win ",
            chs: (1, 1, 1),
            uuid: [0x11; 16],
            parent_uuid: [0; 16],
            parent_name: String::new(),
            locators: Vec::new(),
            blocks: Vec::new(),
            max_table_entries: None,
        }
    }

    /// Makes this a differencing disk of `parent_uuid`, with relative and absolute
    /// locators for `file` (a bare file name).
    pub fn differencing(mut self, parent_uuid: [u8; 16], file: &str) -> Spec {
        self.disk_type = 4;
        self.parent_uuid = parent_uuid;
        self.parent_name = file.to_string();
        self.locators = vec![
            (*b"W2ku", utf16le(&format!("C:\\vms\\{file}"))),
            (*b"W2ru", utf16le(&format!(".\\{file}"))),
        ];
        self
    }

    pub fn block(mut self, index: u32, data: Vec<u8>, present: Option<Vec<bool>>) -> Spec {
        assert_eq!(data.len(), self.block_size as usize);
        self.blocks.push(Block {
            index,
            data,
            present,
        });
        self
    }

    pub fn entries(&self) -> u32 {
        self.max_table_entries
            .unwrap_or(self.size.div_ceil(u64::from(self.block_size)) as u32)
    }

    /// The guest bytes this disk shows over `parent` (zeros when `None`).
    pub fn expected(&self, parent: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![0u8; self.size as usize];
        if let Some(p) = parent {
            let n = p.len().min(out.len());
            out[..n].copy_from_slice(&p[..n]);
        }
        let bs = self.block_size as usize;
        for b in &self.blocks {
            let base = b.index as usize * bs;
            for s in 0..bs / SECTOR {
                let present = self.disk_type != 4 || b.present.as_ref().is_none_or(|p| p[s]);
                let at = base + s * SECTOR;
                if present && at < out.len() {
                    let end = (at + SECTOR).min(out.len());
                    out[at..end].copy_from_slice(&b.data[s * SECTOR..s * SECTOR + (end - at)]);
                }
            }
        }
        out
    }

    pub fn build(&self) -> Vec<u8> {
        let entries = self.entries() as usize;
        let bs = self.block_size as usize;
        let bitmap = ((bs / SECTOR / 8).div_ceil(SECTOR)) * SECTOR;
        let bat_at = 1536usize;
        let bat_len = (entries * 4).div_ceil(SECTOR) * SECTOR;
        let mut f = vec![0u8; bat_at + bat_len];
        // Locator data, one 512-byte sector each.
        let mut loc_entries = Vec::new();
        for (code, data) in &self.locators {
            let at = f.len();
            let space = data.len().div_ceil(SECTOR).max(1) * SECTOR;
            f.extend_from_slice(data);
            f.resize(at + space, 0);
            loc_entries.push((*code, space as u32, data.len() as u32, at as u64));
        }
        let mut bat = vec![0xFFFF_FFFFu32; entries];
        for b in &self.blocks {
            let at = f.len();
            assert_eq!(at % SECTOR, 0);
            bat[b.index as usize] = (at / SECTOR) as u32;
            let mut bm = vec![0u8; bitmap];
            for s in 0..bs / SECTOR {
                if b.present.as_ref().is_none_or(|p| p[s]) {
                    bm[s / 8] |= 0x80 >> (s % 8);
                }
            }
            f.extend_from_slice(&bm);
            f.extend_from_slice(&b.data);
        }
        for (i, e) in bat.iter().enumerate() {
            f[bat_at + i * 4..bat_at + i * 4 + 4].copy_from_slice(&e.to_be_bytes());
        }
        // Dynamic header.
        let mut h = vec![0u8; 1024];
        h[0..8].copy_from_slice(b"cxsparse");
        h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        h[16..24].copy_from_slice(&(bat_at as u64).to_be_bytes());
        h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        h[28..32].copy_from_slice(&(entries as u32).to_be_bytes());
        h[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        h[40..56].copy_from_slice(&self.parent_uuid);
        let name: Vec<u8> = self
            .parent_name
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        h[64..64 + name.len()].copy_from_slice(&name);
        for (i, (code, space, len, at)) in loc_entries.iter().enumerate() {
            let e = 576 + i * 24;
            h[e..e + 4].copy_from_slice(code);
            h[e + 4..e + 8].copy_from_slice(&space.to_be_bytes());
            h[e + 8..e + 12].copy_from_slice(&len.to_be_bytes());
            h[e + 16..e + 24].copy_from_slice(&at.to_be_bytes());
        }
        let c = checksum(&h);
        h[36..40].copy_from_slice(&c.to_be_bytes());
        f[512..1536].copy_from_slice(&h);
        let footer = self.footer(512);
        f[0..512].copy_from_slice(&footer);
        f.extend_from_slice(&footer);
        f
    }

    pub fn footer(&self, data_offset: u64) -> Vec<u8> {
        footer(
            self.disk_type,
            data_offset,
            self.size,
            self.creator,
            self.chs,
            self.uuid,
        )
    }
}

pub fn footer(
    disk_type: u32,
    data_offset: u64,
    size: u64,
    creator: [u8; 4],
    chs: (u16, u8, u8),
    uuid: [u8; 16],
) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..8].copy_from_slice(b"conectix");
    b[8..12].copy_from_slice(&2u32.to_be_bytes());
    b[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    b[16..24].copy_from_slice(&data_offset.to_be_bytes());
    b[24..28].copy_from_slice(&0x2e00_0000u32.to_be_bytes());
    b[28..32].copy_from_slice(&creator);
    b[32..36].copy_from_slice(&0x000a_0000u32.to_be_bytes());
    b[36..40].copy_from_slice(b"Wi2k");
    b[40..48].copy_from_slice(&size.to_be_bytes());
    b[48..56].copy_from_slice(&size.to_be_bytes());
    b[56..58].copy_from_slice(&chs.0.to_be_bytes());
    b[58] = chs.1;
    b[59] = chs.2;
    b[60..64].copy_from_slice(&disk_type.to_be_bytes());
    b[68..84].copy_from_slice(&uuid);
    let c = checksum(&b);
    b[64..68].copy_from_slice(&c.to_be_bytes());
    b
}

/// A fixed disk: `data` then a footer.
pub fn fixed(data: &[u8], creator: [u8; 4], chs: (u16, u8, u8)) -> Vec<u8> {
    let mut f = data.to_vec();
    f.extend_from_slice(&footer(
        2,
        u64::MAX,
        data.len() as u64,
        creator,
        chs,
        [7; 16],
    ));
    f
}

/// `~(byte sum)`, the checksum field counted as zero (callers zero it first).
pub fn checksum(b: &[u8]) -> u32 {
    !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)))
}

/// Recomputes the footer checksum of the 512 bytes at `at`.
pub fn fix_footer(f: &mut [u8], at: usize) {
    f[at + 64..at + 68].fill(0);
    let c = checksum(&f[at..at + 512]);
    f[at + 64..at + 68].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the dynamic header checksum (at 512).
pub fn fix_dyn(f: &mut [u8]) {
    f[512 + 36..512 + 40].fill(0);
    let c = checksum(&f[512..1536]);
    f[512 + 36..512 + 40].copy_from_slice(&c.to_be_bytes());
}

pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

pub fn registry() -> Registry {
    Registry::empty().with(&vmsnap_vhd::PLUGIN).unwrap()
}

/// Opens bytes through the plugin with `policy` and `opts`.
pub fn open_bytes_with(
    bytes: Vec<u8>,
    policy: ExternalPolicy,
    opts: &Options,
) -> Result<Arc<dyn Layer>> {
    let reg = registry();
    let r = Resolver::new(policy);
    let ctx = OpenCtx::new(&r, &reg, opts);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    (vmsnap_vhd::PLUGIN.open)(lower, &ctx)
}

pub fn open_bytes(bytes: Vec<u8>) -> Result<Arc<dyn Layer>> {
    open_bytes_with(bytes, ExternalPolicy::Deny, &Options::new())
}

/// Opens a file through the plugin with `policy`.
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
    (vmsnap_vhd::PLUGIN.open)(lower, &ctx)
}

/// `qemu_img_raw` under a process-wide lock: the testkit's oracle uses one scratch
/// directory per process, so parallel tests in one binary would remove each other's.
pub fn oracle(path: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}
