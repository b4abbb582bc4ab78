//! Loop devices for tests that need a real block device: `losetup` over a file, detached
//! when dropped. Creating one needs root; [`LoopDevice::attach`] returns `None` (and the
//! test says it skipped) where it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a file, detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    /// Attaches `file` (read-only when `read_only`), or `None` with a message on stderr
    /// when this machine cannot (not root, no loop driver).
    pub fn attach(file: &Path, read_only: bool) -> Option<LoopDevice> {
        let mut cmd = Command::new("losetup");
        cmd.args(["--find", "--show"]);
        if read_only {
            cmd.arg("--read-only");
        }
        match cmd.arg(file).output() {
            Ok(o) if o.status.success() => {
                let path = String::from_utf8_lossy(&o.stdout).trim().to_string();
                Some(LoopDevice {
                    path: PathBuf::from(path),
                })
            }
            Ok(o) => {
                eprintln!(
                    "skipped: losetup failed (needs root and the loop driver): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: losetup cannot run: {e}");
                None
            }
        }
    }

    /// The device node, e.g. `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}
