//! Every corpus sample, every snapshot and every VM state, byte for byte against QEMU.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{
    ExtentKind, ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver, Severity,
};
use vmsnap_qcow2::{Qcow2, PLUGIN};
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_info, qemu_img_raw, read_all};

const SAMPLES: &[&str] = &[
    "v2.qcow2",
    "v3.qcow2",
    "bitmaps.qcow2",
    "c512.qcow2",
    "zlib.qcow2",
    "zstd.qcow2",
    "extl2.qcow2",
    "chain-base.qcow2",
    "chain-mid.qcow2",
    "chain-top.qcow2",
    "datafile.qcow2",
    "datafile-raw.qcow2",
    "snapshots.qcow2",
    "savevm.qcow2",
];

fn open_with(path: &Path, policy: ExternalPolicy) -> Qcow2 {
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(policy);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    Qcow2::open(Arc::new(FileLayer::open(path).unwrap()), &ctx).unwrap()
}

/// `qemu-img convert -O raw`, run from the image's directory: QEMU resolves a relative
/// data-file name against the working directory.
fn oracle(p: &Path) -> Vec<u8> {
    let dir = vmsnap_testkit::scratch_dir("qcow2-oracle");
    let out = dir.join("out.raw");
    vmsnap_testkit::run(
        Command::new("qemu-img")
            .current_dir(p.parent().unwrap())
            .args(["convert", "-O", "raw"])
            .arg(p)
            .arg(&out),
    );
    let v = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

fn open(path: &Path) -> Qcow2 {
    open_with(path, ExternalPolicy::SameDir)
}

/// Reads through extents like `convert` would: data via read_at, holes skipped.
fn read_by_extents(l: &dyn Layer) -> Vec<u8> {
    let mut out = vec![0u8; l.len() as usize];
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), l.len());
    let mut pos = 0;
    for e in ext {
        assert_eq!(e.offset, pos);
        pos += e.len;
        if e.kind == ExtentKind::Data {
            l.read_at(
                e.offset,
                &mut out[e.offset as usize..(e.offset + e.len) as usize],
            )
            .unwrap();
        }
    }
    out
}

#[test]
fn every_sample_matches_qemu_img_convert() {
    for s in SAMPLES {
        let p = corpus(&format!("qcow2/{s}"));
        let img = open(&p);
        let want = oracle(&p);
        assert_same_bytes(&read_all(&img), &want, s);
        assert_same_bytes(&read_by_extents(&img), &want, &format!("{s} via extents"));
        // Odd-sized reads at odd offsets cross clusters, subclusters and runs.
        let mut off = 0u64;
        let mut buf = vec![0u8; 77_777];
        while off < img.len() {
            let n = (img.len() - off).min(buf.len() as u64) as usize;
            img.read_at(off, &mut buf[..n]).unwrap();
            assert_same_bytes(&buf[..n], &want[off as usize..off as usize + n], s);
            off += n as u64 + 333;
        }
    }
}

#[test]
fn every_snapshot_matches_qemu_img_convert_l() {
    for s in ["snapshots.qcow2", "savevm.qcow2"] {
        let p = corpus(&format!("qcow2/{s}"));
        let img = open(&p);
        let snaps: Vec<_> = img.snapshots().cloned().collect();
        assert!(!snaps.is_empty());
        for sn in &snaps {
            let want = qemu_img_raw(&p, &["-l", &format!("snapshot.name={}", sn.name)]);
            let child = img
                .children()
                .into_iter()
                .find(|c| c.name == format!("snapshot:{}", sn.id))
                .unwrap();
            assert_same_bytes(&read_all(child.layer.as_ref()), &want, &sn.name);
            assert_same_bytes(&read_by_extents(child.layer.as_ref()), &want, &sn.name);
        }
    }
    // The two snapshots really differ, and differ from the active disk.
    let p = corpus("qcow2/snapshots.qcow2");
    let img = open(&p);
    let one = read_all(&img.snapshot_disk("1").unwrap());
    let two = read_all(&img.snapshot_disk("2").unwrap());
    let now = read_all(&img);
    assert_eq!(one[8192], 0x61);
    assert_eq!(two[8192], 0x63);
    assert_eq!(now[0], 0x65);
    assert_eq!(two[0], 0x61);
    assert_eq!(one[1 << 20], 0x62);
    assert_eq!(two[1 << 20], 0);
}

