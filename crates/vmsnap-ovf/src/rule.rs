//! The rule ids of the findings only OVF and OVA packages report (`check` lists findings
//! by rule). Rules more than one format reports are in [`vmsnap_core::rule`].

/// The descriptor has something wrong that does not stop reading it (a drive naming no
/// disk, a capacity in unknown units, a repeated id).
pub const DESCRIPTOR: &str = "ovf_descriptor";
/// A disk's virtual size is not the capacity the descriptor gives it.
pub const CAPACITY: &str = "capacity";
/// A file is compressed (`ovf:compression`) or chunked (`ovf:chunkSize`): not read.
pub const UNSUPPORTED_FILE: &str = "unsupported_file";
/// An OVA member that cannot be a file of the package (not a regular file, a path), or
/// the descriptor not first.
pub const MEMBER: &str = "ova_member";
/// The manifest: a digest that does not match (unsafe), no manifest, a digest not
/// verified.
pub const MANIFEST: &str = "manifest";
