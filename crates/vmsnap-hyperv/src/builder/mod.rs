//! A writer of Hyper-V storage files (`.vmcx`, `.vmrs`) from the documented format
//! (reference §2 and §6), for tests, benches, fuzzing and the corpus; behind the
//! `builder` feature (off by default). It shares no code with the reader: every layout
//! rule, checksum and encoder is restated here, so a misreading in the reader is not
//! mirrored.
//!
//! * [`build`] lays out any key tree ([`K`], [`V`]) as a storage file, with options
//!   ([`Opts`], [`LogOpts`]) for replay logs, stale tables, chained object tables and
//!   damaged checksums.
//! * [`encode`] holds the value encoders: XPRESS, the RAM page-record stream,
//!   `MemoryBlockSaveStruct` and `partition_state`.
//! * [`saved_state`] / [`saved_state_from`] write a `.vmrs` holding given guest-physical
//!   memory and VP registers; [`sparse_saved_state`] one declaring much memory with a
//!   few pieces present.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod container;
pub mod encode;
mod guest;

pub use container::{build, crc32, Built, LogOpts, Opts, Placed, FILE_SIG, K, LOG_SIG, OT_SIG, V};
pub use guest::{saved_state, saved_state_from, sparse_saved_state, GuestOpts, DATA_BLOCK, PAGE};
