//! The vocabulary every tier of the cache shares, and the contract each
//! implements.
//!
//! A tier keeps entries: a `.npy` array and its record (form, class,
//! function, digests). The directory (`cache-store`), the object store
//! (`cache-remote`) and a directory in front of a store (`cache-tiered`)
//! are tiers; bindings (`binding/` for Node) hold one `Arc<dyn Tier>` and
//! never ask which.
//!
//! Modules: [`record`] and [`array_class`], an entry's record and the
//! classes that hold each dtype; [`entry`], an entry as loaded; [`books`],
//! limits and reports; [`lease`], compute-once leases and their holders;
//! [`progress`], long jobs' reports and stopping; [`notes`], what an
//! operation got past; [`error`]; [`clock`] and [`host`]; [`runtime`],
//! where operations run; [`tier`], the contract.

#![warn(unreachable_pub)]

pub mod array_class;
pub mod blocks;
pub mod books;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod content;
pub mod draft;
pub mod entry;
pub mod error;
pub mod host;
pub mod lease;
pub mod notes;
pub mod opened;
pub mod progress;
pub mod record;
pub mod runtime;
pub mod tier;

pub use array_class::{elements_per_item, ArrayClass};
pub use books::{ClearReport, EntryRow, Limits, MemberRow, PruneReport, Stored, Totals, VerifyReport, Wait};
pub use cache_key::{is_key, is_key_prefix, Key};
pub use clock::Clock;
pub use content::{open_archive, Content, NewArchive};
pub use draft::{Draft, Filled};
pub use entry::{zeroed, Alloc, Buffer, Entry, Filling, LoadedArray, Lookup};
pub use error::{Error, ErrorKind, Place, Result, Source};
pub use lease::{Claim, Holder, Lease, LeaseHandle, Refreshed};
pub use notes::{Note, NoteKind, Notes};
pub use opened::{Found, OpenedEntry, RangeSource};
pub use progress::Progress;
pub use record::{data_digest, Digest, EntryRecord, MemberForm, NewEntry, RecordProblem, ResultForm};
pub use runtime::{block_on, blocking, runtime};
pub use tier::{NewArray, OnDisk, Tier};

/// Locks a mutex whose holder may have panicked: every lock here guards
/// state that is whole between statements, so a poisoned one is still good.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The key written as `s`, or an error naming it.
pub fn key_of(s: &str) -> Result<Key> {
    Key::parse(s).ok_or_else(|| Error::BadKey { key: s.to_owned() })
}
