//! The `.vmx`/`.vmsd` dictionary dialect's constants and this crate's limits.
//!
//! The dialect is VMware's "dictionary" text format, as dissect.hypervisor's
//! `descriptor/vmx.py` (`_parse_dictionary`) reads it and VMware's configuration file
//! documentation describes it: one `key = "value"` per line, `#` comments, an optional
//! `.encoding = "UTF-8"` first line, keys compared without regard to case, and `|XX`
//! (two hex digits) standing for a byte inside a value (`|22` a quote, `|7C` a bar,
//! `|0A` a line feed).

/// Largest `.vmx` or `.vmsd` read (real ones are a few KiB; VMware's own limit on a
/// dictionary file is far below this).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Largest number of snapshots read from a `.vmsd` (VMware allows 496 per VM, the
/// `snapshotN` index is unbounded text).
pub const MAX_SNAPSHOTS: u64 = 1024;
/// Largest `snapshotN.diskM` index and number of devices read per bus node list (VMware's
/// largest bus, SATA, has 30 units on each of 4 controllers).
pub const MAX_DEVICES: u64 = 256;
/// Largest number of disks opened for one VM (current state and every snapshot together).
pub const MAX_OPENED_DISKS: u64 = 4096;
/// Longest snapshot display name used as a layer name (longer ones fall back to the uid).
pub const MAX_LAYER_NAME_CHARS: usize = 128;

/// The device buses whose `<bus><n>:<m>` devices can hold disks (dissect's `dev_classes`).
pub const BUSES: [&str; 4] = ["scsi", "sata", "ide", "nvme"];
/// The key that says where the suspended state is (`checkpoint.vmState`, a `.vmss`).
pub const KEY_VMSTATE: &str = "checkpoint.vmstate";
/// The key naming the snapshot database, when it is not `<vmx stem>.vmsd`.
pub const KEY_SNAPSHOT_FILE: &str = "snapshot.filename";
/// The key holding an encrypted VM's key safe (dissect's `VMX.encrypted`).
pub const KEY_KEYSAFE: &str = "encryption.keysafe";
/// The key holding an encrypted VM's encrypted dictionary.
pub const KEY_ENCRYPTED_DATA: &str = "encryption.data";
/// Set by vSphere on an encrypted VM.
pub const KEY_ENCRYPTED_VM: &str = "vmx.encryptedvm";
