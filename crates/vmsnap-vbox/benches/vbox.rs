//! vbox: open a VM whose settings attach the 256 MiB realistic image as a VDI (the open
//! parses the settings and opens the disk through the resolver), sequential 1 MiB and
//! random 4 KiB reads of that disk as the `disk:sata0:0` child, and the probe.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, realistic_as,
};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn open(settings: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty().with(&vmsnap_vdi::PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::Any);
    let o = Options::new();
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(settings).unwrap());
    (vmsnap_vbox::PLUGIN.open)(lower, &OpenCtx::new(&r, &reg, &o)).unwrap()
}

fn vbox(c: &mut Criterion) {
    let vdi = realistic_as(256, "vdi", &[]);
    let mut head = [0u8; 512];
    std::io::Read::read_exact(&mut std::fs::File::open(&vdi).unwrap(), &mut head).unwrap();
    let uuid = vmsnap_vdi::Header::parse(&head).unwrap().uuid_image;
    let settings = cached_image("realistic-256m.vbox", |p| {
        let xml = format!(
            r#"<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{{00000000-0000-4000-8000-000000000001}}" name="bench" OSType="Linux_64">
    <MediaRegistry><HardDisks>
      <HardDisk uuid="{{{uuid}}}" location="{}" format="VDI" type="Normal"/>
    </HardDisks></MediaRegistry>
    <Hardware><StorageControllers>
      <StorageController name="SATA" type="AHCI">
        <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{{{uuid}}}"/></AttachedDevice>
      </StorageController>
    </StorageControllers></Hardware>
  </Machine>
</VirtualBox>
"#,
            vdi.display()
        );
        std::fs::write(p, xml).unwrap();
    });
    bench_open(c, "vbox", || open(&settings));
    let vm = open(&settings);
    let disk = vm
        .children()
        .into_iter()
        .find(|k| k.name == "disk:sata0:0")
        .unwrap()
        .layer;
    assert_eq!(disk.len(), 256 << 20);
    bench_sequential(c, "vbox", &disk, 256 << 20);
    bench_random_4k(c, "vbox", &disk);
    bench_probe(c, "vbox", &vmsnap_vbox::PLUGIN, &vm);
}

criterion_group!(benches, vbox);
criterion_main!(benches);
