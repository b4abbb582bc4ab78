//! qcow2, structure-aware: a version 2 or 3 image written from the description with its
//! header and extensions (backing format, feature names, bitmaps, crypto, data file,
//! unknown), backing file name, L1 table, L2 tables (standard or extended with subcluster
//! bitmaps), data clusters that are plain, zero, compressed (deflate or zstd) or stale,
//! a snapshot table with its own L1 copies and extra data, and refcount table and blocks
//! counting every cluster at the image's refcount width — then patched inside the header
//! cluster, the L1, an L2, the refcounts, the snapshot table or the data. The backing file
//! and the external data file are served from memory (a backing may be the image itself:
//! a loop).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

use arbitrary::Arbitrary;

use super::{apply, at_path, description, in_memory, Patch};

#[derive(Arbitrary, Debug)]
struct Cluster {
    index: u16,
    kind: u8,
    fill: u8,
    bitmap: u32,
}

#[derive(Arbitrary, Debug)]
struct Snapshot {
    id: String,
    name: String,
    extra: Vec<u8>,
    vm_state: u32,
    own_l1: bool,
    l1_size: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum Backing {
    /// Raw bytes, named with a `raw` backing format or none.
    Raw { fill: u8, len: u16, format: bool },
    /// The image itself (a loop the chain-depth limit ends).
    Itself,
    /// A name the resolver refuses.
    Refused(u8),
}

#[derive(Arbitrary, Debug)]
struct Desc {
    v3: bool,
    cluster_bits: u8,
    size: u32,
    incompatible: u8,
    compatible: u8,
    autoclear: u8,
    refcount_order: u8,
    zstd: bool,
    extended_l2: bool,
    data_file: bool,
    backing: Option<Backing>,
    exts: Vec<(u8, Vec<u8>)>,
    clusters: Vec<Cluster>,
    snapshots: Vec<Snapshot>,
    patches: Vec<Patch>,
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

const EXT_TYPES: [u32; 6] = [
    0xE279_2ACA, // backing format
    0x6803_F857, // feature names
    0x2385_2875, // bitmaps
    0x0537_BE77, // crypto
    0x4441_5441, // data file
    0x1234_5678, // unknown
];

/// The clusters of a file being laid out.
struct Image {
    c: usize,
    f: Vec<u8>,
}

impl Image {
    /// Appends `n` zeroed clusters; returns the first one's offset.
    fn alloc(&mut self, n: usize) -> usize {
        let at = self.f.len();
        self.f.resize(at + n.max(1) * self.c, 0);
        at
    }
}

fn compress(data: &[u8], zstd: bool) -> Vec<u8> {
    if zstd {
        return zstd::bulk::compress(data, 1).unwrap_or_default();
    }
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The image (patched) and the data file (when external).
fn build(d: &Desc) -> (Vec<u8>, Vec<u8>) {
    let bits = 9 + u32::from(d.cluster_bits % 8);
    let c = 1usize << bits;
    let v3 = d.v3 || d.extended_l2 || d.data_file || d.zstd;
    let ext_l2 = d.extended_l2 && v3;
    let entry = if ext_l2 { 16 } else { 8 };
    let l2_entries = c / entry;
    let size = u64::from(d.size % (64 << 20));
    let clusters = size.div_ceil(c as u64) as usize;
    let l1_size = clusters.div_ceil(l2_entries);
    let l1_clusters = (l1_size * 8).div_ceil(c);
    let mut img = Image { c, f: Vec::new() };
    let header = img.alloc(1);
    let l1 = img.alloc(l1_clusters);
    let mut data_file = Vec::new();
    if d.data_file {
        data_file = vec![0u8; size as usize];
    }
    // The guest clusters, each written once, in order.
    let mut chosen = BTreeMap::new();
    if clusters > 0 {
        for k in d.clusters.iter().take(16) {
            chosen.entry(usize::from(k.index) % clusters).or_insert(k);
        }
    }
    // Every snapshot's L1 names the same L2 tables, which name the same data: those
    // clusters are referenced once more per snapshot, and then are not "copied".
    let snaps: Vec<&Snapshot> = d.snapshots.iter().take(4).collect();
    let copied = if snaps.is_empty() { 1u64 << 63 } else { 0 };
    let mut referenced = Vec::new();
    let mut l2_at: HashMap<usize, usize> = HashMap::new();
    for g in chosen.keys() {
        let t = g / l2_entries;
        if let std::collections::hash_map::Entry::Vacant(v) = l2_at.entry(t) {
            let at = img.alloc(1);
            v.insert(at);
            referenced.push(at / c);
            put64(&mut img.f, l1 + t * 8, at as u64 | copied);
        }
    }
    for (g, k) in &chosen {
        let slot = l2_at[&(g / l2_entries)] + (g % l2_entries) * entry;
        let data = vec![k.fill; c];
        let (e, bitmap) = match k.kind % 5 {
            // Compressed (not with an external data file).
            2 if !d.data_file => {
                let z = compress(&data, d.zstd);
                let at = img.alloc(z.len().div_ceil(c));
                img.f[at..at + z.len()].copy_from_slice(&z);
                referenced.extend(at / c..(at + z.len()).div_ceil(c));
                let x = 62 - (bits - 8);
                let sectors = (z.len().div_ceil(512) as u64).saturating_sub(1);
                ((1u64 << 62) | (sectors << x) | at as u64, 0)
            }
            // Zero (v3 only), with no offset.
            1 if v3 => (1, u64::from(k.bitmap) << 32),
            1 => (0, 0),
            // Unallocated with stale bits.
            3 => (0, u64::from(k.bitmap)),
            // Plain data (in the data file: at the guest offset).
            _ => {
                let at = if d.data_file {
                    let at = g * c;
                    let end = (at + c).min(data_file.len());
                    data_file[at..end].fill(k.fill);
                    at
                } else {
                    let at = img.alloc(1);
                    img.f[at..at + c].copy_from_slice(&data);
                    referenced.push(at / c);
                    at
                };
                (
                    at as u64 | copied | u64::from(k.kind == 4 && v3),
                    u64::from(k.bitmap),
                )
            }
        };
        put64(&mut img.f, slot, e);
        if ext_l2 {
            put64(&mut img.f, slot + 8, bitmap);
        }
    }
    // Snapshots: the table and each one's L1 (a copy, or the active one shared).
    let mut table = Vec::new();
    for s in &snaps {
        let (l1_at, n) = if s.own_l1 {
            let at = img.alloc(l1_clusters);
            img.f.copy_within(l1..l1 + l1_clusters * c, at);
            (at, l1_size)
        } else {
            (l1, s.l1_size.map_or(l1_size, usize::from))
        };
        let id: Vec<u8> = s.id.bytes().take(16).collect();
        let name: Vec<u8> = s.name.bytes().take(64).collect();
        let extra: Vec<u8> = s.extra.iter().copied().take(48).collect();
        let mut e = vec![0u8; 40];
        put64(&mut e, 0, l1_at as u64);
        put32(&mut e, 8, n as u32);
        e[12..14].copy_from_slice(&(id.len() as u16).to_be_bytes());
        e[14..16].copy_from_slice(&(name.len() as u16).to_be_bytes());
        put32(&mut e, 32, s.vm_state);
        put32(&mut e, 36, extra.len() as u32);
        e.extend(extra);
        e.extend(id);
        e.extend(name);
        e.resize(e.len().div_ceil(8) * 8, 0);
        table.extend(e);
    }
    let snap_at = if snaps.is_empty() {
        0
    } else {
        let at = img.alloc(table.len().div_ceil(c));
        img.f[at..at + table.len()].copy_from_slice(&table);
        at
    };
    // Refcounts: one table cluster and as many blocks as every cluster (theirs too) needs.
    let order = u32::from(d.refcount_order % 7);
    let order = if v3 { order } else { 4 };
    let per_block = (c * 8) >> order;
    let mut blocks = 1;
    while (img.f.len() / c + 1 + blocks).div_ceil(per_block) > blocks {
        blocks += 1;
    }
    let rt = img.alloc(1);
    let rb = img.alloc(blocks);
    for b in 0..blocks {
        put64(&mut img.f, rt + b * 8, (rb + b * c) as u64);
    }
    let total = img.f.len() / c;
    let shared = snaps.iter().filter(|s| !s.own_l1).count();
    for n in 0..total {
        let count = if (l1..l1 + l1_clusters * c).contains(&(n * c)) {
            1 + shared as u64
        } else if referenced.contains(&n) {
            1 + snaps.len() as u64
        } else {
            1
        };
        let width = 1usize << order;
        let bit = n * width;
        let at = rb + bit / 8;
        if width >= 8 {
            let bytes = width / 8;
            let be = count.to_be_bytes();
            img.f[at..at + bytes].copy_from_slice(&be[8 - bytes.min(8)..]);
        } else {
            img.f[at] |= ((count & ((1 << width) - 1)) as u8) << (bit % 8);
        }
    }
    // The header cluster: header, extensions, backing file name.
    let mut h = vec![0u8; if v3 { 112 } else { 72 }];
    h[..4].copy_from_slice(b"QFI\xfb");
    put32(&mut h, 4, if v3 { 3 } else { 2 });
    put32(&mut h, 20, bits);
    put64(&mut h, 24, size);
    put32(&mut h, 36, l1_size as u32);
    put64(&mut h, 40, l1 as u64);
    put64(&mut h, 48, rt as u64);
    put32(&mut h, 56, 1);
    put32(&mut h, 60, snaps.len() as u32);
    put64(&mut h, 64, snap_at as u64);
    if v3 {
        let mut incompat = u64::from(d.incompatible) & 0x3;
        if d.data_file {
            incompat |= 1 << 2;
        }
        if d.zstd {
            incompat |= 1 << 3;
            h[104] = 1;
        }
        if ext_l2 {
            incompat |= 1 << 4;
        }
        if d.incompatible & 0x80 != 0 {
            incompat |= 1 << 40;
        }
        put64(&mut h, 72, incompat);
        put64(&mut h, 80, u64::from(d.compatible));
        put64(&mut h, 88, u64::from(d.autoclear));
        put32(&mut h, 96, order);
        put32(&mut h, 100, 112);
    }
    let ext = |h: &mut Vec<u8>, kind: u32, data: &[u8]| {
        h.extend(kind.to_be_bytes());
        h.extend((data.len() as u32).to_be_bytes());
        h.extend(data);
        h.resize(h.len().div_ceil(8) * 8, 0);
    };
    let backing_name = match &d.backing {
        Some(Backing::Raw { format, .. }) => {
            if *format {
                ext(&mut h, EXT_TYPES[0], b"raw");
            }
            Some("b.raw".to_string())
        }
        Some(Backing::Itself) => Some("top.qcow2".to_string()),
        Some(Backing::Refused(i)) => {
            Some(["/etc/passwd", "../b.raw", "nbd://x", "b\0c"][usize::from(*i % 4)].to_string())
        }
        None => None,
    };
    if d.data_file {
        ext(&mut h, EXT_TYPES[4], b"d.raw");
    }
    for (kind, data) in d.exts.iter().take(4) {
        let data: Vec<u8> = data.iter().copied().take(256).collect();
        ext(
            &mut h,
            EXT_TYPES[usize::from(*kind) % EXT_TYPES.len()],
            &data,
        );
    }
    ext(&mut h, 0, &[]);
    if let Some(name) = &backing_name {
        let at = h.len() as u64;
        put64(&mut h, 8, at);
        put32(&mut h, 16, name.len() as u32);
        h.extend(name.as_bytes());
    }
    h.truncate(c);
    img.f[header..header + h.len()].copy_from_slice(&h);
    let len = img.f.len();
    let mut regions = vec![(0, c), (l1, l1_clusters * c), (rt, (1 + blocks) * c)];
    regions.extend(l2_at.values().map(|&at| (at, c)));
    if snap_at != 0 {
        regions.push((snap_at, table.len()));
    }
    regions.push((0, len));
    let mut f = img.f;
    apply(&mut f, &regions, &d.patches);
    (f, data_file)
}

/// The `qcow2` target's structured mode: false when `data` is not a description.
pub fn run(data: &[u8]) -> bool {
    let Some(d) = description::<Desc>(data) else {
        return false;
    };
    let (image, data_file) = build(&d);
    let _ = (vmsnap_qcow2::PLUGIN.probe)(&crate::window(&image));
    let mut files: HashMap<String, Arc<[u8]>> = HashMap::new();
    files.insert("top.qcow2".into(), image.clone().into());
    if let Some(Backing::Raw { fill, len, .. }) = &d.backing {
        files.insert("b.raw".into(), vec![*fill; usize::from(*len) * 16].into());
    }
    if d.data_file {
        files.insert("d.raw".into(), data_file.into());
    }
    let resolver = in_memory(files);
    let lower = at_path(image, "top.qcow2");
    if let Some(layer) = crate::open_in(
        &vmsnap_qcow2::PLUGIN,
        &[&vmsnap_qcow2::QCOW1_PLUGIN],
        lower,
        &resolver,
    ) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::ExternalPolicy;

    fn cluster(index: u16, kind: u8, fill: u8) -> Cluster {
        Cluster {
            index,
            kind,
            fill,
            bitmap: 0,
        }
    }

    fn desc(v3: bool, zstd: bool, refcount_order: u8) -> Desc {
        Desc {
            v3,
            cluster_bits: 3, // 4 KiB clusters
            size: 1 << 20,
            incompatible: 0,
            compatible: 0,
            autoclear: 0,
            refcount_order,
            zstd,
            extended_l2: false,
            data_file: false,
            backing: None,
            exts: Vec::new(),
            clusters: vec![
                cluster(3, 0, 0x11),
                cluster(5, 1, 0x99),
                cluster(7, 2, 0x22),
                cluster(200, 4, 0x33),
            ],
            snapshots: vec![Snapshot {
                id: "1".into(),
                name: "first".into(),
                extra: vec![0; 16],
                vm_state: 0,
                own_l1: true,
                l1_size: None,
            }],
            patches: Vec::new(),
        }
    }

    /// The built images are valid qcow2 by qemu-img's own reader: `check` finds no error
    /// or leak (the refcounts count every cluster), and `convert` reads the same bytes as
    /// the plugin.
    #[test]
    fn built_images_pass_qemu_img_check_and_read_the_same() {
        if !vmsnap_testkit::have_qemu_img() {
            eprintln!("qemu-img not installed (tools/setup.sh); skipped");
            return;
        }
        let dir = vmsnap_testkit::scratch_dir("fuzzing-qcow2-builder");
        for (n, d) in [
            desc(false, false, 4),
            desc(true, false, 1),
            desc(true, true, 6),
        ]
        .iter()
        .enumerate()
        {
            let (image, _) = build(d);
            let path = dir.join(format!("{n}.qcow2"));
            std::fs::write(&path, &image).unwrap();
            vmsnap_testkit::run(
                std::process::Command::new("qemu-img")
                    .arg("check")
                    .arg(&path),
            );
            let want = vmsnap_testkit::qemu_img_raw(&path, &["-f", "qcow2"]);
            assert_eq!(want.len(), 1 << 20);
            assert_eq!(want[3 * 4096], 0x11);
            assert_eq!(want[7 * 4096 + 100], 0x22);
            let layer = crate::open(
                &vmsnap_qcow2::PLUGIN,
                &[],
                crate::file(&image),
                ExternalPolicy::Deny,
            )
            .expect("the plugin opens the built image");
            let got = vmsnap_testkit::read_all(layer.as_ref());
            vmsnap_testkit::assert_same_bytes(&got, &want, &format!("image {n}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
