//! Shared helpers for the QED tests.
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

/// Opens `lower` through the plugin under `policy`.
pub fn open_with(lower: Arc<dyn Layer>, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_qed::PLUGIN)?;
    let r = Resolver::new(policy);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_qed::PLUGIN.open)(lower, &ctx)
}

/// Opens `bytes` through the plugin (same-dir policy, no path).
pub fn open_bytes(bytes: Vec<u8>) -> Result<Arc<dyn Layer>> {
    open_with(
        Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))),
        ExternalPolicy::SameDir,
    )
}

/// Opens a file through the plugin under `policy`.
pub fn open_path(p: &Path, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    open_with(Arc::new(FileLayer::open(p)?), policy)
}

/// `qemu_img_raw` serialised: the testkit's oracle uses one scratch directory per process.
pub fn oracle(path: &Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}

pub const CS: usize = 4096;

/// A crafted QED: 4 KiB clusters, 1-cluster tables (512 entries, 2 MiB per L2 table).
/// Cluster 0 header, 1 L1, 2 L2 (for L1 entry 0), then data clusters.
#[derive(Debug, Clone)]
pub struct Spec {
    pub cluster_size: u32,
    pub table_size: u32,
    pub header_size: u32,
    pub features: u64,
    pub l1_offset: u64,
    pub image_size: u64,
    pub backing: Option<(u32, Vec<u8>)>,
    pub l1: Vec<u64>,
    pub l2: Vec<u64>,
    pub data: Vec<Vec<u8>>,
}

impl Spec {
    pub fn new() -> Spec {
        Spec {
            cluster_size: CS as u32,
            table_size: 1,
            header_size: 1,
            features: 0,
            l1_offset: CS as u64,
            image_size: 4 << 20,
            backing: None,
            l1: vec![2 * CS as u64],
            l2: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Stores `fill` as data cluster `k` (file cluster 3 + k) for guest cluster `guest`.
    pub fn with_data(mut self, guest: usize, k: usize, fill: u8) -> Spec {
        if self.l2.len() <= guest {
            self.l2.resize(guest + 1, 0);
        }
        self.l2[guest] = ((3 + k) * CS) as u64;
        if self.data.len() <= k {
            self.data.resize(k + 1, vec![0u8; CS]);
        }
        self.data[k] = vec![fill; CS];
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; 3 * CS];
        f[..4].copy_from_slice(b"QED\0");
        f[4..8].copy_from_slice(&self.cluster_size.to_le_bytes());
        f[8..12].copy_from_slice(&self.table_size.to_le_bytes());
        f[12..16].copy_from_slice(&self.header_size.to_le_bytes());
        f[16..24].copy_from_slice(&self.features.to_le_bytes());
        f[40..48].copy_from_slice(&self.l1_offset.to_le_bytes());
        f[48..56].copy_from_slice(&self.image_size.to_le_bytes());
        if let Some((off, name)) = &self.backing {
            f[56..60].copy_from_slice(&off.to_le_bytes());
            f[60..64].copy_from_slice(&(name.len() as u32).to_le_bytes());
            let o = *off as usize;
            if o >= 64 && o + name.len() <= CS {
                f[o..o + name.len()].copy_from_slice(name);
            }
        }
        for (i, e) in self.l1.iter().enumerate() {
            f[CS + 8 * i..CS + 8 * i + 8].copy_from_slice(&e.to_le_bytes());
        }
        for (i, e) in self.l2.iter().enumerate() {
            f[2 * CS + 8 * i..2 * CS + 8 * i + 8].copy_from_slice(&e.to_le_bytes());
        }
        for d in &self.data {
            f.extend_from_slice(d);
        }
        f
    }
}
