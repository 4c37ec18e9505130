//! A cache directory of `.npy` entries that many processes share.
//!
//! Each entry is two files named by its key: `<key>.npy`, a plain NumPy
//! file, and `<key>.json`, its record (what the header cannot say: the
//! result's form and class, the function, when, and digests). Both are
//! written under temporary names and renamed into place, the record last,
//! so a reader that finds the record finds a complete array beside it, and
//! a crash at any moment leaves at worst an entry that reads as a miss.
//! An SQLite index beside them keeps sizes and uses for limits and
//! statistics; the files stay the truth.
//!
//! Modules, from the bottom up: `layout` names every file and opens them
//! safely; `record` and `array_class` say what an entry's record holds and
//! which classes hold which dtypes; `entry_files` writes and reads one
//! entry; `lease` is compute-once; `bookkeeping` keeps the index; `dir`
//! puts them behind [`CacheDir`].

mod array_class;
mod bookkeeping;
mod clock;
mod dir;
mod entry_files;
mod error;
mod fs_kind;
mod host;
mod layout;
mod lease;
mod record;

pub use array_class::{elements_per_item, ArrayClass};
pub use bookkeeping::{PruneReport, Wait, FLUSH_EVERY};
pub use cache_index::{EntryRow, Limits, Totals};
pub use clock::Clock;
pub use dir::{CacheDir, VerifyReport};
pub use entry_files::{ClearReport, Entry, LoadedArray, Lookup, Verify};
pub use error::StoreError;
pub use fs_kind::is_network_fs;
pub use host::tag as host_tag;
pub use layout::{is_cache_file_name, is_key, marks_a_cache, INDEX_FILE};
pub use lease::{Claim, Lease, DEFAULT_STALE_AFTER, MIN_STALE_AFTER};
/// A long job's progress callback: called with `(done, total)` after each
/// step; `Break` stops the job before its next one (it then fails with its
/// `Stopped` error). A `Break` after the last step stops nothing: the job
/// is done, and returns as usual.
pub type Progress<'a> = dyn FnMut(u64, u64) -> std::ops::ControlFlow<()> + 'a;

pub use record::{data_digest, Digest, EntryRecord, NewEntry, RecordProblem, ResultForm, FORMAT, VERIFY_DATA_UP_TO};