#[test]
fn snapshot_table_matches_qemu_img_info() {
    let p = corpus("qcow2/snapshots.qcow2");
    let img = open(&p);
    let info = qemu_img_info(&p);
    let want = info["snapshots"].as_array().unwrap();
    let d = img.describe();
    let got = d["snapshots"].as_array().unwrap();
    assert_eq!(got.len(), 2);
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["id"], w["id"]);
        assert_eq!(g["name"], w["name"]);
        assert_eq!(g["date_sec"], w["date-sec"]);
        assert_eq!(g["date_nsec"], w["date-nsec"]);
        assert_eq!(g["vm_state_size"], w["vm-state-size"]);
        assert_eq!(
            g["vm_clock_nsec"].as_u64().unwrap(),
            w["vm-clock-sec"].as_u64().unwrap() * 1_000_000_000
                + w["vm-clock-nsec"].as_u64().unwrap()
        );
        assert_eq!(g["disk_size"], 2 << 20);
    }
    assert!(img
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_qcow2::rule::SNAPSHOTS && f.severity == Severity::Info));
}

/// The VM state as QEMU itself reads it: a copy of the image whose header points the
/// active L1 at the snapshot's L1 and whose size covers the VM state area, converted
/// with `qemu-img convert` and cut at the VM state offset.
fn qemu_vmstate(p: &Path, l1_offset: u64, l1_size: u32, start: u64, len: u64) -> Vec<u8> {
    let dir = vmsnap_testkit::scratch_dir("qcow2-vmstate");
    let copy = dir.join("patched.qcow2");
    let mut b = std::fs::read(p).unwrap();
    let size = (start + len).div_ceil(512) * 512;
    b[24..32].copy_from_slice(&size.to_be_bytes());
    b[36..40].copy_from_slice(&l1_size.to_be_bytes());
    b[40..48].copy_from_slice(&l1_offset.to_be_bytes());
    std::fs::write(&copy, b).unwrap();
    let all = qemu_img_raw(&copy, &[]);
    let v = all[start as usize..(start + len) as usize].to_vec();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

#[test]
fn savevm_vmstate_layer_is_the_qemu_stream() {
    let p = corpus("qcow2/savevm.qcow2");
    let img = open(&p);
    let sn = img.snapshots().next().unwrap().clone();
    assert_eq!(sn.name, "snap1");
    assert!(sn.vm_state_size > 100_000);
    let info = qemu_img_info(&p);
    assert_eq!(info["snapshots"][0]["vm-state-size"], sn.vm_state_size);
    let children = img.children();
    let vm = children.iter().find(|c| c.name == "vmstate:1").unwrap();
    assert!(vm.stackable);
    assert_eq!(vm.role, vmsnap_core::ChildRole::VmState);
    assert_eq!(vm.layer.space(), vmsnap_core::AddressSpace::Stream);
    assert_eq!(vm.layer.len(), sn.vm_state_size);
    let got = read_all(vm.layer.as_ref());
    assert_eq!(&got[..8], &[0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3]);
    // 16 MiB disk, 4 KiB clusters: one L2 table covers 2 MiB, so the state starts at 16 MiB.
    let vl = img.snapshot_vmstate("1").unwrap();
    assert_eq!(vl.base(), 16 << 20);
    let want = qemu_vmstate(
        &p,
        sn.l1_table_offset,
        sn.l1_size,
        vl.base(),
        sn.vm_state_size,
    );
    assert_same_bytes(&got, &want, "vmstate");
    // The active image no longer holds it (QEMU discards it after the snapshot).
    assert_eq!(img.len(), 16 << 20);
}

#[test]
fn info_matches_qemu_img_info() {
    for s in SAMPLES {
        let p = corpus(&format!("qcow2/{s}"));
        let img = open(&p);
        let d = img.describe();
        let info = qemu_img_info(&p);
        assert_eq!(d["format"], "qcow2");
        assert_eq!(d["virtual_size"], info["virtual-size"], "{s}");
        assert_eq!(d["cluster_size"], info["cluster-size"], "{s}");
        let fs = &info["format-specific"]["data"];
        assert_eq!(d["compat"], fs["compat"], "{s}");
        if let Some(b) = info.get("backing-filename") {
            assert_eq!(&d["backing_file"], b, "{s}");
            assert_eq!(d["backing_format"], info["backing-filename-format"], "{s}");
        } else {
            assert!(d["backing_file"].is_null(), "{s}");
        }
        if let Some(df) = fs.get("data-file") {
            assert_eq!(&d["data_file"], df, "{s}");
            assert_eq!(d["data_file_raw"], fs["data-file-raw"], "{s}");
        }
        if let Some(t) = fs.get("compression-type") {
            assert_eq!(&d["compression_type"], t, "{s}");
        }
        if let Some(x) = fs.get("extended-l2") {
            assert_eq!(&d["extended_l2"], x, "{s}");
        }
        if let Some(x) = fs.get("refcount-bits") {
            assert_eq!(&d["refcount_bits"], x, "{s}");
        }
        if let Some(x) = fs.get("lazy-refcounts") {
            assert_eq!(&d["lazy_refcounts"], x, "{s}");
        }
        if let Some(bm) = fs.get("bitmaps") {
            let names: Vec<_> = bm
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].clone())
                .collect();
            let got: Vec<_> = d["bitmaps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].clone())
                .collect();
            assert_eq!(got, names, "{s}");
            for (g, w) in d["bitmaps"]
                .as_array()
                .unwrap()
                .iter()
                .zip(bm.as_array().unwrap())
            {
                assert_eq!(g["granularity"], w["granularity"], "{s}");
            }
        }
        let _ = img.meta().to_string();
    }
}

