//! The crate's single error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while encoding, decoding, reading or writing.
///
/// `Display` gives a complete message meant for the end user. Errors from
/// [`read_npy`](crate::read_npy) / [`write_npy`](crate::write_npy) are wrapped
/// in [`Error::InFile`]; use [`Error::root`] to match on the underlying cause.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error; `action` says what we were doing.
    Io { action: &'static str, source: io::Error },
    /// The input does not start with `\x93NUMPY`.
    BadMagic,
    /// A format version other than 1.0, 2.0 or 3.0.
    UnsupportedVersion { major: u8, minor: u8 },
    /// The input ended inside the magic, version, length or header dict.
    TruncatedHeader,
    /// The header length field exceeds [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN).
    HeaderTooLarge { len: u64, max: u64 },
    /// The header dict is not valid; the text says what is wrong.
    InvalidHeader(String),
    /// One of 'descr', 'fortran_order', 'shape' is absent.
    MissingKey(&'static str),
    /// A key appears twice.
    DuplicateKey(String),
    /// A key other than the three allowed ones.
    UnexpectedKey(String),
    /// A dtype this crate does not handle (objects, strings, float128, ...).
    UnsupportedDtype { descr: String, reason: String },
    /// The element count or byte length of the shape overflows `u64`.
    SizeOverflow { shape: Vec<u64>, descr: String },
    /// The file holds fewer data bytes than the header promises.
    TruncatedData { actual: u64, expected: u64, shape: Vec<u64>, descr: String },
    /// The file holds more data bytes than the header promises.
    TrailingBytes { actual: u64, expected: u64, shape: Vec<u64>, descr: String },
    /// The buffer given to a writer does not match the header.
    DataLenMismatch { actual: u64, expected: u64, shape: Vec<u64>, descr: String },
    /// The data does not fit in memory (allocation failed or len > isize::MAX).
    AllocFailed { len: u64 },
    /// More dimensions than NumPy handles (`NPY_MAXDIMS`): NumPy could not load the file.
    TooManyDims { dims: usize, max: usize },
    /// More members than an `.npz` of this crate holds.
    TooManyMembers { count: usize, max: usize },
    /// Two members of one `.npz` with one name.
    DuplicateMember(String),
    /// A member name or member this crate does not write or read; the reason says why.
    BadMember { name: String, reason: String },
    /// A file that is not a zip archive, or a damaged one.
    BadArchive(String),
    /// Another error, tagged with the file it happened in.
    InFile { path: PathBuf, source: Box<Error> },
}

impl Error {
    /// The cause with any [`Error::InFile`] wrappers removed.
    pub fn root(&self) -> &Error {
        match self {
            Error::InFile { source, .. } => source.root(),
            other => other,
        }
    }

    /// The file the error happened in, when it is known.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::InFile { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The data section of `header` is `actual` bytes where it needs `expected`.
    pub(crate) fn data_len_mismatch(header: &crate::Header, actual: u64, expected: u64) -> Error {
        let (shape, descr) = (header.shape.clone(), header.dtype.descr());
        if actual < expected {
            Error::TruncatedData { actual, expected, shape, descr }
        } else {
            Error::TrailingBytes { actual, expected, shape, descr }
        }
    }

    pub(crate) fn in_file(self, path: &Path) -> Error {
        Error::InFile { path: path.to_path_buf(), source: Box::new(self) }
    }

    pub(crate) fn io(action: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { action, source }
    }
}

/// Python tuple repr: `()`, `(5,)`, `(2, 3)`. Used in headers and messages.
pub(crate) fn shape_repr(shape: &[u64]) -> String {
    match shape {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { action, source } => write!(f, "could not {action}: {source}"),
            Error::BadMagic => write!(
                f,
                "bad magic: not a .npy file (it does not start with \\x93NUMPY)"
            ),
            Error::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported .npy format version {major}.{minor}; only versions 1.0, 2.0 and 3.0 can be read"
            ),
            Error::TruncatedHeader => {
                write!(f, "the .npy header is truncated: the input ends before the header does")
            }
            Error::HeaderTooLarge { len, max } => write!(
                f,
                "the .npy header claims to be {len} bytes long, more than the {max}-byte limit; the file is corrupt or not a plain array"
            ),
            Error::InvalidHeader(msg) => write!(f, "malformed .npy header: {msg}"),
            Error::MissingKey(key) => write!(
                f,
                "header is missing key '{key}'; a .npy header needs exactly 'descr', 'fortran_order' and 'shape'"
            ),
            Error::DuplicateKey(key) => write!(f, "header has key '{key}' more than once"),
            Error::UnexpectedKey(key) => write!(
                f,
                "header has unexpected key '{key}'; only 'descr', 'fortran_order' and 'shape' are allowed"
            ),
            Error::UnsupportedDtype { descr, reason } => {
                write!(f, "unsupported dtype '{descr}': {reason}")
            }
            Error::SizeOverflow { shape, descr } => write!(
                f,
                "shape {} of '{descr}' is too large: its size in bytes overflows 64 bits",
                shape_repr(shape)
            ),
            Error::TruncatedData {
                actual,
                expected,
                shape,
                descr,
            } => write!(
                f,
                "data section is {actual} bytes but shape {} of '{descr}' needs {expected} bytes; the file is truncated",
                shape_repr(shape)
            ),
            Error::TrailingBytes {
                actual,
                expected,
                shape,
                descr,
            } => write!(
                f,
                "data section is {actual} bytes but shape {} of '{descr}' needs only {expected} bytes; the file has {} trailing bytes",
                shape_repr(shape),
                actual.saturating_sub(*expected)
            ),
            Error::DataLenMismatch {
                actual,
                expected,
                shape,
                descr,
            } => write!(
                f,
                "data buffer is {actual} bytes but shape {} of '{descr}' needs {expected} bytes",
                shape_repr(shape)
            ),
            Error::TooManyDims { dims, max } => {
                write!(f, "the array has {dims} dimensions; NumPy reads at most {max}, so it is not written")
            }
            Error::AllocFailed { len } => write!(
                f,
                "could not allocate {len} bytes for the array data; the array does not fit in memory"
            ),
            Error::TooManyMembers { count, max } => {
                write!(f, "the .npz has {count} members; at most {max} are written or read")
            }
            Error::DuplicateMember(name) => write!(f, "the .npz member name {name:?} is given twice"),
            Error::BadMember { name, reason } => write!(f, ".npz member {name:?}: {reason}"),
            Error::BadArchive(msg) => write!(f, "not a readable .npz (zip) archive: {msg}"),
            Error::InFile { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            // Display already includes the inner message; expose its cause only.
            Error::InFile { source, .. } => std::error::Error::source(source.as_ref()),
            _ => None,
        }
    }
}
