//! The committed corpus samples: they are exactly what the builder writes (make.sh
//! regenerates them), they open through both plugins, the fuzz seeds decode to what they
//! were made from, and — in an ignored test that `cargo xtask dissect` runs with
//! dissect.hypervisor installed — every key dissect returns has the same value here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer};
use vmsnap_hyperv::pages::{decode_block, BLOCK};
use vmsnap_hyperv::{xpress, Container, HyperVContainer, Value, PLUGIN, RAM_PLUGIN};

fn corpus(name: &str) -> std::path::PathBuf {
    vmsnap_testkit::corpus(&format!("hyperv/{name}"))
}

#[test]
fn committed_samples_are_what_the_builder_writes() {
    for (name, make) in common::samples::all() {
        let want = make().bytes;
        let got = std::fs::read(corpus(name)).unwrap();
        vmsnap_testkit::assert_same_bytes(&got, &want, name);
    }
}

#[test]
fn committed_fuzz_seeds_are_what_the_encoder_writes() {
    let seeds = common::samples::fuzz_seeds();
    let dir = corpus("fuzz-seeds");
    let mut on_disk: Vec<String> = Vec::new();
    for t in std::fs::read_dir(&dir).unwrap() {
        let t = t.unwrap().path();
        for f in std::fs::read_dir(&t).unwrap() {
            let f = f.unwrap().path();
            // Seeds kept by `cargo xtask fuzz-grow` are fuzzer output, not the encoder's.
            if f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("grown-")
            {
                continue;
            }
            on_disk.push(f.strip_prefix(&dir).unwrap().display().to_string());
        }
    }
    on_disk.sort();
    let mut want: Vec<String> = seeds
        .iter()
        .map(|s| format!("{}/{}", s.target, s.name))
        .collect();
    want.sort();
    assert_eq!(on_disk, want, "make.sh writes exactly these seeds");
    for s in &seeds {
        let got = std::fs::read(dir.join(s.target).join(s.name)).unwrap();
        vmsnap_testkit::assert_same_bytes(&got, &s.bytes, s.name);
        assert!(s.bytes.len() <= 64 << 10, "{}: keep seeds small", s.name);
    }
}

#[test]
fn fuzz_seeds_decode_to_what_they_were_made_from() {
    let mut block = vec![0u8; BLOCK];
    let mut kinds = (0, 0);
    for s in common::samples::fuzz_seeds() {
        match s.target {
            // The selector byte, then a stream for both decoders.
            "xpress" => {
                let (sel, input) = s.bytes.split_first().unwrap();
                let want = &s.decoded[0];
                if want.len() == BLOCK {
                    // 12 pages and 6234 bytes of records, then the early end tag.
                    block.fill(0xEE);
                    assert_eq!(decode_block(input, &mut block, 0).unwrap(), 55_386);
                    assert!(block == *want, "{}", s.name);
                } else {
                    let mut out = vec![0u8; (usize::from(*sel) + 1) * 256];
                    let n = xpress::decompress(input, &mut out).unwrap();
                    assert_eq!(&out[..n], want.as_slice(), "{}", s.name);
                }
                kinds.0 += 1;
            }
            // 48 bytes of metadata, then the cut selector and both values, split as the
            // target splits them.
            "hyperv_ram" => {
                let (meta, rest) = s.bytes.split_at(48);
                assert_eq!(u32::from_le_bytes(meta[..4].try_into().unwrap()), 3);
                let cut = usize::from(rest[0]) * rest.len() / 256;
                let (b0, b1) = rest[1..].split_at(cut.min(rest.len() - 1));
                for (stream, want) in [b0, b1].into_iter().zip(&s.decoded) {
                    block.fill(0xEE);
                    decode_block(stream, &mut block, 0).unwrap();
                    assert!(block == *want, "{}", s.name);
                }
                if s.name == "partition-state" {
                    assert_eq!(
                        &b1[..24],
                        &common::encode::partition_state(&common::samples::vps())[..24]
                    );
                }
                kinds.1 += 1;
            }
            t => panic!("seed for unknown target {t}"),
        }
    }
    assert_eq!(kinds, (5, 3));
}

