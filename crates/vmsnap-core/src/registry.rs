//! The plugin registry: an explicit list (`Registry::with`) or, behind the `registry`
//! feature, every plugin linked into the program (`Registry::from_inventory`). Always
//! sorted by (priority, name), never by link order; duplicate names are rejected.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::limits::{PROBE_HEAD, PROBE_TAIL};
use crate::plugin::{OpenCtx, Plugin, PluginKind, SniffWindow};

#[cfg(feature = "registry")]
inventory::collect!(&'static Plugin);

/// Registers a format crate's `PLUGIN` in the global registry when core's `registry`
/// feature is on; expands to nothing otherwise, so an embedder of one format crate gets no
/// `inventory` in its dependency tree.
#[cfg(feature = "registry")]
#[macro_export]
macro_rules! register_plugin {
    ($plugin:path) => {
        $crate::__private::inventory::submit! { &$plugin as &'static $crate::Plugin }
    };
}

/// Registers a format crate's `PLUGIN` in the global registry when core's `registry`
/// feature is on; expands to nothing otherwise.
#[cfg(not(feature = "registry"))]
#[macro_export]
macro_rules! register_plugin {
    ($plugin:path) => {};
}

/// A sorted set of plugins with unique names.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    plugins: Vec<&'static Plugin>,
}

impl Registry {
    /// No plugins.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// Adds `plugin`; a different plugin with the same name is an error, the same one
    /// twice is kept once.
    pub fn with(mut self, plugin: &'static Plugin) -> Result<Self> {
        self.add(plugin)?;
        Ok(self)
    }

    fn add(&mut self, plugin: &'static Plugin) -> Result<()> {
        if let Some(existing) = self.plugins.iter().find(|p| p.name == plugin.name) {
            if std::ptr::eq(*existing, plugin) {
                return Ok(());
            }
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("two plugins are named {:?}", plugin.name),
            ));
        }
        let at = self
            .plugins
            .partition_point(|p| (p.priority, p.name) < (plugin.priority, plugin.name));
        self.plugins.insert(at, plugin);
        Ok(())
    }

    /// Every plugin linked into this program.
    #[cfg(feature = "registry")]
    pub fn from_inventory() -> Result<Self> {
        let mut r = Registry::empty();
        for p in inventory::iter::<&'static Plugin> {
            r.add(p)?;
        }
        Ok(r)
    }

    /// The plugins in probe order.
    pub fn plugins(&self) -> &[&'static Plugin] {
        &self.plugins
    }

    /// The plugin named `name`.
    pub fn get(&self, name: &str) -> Option<&'static Plugin> {
        self.plugins.iter().copied().find(|p| p.name == name)
    }

    /// Opens `lower` as a disk for a backing or parent chain: with the plugin named
    /// `format` when given, otherwise with the first disk plugin whose probe accepts; a
    /// layer no disk plugin accepts is used raw. Fails past [`crate::limits::MAX_CHAIN_DEPTH`].
    pub fn open_chained(
        &self,
        lower: Arc<dyn Layer>,
        format: Option<&str>,
        ctx: &OpenCtx<'_>,
    ) -> Result<Arc<dyn Layer>> {
        let ctx = ctx.next_link()?;
        if let Some(name) = format {
            if name == "raw" || name == "file" {
                return Ok(lower);
            }
            let plugin = self.get(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("no plugin for format {name:?}"),
                )
            })?;
            return (plugin.open)(lower, &ctx);
        }
        let sniff = Sniff::read(lower.as_ref())?;
        match self.disk_for(&sniff.window(lower.as_ref())) {
            Some(p) => (p.open)(lower, &ctx),
            None => Ok(lower),
        }
    }

    /// The first disk plugin (in probe order) that stacks on `window`'s space and whose
    /// probe accepts it: the format a backing file or a chain member is read as.
    pub fn disk_for(&self, window: &SniffWindow<'_>) -> Option<&'static Plugin> {
        self.plugins
            .iter()
            .copied()
            .filter(|p| p.kind == PluginKind::Disk)
            .find(|p| p.recognises(window).is_yes())
    }
}

/// The bytes a probe sees of a layer, read once.
#[derive(Debug, Clone)]
pub struct Sniff {
    /// Head bytes.
    pub head: Vec<u8>,
    /// Tail bytes.
    pub tail: Vec<u8>,
    /// Size of the layer.
    pub size: u64,
}

impl Sniff {
    /// Reads the head and tail of `layer`.
    pub fn read(layer: &dyn Layer) -> Result<Self> {
        let size = layer.len();
        let head_len = size.min(PROBE_HEAD as u64) as usize;
        let tail_len = size.min(PROBE_TAIL as u64) as usize;
        let mut head = vec![0u8; head_len];
        layer.read_at(0, &mut head)?;
        let mut tail = vec![0u8; tail_len];
        layer.read_at(size - tail_len as u64, &mut tail)?;
        Ok(Sniff { head, tail, size })
    }

