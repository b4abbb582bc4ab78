//! Targets for formats whose fuzz input is the file itself, found by plugin name in the
//! facade's registry: `cargo xtask new-format NAME` registers a format's target as one
//! [`crate::TARGETS`] entry, `run: |data| registered::run("NAME", data)`, with no
//! dependency or body to add to this crate.

use std::sync::OnceLock;

use vmsnap_core::Registry;

/// Probes `data` with the registered plugin called `plugin`, opens it (external files
/// denied) and reads, maps and describes the whole layer.
pub fn run(plugin: &str, data: &[u8]) {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| vmsnap::registry().expect("the plugins register"));
    let p = registry
        .get(plugin)
        .unwrap_or_else(|| panic!("no plugin called {plugin} is registered"));
    crate::open_and_exercise(p, data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_the_plugin_found_by_name() {
        let sample = std::fs::read(vmsnap_testkit::corpus("lime/small.lime")).unwrap();
        super::run("lime", &sample);
        super::run("lime", &sample[..100]);
    }

    #[test]
    #[should_panic(expected = "no plugin called no-such-format is registered")]
    fn an_unknown_name_is_a_harness_bug() {
        super::run("no-such-format", b"");
    }
}
