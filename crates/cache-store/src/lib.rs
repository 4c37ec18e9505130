//! The directory tier: a cache directory of `.npy` entries that many
//! processes share.
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
//! safely; `files` holds an entry's two files and `memo` what was last read
//! of them; `read`, `write`, `verify` and `tidy` are what is done with
//! them; `lease` is compute-once; `bookkeeping` keeps the index; `dir`
//! puts them behind [`CacheDir`], and `tier` makes it a
//! [`cache_core::Tier`].

#![warn(unreachable_pub)]

mod bookkeeping;
mod dir;
mod files;
mod fs_kind;
mod layout;
mod lease;
mod memo;
mod ranges;
mod read;
mod tidy;
mod tier;
mod verify;
mod write;

pub use bookkeeping::FLUSH_EVERY;
pub use dir::CacheDir;
pub use fs_kind::is_network_fs;
pub use layout::{is_cache_file_name, marks_a_cache, INDEX_FILE};
pub use read::Verify;
