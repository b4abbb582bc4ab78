//! The Xen plugin wins over the generic ELF reader whichever is probed first: it has the
//! lower priority, and the ELF reader declines Xen dumps, so no ambiguity finding fires
//! even when a Xen plugin ranks after it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use vmsnap_core::{ExternalPolicy, Options, Plugin, Registry, Resolver};
use vmsnap_stack::Stacker;

/// The Xen plugin ranked after the ELF reader (and named to sort after it too).
static XEN_LAST: Plugin = Plugin {
    name: "zz-xen",
    priority: 31,
    ..vmsnap_xen::PLUGIN
};

#[test]
fn xen_dumps_stack_as_xen_in_both_orders() {
    for xen in [&vmsnap_xen::PLUGIN, &XEN_LAST] {
        let reg = Registry::empty()
            .with(xen)
            .unwrap()
            .with(&vmsnap_elf::PLUGIN)
            .unwrap();
        let first = reg.plugins()[0].name;
        for &(sample, ..) in common::SAMPLES {
            let resolver = Resolver::new(ExternalPolicy::SameDir);
            let options = Options::new();
            let s =
                Stacker::new(&reg, &resolver, &options).stack(common::file(common::bytes(sample)));
            assert!(s.error.is_none(), "{sample}: {:?}", s.error);
            let names: Vec<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(
                names,
                ["file", xen.name],
                "{sample} with {first} probed first"
            );
            assert!(s.findings.is_empty(), "{sample}: {:?}", s.findings);
        }
    }
    // Plain ELF cores stay the ELF reader's.
    let reg = Registry::empty()
        .with(&vmsnap_xen::PLUGIN)
        .unwrap()
        .with(&vmsnap_elf::PLUGIN)
        .unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let s = Stacker::new(&reg, &resolver, &options)
        .stack(common::file(common::bytes("elf/core.elf.gz")));
    assert_eq!(s.entries[1].name, "elf-core");
}
