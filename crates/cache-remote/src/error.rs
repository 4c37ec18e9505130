//! What can go wrong with the object store, saying where and what.

use std::fmt;

#[derive(Debug)]
pub enum RemoteError {
    /// The location or a setting is not one this build can use.
    Config(String),
    /// The store refused the credentials or the permission (HTTP 401/403):
    /// retrying cannot help, so it is not retried.
    Denied { location: String, detail: String },
    /// The store could not be reached, timed out or kept failing after
    /// retries (connection refused, 5xx, throttling).
    Unavailable { location: String, action: &'static str, detail: String },
    /// A key that is not 64 lower-case hex digits.
    BadKey(String),
    /// The array could not be encoded or held in memory.
    Npy(npy_format::Error),
    /// The caller's progress callback asked the work to stop; what was done stays done.
    Stopped,
}

impl RemoteError {
    /// `e`, from `action` on the store at `location`.
    pub(crate) fn of(location: &str, action: &'static str, e: object_store::Error) -> RemoteError {
        match e {
            object_store::Error::Unauthenticated { source, .. }
            | object_store::Error::PermissionDenied { source, .. } => {
                RemoteError::Denied { location: location.to_owned(), detail: source.to_string() }
            }
            e => RemoteError::Unavailable { location: location.to_owned(), action, detail: e.to_string() },
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::Config(why) => f.write_str(why),
            RemoteError::Denied { location, detail } => write!(
                f,
                "the object store at {location} refused this request's credentials or permissions \
                 (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and the bucket's policy): {detail}"
            ),
            RemoteError::Unavailable { location, action, detail } => {
                write!(f, "could not {action} at {location}: {detail}")
            }
            RemoteError::BadKey(key) => write!(f, "{key:?} is not a cache key (64 lower-case hex digits)"),
            RemoteError::Npy(e) => write!(f, "{e}"),
            RemoteError::Stopped => f.write_str("stopped before it was done, as asked"),
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoteError::Npy(e) => Some(e),
            _ => None,
        }
    }
}

impl From<npy_format::Error> for RemoteError {
    fn from(e: npy_format::Error) -> RemoteError {
        RemoteError::Npy(e)
    }
}
