//! What the CLI was given to read: a file or block device (read at any offset), or a stream
//! (a pipe, FIFO, socket or character device) that only `check` can take. `-` is standard
//! input everywhere; standard input redirected from a file is that file. A directory is a VM
//! folder or bundle, opened by its descriptor (`vmsnap_report::open::input_file`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{Error, FileLayer, FileSource, InputKind, Layer, Result};
use vmsnap_report::open::input_file;

/// The name standard input goes by in messages.
pub const STDIN_NAME: &str = "standard input";

/// What an input turned out to be.
pub enum Input {
    /// Readable at any offset.
    File(Arc<dyn Layer>),
    /// Readable front to back only.
    Stream(Box<dyn Read>),
}

/// Whether `path` is the `-` that means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` for commands that read at random offsets. A stream is refused at once,
/// with what it is and what to do instead; a FIFO without a writer is not waited for.
pub fn open_file(path: &Path) -> Result<Arc<dyn Layer>> {
    if is_stdin(path) {
        let (file, kind) = stdin_file()?;
        if !kind.is_random_access() {
            return Err(kind.refusal().in_file(Path::new(STDIN_NAME)));
        }
        return Ok(Arc::new(FileLayer::new(Arc::new(FileSource::from_file(
            file,
            stdin_path(),
        )?))));
    }
    Ok(Arc::new(FileLayer::open(&input_file(path)?)?))
}

/// Opens `path` for `check`, which inspects streams too. Opening a FIFO here waits for
/// its writer, as `cat` would: the stream is what was asked for.
pub fn open_for_check(path: &Path) -> Result<Input> {
    if is_stdin(path) {
        let (file, kind) = stdin_file()?;
        if kind.is_random_access() {
            let source = FileSource::from_file(file, stdin_path())?;
            return Ok(Input::File(Arc::new(FileLayer::new(Arc::new(source)))));
        }
        return Ok(Input::Stream(Box::new(file)));
    }
    let path = &input_file(path)?;
    let kind = InputKind::of_path(path)?;
    if kind.is_stream() {
        let file = File::open(path)
            .map_err(|e| Error::from(e).in_file(path).during("opening the stream"))?;
        return Ok(Input::Stream(Box::new(file)));
    }
    Ok(Input::File(Arc::new(FileLayer::open(path)?)))
}

/// Standard input as a file of its own (a duplicate descriptor), with its kind.
fn stdin_file() -> Result<(File, InputKind)> {
    let named = |e: std::io::Error| {
        Error::from(e)
            .in_file(Path::new(STDIN_NAME))
            .during("duplicating standard input")
    };
    #[cfg(unix)]
    let file = {
        use std::os::fd::AsFd;
        File::from(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(named)?,
        )
    };
    #[cfg(not(unix))]
    let file: File = return Err(named(std::io::ErrorKind::Unsupported.into()));
    let kind = InputKind::of_file(&file).map_err(|e| e.in_file(Path::new(STDIN_NAME)))?;
    Ok((file, kind))
}

/// The path standard input was redirected from, when the system says (so that relative
/// references of an image resolve beside it, as they do for the same file named directly).
fn stdin_path() -> Option<PathBuf> {
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .filter(|p| p.is_absolute() && p.exists())
}
