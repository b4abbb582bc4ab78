//! What an output path is: standard output, a FIFO, `/dev/null`, a regular file (new or
//! existing, symlinks resolved) or a block device; everything else is refused.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use crate::error::{Error, ErrorKind, Result};
use crate::source::InputKind;

/// Symlinks followed at most, as the kernel's `ELOOP` limit.
const MAX_SYMLINKS: usize = 40;

/// A classified output.
#[derive(Debug)]
pub(super) enum Target {
    /// `-` or `/dev/stdout`: a duplicate of file descriptor 1.
    StdOut(File),
    /// A FIFO (or a `/proc/self/fd/N` pipe), opened as given.
    Fifo(PathBuf),
    /// The null device.
    Null,
    /// A regular file, the final path with symlinks resolved; `existing` when it exists.
    File {
        path: PathBuf,
        existing: Option<Metadata>,
    },
    /// A block device.
    Block(PathBuf),
}

/// How an output is named in messages.
pub(super) fn shown_name(given: &Path) -> PathBuf {
    if given == Path::new("-") {
        PathBuf::from("standard output")
    } else {
        given.to_path_buf()
    }
}

fn refused(what: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, what.to_string())
}

impl Target {
    /// Looks at `given` without opening it for writing.
    pub(super) fn classify(given: &Path) -> Result<Target> {
        if given == Path::new("-") || given == Path::new("/dev/stdout") {
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::from(e).during("duplicating standard output"))?;
            return Ok(Target::StdOut(File::from(fd)));
        }
        match std::fs::metadata(given) {
            Ok(meta) => Self::existing(given, meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::File {
                path: resolve_new(given)?,
                existing: None,
            }),
            Err(e) => Err(Error::from(e).during("inspecting the output")),
        }
    }

    fn existing(given: &Path, meta: Metadata) -> Result<Target> {
        // The same classification inputs get (`InputKind`), with the output's rules.
        match InputKind::of_metadata(&meta) {
            InputKind::Fifo => return Ok(Target::Fifo(given.to_path_buf())),
            _ if is_null_device(&meta) => return Ok(Target::Null),
            InputKind::CharDevice => {
                return Err(refused(
                    "is a character device; the only one accepted as an output is /dev/null \
                     (use `-` for standard output)",
                ))
            }
            InputKind::Socket => {
                return Err(refused("is a socket, which cannot be opened as an output"))
            }
            InputKind::Directory => {
                return Err(refused("is a directory; give the output file's name"))
            }
            InputKind::BlockDevice => return Ok(Target::Block(given.to_path_buf())),
            InputKind::Regular | InputKind::Other => {}
        }
        let path = std::fs::canonicalize(given)
            .map_err(|e| Error::from(e).during("resolving the output path"))?;
        if rustix::fs::access(&path, rustix::fs::Access::WRITE_OK).is_err() {
            return Err(Error::new(
                ErrorKind::Io,
                "exists and is not writable (permission denied)",
            ));
        }
        Ok(Target::File {
            path,
            existing: Some(meta),
        })
    }
}

/// The final path of a name that does not exist yet: dangling symlinks followed, the
/// parent directory resolved.
fn resolve_new(given: &Path) -> Result<PathBuf> {
    let mut p = given.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        let is_link = std::fs::symlink_metadata(&p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            let name = p
                .file_name()
                .ok_or_else(|| refused("does not name a file"))?
                .to_owned();
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let dir = std::fs::canonicalize(&parent)
                .map_err(|e| Error::from(e).during("resolving the directory of the output"))?;
            return Ok(dir.join(name));
        }
        let link = std::fs::read_link(&p)
            .map_err(|e| Error::from(e).during("reading the output symlink"))?;
        p = match p.parent() {
            Some(d) if link.is_relative() => d.join(link),
            _ => link,
        };
    }
    Err(refused("has too many levels of symbolic links"))
}

/// Whether `meta` is the null device (1:3 on Linux), whatever its name.
pub(super) fn is_null_device(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == rustix::fs::makedev(1, 3) as u64
}

/// Whether `meta` is a character device.
pub(super) fn is_char_device(meta: &Metadata) -> bool {
    meta.file_type().is_char_device()
}

/// Opens a FIFO for writing without blocking when no reader has it open: that is an error
/// at once, instead of a hang.
pub(super) fn open_fifo(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                Error::new(
                    ErrorKind::Io,
                    "is a FIFO with no reader; start the reader first",
                )
                .with_source(e)
            } else {
                Error::from(e).during("opening the FIFO")
            }
        })?;
    let flags = fcntl_getfl(&file)
        .and_then(|f| fcntl_setfl(&file, f - OFlags::NONBLOCK))
        .map_err(|e| Error::from(io::Error::from(e)).during("opening the FIFO"));
    flags.map(|()| file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_symlink_resolves_to_its_target_in_the_real_directory() {
        let dir = std::env::temp_dir().join(format!("vmsnap-target-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let link = dir.join("link.raw");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("real/out.raw", &link).unwrap();
        let got = resolve_new(&link).unwrap();
        assert_eq!(
            got,
            std::fs::canonicalize(dir.join("real"))
                .unwrap()
                .join("out.raw")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_null_is_a_sink_and_dev_zero_is_refused() {
        assert!(matches!(
            Target::classify(Path::new("/dev/null")),
            Ok(Target::Null)
        ));
        let e = Target::classify(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(Target::classify(Path::new("/")).is_err());
    }
}
