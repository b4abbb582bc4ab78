//! The files an output must never be: the input and every file the image reads, compared
//! by device and inode (so hard links and symlinks are seen through), plus the block
//! devices they live on and loop devices backed by them.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// One protected file's identity.
#[derive(Debug)]
struct Identity {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// The device number when the protected file is itself a block device.
    rdev: Option<u64>,
}

/// The protected files, stat-ed once.
#[derive(Debug)]
pub(super) struct Protected {
    ids: Vec<Identity>,
}

fn refuse(why: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, why)
}

impl Protected {
    /// Stats every path (following symlinks); paths that cannot be stat-ed protect nothing.
    pub(super) fn new(paths: &[PathBuf]) -> Self {
        let ids = paths
            .iter()
            .filter_map(|p| {
                let m = std::fs::metadata(p).ok()?;
                Some(Identity {
                    path: p.clone(),
                    dev: m.dev(),
                    ino: m.ino(),
                    rdev: m.file_type().is_block_device().then(|| m.rdev()),
                })
            })
            .collect();
        Protected { ids }
    }

    /// Refuses `path` when it is a protected file.
    pub(super) fn check_path(&self, path: &Path) -> Result<()> {
        match std::fs::metadata(path) {
            Ok(m) => self.check_meta(&m),
            Err(_) => Ok(()),
        }
    }

    /// Refuses an open file (standard output) that is a protected file.
    pub(super) fn check_file(&self, file: &File) -> Result<()> {
        match file.metadata() {
            Ok(m) => self.check_meta(&m),
            Err(_) => Ok(()),
        }
    }

    fn check_meta(&self, m: &Metadata) -> Result<()> {
        match self
            .ids
            .iter()
            .find(|id| id.dev == m.dev() && id.ino == m.ino())
        {
            Some(id) => Err(refuse(format!(
                "is {} (the same file), which this command reads; refusing to write over an input",
                id.path.display()
            ))),
            None => Ok(()),
        }
    }

    /// Refuses a block device that is a protected device, holds a protected file (on it or
    /// on one of its partitions), or is a loop device backed by a protected file.
    pub(super) fn check_block_device(&self, path: &Path) -> Result<()> {
        let m = std::fs::metadata(path)
            .map_err(|e| Error::from(e).during("inspecting the output device"))?;
        self.check_meta(&m)?;
        let rdev = m.rdev();
        let parts = partitions(rdev);
        for id in &self.ids {
            if id.rdev == Some(rdev) {
                return Err(refuse(format!(
                    "is the device {} that this command reads; refusing to write over an input",
                    id.path.display()
                )));
            }
            if id.dev == rdev || parts.contains(&id.dev) {
                return Err(refuse(format!(
                    "holds the filesystem where {} lives, which this command reads; \
                     refusing to write over an input",
                    id.path.display()
                )));
            }
        }
        if let Some((dev, ino)) = loop_backing(path, rdev) {
            if let Some(id) = self.ids.iter().find(|id| id.dev == dev && id.ino == ino) {
                return Err(refuse(format!(
                    "is a loop device backed by {}, which this command reads; \
                     refusing to write over an input",
                    id.path.display()
                )));
            }
        }
        Ok(())
    }
}

fn sysfs_dir(rdev: u64) -> PathBuf {
    let (maj, min) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    PathBuf::from(format!("/sys/dev/block/{maj}:{min}"))
}

/// The device numbers of the partitions of the whole disk `rdev` (none for a partition or
/// without sysfs).
fn partitions(rdev: u64) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(sysfs_dir(rdev)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().join("partition").exists())
        .filter_map(|e| {
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (maj, min) = dev.trim().split_once(':')?;
            Some(rustix::fs::makedev(maj.parse().ok()?, min.parse().ok()?) as u64)
        })
        .collect()
}

/// Whether sysfs says `rdev` is a loop device (or a partition of one).
fn is_loop(rdev: u64) -> bool {
    const LOOP_MAJOR: u32 = 7;
    let dir = sysfs_dir(rdev);
    rustix::fs::major(rdev) == LOOP_MAJOR
        || dir.join("loop").exists()
        || dir.join("../loop").exists()
}

/// The device and inode of the file backing the loop device at `path`, from
/// `LOOP_GET_STATUS64` (exact even when the backing file was renamed or deleted).
fn loop_backing(path: &Path, rdev: u64) -> Option<(u64, u64)> {
    if !is_loop(rdev) {
        return None;
    }
    let dev = File::open(path).ok()?;
    let info = loop_status(&dev).ok()?;
    Some((info.lo_device, info.lo_inode))
}

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `LOOP_GET_STATUS64` from `<linux/loop.h>` (an old-style opcode without size bits).
const LOOP_GET_STATUS64: rustix::ioctl::Opcode = 0x4C05;

#[allow(unsafe_code)] // the one ioctl rustix has no safe wrapper for; SAFETY below
fn loop_status(dev: &File) -> rustix::io::Result<LoopInfo64> {
    // SAFETY: LOOP_GET_STATUS64 takes a pointer to a `struct loop_info64`, which the
    // kernel fills; `LoopInfo64` has that exact `repr(C)` layout (232 bytes, checked by a
    // test), and the loop driver only writes that struct.
    unsafe {
        let getter = rustix::ioctl::Getter::<LOOP_GET_STATUS64, LoopInfo64>::new();
        rustix::ioctl::ioctl(dev, getter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_info64_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    }

    #[test]
    fn a_hard_link_and_a_symlink_to_a_protected_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("vmsnap-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.img");
        std::fs::write(&input, b"x").unwrap();
        let hard = dir.join("hard.img");
        let soft = dir.join("soft.img");
        let _ = std::fs::remove_file(&hard);
        let _ = std::fs::remove_file(&soft);
        std::fs::hard_link(&input, &hard).unwrap();
        std::os::unix::fs::symlink("in.img", &soft).unwrap();
        let p = Protected::new(std::slice::from_ref(&input));
        for out in [&input, &hard, &soft] {
            let e = p.check_path(out).unwrap_err();
            assert!(e.to_string().contains("in.img (the same file)"), "{e}");
        }
        let other = dir.join("other.img");
        std::fs::write(&other, b"y").unwrap();
        p.check_path(&other).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
