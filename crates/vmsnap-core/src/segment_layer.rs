//! The [`Layer`](crate::Layer) methods every memory dump that is a [`SegmentMap`] over its
//! file shares (ELF cores, LiME, AVML, Xen dump-cores): one definition instead of a copy
//! per format.
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
