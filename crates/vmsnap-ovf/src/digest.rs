//! SHA-1 and SHA-256 (FIPS 180-4), streaming: the digests an OVF manifest records, computed
//! by the RustCrypto crates. Checked against coreutils' `sha1sum`/`sha256sum` in
//! `tests/oracle.rs`.

use sha2::Digest;

/// Which digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-1 (`SHA1(name)= hex`, OVF 1.x manifests).
    Sha1,
    /// SHA-256 (`SHA256(name)= hex`, OVF 2.x and ovftool's default).
    Sha256,
}

impl Algorithm {
    /// The manifest's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }
    /// From the manifest's name.
    pub fn from_name(n: &str) -> Option<Algorithm> {
        match n {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }
}

/// A running digest.
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-1 so far.
    Sha1(sha1::Sha1),
    /// SHA-256 so far.
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// A new digest of `alg`.
    pub fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(alg: Algorithm, data: &[u8]) -> String {
        let mut h = Hasher::new(alg);
        h.update(data);
        hex(&h.finish())
    }

    #[test]
    fn fips_180_examples() {
        // FIPS 180-2 appendix examples ("abc" and the 448-bit message).
        assert_eq!(
            digest(Algorithm::Sha1, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest(Algorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let m = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            digest(Algorithm::Sha256, m),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            digest(Algorithm::Sha1, m),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}
