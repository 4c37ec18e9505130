//! Errors as JS sees them: an `Error` (a `TypeError` for a bad argument)
//! with a stable `code` (`ERR_NFC_...`), `path` when a file is concerned,
//! and `errno` (negative, as Node gives it) when a system call failed, so
//! the TS layer can add the OS's own code (`ENOSPC`, `EACCES`).

use napi::bindgen_prelude::*;

use cache_store::StoreError;

/// The stable codes; the README lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArg,
    NotADirectory,
    Io,
    BadNpy,
    UnsupportedDtype,
    DamagedEntry,
    NotEmpty,
    Index,
    RemoteUnavailable,
    RemoteDenied,
    Aborted,
    Panic,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArg => "ERR_NFC_INVALID_ARG",
            Code::NotADirectory => "ERR_NFC_NOT_A_DIRECTORY",
            Code::Io => "ERR_NFC_IO",
            Code::BadNpy => "ERR_NFC_BAD_NPY",
            Code::UnsupportedDtype => "ERR_NFC_UNSUPPORTED_DTYPE",
            Code::DamagedEntry => "ERR_NFC_DAMAGED_ENTRY",
            Code::NotEmpty => "ERR_NFC_NOT_EMPTY",
            Code::Index => "ERR_NFC_INDEX",
            Code::RemoteUnavailable => "ERR_NFC_REMOTE_UNAVAILABLE",
            Code::RemoteDenied => "ERR_NFC_REMOTE_DENIED",
            Code::Aborted => "ERR_NFC_ABORTED",
            Code::Panic => "ERR_NFC_PANIC",
        }
    }
}

/// A failure on its way to JS; it can cross threads, and becomes a JS
/// error object on the JS thread.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    message: String,
    path: Option<String>,
    errno: Option<i32>,
}

pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), path: None, errno: None }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(Code::InvalidArg, message)
    }

    /// The JS error: thrown by a synchronous call, or a task's rejection.
    pub(crate) fn into_js(self, env: &Env) -> Error {
        match self.to_object(env) {
            Ok(error) => Error::from(error.to_unknown()),
            Err(e) => e,
        }
    }

    /// The JS error object, to pass as a value.
    pub(crate) fn to_object<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let mut error = if self.code == Code::InvalidArg {
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
        error.set("code", self.code.as_str())?;
        if let Some(path) = &self.path {
            error.set("path", path.as_str())?;
        }
        if let Some(errno) = self.errno {
            error.set("errno", errno)?;
        }
        Ok(error)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        let code = match &e {
            StoreError::NotADirectory(_) => Code::NotADirectory,
            StoreError::BadKey(_) | StoreError::NameTooLong { .. } => Code::InvalidArg,
            StoreError::Io { .. } => Code::Io,
            StoreError::Npy(inner) => return Failure::from_npy(inner, e.to_string()),
            StoreError::Damaged { .. } => Code::DamagedEntry,
            StoreError::NotEmpty { .. } => Code::NotEmpty,
            StoreError::Index(_) => Code::Index,
            StoreError::Stopped => Code::Aborted,
        };
        Failure {
            code,
            message: e.to_string(),
            path: e.path().map(|p| p.to_string_lossy().into_owned()),
            errno: e.os_error().and_then(errno_of),
        }
    }
}

impl From<cache_remote::RemoteError> for Failure {
    fn from(e: cache_remote::RemoteError) -> Failure {
        use cache_remote::RemoteError as R;
        let code = match &e {
            R::Config(_) | R::BadKey(_) => Code::InvalidArg,
            R::Denied { .. } => Code::RemoteDenied,
            R::Unavailable { .. } => Code::RemoteUnavailable,
            R::Npy(inner) => return Failure::from_npy(inner, e.to_string()),
            R::Stopped => Code::Aborted,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<npy_format::Error> for Failure {
    fn from(e: npy_format::Error) -> Failure {
        let message = e.to_string();
        Failure::from_npy(&e, message)
    }
}

impl Failure {
    fn from_npy(e: &npy_format::Error, message: String) -> Failure {
        let (code, errno) = match e.root() {
            npy_format::Error::Io { source, .. } => (Code::Io, errno_of(source)),
            npy_format::Error::UnsupportedDtype { .. } => (Code::UnsupportedDtype, None),
            _ => (Code::BadNpy, None),
        };
        Failure { code, message, path: e.path().map(|p| p.to_string_lossy().into_owned()), errno }
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
