//! vmsnap-inspect: is an uploaded image what it claims, how big is it, and can it make the
//! host open files it should not?
//!
//! [`inspect`] runs every plugin's probe (not only the first match) plus ISO9660, GPT and
//! MBR detection and the signatures of formats vmsnap does not read (LUKS, compressed
//! wrappers, tar, dmg, cloop, bochs), flags more than one format as `multiple_formats`, compares with the
//! declared format, then applies the matched format's safety rules; nothing outside the
//! image is opened and every external reference is a finding. [`Inspector`] does the same
//! on a stream fed in chunks, with bounded memory.

pub mod detect;
mod inspect;
pub mod luks;
pub mod names;
pub mod rule;
pub mod signature;
mod stream;

pub use inspect::{inspect, CheckOptions, Failure, Overall, Report, RuleResult, Verdict};
pub use stream::{
    InspectingWriter, Inspector, RegionHint, HEAD_BYTES, MAX_RETAINED, REGION_BYTES, TAIL_BYTES,
};
