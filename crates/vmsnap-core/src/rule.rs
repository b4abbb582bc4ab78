//! The rule ids of findings more than one crate reports (`check` lists findings by rule;
//! OpenStack's format inspector names several of them). A rule only one format reports is
//! a constant of that format's crate (its `rule` module).

/// The image names a backing file (qcow2, QED, qcow).
pub const BACKING_FILE: &str = "backing_file";
/// The image names an external data file (qcow2).
pub const DATA_FILE: &str = "data_file";
/// A VMDK descriptor, or a reference a descriptor makes (extent files).
pub const DESCRIPTOR: &str = "descriptor";
/// A differencing disk's parent (VMDK, VHD, VHDX, VDI).
pub const PARENT: &str = "parent";
/// A companion file (a `.vmem` beside a `.vmss`).
pub const COMPANION_FILE: &str = "companion_file";
/// A path named in a configuration, never opened (Hyper-V disks).
pub const CONFIGURED_PATH: &str = "configured_path";
/// A VM configuration or bundle references other files (disks, memory, parents): it is
/// never a self-contained image (`check` on `.vmx`, `.vbox`, `DiskDescriptor.xml`, `.vmcx`).
pub const REFERENCES: &str = "references";
/// More than one format recognises the input.
pub const MULTIPLE_FORMATS: &str = "multiple_formats";
/// The input is not the format it was expected to be.
pub const FORMAT_MISMATCH: &str = "format_mismatch";
/// An external reference the policy refused (`check`).
pub const EXTERNAL_REFERENCES: &str = "external_references";
/// Compressed data: a compressed wrapper (`check`), a compressed stream (libvirt save).
pub const COMPRESSED: &str = "compressed";
/// Findings past the kept limit were dropped; this one counts them (core).
pub const FINDINGS_TRUNCATED: &str = "findings_truncated";
