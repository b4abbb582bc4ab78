//! What an input is, decided before any byte is read. A block device reports a length of
//! 0 in its metadata, and a FIFO, pipe, socket or character device has no length at all:
//! read as files they look empty, and an empty file is "safe raw". So every input is
//! classified first, a device is sized from the device, and anything that cannot be read at
//! random offsets is refused with a message that says what to do instead.

use std::fs::{File, Metadata};
use std::io::{Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// What kind of file an input is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A regular file.
    Regular,
    /// A block device (a disk, a partition, LVM, a loop device): sized from the device.
    BlockDevice,
    /// A character device (`/dev/zero`, a tty): a stream.
    CharDevice,
    /// A FIFO or an anonymous pipe (`/dev/stdin` under `|`, `<(cmd)`): a stream.
    Fifo,
    /// A Unix socket: a stream.
    Socket,
    /// A directory.
    Directory,
    /// Anything else the platform reports.
    Other,
}

impl InputKind {
    /// The kind of the file `meta` describes.
    pub fn of_metadata(meta: &Metadata) -> Self {
        let t = meta.file_type();
        if t.is_file() {
            return InputKind::Regular;
        }
        if t.is_dir() {
            return InputKind::Directory;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_block_device() {
                return InputKind::BlockDevice;
            }
            if t.is_char_device() {
                return InputKind::CharDevice;
            }
            if t.is_fifo() {
                return InputKind::Fifo;
            }
            if t.is_socket() {
                return InputKind::Socket;
            }
        }
        InputKind::Other
    }

    /// The kind of what `path` names, following symlinks (`stat`, not `open`: a FIFO
    /// without a writer is not waited for).
    pub fn of_path(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::from(e).in_file(path).during("looking at the input"))?;
        Ok(Self::of_metadata(&meta))
    }

    /// The kind of an open file.
    pub fn of_file(file: &File) -> Result<Self> {
        let meta = file
            .metadata()
            .map_err(|e| Error::from(e).during("reading metadata"))?;
        Ok(Self::of_metadata(&meta))
    }

    /// Whether it can be read at any offset (a regular file or a block device).
    pub fn is_random_access(self) -> bool {
        matches!(self, InputKind::Regular | InputKind::BlockDevice)
    }

    /// Whether it can only be read front to back (FIFO, pipe, socket, character device).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            InputKind::CharDevice | InputKind::Fifo | InputKind::Socket
        )
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            InputKind::Regular => "a regular file",
            InputKind::BlockDevice => "a block device",
            InputKind::CharDevice => "a character device",
            InputKind::Fifo => "a FIFO or pipe",
            InputKind::Socket => "a socket",
            InputKind::Directory => "a directory",
            InputKind::Other => "not a regular file or device",
        }
    }

    /// The error for an input of this kind that cannot be read at random offsets.
    pub fn refusal(self) -> Error {
        let hint = if self.is_stream() {
            "; vmsnap reads images at random offsets: save it to a file first, or inspect \
             the stream with `vmsnap check -` (or `vmsnap check PATH`)"
        } else {
            ""
        };
        Error::new(
            ErrorKind::InvalidArgument,
            format!("is {}{hint}", self.describe()),
        )
    }
}

/// An input opened for reads at random offsets, with its real size.
#[derive(Debug)]
pub(crate) struct RandomAccess {
    pub file: File,
    pub size: u64,
    pub kind: InputKind,
}

/// Opens `path` for reads at random offsets, or fails at once naming what it is.
///
/// The open itself never blocks: on Linux it is non-blocking (a FIFO with no writer opens
/// at once and is then refused by what `fstat` says of the opened file, so a path swapped
/// between a check and the open cannot slip through); elsewhere the path is classified with
/// `stat` first.
pub(crate) fn open_random_access(path: &Path) -> Result<RandomAccess> {
    #[cfg(not(target_os = "linux"))]
    {
        let kind = InputKind::of_path(path)?;
        if !kind.is_random_access() {
            return Err(kind.refusal().in_file(path));
        }
    }
    let file =
        open_nonblocking(path).map_err(|e| Error::from(e).in_file(path).during("opening"))?;
    random_access(file).map_err(|e| e.in_file(path))
}

/// Checks that `file` can be read at random offsets and measures it.
pub(crate) fn random_access(mut file: File) -> Result<RandomAccess> {
    let kind = InputKind::of_file(&file)?;
    let size = match kind {
        InputKind::Regular => file
            .metadata()
            .map_err(|e| Error::from(e).during("reading metadata"))?
            .len(),
        // A device's metadata says 0; its size is where its end is.
        InputKind::BlockDevice => file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::from(e).during("measuring the block device"))?,
        other => return Err(other.refusal()),
    };
    Ok(RandomAccess { file, size, kind })
}

#[cfg(target_os = "linux")]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK only changes how FIFOs and devices open and read; regular files and
    // block devices are then read with positional reads, which it does not affect.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_and_directories_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("vmsnap-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(InputKind::of_path(&p).unwrap(), InputKind::Regular);
        assert_eq!(InputKind::of_path(&dir).unwrap(), InputKind::Directory);
        let ra = open_random_access(&p).unwrap();
        assert_eq!((ra.size, ra.kind), (5, InputKind::Regular));
        assert!(open_random_access(&dir).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("vmsnap-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        assert_eq!(InputKind::of_path(&p).unwrap(), InputKind::Fifo);
        let start = std::time::Instant::now();
        let e = open_random_access(&p).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let msg = e.to_string();
        assert!(msg.contains("FIFO") && msg.contains("check -"), "{msg}");
        assert!(msg.contains("fifo"), "names the file: {msg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn character_devices_are_streams_not_empty_files() {
        let p = Path::new("/dev/zero");
        assert_eq!(InputKind::of_path(p).unwrap(), InputKind::CharDevice);
        let e = open_random_access(p).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }
}