#[test]
fn backing_chain_is_followed_through_the_policy() {
    let top = corpus("qcow2/chain-top.qcow2");
    let img = open(&top);
    let refs = img.external_refs();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, "chain-mid.qcow2");
    assert!(matches!(
        refs[0].decision,
        vmsnap_core::RefDecision::Opened { .. }
    ));
    let f = img.findings();
    assert!(f
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::BACKING_FILE && f.severity == Severity::Unsafe));
    assert_eq!(img.describe()["backing"]["opened"], true);
    // Base is 3 MiB, the overlays 4 MiB: past the base reads zeros (or overlay data).
    let data = read_all(&img);
    assert_eq!(data[3 << 20 | 4096], 0);
    assert_eq!(data[3 << 20], 0x04);
    // Denied: opens, the finding says unallocated clusters are unavailable; reading them
    // fails (the tests in missing_backing.rs cover the opt-in to zeros).
    let img = open_with(&top, ExternalPolicy::Deny);
    assert_eq!(img.describe()["backing"]["opened"], false);
    let f = img.findings();
    let b = f
        .iter()
        .find(|f| f.rule == vmsnap_core::rule::BACKING_FILE)
        .unwrap();
    assert_eq!(b.severity, Severity::Unsafe);
    assert!(b.message.contains("unavailable"), "{}", b.message);
    let mut one = [0u8; 1];
    let e = img.read_at(0x1000, &mut one).unwrap_err(); // from base, not followed
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unavailable);
    img.read_at(101 << 10, &mut one).unwrap(); // the top's own write
    assert_eq!(one[0], 0x05);
}

#[test]
fn external_data_file_is_opened_through_the_policy_only() {
    let p = corpus("qcow2/datafile.qcow2");
    let img = open(&p);
    let refs = img.external_refs();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].kind, vmsnap_core::RefKind::DataFile);
    assert!(img
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::DATA_FILE && f.severity == Severity::Unsafe));
    // Data lives in the data file: no 1:1 lower offsets into the qcow2 file.
    assert!(img
        .extents(0..img.len())
        .unwrap()
        .iter()
        .all(|e| e.lower_offset.is_none()));
    let denied = open_with(&p, ExternalPolicy::Deny);
    let mut b = [0u8; 16];
    let e = denied.read_at(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unavailable);
    assert!(e.to_string().contains("external data file"), "{e}");
    denied.read_at(16 << 10, &mut b).unwrap(); // a zero cluster still reads
    assert_eq!(b, [0u8; 16]);
    let raw = open(&corpus("qcow2/datafile-raw.qcow2"));
    assert_eq!(raw.describe()["data_file_raw"], true);
}

