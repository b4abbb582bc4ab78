//! Rule ids of the findings only this crate reports.

/// `Disk_size` disagrees with the storages' end.
pub const DISK_SIZE: &str = "hdd_disk_size";
/// An image file's virtual size is not its storage's size.
pub const IMAGE_SIZE: &str = "hdd_image_size";
/// An image type other than `Plain` or `Compressed`: not read.
pub const IMAGE_TYPE: &str = "hdd_image_type";
/// The disk is encrypted (`Encryption/Engine` names an engine): its data is not read.
pub const ENCRYPTED: &str = "hdd_encrypted";
