//! The rule ids of the findings only Parallels VM configurations report (`check` lists
//! findings by rule). Rules more than one format reports are in [`vmsnap_core::rule`].

/// The VM or one of its disks is encrypted: those disks are not read.
pub const ENCRYPTED: &str = "encrypted";
/// Something in `config.pvs` is odd: a number that is not one, two disks on one node.
pub const CONFIG: &str = "config";
/// `Snapshots.xml` is unreadable or inconsistent.
pub const SNAPSHOTS: &str = "snapshots";