#[test]
fn plain_data_maps_one_to_one_onto_the_file() {
    let p = corpus("qcow2/v3.qcow2");
    let img = open(&p);
    let file = std::fs::read(&p).unwrap();
    let ext = img.extents(0..img.len()).unwrap();
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Zero));
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Unallocated));
    let mut n = 0;
    for e in ext.iter().filter(|e| e.kind == ExtentKind::Data) {
        let lo = e.lower_offset.unwrap() as usize;
        let mut buf = vec![0u8; e.len as usize];
        img.read_at(e.offset, &mut buf).unwrap();
        assert_eq!(&file[lo..lo + buf.len()], &buf[..]);
        n += 1;
    }
    assert!(n >= 2);
    // Compressed data has no 1:1 mapping.
    let z = open(&corpus("qcow2/zlib.qcow2"));
    let ext = z.extents(0..z.len()).unwrap();
    assert!(ext
        .iter()
        .any(|e| e.kind == ExtentKind::Data && e.lower_offset.is_none()));
}

#[test]
fn qcow_v1_is_not_qcow2_but_qcow() {
    let p = corpus("qcow2/qcow1.qcow");
    let l: Arc<dyn Layer> = Arc::new(FileLayer::open(&p).unwrap());
    let s = vmsnap_core::Sniff::read(l.as_ref()).unwrap();
    assert!(!(PLUGIN.probe)(&s.window(l.as_ref())).is_yes());
    assert!((vmsnap_qcow2::QCOW1_PLUGIN.probe)(&s.window(l.as_ref())).is_yes());
}

/// Opens `p` with the qcow plugin, resolving a backing file (any format) in its directory.
fn open_qcow1(p: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty()
        .with(&vmsnap_qcow2::QCOW1_PLUGIN)
        .unwrap()
        .with(&PLUGIN)
        .unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let l: Arc<dyn Layer> = Arc::new(FileLayer::open(p).unwrap());
    (vmsnap_qcow2::QCOW1_PLUGIN.open)(l, &ctx).unwrap()
}

