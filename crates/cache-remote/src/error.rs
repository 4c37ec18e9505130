//! How the store's failures become the cache's errors: refused
//! credentials are `Denied` (never retried, never fail-open), anything
//! else the client gave up on is `Unavailable`. The store's own error is
//! kept as the source.

use cache_core::Error;

/// `e`, from `action` on the store at `location`.
pub(crate) fn of(location: &str, action: &'static str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::Unauthenticated { source, .. } | object_store::Error::PermissionDenied { source, .. } => {
            Error::Denied { location: location.to_owned(), source }
        }
        e => Error::Unavailable { location: location.to_owned(), action, source: Box::new(e) },
    }
}

/// A location or setting this build cannot use.
pub(crate) fn config(message: String) -> Error {
    Error::InvalidArgument { message }
}
