//! vmsnap errors as the errno nbdkit sends the client, with vmsnap's line for its log.

use std::path::Path;

use vmsnap::core::{Error, ErrorKind};

/// The errno an NBD client gets for `e`: the system's own for an I/O error, `ENOTSUP`
/// for a feature vmsnap does not read, `EINVAL` for a request outside what exists, `EIO`
/// for everything the image itself made unreadable (malformed, truncated, a reference that
/// was not opened …).
pub fn errno_of(e: &Error) -> i32 {
    match e.kind() {
        ErrorKind::Io => io_errno(e).unwrap_or(libc::EIO),
        ErrorKind::Unsupported => libc::ENOTSUP,
        ErrorKind::OutOfBounds
        | ErrorKind::InvalidArgument
        | ErrorKind::NotFound
        | ErrorKind::Ambiguous => libc::EINVAL,
        ErrorKind::LimitExceeded => libc::ENOMEM,
        // Malformed, truncated, policy-denied, unsafe, unavailable, and any kind added later.
        _ => libc::EIO,
    }
}

/// The operating system's errno among `e`'s causes.
fn io_errno(e: &Error) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if let Some(n) = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(n);
        }
        cur = c.source();
    }
    None
}

/// `e` as the error nbdkit logs (`vmsnap: FILE: …`, as the CLI says it) and sends as an
/// errno. nbdkit takes the message as a C string: a NUL in it (from file data) is escaped.
pub fn to_nbdkit(e: &Error, file: Option<&Path>) -> nbdkit::Error {
    let line = vmsnap_report::json::error_line(e, file).replace('\0', "\\0");
    nbdkit::Error::new(errno_of(e), format!("vmsnap: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_errnos() {
        let io = Error::from(std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(errno_of(&io), libc::EACCES);
        assert_eq!(errno_of(&Error::malformed(0, "bad")), libc::EIO);
        let unavailable = Error::new(ErrorKind::Unavailable, "backing file not opened");
        assert_eq!(errno_of(&unavailable), libc::EIO);
        let e = to_nbdkit(
            &Error::malformed(0x40, "bad\0name"),
            Some(Path::new("d.img")),
        );
        assert!(!e.to_string().contains('\0'), "{e}");
        assert!(e.to_string().starts_with("vmsnap: d.img: "), "{e}");
    }
}