#[test]
fn qcow_v1_plain_compressed_and_backed_match_qemu() {
    if !vmsnap_testkit::have_qemu_img() {
        return;
    }
    let dir = vmsnap_testkit::scratch_dir("qcow1");
    let img = |args: &[&str]| {
        vmsnap_testkit::run(Command::new("qemu-img").args(args).current_dir(&dir));
    };
    let io = |file: &str, cmd: &str| {
        vmsnap_testkit::run(
            Command::new("qemu-io")
                .args(["-f", "qcow", "-c", cmd, file])
                .current_dir(&dir),
        );
    };
    img(&["create", "-q", "-f", "qcow", "base.qcow", "8M"]);
    io("base.qcow", "write -P 0x11 0 1M");
    io("base.qcow", "write -P 0x22 3M 700k");
    io("base.qcow", "write -P 0x33 8188k 4k");
    // Compressed clusters (qemu's qcow driver compresses one whole cluster per write),
    // beside a plain one.
    img(&["create", "-q", "-f", "qcow", "packed.qcow", "8M"]);
    for (i, at) in ["0", "4k", "1M", "7M"].iter().enumerate() {
        io("packed.qcow", &format!("write -c -P {} {at} 4k", 0x60 + i));
    }
    io("packed.qcow", "write -P 0x12 5M 8k");
    // An overlay with partial-cluster writes over the base.
    img(&[
        "create",
        "-q",
        "-f",
        "qcow",
        "-b",
        "base.qcow",
        "-F",
        "qcow",
        "top.qcow",
    ]);
    io("top.qcow", "write -P 0x44 512k 1536");
    io("top.qcow", "write -P 0x55 6M 64k");
    for (name, extra) in [
        ("base.qcow", ""),
        ("packed.qcow", ""),
        ("top.qcow", "backed"),
    ] {
        let p = dir.join(name);
        let l = open_qcow1(&p);
        assert_eq!(l.len(), 8 << 20, "{name}");
        assert_eq!(l.describe()["format"], "qcow");
        assert_same_bytes(&read_all(l.as_ref()), &qemu_img_raw(&p, &[]), name);
        let info = qemu_img_info(&p);
        assert_eq!(info["format"], "qcow");
        assert_eq!(info["virtual-size"], l.len());
        if extra == "backed" {
            assert_eq!(l.describe()["backing_file"], "base.qcow");
            assert!(l
                .findings()
                .iter()
                .any(|f| f.rule == vmsnap_core::rule::BACKING_FILE));
        }
    }
    // Extents: the packed image's data is all compressed (no 1:1 offset), holes remain.
    let packed = open_qcow1(&dir.join("packed.qcow"));
    let ext = packed.extents(0..packed.len()).unwrap();
    assert!(ext
        .iter()
        .any(|e| e.kind == ExtentKind::Data && e.lower_offset.is_none()));
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Unallocated));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_mib_clusters_match_qemu() {
    if !vmsnap_testkit::have_qemu_img() {
        return;
    }
    let dir = vmsnap_testkit::scratch_dir("qcow2-2m");
    let p = dir.join("c2m.qcow2");
    vmsnap_testkit::run(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-o", "cluster_size=2M"])
            .arg(&p)
            .arg("8M"),
    );
    vmsnap_testkit::run(
        Command::new("qemu-io")
            .args([
                "-f",
                "qcow2",
                "-c",
                "write -P 0x5a 1M 3000",
                "-c",
                "write -z 4M 2M",
                "-c",
                "write -P 0x5b 7M 1M",
            ])
            .arg(&p),
    );
    let img = open(&p);
    assert_eq!(img.describe()["cluster_size"], 2 << 20);
    assert_same_bytes(&read_all(&img), &qemu_img_raw(&p, &[]), "2 MiB clusters");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn luks_encrypted_image_describes_but_refuses_data() {
    // qemu-img benchmarks PBKDF2 for seconds: make the image once, keep it under target/.
    let dir = vmsnap_testkit::workspace_root()
        .join("target")
        .join("qcow2-test-data");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("luks.qcow2");
    if !p.exists() {
        let tmp = dir.join(format!("luks-{}.tmp", std::process::id()));
        vmsnap_testkit::run(Command::new("qemu-img").args([
            "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pw",
            "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10,cluster_size=4k",
        ]).arg(&tmp).arg("1M"));
        vmsnap_testkit::run(
            Command::new("qemu-io")
                .args([
                    "--object",
                    "secret,id=s0,data=pw",
                    "--image-opts",
                    "-c",
                    "write -P 0x42 0 4k",
                ])
                .arg(format!(
                    "driver=qcow2,file.filename={},encrypt.key-secret=s0",
                    tmp.display()
                )),
        );
        std::fs::rename(&tmp, &p).unwrap();
    }
    let img = open(&p);
    let d = img.describe();
    assert_eq!(d["encryption"]["method"], "luks");
    assert_eq!(d["encryption"]["luks"]["cipher_name"], "aes");
    assert!(img
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_qcow2::rule::ENCRYPTION));
    let mut b = [0u8; 512];
    let e = img.read_at(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unsupported);
    img.read_at(512 << 10, &mut b).unwrap(); // unallocated still reads as zeros
}

