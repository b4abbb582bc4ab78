//! Formats vmsnap does not read, recognised by their signatures so that they are named
//! instead of passing as raw: compressed wrappers (gzip, xz, zstd, bzip2: cloud images
//! ship as `.qcow2.xz`), tar archives (OVA), and the disk formats only QEMU reads (dmg by
//! its `koly` trailer, cloop, bochs). Each carries the rule that keeps it from being safe.

use vmsnap_core::{Bytes, Finding, Layer, Result};

/// A format found by its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The format's name (`--format` vocabulary).
    pub name: &'static str,
    /// The virtual size the header states, as `qemu-img info` reports it, when known.
    pub virtual_size: Option<u64>,
    /// Where the payload starts (LUKS), when the format has one.
    pub payload_offset: Option<u64>,
    /// What the format's rules found.
    pub findings: Vec<Finding>,
}

impl Signature {
    fn named(name: &'static str, virtual_size: Option<u64>, finding: Finding) -> Self {
        Signature {
            name,
            virtual_size,
            payload_offset: None,
            findings: vec![finding],
        }
    }
}

/// The names of every signature detector, and of the partition-table and ISO detectors,
/// in the order a report lists them.
pub const DETECTORS: [&str; 12] = [
    "raw", "iso", "gpt", "luks", "gzip", "xz", "zstd", "bzip2", "dmg", "cloop", "bochs", "tar",
];

/// Magic bytes at offset 0 of the compressed wrappers.
const WRAPPERS: [(&str, &[u8]); 4] = [
    ("gzip", b"\x1f\x8b\x08"),
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("bzip2", b"BZh"),
];

/// QEMU's cloop probe string (`block/cloop.c`).
const CLOOP_MAGIC: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

/// Every signature `file` carries (`head` and `tail` are its first and last bytes).
pub fn detect(file: &dyn Layer, head: &[u8], tail: &[u8], size: u64) -> Result<Vec<Signature>> {
    let mut out = Vec::new();
    if let Some(l) = crate::luks::detect(file, head, size)? {
        out.push(l);
    }
    if let Some(name) = wrapper(head) {
        out.push(Signature::named(
            name,
            None,
            Finding::unsafe_(
                vmsnap_core::rule::COMPRESSED,
                format!(
                    "compressed image ({name}): decompress first; a hypervisor would read the \
                     compressed bytes as the disk"
                ),
            ),
        ));
    }
    if is_dmg(tail) {
        out.push(unread("dmg", None));
    }
    if head.starts_with(CLOOP_MAGIC) {
        out.push(unread("cloop", cloop_size(head)));
    }
    if let Some(size) = bochs(head) {
        out.push(unread("bochs", Some(size)));
    }
    if is_tar(head) {
        out.push(Signature::named(
            "tar",
            None,
            Finding::unsafe_(
                crate::rule::ARCHIVE,
                "a tar archive (an OVA?) is not a disk image: extract the disk first",
            ),
        ));
    }
    Ok(out)
}

/// A format QEMU reads and vmsnap does not: its contents cannot be checked.
fn unread(name: &'static str, virtual_size: Option<u64>) -> Signature {
    Signature::named(
        name,
        virtual_size,
        Finding::unsafe_(
            crate::rule::UNSUPPORTED_FORMAT,
            format!("{name} image: vmsnap does not read {name}, so its safety is not checked"),
        ),
    )
}

fn wrapper(head: &[u8]) -> Option<&'static str> {
    let (name, _) = WRAPPERS.iter().find(|(_, m)| head.starts_with(m))?;
    if *name == "bzip2" {
        // "BZh", the block size digit, then a block or end-of-stream magic.
        let level = head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d));
        let next = head.get(4..10);
        let magic =
            next == Some(b"\x31\x41\x59\x26\x53\x59") || next == Some(b"\x17\x72\x45\x38\x50\x90");
        return (level && magic).then_some("bzip2");
    }
    Some(name)
}

/// A UDIF (`.dmg`) trailer: `koly`, version 4, header size 512, in the last 512 bytes.
fn is_dmg(tail: &[u8]) -> bool {
    let Some(at) = tail.len().checked_sub(512) else {
        return false;
    };
    let b = Bytes::new(tail, 0);
    b.slice(at, 4).ok() == Some(b"koly".as_slice())
        && b.u32_be(at + 4).ok() == Some(4)
        && b.u32_be(at + 8).ok() == Some(512)
}

/// cloop's virtual size: block size × block count (big-endian, after the 128-byte script).
fn cloop_size(head: &[u8]) -> Option<u64> {
    let b = Bytes::new(head, 0);
    let bs = u64::from(b.u32_be(128).ok()?);
    let n = u64::from(b.u32_be(132).ok()?);
    bs.checked_mul(n)
}

/// A bochs growing redolog (QEMU's probe): its virtual size, whole sectors of `disk`.
fn bochs(head: &[u8]) -> Option<u64> {
    let field = |at: usize, len: usize, want: &[u8]| {
        head.get(at..at + len)
            .is_some_and(|f| f.split(|&c| c == 0).next() == Some(want))
    };
    if !(field(0, 32, b"Bochs Virtual HD Image")
        && field(32, 16, b"Redolog")
        && field(48, 16, b"Growing"))
    {
        return None;
    }
    let b = Bytes::new(head, 0);
    let disk = match b.u32_le(64).ok()? {
        0x0002_0000 => b.u64_le(88).ok()?,
        0x0001_0000 => b.u64_le(84).ok()?,
        _ => return None,
    };
    Some(disk / 512 * 512)
}

/// A POSIX or GNU tar header (`ustar` at 257).
fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar".as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vmsnap_core::{FileLayer, MemSource};

    fn names(bytes: &[u8]) -> Vec<&'static str> {
        let file = FileLayer::new(Arc::new(MemSource::new(bytes.to_vec())));
        detect(&file, bytes, bytes, bytes.len() as u64)
            .unwrap()
            .iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn recognises_each_signature_and_nothing_in_zeros() {
        let mut v = vec![0u8; 4096];
        assert!(names(&v).is_empty());
        v[..3].copy_from_slice(b"\x1f\x8b\x08");
        assert_eq!(names(&v), ["gzip"]);
        v[..10].copy_from_slice(b"BZh9\x31\x41\x59\x26\x53\x59");
        assert_eq!(names(&v), ["bzip2"]);
        v[4] = 0; // "BZh9" alone is text, not bzip2
        assert!(names(&v).is_empty());
        let mut d = vec![0u8; 4096];
        d[3584..3588].copy_from_slice(b"koly");
        d[3588..3592].copy_from_slice(&4u32.to_be_bytes());
        d[3592..3596].copy_from_slice(&512u32.to_be_bytes());
        assert_eq!(names(&d), ["dmg"]);
        let mut t = vec![0u8; 1024];
        t[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(names(&t), ["tar"]);
    }

    #[test]
    fn bochs_and_cloop_sizes() {
        let mut h = vec![0u8; 512];
        h[..22].copy_from_slice(b"Bochs Virtual HD Image");
        h[32..39].copy_from_slice(b"Redolog");
        h[48..55].copy_from_slice(b"Growing");
        h[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
        h[88..96].copy_from_slice(&65_537u64.to_le_bytes());
        assert_eq!(bochs(&h), Some(65_536));
        let mut c = CLOOP_MAGIC.to_vec();
        c.resize(136, 0);
        c[128..132].copy_from_slice(&4096u32.to_be_bytes());
        c[132..136].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(cloop_size(&c), Some(12_288));
    }
}
