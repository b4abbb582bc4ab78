//! VMDK, structure-aware: a top file (a text descriptor, or an extent) and up to four
//! more files it may name (`f0.vmdk` … `f3.vmdk`), each a hosted sparse extent (`KDMV`:
//! monolithicSparse with a redundant directory, zeroed-grain entries, compressed grains,
//! or streamOptimized with grain, table, directory, footer and end-of-stream markers),
//! a VMDK3 `COWD` extent, a seSparse extent (constant and volatile headers, directory and
//! table entries in its own encoding) or flat bytes. Descriptors carry extent lines of
//! every type and access, parent hints and CIDs, ddb entries and junk lines. The files
//! live in memory under a virtual directory: the resolver's opener serves them by name
//! and refuses everything else, so extents and parent chains (loops included) are opened
//! without touching the file system.

use std::collections::HashMap;
use std::sync::Arc;

use arbitrary::Arbitrary;

use super::{apply, at_path, description, in_memory, Patch};

const SECTOR: usize = 512;

#[derive(Arbitrary, Debug)]
struct Grain {
    index: u16,
    fill: u8,
    zero: bool,
}

#[derive(Arbitrary, Debug)]
struct Sparse {
    /// Capacity in grains (modulo 4097: 0 makes a KDMV a descriptor file).
    capacity: u16,
    /// Grain size: 1 << (this % 8) sectors (seSparse: always 8).
    grain_shift: u8,
    /// KDMV grain-table entries: 1 << (this % 10).
    gt_shift: u8,
    version: u8,
    stream: bool,
    compressed: bool,
    zero_grain: bool,
    rgd: bool,
    unclean: bool,
    grains: Vec<Grain>,
    descriptor: Option<Text>,
    patches: Vec<Patch>,
}

#[derive(Arbitrary, Debug)]
enum Extent {
    Kdmv(Sparse),
    Cowd(Sparse),
    SeSparse(Sparse),
    Flat { sectors: u8, fill: u8 },
}

