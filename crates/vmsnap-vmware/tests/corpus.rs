//! The committed corpus samples (made by `corpus/vmware/make.sh`) read back as the
//! builder's known guest memory, CPU state and metadata, from every file of each sample.

mod common;

use common::open_path;
use vmsnap_core::ExternalPolicy;
use vmsnap_testkit::{assert_same_bytes, corpus, read_all};
use vmsnap_vmware::builder::*;

#[test]
fn corpus_samples_match_the_builder() {
    for s in samples() {
        let want = expected_guest(&s.regions, CORPUS_SEED);
        for (name, image) in &s.files {
            let path = corpus(&format!("vmware/{name}"));
            let on_disk = std::fs::read(&path).unwrap();
            assert_same_bytes(
                &on_disk,
                &image.to_vec(),
                &format!("{name} is what make.sh writes"),
            );
            let l = open_path(&path, ExternalPolicy::SameDir).unwrap();
            assert_same_bytes(&read_all(l.as_ref()), &want, name);
            let cpus = l.cpu_state();
            assert_eq!(cpus.len(), s.cpus.0 as usize, "{name}");
            assert_eq!(cpus[0].cr3, cr3_of(0), "{name}");
            let d = l.describe();
            assert_eq!(d["config"]["displayName"], "vmsnap test VM", "{name}");
            assert_eq!(d["screenshot"]["bytes"], TINY_PNG.len(), "{name}");
            let l = vmsnap_vmware::Vmware::open(
                std::sync::Arc::new(vmsnap_core::FileLayer::open(&path).unwrap()),
                &vmsnap_core::OpenCtx::new(
                    &vmsnap_core::Resolver::new(ExternalPolicy::SameDir),
                    &vmsnap_core::Registry::empty(),
                    &vmsnap_core::Options::new(),
                ),
            )
            .unwrap();
            assert_eq!(
                l.extract_tag("imageData", 1 << 20).unwrap(),
                TINY_PNG,
                "{name}"
            );
            assert!(l.config_text().unwrap().contains("guestOS = \"ubuntu-64\""));
        }
    }
}