#[test]
fn samples_open() {
    let c =
        HyperVContainer::open(Arc::new(FileLayer::open(corpus("config.vmcx")).unwrap())).unwrap();
    assert_eq!(c.describe()["vm"]["name"], "corpus-vm");
    assert_eq!(c.describe()["vm"]["disks"].as_array().unwrap().len(), 2);
    assert_eq!(c.path(), Some(corpus("config.vmcx").as_path()));
    let d =
        HyperVContainer::open(Arc::new(FileLayer::open(corpus("dirty.vmcx")).unwrap())).unwrap();
    assert_eq!(d.describe()["replay_log"]["applied"], 1);
    // The dirty file's tree equals the clean one's (values and order).
    let strip = |c: &Container| -> Vec<(String, String)> {
        c.tree()
            .keys()
            .iter()
            .map(|k| (k.name.clone(), format!("{:?}", k.value)))
            .collect()
    };
    let mut a = strip(c.container());
    let mut b = strip(d.container());
    a.retain(|x| x.0 != "stale");
    a.sort();
    b.sort();
    assert_eq!(a, b);

    let layer = common::open_with(
        std::fs::read(corpus("savedstate.vmrs")).unwrap(),
        &[&PLUGIN, &RAM_PLUGIN],
    )
    .unwrap();
    let g = common::samples::guest_blocks();
    let mut want = vec![0u8; 4096 * (4096 + 128)];
    want[..1 << 20].copy_from_slice(&g[0]);
    want[16 << 20..(16 << 20) + (512 << 10)].copy_from_slice(&g[1][..512 << 10]);
    let got = vmsnap_testkit::read_all(layer.as_ref());
    vmsnap_testkit::assert_same_bytes(&got, &want, "savedstate guest memory");
    assert_eq!(layer.cpu_state()[0].cr3, 0x1a_b000);
}

/// The Python that has dissect.hypervisor: `$DISSECT_PYTHON` (`cargo xtask dissect` sets
/// it to the venv it makes under `target/`), else `python3`.
fn dissect_python() -> String {
    std::env::var("DISSECT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What `tests/scripts/dissect_dump.py` prints for `path`.
fn dissect_dump(path: &std::path::Path) -> serde_json::Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_dump.py");
    let python = dissect_python();
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "dissect failed ({python}; `cargo xtask dissect` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// dissect keeps the last of repeated names (in table, then physical order); find that one.
fn lookup<'a>(c: &'a Container, path: &[serde_json::Value]) -> Option<&'a vmsnap_hyperv::Key> {
    let mut cur = None;
    for part in path {
        let name = part.as_str()?;
        cur = c
            .tree()
            .children_of(cur)
            .iter()
            .copied()
            .filter(|&id| c.tree().key(id).is_some_and(|k| k.name == name))
            .max_by_key(|&id| c.tree().key(id).map(|k| (k.table, k.offset)));
        cur?;
    }
    cur.and_then(|id| c.tree().key(id))
}

/// How many keys under `parent` dissect's dictionaries keep: of repeated sibling names
/// the last (in table, then physical order), and that key's own subtree.
fn dissect_keeps(c: &Container, parent: Option<u32>) -> usize {
    let kids = c.tree().children_of(parent);
    let mut kept = 0;
    for &id in kids {
        let k = c.tree().key(id).unwrap();
        let last = kids
            .iter()
            .copied()
            .filter(|&o| c.tree().key(o).is_some_and(|o| o.name == k.name))
            .max_by_key(|&o| c.tree().key(o).map(|o| (o.table, o.offset)));
        if last == Some(id) {
            kept += 1 + dissect_keeps(c, Some(id));
        }
    }
    kept
}