#[derive(Arbitrary, Debug)]
struct Line {
    access: u8,
    sectors: u16,
    kind: u8,
    file: u8,
    offset: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Text {
    version: u8,
    cid: u32,
    parent_cid: Option<u32>,
    parent: Option<u8>,
    create_type: u8,
    lines: Vec<Line>,
    ddb: Vec<(u8, String)>,
    junk: Vec<String>,
    crlf: bool,
}

#[derive(Arbitrary, Debug)]
enum Top {
    Text(Text),
    Extent(Extent),
}

#[derive(Arbitrary, Debug)]
struct Desc {
    top: Top,
    files: Vec<Extent>,
}

const CREATE_TYPES: &[&str] = &[
    "monolithicSparse",
    "streamOptimized",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "vmfs",
    "vmfsSparse",
    "seSparse",
    "custom",
    "vmfsRaw",
    "fullDevice",
    "partitionedDevice",
];
const KINDS: &[&str] = &[
    "SPARSE",
    "FLAT",
    "ZERO",
    "VMFS",
    "VMFSSPARSE",
    "SESPARSE",
    "VMFSRDM",
    "VMFSRAW",
    "sparse",
];
const ACCESS: &[&str] = &["RW", "RDONLY", "NOACCESS", "rw"];
const DDB: &[&str] = &[
    "ddb.virtualHWVersion",
    "ddb.adapterType",
    "ddb.geometry.cylinders",
    "ddb.geometry.heads",
    "ddb.geometry.sectors",
    "ddb.longContentID",
    "ddb.uuid",
    "ddb.encoding",
];

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn name(i: u8) -> String {
    format!("f{}.vmdk", i % 5)
}

/// The descriptor text.
fn text(t: &Text) -> Vec<u8> {
    let nl = if t.crlf { "\r\n" } else { "\n" };
    let mut s = format!("# Disk DescriptorFile{nl}version={}{nl}", t.version % 5);
    s += &format!("CID={:08x}{nl}", t.cid);
    s += &format!("parentCID={:08x}{nl}", t.parent_cid.unwrap_or(u32::MAX));
    s += &format!(
        "createType=\"{}\"{nl}",
        CREATE_TYPES[usize::from(t.create_type) % CREATE_TYPES.len()]
    );
    if let Some(p) = t.parent {
        // Index 7 names a path the opener refuses; 6 one with `..`.
        let hint = match p % 8 {
            7 => "/etc/passwd".to_string(),
            6 => "../f0.vmdk".to_string(),
            i => name(i),
        };
        s += &format!("parentFileNameHint=\"{hint}\"{nl}");
    }
    s += nl;
    for l in t.lines.iter().take(8) {
        let kind = pick(KINDS, l.kind);
        s += &format!("{} {} {kind}", pick(ACCESS, l.access), l.sectors);
        if kind != "ZERO" {
            s += &format!(" \"{}\"", name(l.file));
        }
        if let Some(o) = l.offset {
            s += &format!(" {o}");
        }
        s += nl;
    }
    for (k, v) in t.ddb.iter().take(8) {
        let v: String = v.chars().filter(|c| *c != '\n').take(64).collect();
        s += &format!("{} = \"{v}\"{nl}", pick(DDB, *k));
    }
    for j in t.junk.iter().take(4) {
        s += &j.chars().take(80).collect::<String>();
        s += nl;
    }
    s.into_bytes()
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Pads `f` to a whole number of sectors.
fn pad(f: &mut Vec<u8>) {
    f.resize(f.len().div_ceil(SECTOR) * SECTOR, 0);
}

/// The distinct grains of `s` inside `count` grains, at most 16, in index order.
fn grains(s: &Sparse, count: u64) -> Vec<(u64, &Grain)> {
    let mut m = std::collections::BTreeMap::new();
    if count > 0 {
        for g in s.grains.iter().take(16) {
            m.entry(u64::from(g.index) % count).or_insert(g);
        }
    }
    m.into_iter().collect()
}

/// A hosted sparse (`KDMV`) extent.
fn kdmv(s: &Sparse) -> Vec<u8> {
    let g = 1u64 << (s.grain_shift % 8);
    let gtes = 1u64 << (s.gt_shift % 10);
    let count = u64::from(s.capacity % 4097);
    let cap = count * g;
    let gd_entries = cap.div_ceil(gtes * g);
    let gt_sectors = (gtes * 4).div_ceil(SECTOR as u64);
    let gd_sectors = (gd_entries * 4).div_ceil(SECTOR as u64).max(1);
    let desc = s.descriptor.as_ref().map(text).unwrap_or_default();
    let desc_sectors = (desc.len() as u64).div_ceil(SECTOR as u64);
    let compressed = s.stream || s.compressed;
    let mut flags = 1u32; // valid newline test
    if s.rgd {
        flags |= 2;
    }
    if s.zero_grain {
        flags |= 4;
    }
    if compressed {
        flags |= 1 << 16;
    }
    if s.stream {
        flags |= 1 << 17;
    }
    let chosen = grains(s, count);
    let tables: std::collections::BTreeSet<u64> = chosen.iter().map(|(i, _)| i / gtes).collect();
    // Metadata: header, descriptor, (redundant) directory, tables of the used grains.
    let mut at = 1 + desc_sectors;
    let rgd = at;
    if s.rgd {
        at += gd_sectors;
    }
    let gd = at;
    at += gd_sectors;
    let mut gt_at = HashMap::new();
    if !s.stream {
        for t in &tables {
            gt_at.insert(*t, at);
            at += gt_sectors;
        }
    }
    let overhead = at;
    let mut f = vec![0u8; (overhead as usize) * SECTOR];
    f[SECTOR..SECTOR + desc.len()].copy_from_slice(&desc);
    let header = |f: &mut [u8], at: usize, gd_offset: u64| {
        f[at..at + 4].copy_from_slice(b"KDMV");
        put32(f, at + 4, u32::from(s.version % 5));
        put32(f, at + 8, flags);
        put64(f, at + 12, cap);
        put64(f, at + 20, g);
        put64(f, at + 28, if desc.is_empty() { 0 } else { 1 });
        put64(f, at + 36, desc_sectors);
        put32(f, at + 44, gtes as u32);
        put64(f, at + 48, if s.rgd { rgd } else { 0 });
        put64(f, at + 56, gd_offset);
        put64(f, at + 64, overhead);
        f[at + 72] = u8::from(s.unclean);
        f[at + 73..at + 77].copy_from_slice(b"\n \r\n");
        put16(f, at + 77, u16::from(compressed));
    };
    header(&mut f, 0, if s.stream { u64::MAX } else { gd });
    // Grains, then (streamOptimized) the tables behind their markers.
    let mut gte: HashMap<u64, u32> = HashMap::new();
    for (index, gr) in &chosen {
        if gr.zero && s.zero_grain {
            gte.insert(*index, 1);
            continue;
        }
        let sector = (f.len() / SECTOR) as u32;
        let data = vec![gr.fill; (g as usize) * SECTOR];
        if s.stream {
            let z = super::zlib(&data);
            f.extend((index * g).to_le_bytes());
            f.extend((z.len() as u32).to_le_bytes());
            f.extend(z);
        } else if compressed {
            f.extend(super::zlib(&data));
        } else {
            f.extend(data);
        }
        pad(&mut f);
        gte.insert(*index, sector);
    }
    let marker = |f: &mut Vec<u8>, val: u64, kind: u32| {
        let mut m = vec![0u8; SECTOR];
        put64(&mut m, 0, val);
        put32(&mut m, 12, kind);
        f.extend(m);
    };
    if s.stream {
        for t in &tables {
            marker(&mut f, gt_sectors, 1);
            gt_at.insert(*t, (f.len() / SECTOR) as u64);
            f.resize(f.len() + gt_sectors as usize * SECTOR, 0);
        }
    }
    let mut dir = vec![0u8; gd_sectors as usize * SECTOR];
    for (t, sector) in &gt_at {
        put32(&mut dir, *t as usize * 4, *sector as u32);
        for i in 0..gtes {
            if let Some(e) = gte.get(&(t * gtes + i)) {
                put32(&mut f, (*sector as usize) * SECTOR + i as usize * 4, *e);
            }
        }
    }
    let gd_final = if s.stream {
        marker(&mut f, gd_sectors, 2);
        let at = (f.len() / SECTOR) as u64;
        f.extend(&dir);
        marker(&mut f, 1, 3);
        let foot = f.len();
        f.resize(foot + SECTOR, 0);
        header(&mut f, foot, at);
        marker(&mut f, 0, 0);
        at
    } else {
        gd
    };
    let d = gd_final as usize * SECTOR;
    f[d..d + dir.len()].copy_from_slice(&dir);
    if s.rgd && !s.stream {
        let r = rgd as usize * SECTOR;
        f[r..r + dir.len()].copy_from_slice(&dir);
    }
    let len = f.len();
    let regions = [
        (0, SECTOR),
        (SECTOR, (overhead as usize - 1).max(1) * SECTOR),
        (overhead as usize * SECTOR, len - overhead as usize * SECTOR),
        (len.saturating_sub(3 * SECTOR), 3 * SECTOR.min(len)),
    ];
    apply(&mut f, &regions, &s.patches);
    f
}

/// A VMDK3 `COWD` extent: 4096 four-byte entries a table.
fn cowd(s: &Sparse) -> Vec<u8> {
    let g = 1u64 << (s.grain_shift % 8);
    let count = u64::from(s.capacity % 4097);
    let gd_entries = count.div_ceil(4096);
    let chosen = grains(s, count);
    let gd = 4u64;
    let mut at = gd + (gd_entries * 4).div_ceil(SECTOR as u64).max(1);
    let mut gt_at = HashMap::new();
    for (i, _) in &chosen {
        gt_at.entry(i / 4096).or_insert_with(|| {
            let t = at;
            at += 32;
            t
        });
    }
    let mut f = vec![0u8; at as usize * SECTOR];
    f[..4].copy_from_slice(b"COWD");
    put32(&mut f, 4, 1);
    put32(&mut f, 8, 3);
    put32(&mut f, 12, (count * g) as u32);
    put32(&mut f, 16, g as u32);
    put32(&mut f, 20, gd as u32);
    put32(&mut f, 24, gd_entries as u32);
    for (t, sector) in &gt_at {
        put32(
            &mut f,
            gd as usize * SECTOR + *t as usize * 4,
            *sector as u32,
        );
    }
    for (i, gr) in &chosen {
        let sector = (f.len() / SECTOR) as u32;
        f.extend(vec![gr.fill; g as usize * SECTOR]);
        let t = gt_at[&(i / 4096)];
        put32(
            &mut f,
            t as usize * SECTOR + (i % 4096) as usize * 4,
            sector,
        );
    }
    let all = (f.len() / SECTOR) as u32;
    put32(&mut f, 28, all);
    let len = f.len();
    apply(&mut f, &[(0, SECTOR), (SECTOR, len - SECTOR)], &s.patches);
    f
}

/// A seSparse extent: 4 KiB grains, 4096 eight-byte entries a table.
fn sesparse(s: &Sparse) -> Vec<u8> {
    const GT_SECTORS: u64 = 64;
    let count = u64::from(s.capacity % 4097);
    let gd_entries = count.div_ceil(4096).max(1);
    let gd_sectors = (gd_entries * 8).div_ceil(SECTOR as u64);
    let chosen = grains(s, count);
    let gd = 2u64;
    let gts = gd + gd_sectors;
    let mut tables: Vec<u64> = chosen.iter().map(|(i, _)| i / 4096).collect();
    tables.dedup();
    let grains_at = gts + tables.len() as u64 * GT_SECTORS;
    let mut f = vec![0u8; grains_at as usize * SECTOR];
    let h = |i: usize| i * 8;
    put64(&mut f, h(0), 0xCAFE_BABE);
    put64(&mut f, h(1), 0x0000_0002_0000_0001);
    put64(&mut f, h(2), count * 8);
    put64(&mut f, h(3), 8);
    put64(&mut f, h(4), GT_SECTORS);
    put64(&mut f, h(10), 1);
    put64(&mut f, h(11), 1);
    put64(&mut f, h(16), gd);
    put64(&mut f, h(17), gd_sectors);
    put64(&mut f, h(18), gts);
    put64(&mut f, h(19), tables.len() as u64 * GT_SECTORS);
    put64(&mut f, h(24), grains_at);
    put64(&mut f, h(25), chosen.len() as u64 * 8);
    put64(&mut f, SECTOR, 0xCAFE_CAFE);
    for (n, t) in tables.iter().enumerate() {
        put64(
            &mut f,
            gd as usize * SECTOR + *t as usize * 8,
            0x1000_0000_0000_0000 | n as u64,
        );
    }
    for (cluster, (i, gr)) in chosen.iter().enumerate() {
        let n = tables.iter().position(|t| *t == i / 4096).unwrap_or(0);
        let slot = (gts as usize + n * GT_SECTORS as usize) * SECTOR + (i % 4096) as usize * 8;
        let c = cluster as u64;
        let e = if gr.zero {
            1 << 60
        } else {
            f.extend(vec![gr.fill; 4096]);
            (3 << 60) | ((c & 0xFFF) << 48) | (c >> 12)
        };
        put64(&mut f, slot, e);
    }
    let len = f.len();
    apply(
        &mut f,
        &[
            (0, SECTOR),
            (SECTOR, SECTOR),
            (2 * SECTOR, len - 2 * SECTOR),
        ],
        &s.patches,
    );
    f
}

fn extent(e: &Extent) -> Vec<u8> {
    match e {
        Extent::Kdmv(s) => kdmv(s),
        Extent::Cowd(s) => cowd(s),
        Extent::SeSparse(s) => sesparse(s),
        Extent::Flat { sectors, fill } => vec![*fill; usize::from(*sectors) * SECTOR],
    }
}

/// The top file and the files it may name, by name.
fn build(d: &Desc) -> (Vec<u8>, HashMap<String, Arc<[u8]>>) {
    let top = match &d.top {
        Top::Text(t) => text(t),
        Top::Extent(e) => extent(e),
    };
    let files = d
        .files
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, e)| (name(i as u8), Arc::from(extent(e))))
        .collect();
    (top, files)
}

