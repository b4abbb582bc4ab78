//! MD5 (RFC 1321, the RustCrypto crate), for the checksums of VMA headers and extent headers.

use ::md5::Digest;

/// The MD5 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 16] {
    ::md5::Md5::digest(data).into()
}

/// The MD5 of `data` with the 16 bytes at `field` taken as zeros (how VMA stores a
/// checksum inside the bytes it covers), and whether it equals the stored one.
pub fn verify(data: &[u8], field: usize) -> bool {
    let Some(stored) = data.get(field..field + 16) else {
        return false;
    };
    let mut copy = data.to_vec();
    if let Some(f) = copy.get_mut(field..field + 16) {
        f.fill(0);
    }
    digest(&copy) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The test suite of RFC 1321, appendix A.5.
    #[test]
    fn rfc_1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(digest(input.as_bytes())), want, "{input:?}");
        }
    }

    #[test]
    fn verify_zeroes_the_field() {
        let mut data = vec![7u8; 100];
        data[10..26].fill(0);
        let d = digest(&data);
        data[10..26].copy_from_slice(&d);
        assert!(verify(&data, 10));
        data[50] ^= 1;
        assert!(!verify(&data, 10));
        assert!(!verify(&data, 95));
    }
}
