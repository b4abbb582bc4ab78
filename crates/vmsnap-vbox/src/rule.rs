//! The rule ids of the findings only VirtualBox settings files report (`check` lists
//! findings by rule). Rules more than one format reports are in [`vmsnap_core::rule`].

/// A setting that is missing or not what the schema allows; the item is skipped.
pub const SETTINGS: &str = "settings";
/// The media registry disagrees with itself or with an image (a UUID or parent UUID that
/// is not the registry's): that image is not read.
pub const REGISTRY: &str = "registry";
/// An encrypted medium (`CRYPT/KeyId` or `CRYPT/KeyStore`): recognised, not read.
pub const ENCRYPTED: &str = "encrypted";
/// An attached image the media registry does not list.
pub const MISSING_MEDIUM: &str = "missing_medium";
/// Two children would have had one name; the later one got a suffix.
pub const CHILD_NAME: &str = "child_name";