/// Runs with `cargo xtask dissect` (CI does), which installs dissect.hypervisor in a venv.
#[test]
#[ignore = "needs dissect.hypervisor: `cargo xtask dissect` (or set DISSECT_PYTHON)"]
fn dissect_agrees_on_every_key_it_returns() {
    // Per sample: the values held in file objects, which dissect must read too (it skips
    // object-table entries whose flags byte is 0; the builder sets it as real files do).
    // And the values compared out of the keys vmsnap returns: the configuration's
    // repeated devicetype/metric siblings (14 keys) are what dissect's dictionary drops.
    let samples: [(&str, &[&str], usize, usize); 2] = [
        ("config.vmcx", &["notes"], 39, 53),
        ("savedstate.vmrs", &["RamBlock0", "RamBlock1"], 13, 13),
    ];
    for (name, in_files, want_compared, want_keys) in samples {
        let path = corpus(name);
        let dump = dissect_dump(&path);
        let c = Container::open(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
        // Nothing dissect returns may go unread.
        let unreadable = dump["unreadable"].as_array().unwrap();
        assert!(
            unreadable.is_empty(),
            "{name}: dissect could not read {unreadable:?}"
        );
        let objects = c.objects().iter().filter(|o| o.kind == 3).count();
        assert_eq!(
            dump["file_objects"].as_u64(),
            Some(objects as u64),
            "{name}: file objects"
        );
        let items = dump["values"].as_array().unwrap();
        assert!(!items.is_empty());
        let mut compared = 0;
        let mut file_values = Vec::new();
        let mut file_bytes = 0;
        for item in items {
            let (p, kind, v) = (
                item[0].as_array().unwrap(),
                item[1].as_str().unwrap(),
                &item[2],
            );
            let k = lookup(&c, p).unwrap_or_else(|| panic!("{name}: {p:?} missing"));
            match (kind, &k.value) {
                ("node", Value::Node { .. }) => {}
                ("int", Value::Int(x)) => assert_eq!(v.as_i64(), Some(*x), "{p:?}"),
                ("int", Value::UInt(x)) => assert_eq!(v.as_u64(), Some(*x), "{p:?}"),
                ("bool", Value::Bool(x)) => assert_eq!(v.as_bool(), Some(*x), "{p:?}"),
                ("double", Value::Double(x)) => assert_eq!(
                    v.as_str().unwrap().parse::<f64>().unwrap().to_bits(),
                    x.to_bits()
                ),
                ("string", Value::String { text, .. }) => {
                    assert_eq!(v.as_str(), Some(text.as_str()), "{p:?}")
                }
                ("array", Value::Array(a)) => {
                    let bytes = c.array_bytes(a, 1 << 24).unwrap();
                    assert_eq!(v.as_str().unwrap(), vmsnap_hyperv::hex(&bytes), "{p:?}");
                }
                (k2, v2) => panic!("{name}: {p:?}: dissect {k2}, vmsnap {v2:?}"),
            }
            if let Some(s) = k.stored {
                file_values.push(k.name.clone());
                file_bytes += s.size;
            }
            compared += 1;
        }
        eprintln!(
            "{name}: {compared} values compared with dissect, {} of them ({file_bytes} bytes) in file objects",
            file_values.len()
        );
        // Every value in a file object was compared.
        assert_eq!(file_values, in_files, "{name}: file-object values compared");
        let stored = c
            .tree()
            .keys()
            .iter()
            .filter(|k| k.stored.is_some())
            .count();
        assert_eq!(file_values.len(), stored, "{name}");
        // Every key dissect keeps was compared; vmsnap also keeps what it drops.
        assert_eq!(compared, dissect_keeps(&c, None), "{name}");
        assert_eq!(
            (compared, c.tree().keys().len()),
            (want_compared, want_keys),
            "{name}"
        );
    }
}
