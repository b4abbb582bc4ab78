//! Shared helpers for the VDI tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, Result,
};

/// Opens `bytes` through the plugin.
pub fn open_bytes(bytes: Vec<u8>) -> Result<Arc<dyn Layer>> {
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    open_layer(lower)
}

/// Opens a file through the plugin.
pub fn open_path(p: &Path) -> Result<Arc<dyn Layer>> {
    open_layer(Arc::new(FileLayer::open(p)?))
}

fn open_layer(lower: Arc<dyn Layer>) -> Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_vdi::PLUGIN)?;
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_vdi::PLUGIN.open)(lower, &ctx)
}

/// Fields of a crafted VDI.
#[derive(Debug, Clone)]
pub struct Spec {
    pub version: u32,
    pub image_type: u32,
    pub offset_bmap: u32,
    pub offset_data: u32,
    pub sector_size: u32,
    pub disk_size: u64,
    pub block_size: u32,
    pub block_extra: u32,
    pub blocks_in_image: u32,
    pub blocks_allocated: u32,
    pub uuid_link: [u8; 16],
    pub uuid_parent: [u8; 16],
    pub bmap: Vec<u32>,
    /// Bytes appended after the data offset.
    pub data: Vec<u8>,
}

impl Spec {
    /// A dynamic image of `blocks` blocks of 4 KiB with an empty block map.
    pub fn dynamic(blocks: u32) -> Spec {
        let bs = 4096u32;
        Spec {
            version: 0x0001_0001,
            image_type: 1,
            offset_bmap: 512,
            offset_data: 512 + (blocks * 4).div_ceil(512) * 512,
            sector_size: 512,
            disk_size: u64::from(blocks) * u64::from(bs),
            block_size: bs,
            block_extra: 0,
            blocks_in_image: blocks,
            blocks_allocated: 0,
            uuid_link: [0; 16],
            uuid_parent: [0; 16],
            bmap: vec![0xFFFF_FFFF; blocks as usize],
            data: Vec::new(),
        }
    }

    /// The file bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..35].copy_from_slice(b"<<< Oracle VM VirtualBox Disk Image");
        let put32 =
            |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        put32(&mut f, 0x40, 0xBEDA_107F);
        put32(&mut f, 0x44, self.version);
        put32(&mut f, 0x48, 0x180);
        put32(&mut f, 0x4C, self.image_type);
        put32(&mut f, 0x154, self.offset_bmap);
        put32(&mut f, 0x158, self.offset_data);
        put32(&mut f, 0x168, self.sector_size);
        f[0x170..0x178].copy_from_slice(&self.disk_size.to_le_bytes());
        put32(&mut f, 0x178, self.block_size);
        put32(&mut f, 0x17C, self.block_extra);
        put32(&mut f, 0x180, self.blocks_in_image);
        put32(&mut f, 0x184, self.blocks_allocated);
        f[0x188..0x198].copy_from_slice(&[7u8; 16]);
        f[0x1A8..0x1B8].copy_from_slice(&self.uuid_link);
        f[0x1B8..0x1C8].copy_from_slice(&self.uuid_parent);
        let bm = self.offset_bmap as usize;
        let need = bm + self.bmap.len() * 4;
        if f.len() < need {
            f.resize(need, 0);
        }
        for (i, e) in self.bmap.iter().enumerate() {
            f[bm + 4 * i..bm + 4 * i + 4].copy_from_slice(&e.to_le_bytes());
        }
        if f.len() < self.offset_data as usize {
            f.resize(self.offset_data as usize, 0);
        }
        f.extend_from_slice(&self.data);
        f
    }
}

/// `qemu_img_raw` serialised: the testkit's oracle uses one scratch directory per process,
/// so concurrent calls from parallel tests would remove each other's output.
pub fn oracle(path: &Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}
