//! vmsnap-core: the contracts every vmsnap format crate builds on.
//!
//! * [`Source`] — positional, thread-safe reads of bytes (a file with `pread`, bytes in
//!   memory).
//! * [`Layer`] — an address space with a size, built on lower layers: `read_at`,
//!   `extents`, `describe`, `findings`, named children (snapshots, RAM blocks).
//! * [`SegmentMap`] — guest ranges mapped onto a lower layer, for memory formats.
//! * [`RunMap`] — block-mapped disks as runs of stored, zero and unallocated bytes, read
//!   and listed in one place; [`SectorBitmap`] for blocks mapped sector by sector.
//! * [`Error`] — one error type with a stable [`ErrorKind`] and context.
//! * [`Resolver`] — the external-reference policy every backing file, extent, parent and
//!   companion file goes through; [`UnavailableLayer`] stands in for one that was not
//!   opened, so its bytes fail to read instead of reading as zeros; formats follow a
//!   reference with [`OpenCtx::follow_disk`] and [`OpenCtx::follow_file`].
//! * [`sink::Output`] — outputs that never overwrite an input and appear only when
//!   complete (atomic files, block devices with holes zeroed, streams).
//! * [`Plugin`] and [`Registry`] — how formats join, with [`register_plugin!`].
//!
//! ```
//! use std::sync::Arc;
//! use vmsnap_core::{FileLayer, Layer, MemSource};
//!
//! let layer = FileLayer::new(Arc::new(MemSource::new(vec![7u8; 4096])));
//! let mut buf = [0u8; 16];
//! layer.read_at(100, &mut buf).unwrap();
//! assert_eq!(buf, [7u8; 16]);
//! assert!(layer.read_at(4090, &mut buf).is_err()); // past the end is an error
//! ```

pub mod bitmap;
pub mod buffer;
pub mod bytes;
pub mod compose;
pub mod cpu;
pub mod error;
pub mod extent;
pub mod finding;
pub mod follow;
pub mod hex;
pub mod layer;
mod layer_macros;
pub mod limits;
pub mod option;
pub mod parallel;
pub mod plugin;
pub mod policy;
pub mod registry;
pub mod rule;
pub mod runs;
pub mod segment;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod sink;
pub mod source;
pub mod table;
pub mod time;
pub mod unavailable;
#[cfg(feature = "xml")]
pub mod xml;

pub use bitmap::{BitOrder, BitmapCache, SectorBitmap};
pub use buffer::IoBuffer;
pub use bytes::Bytes;
pub use cpu::CpuState;
pub use error::{Context, Error, ErrorKind, Result, ResultExt};
pub use extent::{present_ranges, push_coalesced, Extent, ExtentKind};
pub use finding::{Finding, Findings, Severity};
pub use follow::{DiskFormat, Followed, Link};
pub use layer::{
    check_read, AddressSpace, ChildRole, FileLayer, Layer, LayerExt, NamedLayer, SliceLayer,
};
pub use option::{check_options, OptionType, PluginOption};
pub use parallel::parallelism;
pub use plugin::{OpenCtx, OpenFn, Options, Plugin, PluginKind, Probe, SniffWindow};
pub use policy::{
    references_finding, ExternalPolicy, ExternalRef, MissingPolicy, RefDecision, RefKind, Resolver,
};
pub use registry::{Registry, Sniff};
pub use runs::{
    backing_extents, block_run, read_backing, DataExtents, EncodedRead, Run, RunKind, RunLayer,
    RunMap, RunSources,
};
pub use segment::{Decoder, Overlap, Segment, SegmentKind, SegmentMap, SegmentMapBuilder};
pub use source::{FileSource, InputKind, MemSource, MmapSource, Source};
pub use table::read_table;
pub use unavailable::{none_opened, UnavailableLayer, UnavailableRef};

#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "registry")]
    pub use ::inventory;
}
