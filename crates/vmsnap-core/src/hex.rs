//! The one JSON form of addresses, registers, flags and hashes: `"0x…"` strings, because
//! JSON numbers lose 64-bit values above 2^53 in jq and JavaScript (see `docs/json.md`).

use serde::Serializer;

/// `0x1ab000`.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// For `#[serde(serialize_with = "vmsnap_core::hex::serialize")]` on a `u64` field.
pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(*v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_has_the_prefix_and_no_padding() {
        assert_eq!(super::hex(0), "0x0");
        assert_eq!(super::hex(u64::MAX), "0xffffffffffffffff");
    }
}
