//! Shared helpers for the Parallels tests.
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

fn open_layer(lower: Arc<dyn Layer>) -> Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_parallels::PLUGIN)?;
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_parallels::PLUGIN.open)(lower, &ctx)
}

/// Opens `bytes` through the plugin.
pub fn open_bytes(bytes: Vec<u8>) -> Result<Arc<dyn Layer>> {
    open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

/// Opens a file through the plugin.
pub fn open_path(p: &Path) -> Result<Arc<dyn Layer>> {
    open_layer(Arc::new(FileLayer::open(p)?))
}

/// `qemu_img_raw` serialised: the testkit's oracle uses one scratch directory per process.
pub fn oracle(path: &Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}

/// Cluster size of crafted images (8 sectors).
pub const CS: usize = 4096;

/// A crafted Ext image: 4 KiB clusters, header + BAT in cluster 0, data from cluster 1.
#[derive(Debug, Clone)]
pub struct Spec {
    pub magic: [u8; 16],
    pub version: u32,
    pub tracks: u32,
    pub bat_entries: u32,
    pub nb_sectors: u64,
    pub in_use: u32,
    pub data_off: u32,
    pub ext_off: u64,
    pub bat: Vec<u32>,
    /// Clusters after cluster 0 (cluster k + 1 in the file).
    pub clusters: Vec<Vec<u8>>,
}

impl Spec {
    pub fn new(clusters: u32) -> Spec {
        Spec {
            magic: *b"WithouFreSpacExt",
            version: 2,
            tracks: 8,
            bat_entries: clusters,
            nb_sectors: u64::from(clusters) * 8,
            in_use: 0x312E_3276,
            data_off: 8,
            ext_off: 0,
            bat: vec![0; clusters as usize],
            clusters: Vec::new(),
        }
    }

    /// Stores guest cluster `guest` as file cluster `k + 1`, filled with `fill`.
    pub fn with_data(mut self, guest: usize, k: usize, fill: u8) -> Spec {
        self.bat[guest] = (k + 1) as u32;
        if self.clusters.len() <= k {
            self.clusters.resize(k + 1, vec![0; CS]);
        }
        self.clusters[k] = vec![fill; CS];
        self
    }

    /// Puts `ext` (an extension cluster) as file cluster `k + 1`.
    pub fn with_ext(mut self, k: usize, ext: Vec<u8>) -> Spec {
        if self.clusters.len() <= k {
            self.clusters.resize(k + 1, vec![0; CS]);
        }
        self.clusters[k] = ext;
        self.ext_off = ((k + 1) * CS / 512) as u64;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; CS.max(64 + 4 * self.bat.len())];
        f[..16].copy_from_slice(&self.magic);
        f[16..20].copy_from_slice(&self.version.to_le_bytes());
        f[20..24].copy_from_slice(&16u32.to_le_bytes());
        f[28..32].copy_from_slice(&self.tracks.to_le_bytes());
        f[32..36].copy_from_slice(&self.bat_entries.to_le_bytes());
        f[36..44].copy_from_slice(&self.nb_sectors.to_le_bytes());
        f[44..48].copy_from_slice(&self.in_use.to_le_bytes());
        f[48..52].copy_from_slice(&self.data_off.to_le_bytes());
        f[56..64].copy_from_slice(&self.ext_off.to_le_bytes());
        for (i, e) in self.bat.iter().enumerate() {
            f[64 + 4 * i..68 + 4 * i].copy_from_slice(&e.to_le_bytes());
        }
        for c in &self.clusters {
            f.extend_from_slice(c);
        }
        f
    }
}

/// An extension cluster of `CS` bytes holding `features` (magic, flags, data), with a
/// correct MD5 unless `bad_sum`.
pub fn ext_cluster(features: &[(u64, u64, Vec<u8>)], bad_sum: bool) -> Vec<u8> {
    let mut c = vec![0u8; CS];
    c[..8].copy_from_slice(&0xAB23_4CEF_23DC_EA87u64.to_le_bytes());
    let mut pos = 24;
    for (magic, flags, data) in features {
        if pos + 24 > CS {
            break;
        }
        c[pos..pos + 8].copy_from_slice(&magic.to_le_bytes());
        c[pos + 8..pos + 16].copy_from_slice(&flags.to_le_bytes());
        c[pos + 16..pos + 20].copy_from_slice(&(data.len() as u32).to_le_bytes());
        pos += 24;
        let n = data.len().min(CS - pos);
        c[pos..pos + n].copy_from_slice(&data[..n]);
        pos = (pos + data.len()).next_multiple_of(8);
    }
    seal(&mut c, bad_sum);
    c
}

/// Writes the MD5 of `c[24..]` into `c[8..24]` (or a wrong one).
pub fn seal(c: &mut [u8], bad: bool) {
    let mut sum = vmsnap_parallels::md5::md5(&c[24..]);
    if bad {
        sum[0] ^= 1;
    }
    c[8..24].copy_from_slice(&sum);
}

/// A dirty bitmap feature payload.
pub fn bitmap(size_sectors: u64, gran_sectors: u32, l1: &[u64]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&size_sectors.to_le_bytes());
    d.extend_from_slice(&[0xAB; 16]);
    d.extend_from_slice(&gran_sectors.to_le_bytes());
    d.extend_from_slice(&(l1.len() as u32).to_le_bytes());
    for e in l1 {
        d.extend_from_slice(&e.to_le_bytes());
    }
    d
}