#[test]
fn findings_per_sample() {
    let rules = |s: &str| -> Vec<(&'static str, Severity)> {
        let mut v: Vec<_> = open(&corpus(&format!("qcow2/{s}")))
            .findings()
            .iter()
            .map(|f| (f.rule, f.severity))
            .collect();
        v.sort();
        v
    };
    for s in [
        "v2.qcow2",
        "v3.qcow2",
        "c512.qcow2",
        "zlib.qcow2",
        "zstd.qcow2",
        "bitmaps.qcow2",
    ] {
        assert_eq!(rules(s), vec![], "{s}");
    }
    assert_eq!(
        rules("snapshots.qcow2"),
        vec![(vmsnap_qcow2::rule::SNAPSHOTS, Severity::Info)]
    );
    assert_eq!(
        rules("savevm.qcow2"),
        vec![(vmsnap_qcow2::rule::SNAPSHOTS, Severity::Info)]
    );
    assert_eq!(
        rules("extl2.qcow2"),
        vec![(vmsnap_qcow2::rule::UNKNOWN_FEATURES, Severity::Info)]
    );
    assert_eq!(
        rules("chain-mid.qcow2"),
        vec![("backing_file", Severity::Unsafe)]
    );
    assert_eq!(
        rules("datafile.qcow2"),
        vec![("data_file", Severity::Unsafe)]
    );
    assert_eq!(
        rules("datafile-raw.qcow2"),
        vec![("data_file", Severity::Unsafe)]
    );
}

/// `qemu-img map --output=json` of `p`: (start, length, present, zero, data) per entry.
fn qemu_map(p: &Path) -> Vec<(u64, u64, bool, bool, bool)> {
    let out = vmsnap_testkit::run(
        Command::new("qemu-img")
            .args(["map", "--output=json"])
            .arg(p),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_u64().unwrap(),
                e["length"].as_u64().unwrap(),
                e["present"].as_bool().unwrap(),
                e["zero"].as_bool().unwrap(),
                e["data"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A 1 MiB image of `format` in `dir` with 64 KiB of 0xab at 0 and `second` bytes of 0xcd
/// at 128 KiB (the last data written, at the end of the file), of which the last `cut`
/// bytes are cut off the file.
fn cut_image(dir: &Path, format: &str, second: &str, cut: u64) -> std::path::PathBuf {
    let p = dir.join(format!("cut.{format}"));
    vmsnap_testkit::run(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", format])
            .arg(&p)
            .arg("1M"),
    );
    let write = format!("write -P 0xcd 128k {second}");
    vmsnap_testkit::run(
        Command::new("qemu-io")
            .args(["-f", format, "-c", "write -P 0xab 0 64k", "-c", &write])
            .arg(&p),
    );
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - cut)
        .unwrap();
    p
}

#[test]
fn data_cut_off_by_the_end_of_the_file_reads_and_maps_as_qemu_says() {
    if !vmsnap_testkit::have_qemu_img() {
        return;
    }
    let dir = vmsnap_testkit::scratch_dir("qcow2-cut");
    // The last data cluster is the last cluster of the file: half of it is cut off.
    let p = cut_image(&dir, "qcow2", "64k", 32768);
    let img = open(&p);
    assert_same_bytes(&read_all(&img), &qemu_img_raw(&p, &[]), "cut.qcow2");
    let ext = img.extents(0..img.len()).unwrap();
    let map = qemu_map(&p);
    // QEMU says data up to the end of the file and zeros (still "data") after it.
    assert!(map.iter().any(|&(_, _, _, zero, data)| zero && data));
    for (start, len, present, zero, data) in map {
        let want = match (present, zero, data) {
            (false, _, _) => ExtentKind::Unallocated,
            (true, true, _) => ExtentKind::Zero,
            (true, false, _) => ExtentKind::Data,
        };
        for e in ext
            .iter()
            .filter(|e| e.offset < start + len && e.end() > start)
        {
            assert!(
                e.offset >= start && e.end() <= start + len,
                "{e:?} crosses {start}+{len}"
            );
            assert_eq!(e.kind, want, "{e:?} in qemu's {start}+{len}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn qcow_v1_data_cut_off_by_the_end_of_the_file_reads_as_zeros_like_qemu() {
    if !vmsnap_testkit::have_qemu_img() {
        return;
    }
    let dir = vmsnap_testkit::scratch_dir("qcow1-cut");
    // The last of the two 4 KiB clusters written last is cut off.
    let p = cut_image(&dir, "qcow", "8k", 4096);
    let l = open_qcow1(&p);
    let want = qemu_img_raw(&p, &[]);
    assert_eq!(want[(128 << 10) + 4095], 0xcd);
    assert_same_bytes(&read_all(l.as_ref()), &want, "cut.qcow");
    std::fs::remove_dir_all(&dir).ok();
}
