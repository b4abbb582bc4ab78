//! The rule ids of the findings only VMware configurations report (`check` lists findings
//! by rule). Rules more than one format reports are in [`vmsnap_core::rule`].

/// The VM is encrypted (`encryption.keySafe`): its disks and memory are not read.
pub const ENCRYPTED: &str = "encrypted";
/// A line of the dictionary that is not `key = "value"`, a repeated key, a bad `|XX`.
pub const DICTIONARY: &str = "dictionary";
/// The snapshot database is inconsistent (a parent or current uid that names no snapshot,
/// a snapshot without uid).
pub const SNAPSHOTS: &str = "snapshots";
