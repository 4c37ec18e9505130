//! What can go wrong, always with the path it went wrong on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum StoreError {
    /// The cache path exists but is not a directory.
    NotADirectory(PathBuf),
    /// A key that is not 64 lower-case hex digits (it would name a file).
    BadKey(String),
    /// A function name too long for an entry's record.
    NameTooLong { len: usize, max: usize },
    /// An I/O operation failed.
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// The array could not be encoded or decoded.
    Npy(npy_format::Error),
    /// An entry's files are there but do not form an entry of this version.
    Damaged { path: PathBuf, reason: String },
    /// `clear(remove_dir)` left the directory because files it did not write remain.
    NotEmpty { path: PathBuf, remaining: usize },
    /// The index of entries could not be read or written.
    Index(cache_index::IndexError),
    /// The caller's progress callback asked the work to stop; what was done stays done.
    Stopped,
}

impl StoreError {
    /// Wraps an I/O error of `action` on `path`.
    pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io { action, path: path.to_path_buf(), source }
    }

    /// The OS error behind the failure, if there is one.
    pub fn os_error(&self) -> Option<&io::Error> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Npy(e) => match e.root() {
                npy_format::Error::Io { source, .. } => Some(source),
                _ => None,
            },
            _ => None,
        }
    }

    /// The file the failure is about, if there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StoreError::NotADirectory(p) => Some(p),
            StoreError::Io { path, .. } | StoreError::Damaged { path, .. } | StoreError::NotEmpty { path, .. } => {
                Some(path)
            }
            StoreError::Npy(e) => e.path(),
            StoreError::Index(e) => Some(&e.path),
            StoreError::BadKey(_) | StoreError::NameTooLong { .. } | StoreError::Stopped => None,
        }
    }
}

impl From<cache_index::IndexError> for StoreError {
    fn from(e: cache_index::IndexError) -> StoreError {
        StoreError::Index(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotADirectory(p) => write!(f, "cache path {} exists and is not a directory", p.display()),
            StoreError::BadKey(k) => write!(f, "cache key {k:?} is not 64 lower-case hex digits"),
            StoreError::NameTooLong { len, max } => {
                write!(f, "a function name of {len} bytes is too long to store (at most {max})")
            }
            StoreError::Io { action, path, source } => write!(f, "could not {action} {}: {source}", path.display()),
            StoreError::Npy(e) => write!(f, "{e}"),
            StoreError::Damaged { path, reason } => write!(f, "cache entry {} is damaged: {reason}", path.display()),
            StoreError::NotEmpty { path, remaining } => write!(
                f,
                "cache directory {} was cleared but not removed: {remaining} file(s) the cache did not write remain in it",
                path.display()
            ),
            StoreError::Index(e) => write!(f, "{e}"),
            StoreError::Stopped => f.write_str("stopped before it was done, as asked"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Npy(e) => Some(e),
            StoreError::Index(e) => Some(e),
            _ => None,
        }
    }
}
