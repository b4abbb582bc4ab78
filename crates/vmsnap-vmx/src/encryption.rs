//! Encrypted VMs: recognised by `encryption.keySafe` (dissect.hypervisor's
//! `VMX.encrypted`) or `vmx.encryptedVM`; the key safe is summarised, nothing is
//! decrypted, and no disk or memory file is read.

use serde_json::{json, Value};

use crate::dict::Dictionary;
use crate::raw::{KEY_ENCRYPTED_DATA, KEY_ENCRYPTED_VM, KEY_KEYSAFE};

/// What an encrypted VMX says about its encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// Whether `encryption.keySafe` is there.
    pub key_safe: bool,
    /// The key safe's identifier (`vmware:key`), when it has the `<id>/…` form.
    pub key_safe_kind: Option<String>,
    /// The kind of each key locator wrapped in a `pair/(…)` (`phrase`, `fqid`, `rawkey` …).
    pub locators: Vec<String>,
    /// Length of `encryption.data` (base64 text), when there.
    pub data_chars: Option<usize>,
    /// `vmx.encryptedVM`.
    pub encrypted_vm: Option<bool>,
}

impl Encryption {
    /// The encryption `d` declares, or `None` for a cleartext VMX.
    pub fn of(d: &Dictionary) -> Option<Encryption> {
        let safe = d.get(KEY_KEYSAFE);
        let vm = d.is_true(KEY_ENCRYPTED_VM);
        if safe.is_none() && vm != Some(true) {
            return None;
        }
        let locators = safe
            .map(|s| {
                s.split("pair/(")
                    .skip(1)
                    .filter_map(|p| p.split(['/', ',', ')']).next())
                    .map(str::to_string)
                    .take(64)
                    .collect()
            })
            .unwrap_or_default();
        Some(Encryption {
            key_safe: safe.is_some(),
            key_safe_kind: safe
                .and_then(|s| s.split_once('/'))
                .map(|(k, _)| k.to_string()),
            locators,
            data_chars: d.get(KEY_ENCRYPTED_DATA).map(|v| v.chars().count()),
            encrypted_vm: vm,
        })
    }

    /// For describe.
    pub fn to_json(&self) -> Value {
        json!({
            "key_safe": self.key_safe,
            "key_safe_kind": self.key_safe_kind,
            "key_locators": self.locators,
            "encrypted_data_chars": self.data_chars,
            "encrypted_vm": self.encrypted_vm,
            "read": "no: the configuration's devices are inside encryption.data and the disks are encrypted; nothing is decrypted",
        })
    }
}
