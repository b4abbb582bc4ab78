//! The rule ids of the findings only the format inspector report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// An MBR partition entry with a boot byte other than 0x00 or 0x80.
pub const MBR: &str = "mbr";
/// A LUKS version that is not supported.
pub const LUKS_VERSION: &str = "luks_version";
/// A LUKS image checked without a passphrase: the payload's format is not checked.
pub const LUKS_PASSPHRASE: &str = "luks_passphrase";
/// A LUKS header whose payload offset is past the end of the file.
pub const LUKS_HEADER: &str = "luks_header";
/// A tar archive (an OVA?), not a disk image.
pub const ARCHIVE: &str = "archive";
/// An image format vmsnap recognises but does not read, so its safety is not checked.
pub const UNSUPPORTED_FORMAT: &str = "unsupported_format";