    /// The window over these bytes, with the layer's facts.
    pub fn window<'a>(&'a self, layer: &'a dyn Layer) -> SniffWindow<'a> {
        SniffWindow {
            head: &self.head,
            tail: &self.tail,
            size: self.size,
            space: layer.space(),
            layer: layer.name(),
            path: layer.path(),
            cpu: &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{AddressSpace, FileLayer};
    use crate::limits::MAX_CHAIN_DEPTH;
    use crate::plugin::Probe;

    fn yes(_: &SniffWindow<'_>) -> Probe {
        Probe::Yes
    }
    fn open_same(l: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
        Ok(l)
    }
    static A: Plugin = Plugin {
        name: "a",
        kind: PluginKind::Disk,
        priority: 20,
        stacks_on: &[AddressSpace::File],
        summary: "",
        options: &[],
        probe: yes,
        open: open_same,
    };
    static B: Plugin = Plugin {
        name: "b",
        kind: PluginKind::Disk,
        priority: 10,
        stacks_on: &[AddressSpace::File],
        summary: "",
        options: &[],
        probe: yes,
        open: open_same,
    };
    static C: Plugin = Plugin {
        name: "c",
        kind: PluginKind::Memory,
        priority: 10,
        stacks_on: &[AddressSpace::File],
        summary: "",
        options: &[],
        probe: yes,
        open: open_same,
    };
    static A2: Plugin = Plugin {
        name: "a",
        kind: PluginKind::Memory,
        priority: 1,
        stacks_on: &[AddressSpace::File],
        summary: "",
        options: &[],
        probe: yes,
        open: open_same,
    };

    #[test]
    fn sorted_by_priority_then_name_whatever_the_insertion_order() {
        let r1 = Registry::empty()
            .with(&A)
            .unwrap()
            .with(&C)
            .unwrap()
            .with(&B)
            .unwrap();
        let r2 = Registry::empty()
            .with(&C)
            .unwrap()
            .with(&B)
            .unwrap()
            .with(&A)
            .unwrap();
        let n1: Vec<_> = r1.plugins().iter().map(|p| p.name).collect();
        let n2: Vec<_> = r2.plugins().iter().map(|p| p.name).collect();
        assert_eq!(n1, ["b", "c", "a"]);
        assert_eq!(n1, n2);
        assert_eq!(r1.get("c").map(|p| p.priority), Some(10));
        assert!(r1.get("zz").is_none());
    }

    #[test]
    fn duplicate_names_are_rejected_but_the_same_plugin_twice_is_fine() {
        let r = Registry::empty().with(&A).unwrap();
        assert_eq!(
            r.clone().with(&A2).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(r.with(&A).unwrap().plugins().len(), 1);
    }

    static PHYS: Plugin = Plugin {
        name: "phys",
        stacks_on: &[AddressSpace::GuestPhysical],
        ..B
    };

    #[test]
    fn a_disk_is_looked_for_only_among_plugins_that_stack_on_the_space() {
        let reg = Registry::empty().with(&PHYS).unwrap();
        let w = SniffWindow::of_bytes(b"x", b"x", 1);
        assert_eq!(PHYS.recognises(&w), Probe::No("not a space it stacks on"));
        assert!(reg.disk_for(&w).is_none());
        let reg = reg.with(&A).unwrap();
        assert_eq!(reg.disk_for(&w).map(|p| p.name), Some("a"));
        let w = SniffWindow {
            space: AddressSpace::GuestPhysical,
            ..w
        };
        assert_eq!(reg.disk_for(&w).map(|p| p.name), Some("phys"));
        assert_eq!(PHYS.stacks_on_names(), "guest_physical");
    }

    #[test]
    fn chained_open_stops_at_the_depth_cap() {
        let reg = Registry::empty().with(&B).unwrap();
        let resolver = crate::policy::Resolver::default();
        let options = crate::plugin::Options::new();
        let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(
            crate::source::MemSource::new(vec![0u8; 10]),
        )));
        let mut ctx = OpenCtx::new(&resolver, &reg, &options);
        ctx.depth = MAX_CHAIN_DEPTH - 1;
        assert!(reg.open_chained(lower.clone(), None, &ctx).is_ok());
        ctx.depth = MAX_CHAIN_DEPTH;
        let e = reg.open_chained(lower.clone(), None, &ctx).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        ctx.depth = 0;
        assert_eq!(
            reg.open_chained(lower, Some("nope"), &ctx)
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }
}
