//! The committed corpus samples: they are exactly what the builder writes (make.sh
//! regenerates them), they open through both plugins, and — in an ignored test that
//! needs `pip install dissect.hypervisor` — every key dissect returns has the same value
//! here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer};
use vmsnap_hyperv::{Container, HyperVContainer, Value, PLUGIN, RAM_PLUGIN};

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
        c.tree
            .keys
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

fn dissect_dump(path: &std::path::Path) -> Option<Vec<serde_json::Value>> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_dump.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "dissect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).ok()
}

/// dissect keeps the last of repeated names (in table, then physical order); find that one.
fn lookup<'a>(
    c: &'a Container,
    path: &[serde_json::Value],
) -> Option<&'a vmsnap_hyperv::keys::Key> {
    let mut cur = None;
    for part in path {
        let name = part.as_str()?;
        cur = c
            .tree
            .children_of(cur)
            .iter()
            .copied()
            .filter(|&id| c.tree.key(id).is_some_and(|k| k.name == name))
            .max_by_key(|&id| c.tree.key(id).map(|k| (k.table, k.offset)));
        cur?;
    }
    cur.and_then(|id| c.tree.key(id))
}

#[test]
#[ignore = "needs `pip install dissect.hypervisor`"]
fn dissect_agrees_on_every_key_it_returns() {
    for name in ["config.vmcx", "savedstate.vmrs"] {
        let path = corpus(name);
        let Some(items) = dissect_dump(&path) else {
            panic!("python3 not available")
        };
        let c = Container::open(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
        assert!(!items.is_empty());
        let mut compared = 0;
        for item in &items {
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
                    assert_eq!(
                        v.as_str().unwrap(),
                        vmsnap_hyperv::value::hex(&bytes),
                        "{p:?}"
                    );
                }
                (k2, v2) => panic!("{name}: {p:?}: dissect {k2}, vmsnap {v2:?}"),
            }
            compared += 1;
        }
        // vmsnap keeps what dissect's dictionary drops.
        assert!(
            c.tree.keys.len() > compared,
            "{name}: {} keys here, {compared} from dissect",
            c.tree.keys.len()
        );
    }
}
