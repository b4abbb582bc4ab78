//! ova: open (tar headers, descriptor, the VMDK member opened in place), sequential 1 MiB
//! reads and 20k random 4 KiB reads of `disk:scsi0:0`, the manifest's SHA-256
//! verification, and both probes, on the 256 MiB realistic image converted by qemu-img
//! to a streamOptimized VMDK and packed by GNU tar with a descriptor and a manifest.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, realistic_raw,
};
use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

/// Packs the realistic raw image as `out`: one SCSI disk, SHA256 manifest, ovf first.
const PACK: &str = r#"set -euo pipefail
raw=$1 out=$2 t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$raw" "$t/disk1.vmdk"
cat > "$t/bench.ovf" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:href="disk1.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>Disks</Info>
    <Disk ovf:capacity="$(stat -c %s "$raw")" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="bench"><Info>VM</Info><VirtualHardwareSection><Info>HW</Info>
    <Item><rasd:Address>0</rasd:Address><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>6</rasd:ResourceType></Item>
    <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
  </VirtualHardwareSection></VirtualSystem>
</Envelope>
XML
(cd "$t" && sha256sum bench.ovf disk1.vmdk | awk '{print "SHA256(" $2 ")= " $1}' > bench.mf)
tar --format=ustar -C "$t" -cf "$out" bench.ovf bench.mf disk1.vmdk
"#;

fn open(path: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty()
        .with(&vmsnap_vmdk::PLUGIN)
        .unwrap()
        .with(&vmsnap_ovf::OVA_PLUGIN)
        .unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(path).unwrap());
    (vmsnap_ovf::OVA_PLUGIN.open)(lower, &ctx).unwrap()
}

fn ova(c: &mut Criterion) {
    let raw = realistic_raw(256);
    let path = cached_image("realistic-256m.ova", |p| {
        vmsnap_testkit::run(
            Command::new("bash")
                .arg("-c")
                .arg(PACK)
                .arg("pack")
                .arg(&raw)
                .arg(p),
        );
    });
    bench_open(c, "ova", || open(&path));
    let package = open(&path);
    let disk = vmsnap_testkit::child(&*package, "disk:scsi0:0");
    bench_sequential(c, "ova", &disk, 256 << 20);
    bench_random_4k(c, "ova", &disk);
    let mut g = c.benchmark_group("ova/manifest");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("sha256", |b| {
        b.iter(|| {
            let p = open(&path);
            assert!(p.findings().iter().all(|f| f.rule != "manifest"));
        })
    });
    g.finish();
    bench_probe(c, "ova", &vmsnap_ovf::OVA_PLUGIN, &package);
    bench_probe(c, "ovf", &vmsnap_ovf::PLUGIN, &package);
}

criterion_group!(benches, ova);
criterion_main!(benches);
