//! A regular-file output written beside its target and put in place only when complete.
//!
//! The data goes to an unnamed `O_TMPFILE` file in the target's directory where the
//! filesystem supports it (the kernel discards it if the process dies), else to a hidden
//! named file there, registered so that a signal handler can remove it
//! ([`remove_unfinished_outputs`]). [`TempFile::commit`] fsyncs the file, gives it the old
//! file's permissions, links or renames it over the target, and fsyncs the directory.

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::fs::{AtFlags, Mode, OFlags, CWD};

use crate::error::{Error, ErrorKind, Result};

/// Named temporary files of this process not yet committed or removed.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every named temporary output file this process created and has not finished.
/// Call it from SIGINT/SIGTERM handling before exiting (unnamed `O_TMPFILE` outputs need
/// nothing). Returns how many were removed.
///
/// ```
/// // In a signal-handling thread, before `std::process::exit(130)`:
/// let removed = vmsnap_core::sink::remove_unfinished_outputs();
/// assert_eq!(removed, 0);
/// ```
pub fn remove_unfinished_outputs() -> usize {
    let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
    let n = list
        .drain(..)
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count();
    n
}

fn register(path: &Path) {
    let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
    list.push(path.to_path_buf());
}

/// Removes `path` from the list (and from the disk when `unlink`), under the list's lock so
/// that a signal handler never removes a file that was just renamed into place.
fn unregister(path: &Path, unlink: bool) {
    let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|p| p != path);
    if unlink {
        let _ = std::fs::remove_file(path);
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden name beside `name`, unique in this process and unlikely across processes.
fn temp_name(name: &std::ffi::OsStr) -> OsString {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".vmsnap-{}-{n}.tmp", std::process::id()));
    s
}

#[derive(Debug)]
enum Kind {
    /// `O_TMPFILE`: no name until commit.
    Unnamed,
    /// A hidden named file in the target directory.
    Named(PathBuf),
}

/// The file being written, and where it goes.
#[derive(Debug)]
pub(super) struct TempFile {
    file: File,
    dir: File,
    dir_path: PathBuf,
    name: OsString,
    kind: Kind,
    /// The mode and owner of the file being replaced.
    replaces: Option<(u32, u32, u32)>,
    done: bool,
}

fn io_err(e: rustix::io::Errno) -> Error {
    Error::from(io::Error::from(e))
}

impl TempFile {
    /// Creates the temporary file for `target` (final path, symlinks resolved), sized to
    /// `len` (a hole, so holes of the image cost nothing).
    pub(super) fn create(
        target: &Path,
        existing: Option<&Metadata>,
        len: u64,
        force_named: bool,
    ) -> Result<TempFile> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "does not name a file"))?
            .to_owned();
        let dir_path = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::DIRECTORY.bits() as i32)
            .open(&dir_path)
            .map_err(|e| Error::from(e).during("opening the output's directory"))?;
        let unnamed = if force_named {
            None
        } else {
            open_unnamed(&dir_path)
        };
        let (file, kind) = match unnamed {
            Some(f) => (f, Kind::Unnamed),
            None => {
                let path = dir_path.join(temp_name(&name));
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o666)
                    .open(&path)
                    .map_err(|e| {
                        Error::from(e).during("creating a temporary file beside the output")
                    })?;
                register(&path);
                (f, Kind::Named(path))
            }
        };
        let temp = TempFile {
            file,
            dir,
            dir_path,
            name,
            kind,
            replaces: existing.map(|m| (m.mode() & 0o7777, m.uid(), m.gid())),
            done: false,
        };
        temp.file
            .set_len(len)
            .map_err(|e| Error::from(e).during("sizing the output"))?;
        Ok(temp)
    }

    /// The file to write.
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// Makes the file durable and puts it in place of the target.
    pub(super) fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::from(e).during("flushing the output to disk"))?;
        if let Some((mode, uid, gid)) = self.replaces {
            // Keep the replaced file's owner (best effort: only root may give files away)
            // and permissions, as writing into it would have.
            let _ = rustix::fs::fchown(
                &self.file,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            );
            rustix::fs::fchmod(&self.file, Mode::from_raw_mode(mode))
                .map_err(|e| io_err(e).during("setting the output's permissions"))?;
        }
        match &self.kind {
            Kind::Unnamed => self.link_unnamed()?,
            Kind::Named(path) => {
                let path = path.clone();
                self.rename_into_place(&path)?;
            }
        }
        self.done = true;
        self.dir
            .sync_all()
            .map_err(|e| Error::from(e).during("flushing the output directory to disk"))
    }

    /// Gives the unnamed file the target's name: directly when the name is free, else
    /// through a hidden name renamed over the old file (rename replaces atomically, link
    /// does not).
    fn link_unnamed(&self) -> Result<()> {
        let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let link_to = |name: &std::ffi::OsStr| {
            rustix::fs::linkat(
                CWD,
                proc_path.as_str(),
                &self.dir,
                name.as_bytes(),
                AtFlags::SYMLINK_FOLLOW,
            )
        };
        match link_to(&self.name) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_err(e).during("linking the output into place")),
        }
        let hidden = temp_name(&self.name);
        let hidden_path = self.dir_path.join(&hidden);
        register(&hidden_path);
        if let Err(e) = link_to(&hidden) {
            unregister(&hidden_path, false);
            return Err(io_err(e).during("linking the output into place"));
        }
        self.rename_into_place(&hidden_path)
    }

    fn rename_into_place(&self, from: &Path) -> Result<()> {
        let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
        let r = rustix::fs::renameat(CWD, from, &self.dir, self.name.as_bytes());
        list.retain(|p| p != from);
        drop(list);
        r.map_err(|e| {
            let _ = std::fs::remove_file(from);
            io_err(e).during("renaming the output into place")
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let (false, Kind::Named(path)) = (self.done, &self.kind) {
            unregister(path, true);
        }
    }
}

/// An `O_TMPFILE` file in `dir`, when the filesystem supports it and `/proc` lets it be
/// linked later; `None` sends the caller to a named temporary file.
fn open_unnamed(dir: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .write(true)
        .mode(0o666)
        .custom_flags(OFlags::TMPFILE.bits() as i32)
        .open(dir)
        .ok()?;
    let linkable = Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())).exists();
    linkable.then_some(file)
}
