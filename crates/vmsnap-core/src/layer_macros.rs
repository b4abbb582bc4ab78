//! The [`Layer`](crate::Layer) methods whole families of formats share, one definition
//! instead of a copy per format: memory dumps that are a [`SegmentMap`] over their file
//! (ELF cores, LiME, AVML, Xen dump-cores), and VM configurations and archives whose layer
//! is their file's own bytes (`.vmx`, `.vbox`, `config.pvs`, OVF/OVA, VMA).
//!
//! [`SegmentMap`]: crate::SegmentMap

/// Expands, inside `impl Layer for T`, to the methods of a guest-physical layer named
/// `$name` that reads through a [`SegmentMap`](crate::SegmentMap) in the field `map` over
/// the one layer in the field `lower` (`Arc<dyn Layer>`): `name`, `space`, `len`,
/// `read_at` (errors name the layer), `extents`, `lower` and `path` (the lower layer's).
/// The format writes `describe`, `findings` and what else it has itself.
///
/// ```
/// use std::sync::Arc;
/// use vmsnap_core::{Layer, SegmentMap};
///
/// #[derive(Debug)]
/// struct Dump {
///     map: SegmentMap,
///     lower: Arc<dyn Layer>,
/// }
///
/// impl Layer for Dump {
///     vmsnap_core::segment_map_layer!("dump");
///     fn describe(&self) -> serde_json::Value {
///         serde_json::json!({ "format": "dump", "gap_bytes": self.map.unmapped_bytes() })
///     }
/// }
/// ```
#[macro_export]
macro_rules! segment_map_layer {
    ($name:expr) => {
        fn name(&self) -> &str {
            $name
        }
        fn space(&self) -> $crate::AddressSpace {
            $crate::AddressSpace::GuestPhysical
        }
        fn len(&self) -> u64 {
            self.map.size()
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> $crate::Result<()> {
            self.map
                .read(self.lower.as_ref(), offset, buf)
                .map_err(|e| e.in_layer($name))
        }
        fn extents(
            &self,
            range: ::std::ops::Range<u64>,
        ) -> $crate::Result<::std::vec::Vec<$crate::Extent>> {
            Ok(self.map.extents(range))
        }
        fn lower(&self) -> ::std::vec::Vec<::std::sync::Arc<dyn $crate::Layer>> {
            vec![self.lower.clone()]
        }
        fn path(&self) -> ::std::option::Option<&::std::path::Path> {
            self.lower.path()
        }
    };
}

/// Expands, inside `impl Layer for T`, to the methods of a layer named `$name` that reads as
/// its file's own bytes, in the metadata space — a VM configuration or an archive, whose
/// disks and memory are its children: `name`, `space`, `len`, `read_at` (errors name the
/// layer), `extents` and `lower`, over the one layer in the field `lower`
/// (`Arc<dyn Layer>`). A name the layer holds is written `metadata_layer!(self => self.name)`.
///
/// ```
/// use std::sync::Arc;
/// use vmsnap_core::Layer;
///
/// #[derive(Debug)]
/// struct Config {
///     lower: Arc<dyn Layer>,
/// }
///
/// impl Layer for Config {
///     vmsnap_core::metadata_layer!("config");
///     fn describe(&self) -> serde_json::Value {
///         serde_json::json!({ "format": "config" })
///     }
/// }
/// ```
#[macro_export]
macro_rules! metadata_layer {
    // A name read from the layer itself: `metadata_layer!(self => self.name)`, the `self`
    // written by the caller so the methods' receiver is the one the name expression sees.
    ($s:ident => $name:expr) => {
        fn name(&$s) -> &str {
            $name
        }
        fn space(&$s) -> $crate::AddressSpace {
            $crate::AddressSpace::Metadata
        }
        fn len(&$s) -> u64 {
            $s.lower.len()
        }
        fn read_at(&$s, offset: u64, buf: &mut [u8]) -> $crate::Result<()> {
            $crate::ResultExt::in_layer($s.lower.read_at(offset, buf), $name)
        }
        fn extents(
            &$s,
            range: ::std::ops::Range<u64>,
        ) -> $crate::Result<::std::vec::Vec<$crate::Extent>> {
            $s.lower.extents(range)
        }
        fn lower(&$s) -> ::std::vec::Vec<::std::sync::Arc<dyn $crate::Layer>> {
            vec![$s.lower.clone()]
        }
    };
    ($name:expr) => {
        $crate::metadata_layer!(self => $name);
    };
}
