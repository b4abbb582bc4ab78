//! The stacker with every format linked: a savevm qcow2 becomes qcow2 → snapshot VM state
//! → QEMU stream → guest-physical memory by itself; memory samples get x86 layers only
//! when their vCPUs have paging on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap::core::{AddressSpace, ExternalPolicy, FileLayer, Layer, Options, Resolver};
use vmsnap::stack::{Stack, Stacker};
use vmsnap_testkit::corpus;

fn stack_of(rel: &str) -> Stack {
    let reg = vmsnap::registry().unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(corpus(rel)).unwrap());
    Stacker::new(&reg, &resolver, &options).stack(file)
}

fn names(s: &Stack) -> Vec<String> {
    s.entries.iter().map(|e| e.name.clone()).collect()
}

#[test]
fn savevm_qcow2_stacks_down_to_guest_memory() {
    let s = stack_of("qcow2/savevm.qcow2");
    assert!(s.error.is_none(), "{:?}", s.error);
    let n = names(&s);
    assert_eq!(&n[..2], ["file", "qcow2"]);
    let vmstate = n
        .iter()
        .position(|x| x.starts_with("qcow2/vmstate:"))
        .expect("a vmstate branch");
    let qemu = n
        .iter()
        .position(|x| x.ends_with("/qemu"))
        .expect("the QEMU stream stacked on it");
    assert_eq!(s.entries[qemu].parent, Some(vmstate));
    let mem = &s.entries[qemu].layer;
    assert_eq!(mem.space(), AddressSpace::GuestPhysical);
    // The main chain stays the disk: convert defaults to it.
    assert_eq!(s.default_selection().name, "qcow2");
    // The 64 MiB guest's RAM block, by name, and its reset-state CPU (paused with -S).
    let d = mem.describe();
    let blocks = d.to_string();
    assert!(blocks.contains("pc.ram"), "{blocks}");
    let ram = s.select(&format!("{}/ram:pc.ram", n[qemu])).unwrap();
    assert_eq!(ram.layer.len(), 64 << 20);
    let cpu = mem.cpu_state();
    assert_eq!(cpu.len(), 1);
    assert_eq!(
        cpu[0].cr0 & 0x8000_0001,
        0,
        "a paused -S guest has paging and protection off"
    );
    // No paging, so no x86 layer.
    assert!(!n.iter().any(|x| x.ends_with("x86")));
}

#[test]
fn memory_samples_stack_their_format_and_x86_only_with_paging() {
    for (rel, format) in [
        ("vmware/plain.vmss", "vmware"),
        ("hyperv/savedstate.vmrs", "hyperv-vmrs-ram"),
        ("qemu/pc-64m.qevm", "qemu"),
    ] {
        let s = stack_of(rel);
        assert!(s.error.is_none(), "{rel}: {:?}", s.error);
        let n = names(&s);
        assert!(n.iter().any(|x| x == format), "{rel}: {n:?}");
        let paged = s.entries.iter().any(|e| {
            e.layer
                .cpu_state()
                .iter()
                .any(|c| vmsnap::x86::Mode::of(c).is_some())
        });
        assert_eq!(n.iter().any(|x| x == "x86"), paged, "{rel}: {n:?}");
    }
}
