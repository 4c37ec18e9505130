//! The one error of every tier: what went wrong, where (a file or an
//! object-store location), and the failure underneath it, kept as its
//! `source`. [`Error::kind`] is what callers branch on; bindings map kinds
//! to their own codes (the JS package's `ERR_NFC_*`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A boxed failure from below (SQLite, an HTTP client), kept as a source.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, and where.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An argument or setting that cannot be used: the message names it.
    InvalidArgument { message: String },
    /// A string that is not a cache key (64 lower-case hex digits).
    BadKey { key: String },
    /// A function name too long for an entry's record.
    NameTooLong { len: usize, max: usize },
    /// The cache path exists but is not a directory.
    NotADirectory { path: PathBuf },
    /// A file operation failed.
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// An array could not be encoded, decoded or held in memory.
    Npy { source: npy_format::Error },
    /// An entry's data is there but does not form a whole entry of this version.
    Damaged { place: Place, reason: String },
    /// `clear(remove_dir)` kept the directory: files the cache did not write remain.
    NotEmpty { path: PathBuf, remaining: usize },
    /// The directory's index could not be read or written.
    Index { path: PathBuf, source: Source },
    /// The object store could not be reached, timed out or kept failing
    /// after its retries (connection refused, 5xx, throttling).
    Unavailable { location: String, action: &'static str, source: Source },
    /// The object store refused the credentials or the permission (HTTP 401/403).
    Denied { location: String, source: Source },
    /// The caller's progress callback asked the work to stop; what was done stays done.
    Stopped,
}

/// Where an entry's data is: a file, or an object (its URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File(PathBuf),
    Object(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File(p) => write!(f, "{}", p.display()),
            Place::Object(url) => f.write_str(url),
        }
    }
}

/// What callers branch on: the kind of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    InvalidArgument,
    NotADirectory,
    Io,
    /// Data that is not a valid `.npy` array.
    BadNpy,
    /// A `.npy` array of a dtype the cache does not handle.
    UnsupportedDtype,
    Damaged,
    NotEmpty,
    Index,
    Unavailable,
    Denied,
    Stopped,
}

impl ErrorKind {
    /// Every kind, for bindings that map each to a code of their own.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotADirectory,
        ErrorKind::Io,
        ErrorKind::BadNpy,
        ErrorKind::UnsupportedDtype,
        ErrorKind::Damaged,
        ErrorKind::NotEmpty,
        ErrorKind::Index,
        ErrorKind::Unavailable,
        ErrorKind::Denied,
        ErrorKind::Stopped,
    ];
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error of `action` on `path`.
    pub fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io { action, path: path.to_path_buf(), source }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument { message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } | Error::BadKey { .. } | Error::NameTooLong { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::NotADirectory { .. } => ErrorKind::NotADirectory,
            Error::Io { .. } => ErrorKind::Io,
            Error::Npy { source } => match source.root() {
                npy_format::Error::Io { .. } => ErrorKind::Io,
                npy_format::Error::UnsupportedDtype { .. } => ErrorKind::UnsupportedDtype,
                _ => ErrorKind::BadNpy,
            },
            Error::Damaged { .. } => ErrorKind::Damaged,
            Error::NotEmpty { .. } => ErrorKind::NotEmpty,
            Error::Index { .. } => ErrorKind::Index,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Denied { .. } => ErrorKind::Denied,
            Error::Stopped => ErrorKind::Stopped,
        }
    }

    /// The OS error behind the failure, if there is one.
    pub fn os_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Npy { source } => match source.root() {
                npy_format::Error::Io { source, .. } => Some(source),
                _ => None,
            },
            _ => None,
        }
    }

    /// The file the failure is about, if there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::NotADirectory { path }
            | Error::Io { path, .. }
            | Error::NotEmpty { path, .. }
            | Error::Index { path, .. } => Some(path),
            Error::Damaged { place: Place::File(path), .. } => Some(path),
            Error::Npy { source } => source.path(),
            _ => None,
        }
    }

    /// The object-store URL the failure is about, if there is one: an
    /// object's, or the location's.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::Damaged { place: Place::Object(url), .. } => Some(url),
            Error::Unavailable { location, .. } | Error::Denied { location, .. } => Some(location),
            _ => None,
        }
    }
}

impl From<npy_format::Error> for Error {
    fn from(source: npy_format::Error) -> Error {
        Error::Npy { source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { message } => f.write_str(message),
            Error::BadKey { key } => write!(f, "{key:?} is not a cache key (64 lower-case hex digits)"),
            Error::NameTooLong { len, max } => {
                write!(f, "a function name of {len} bytes is too long to store (at most {max})")
            }
            Error::NotADirectory { path } => write!(f, "cache path {} exists and is not a directory", path.display()),
            Error::Io { action, path, source } => write!(f, "could not {action} {}: {source}", path.display()),
            Error::Npy { source } => write!(f, "{source}"),
            Error::Damaged { place, reason } => write!(f, "cache entry {place} is damaged: {reason}"),
            Error::NotEmpty { path, remaining } => write!(
                f,
                "cache directory {} was cleared but not removed: {remaining} file(s) the cache did not write remain in it",
                path.display()
            ),
            Error::Index { path, source } => write!(f, "cache index {}: {source}", path.display()),
            Error::Unavailable { location, action, source } => {
                write!(f, "could not {action} at {location}: {source}")
            }
            Error::Denied { location, source } => write!(
                f,
                "the object store at {location} refused this request's credentials or permissions \
                 (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and the bucket's policy): {source}"
            ),
            Error::Stopped => f.write_str("stopped before it was done, as asked"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Npy { source } => Some(source),
            Error::Index { source, .. } | Error::Unavailable { source, .. } | Error::Denied { source, .. } => {
                Some(source.as_ref())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_keeps_its_source_and_says_where() {
        let e = Error::io("read", Path::new("/c/x.npy"))(io::Error::from_raw_os_error(28));
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.path(), Some(Path::new("/c/x.npy")));
        assert_eq!(e.os_error().and_then(io::Error::raw_os_error), Some(28));
        assert!(std::error::Error::source(&e).is_some());
        let gone =
            Error::Unavailable { location: "s3://b/p".into(), action: "read an entry", source: "timed out".into() };
        assert_eq!((gone.kind(), gone.url(), gone.path()), (ErrorKind::Unavailable, Some("s3://b/p"), None));
        assert_eq!(gone.to_string(), "could not read an entry at s3://b/p: timed out");
        let damaged = Error::Damaged { place: Place::Object("s3://b/p/ab/k.npy".into()), reason: "short".into() };
        assert_eq!((damaged.url(), damaged.path()), (Some("s3://b/p/ab/k.npy"), None));
    }
}
