//! Errors as JS sees them. A failure of the core keeps its kind, message,
//! file or URL and OS error number; thrown, it is an `Error` (a `TypeError`
//! for a bad argument) carrying them as properties; inside a result (a
//! note), it is a plain [`Failure`] object. The TS layer gives both their
//! public `code` (`ERR_NFC_...`) from the kind.

use napi::bindgen_prelude::*;

/// What kind of failure: `cache_core::ErrorKind`, and a panic caught.
#[napi(string_enum = "camelCase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotADirectory,
    Io,
    BadNpy,
    UnsupportedDtype,
    Damaged,
    NotEmpty,
    Index,
    Unavailable,
    Denied,
    Stopped,
    /// A bug: the native core panicked (the process lives on).
    Panic,
}

impl From<cache_core::ErrorKind> for ErrorKind {
    fn from(kind: cache_core::ErrorKind) -> ErrorKind {
        use cache_core::ErrorKind as K;
        match kind {
            K::InvalidArgument => ErrorKind::InvalidArgument,
            K::NotADirectory => ErrorKind::NotADirectory,
            K::Io => ErrorKind::Io,
            K::BadNpy => ErrorKind::BadNpy,
            K::UnsupportedDtype => ErrorKind::UnsupportedDtype,
            K::Damaged => ErrorKind::Damaged,
            K::NotEmpty => ErrorKind::NotEmpty,
            K::Index => ErrorKind::Index,
            K::Unavailable => ErrorKind::Unavailable,
            K::Denied => ErrorKind::Denied,
            K::Stopped => ErrorKind::Stopped,
            // A kind added to the core and not here yet: still an error with its message.
            _ => ErrorKind::Io,
        }
    }
}

/// A failure of the core, as data.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// The file it is about.
    pub path: Option<String>,
    /// The object-store URL it is about.
    pub url: Option<String>,
    /// The OS's error number (negative, as Node gives it), when a system call failed.
    pub errno: Option<i32>,
}

pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into(), path: None, url: None, errno: None }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(ErrorKind::InvalidArgument, message)
    }

    /// The JS error, thrown by a synchronous call or a promise's rejection.
    pub(crate) fn into_js(self, env: &Env) -> Error {
        match self.to_object(env) {
            Ok(error) => Error::from(error.to_unknown()),
            Err(e) => e,
        }
    }

    /// The JS error object: an `Error`, or a `TypeError` for a bad argument,
    /// with this failure's fields as properties.
    fn to_object<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let mut error = if self.kind == ErrorKind::InvalidArgument {
            let mut raw = std::ptr::null_mut();
            let message = env.create_string(&self.message)?;
            // SAFETY: plain napi calls on the JS thread with valid handles.
            check_status!(unsafe {
                napi::sys::napi_create_type_error(env.raw(), std::ptr::null_mut(), message.raw(), &mut raw)
            })?;
            Object::from_raw(env.raw(), raw)
        } else {
            env.create_error(Error::new(Status::GenericFailure, self.message.clone()))?
        };
        error.set("kind", self.kind)?;
        if let Some(path) = &self.path {
            error.set("path", path.as_str())?;
        }
        if let Some(url) = &self.url {
            error.set("url", url.as_str())?;
        }
        if let Some(errno) = self.errno {
            error.set("errno", errno)?;
        }
        Ok(error)
    }
}

impl From<cache_core::Error> for Failure {
    fn from(e: cache_core::Error) -> Failure {
        Failure {
            kind: e.kind().into(),
            message: e.to_string(),
            path: e.path().map(|p| p.to_string_lossy().into_owned()),
            url: e.url().map(str::to_owned),
            errno: e.os_error().and_then(errno_of),
        }
    }
}

impl From<npy_format::Error> for Failure {
    fn from(e: npy_format::Error) -> Failure {
        Failure::from(cache_core::Error::from(e))
    }
}

/// The OS error as Node numbers it (libuv's negative errno on Unix).
fn errno_of(e: &std::io::Error) -> Option<i32> {
    if cfg!(unix) {
        e.raw_os_error().map(|n| -n)
    } else {
        None
    }
}