/// The `vmdk` target's structured mode: builds the top file and its companions and opens
/// it through the in-memory resolver; false when `data` is not a description.
pub fn run(data: &[u8]) -> bool {
    let Some(d) = description::<Desc>(data) else {
        return false;
    };
    let (top, files) = build(&d);
    let resolver = in_memory(files);
    let lower = at_path(top, "top.vmdk");
    crate::plain::vmdk_on(lower, &resolver);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::ExternalPolicy;

    fn sparse(stream: bool, zero_grain: bool, descriptor: Option<Text>) -> Sparse {
        let grain = |index, fill, zero| Grain { index, fill, zero };
        Sparse {
            capacity: 600,
            grain_shift: 7, // 64 KiB grains, as qemu-img writes them
            gt_shift: 9,
            version: if stream { 3 } else { 1 },
            stream,
            compressed: false,
            zero_grain,
            rgd: !stream,
            unclean: false,
            grains: vec![
                grain(0, 0x11, false),
                grain(3, 0x22, false),
                grain(4, 0, true),
                grain(520, 0x33, false),
            ],
            descriptor,
            patches: Vec::new(),
        }
    }

    fn text(create_type: u8) -> Text {
        Text {
            version: 1,
            cid: 0x1234_5678,
            parent_cid: None,
            parent: None,
            create_type,
            lines: Vec::new(),
            ddb: vec![(1, "ide".into())],
            junk: Vec::new(),
            crlf: false,
        }
    }

    /// Built extents read the same through qemu-img (the oracle) and the plugin. (qemu-img
    /// opens neither a KDMV without a descriptor nor a bare COWD extent.)
    #[test]
    fn built_extents_read_the_same_as_qemu_img() {
        if !vmsnap_testkit::have_qemu_img() {
            eprintln!("qemu-img not installed (tools/setup.sh); skipped");
            return;
        }
        let dir = vmsnap_testkit::scratch_dir("fuzzing-vmdk-builder");
        let cases = [
            ("sparse", kdmv(&sparse(false, true, Some(text(0))))),
            ("stream", kdmv(&sparse(true, false, Some(text(1))))),
        ];
        for (name, image) in cases {
            let path = dir.join(format!("{name}.vmdk"));
            std::fs::write(&path, &image).unwrap();
            let want = vmsnap_testkit::qemu_img_raw(&path, &["-f", "vmdk"]);
            let g = 64 << 10;
            assert_eq!(want.len(), 600 * g, "{name}");
            assert_eq!(want[3 * g], 0x22, "{name}");
            assert_eq!(want[520 * g + 7], 0x33, "{name}");
            let layer = crate::open(
                &vmsnap_vmdk::PLUGIN,
                &[],
                crate::file(&image),
                ExternalPolicy::Deny,
            )
            .unwrap_or_else(|| panic!("the plugin opens the built {name} extent"));
            let got = vmsnap_testkit::read_all(layer.as_ref());
            vmsnap_testkit::assert_same_bytes(&got, &want, name);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
