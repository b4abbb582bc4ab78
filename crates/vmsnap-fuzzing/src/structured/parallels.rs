//! Parallels, structure-aware: an old-format or extended image written from the
//! description — header, BAT, data clusters, and the format extension cluster whose MD5
//! covers the whole cluster after its header (raw mutation never forges it), with dirty
//! bitmap features (L1 entries clear, set or stored in a cluster of their own) and unknown
//! features, necessary or not — then patched inside the header and BAT, the extension or
//! the data; the MD5 is recomputed afterwards unless the description says not to.

use arbitrary::Arbitrary;

use super::{apply, description, Patch};

const SECTOR: usize = 512;

#[derive(Arbitrary, Debug)]
enum Feature {
    Bitmap {
        granularity_shift: u8,
        entries: Vec<u8>,
        id: [u8; 16],
        flags: u8,
        l1_delta: i8,
    },
    Unknown {
        magic: u64,
        necessary: bool,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Desc {
    old: bool,
    tracks_shift: u8,
    clusters: u8,
    extra_bat: u8,
    blocks: Vec<(u8, u8)>,
    in_use: bool,
    flags: u8,
    features: Option<Vec<Feature>>,
    patches: Vec<Patch>,
    keep_bad_checksum: bool,
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn build(d: &Desc) -> Vec<u8> {
    let tracks = 1usize << (d.tracks_shift % 8);
    let c = tracks * SECTOR;
    let clusters = usize::from(d.clusters % 64);
    let sectors = (clusters * tracks) as u64;
    let bat_entries = clusters + usize::from(d.extra_bat % 4);
    let meta = (64 + 4 * bat_entries).div_ceil(c);
    let mut f = vec![0u8; meta * c];
    f[..16].copy_from_slice(if d.old {
        b"WithoutFreeSpace"
    } else {
        b"WithouFreSpacExt"
    });
    put32(&mut f, 16, 2);
    put32(&mut f, 20, 16);
    put32(&mut f, 24, 32);
    put32(&mut f, 28, tracks as u32);
    put32(&mut f, 32, bat_entries as u32);
    put64(&mut f, 36, sectors);
    put32(&mut f, 44, if d.in_use { 0x746F_6E59 } else { 0x312E_3276 });
    put32(&mut f, 48, (meta * tracks) as u32);
    put32(&mut f, 52, u32::from(d.flags & 1));
    // The extension cluster and the bitmap clusters it names.
    let mut ext_at = None;
    if let Some(features) = &d.features {
        let at = f.len();
        f.resize(at + c, 0);
        ext_at = Some(at);
        put64(&mut f, 56, (at / SECTOR) as u64);
        let mut e = Vec::new();
        e.extend(0xAB23_4CEF_23DC_EA87u64.to_le_bytes());
        e.extend([0u8; 16]);
        for feat in features.iter().take(4) {
            let (magic, flags, data) = match feat {
                Feature::Bitmap {
                    granularity_shift,
                    entries,
                    id,
                    flags,
                    l1_delta,
                } => {
                    let gran = 1u64 << (granularity_shift % 8);
                    let bits = (sectors * SECTOR as u64).div_ceil(gran * SECTOR as u64);
                    let l1 = (bits.div_ceil(64) * 8).div_ceil(c as u64) as i64
                        + i64::from(*l1_delta % 2);
                    let l1 = l1.clamp(0, 16) as usize;
                    let mut data = Vec::new();
                    data.extend(sectors.to_le_bytes());
                    data.extend(id);
                    data.extend((gran as u32).to_le_bytes());
                    data.extend((l1 as u32).to_le_bytes());
                    for i in 0..l1 {
                        let kind = entries.get(i).copied().unwrap_or(0) % 3;
                        let v = if kind == 2 {
                            let at = f.len();
                            f.resize(at + c, 0xA5);
                            (at / SECTOR) as u64
                        } else {
                            u64::from(kind)
                        };
                        data.extend(v.to_le_bytes());
                    }
                    (0x2038_5FAE_252C_B34A, u64::from(*flags % 4), data)
                }
                Feature::Unknown {
                    magic,
                    necessary,
                    data,
                } => (
                    *magic | 2,
                    u64::from(*necessary),
                    data.iter().copied().take(256).collect(),
                ),
            };
            e.extend(magic.to_le_bytes());
            e.extend(flags.to_le_bytes());
            e.extend((data.len() as u32).to_le_bytes());
            e.extend([0u8; 4]);
            e.extend(&data);
            e.resize(e.len().next_multiple_of(8), 0);
        }
        e.extend([0u8; 24]);
        e.truncate(c);
        f[at..at + e.len()].copy_from_slice(&e);
    }
    // Data clusters.
    let mut seen = std::collections::BTreeSet::new();
    for &(index, fill) in d.blocks.iter().take(8) {
        let i = usize::from(index) % bat_entries.max(1);
        if bat_entries == 0 || !seen.insert(i) {
            continue;
        }
        let at = f.len();
        f.resize(at + c, fill);
        let unit = if d.old { SECTOR } else { c };
        put32(&mut f, 64 + 4 * i, (at / unit) as u32);
    }
    let len = f.len();
    let mut regions = vec![(0, meta * c)];
    if let Some(at) = ext_at {
        regions.push((at, c));
    }
    regions.push((meta * c, len - meta * c));
    apply(&mut f, &regions, &d.patches);
    if let (Some(at), false) = (ext_at, d.keep_bad_checksum) {
        let sum = vmsnap_parallels::md5::md5(&f[at + 24..at + c]);
        f[at + 8..at + 24].copy_from_slice(&sum);
    }
    f
}

/// The `parallels` target's structured mode: false when `data` is not a description.
pub fn run(data: &[u8]) -> bool {
    let Some(d) = description::<Desc>(data) else {
        return false;
    };
    crate::open_and_exercise(&vmsnap_parallels::PLUGIN, &build(&d));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::ExternalPolicy;

    /// A built image with a dirty bitmap in its format extension reads the same through
    /// qemu-img (which checks the extension's MD5 and its bitmap) and the plugin.
    #[test]
    fn built_image_with_extension_reads_the_same_as_qemu_img() {
        if !vmsnap_testkit::have_qemu_img() {
            eprintln!("qemu-img not installed (tools/setup.sh); skipped");
            return;
        }
        let d = Desc {
            old: false,
            tracks_shift: 3, // 4 KiB clusters
            clusters: 40,
            extra_bat: 0,
            blocks: vec![(1, 0x11), (7, 0x22), (39, 0x33)],
            in_use: false,
            flags: 0,
            features: Some(vec![Feature::Bitmap {
                granularity_shift: 3,
                entries: vec![2],
                id: [7; 16],
                flags: 0,
                l1_delta: 0,
            }]),
            patches: Vec::new(),
            keep_bad_checksum: false,
        };
        let image = build(&d);
        let dir = vmsnap_testkit::scratch_dir("fuzzing-parallels-builder");
        let path = dir.join("x.parallels");
        std::fs::write(&path, &image).unwrap();
        let want = vmsnap_testkit::qemu_img_raw(&path, &["-f", "parallels"]);
        assert_eq!(want.len(), 40 * 4096);
        assert_eq!(want[7 * 4096], 0x22);
        let layer = crate::open(
            &vmsnap_parallels::PLUGIN,
            &[],
            crate::file(&image),
            ExternalPolicy::Deny,
        )
        .expect("the plugin opens the built image");
        assert_eq!(
            layer.describe()["format_extension"]["dirty_bitmaps"][0]["stored_chunks"],
            1
        );
        vmsnap_testkit::assert_same_bytes(
            &vmsnap_testkit::read_all(layer.as_ref()),
            &want,
            "parallels",
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
