//! One directory's entries: each is two files, `<key>.npy` (or `<key>.npz`
//! of several arrays) and its record `<key>.json`, read and judged together. `EntryFiles` holds the layout
//! and the memory of what was last read (`memo`); reading, writing,
//! verifying and tidying are the modules beside this one.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use cache_core::record::MAX_RECORD_LEN;
use cache_core::{EntryRecord, Error, Place, RecordProblem};

use crate::layout::{self, Layout};
use crate::memo::{FileStamp, Memo};

#[derive(Debug)]
pub(crate) struct EntryFiles {
    pub(crate) layout: Layout,
    memo: Mutex<Memo>,
    /// How many hits checked all their data because of an earlier boot: for tests.
    pub(crate) boot_checks: AtomicU64,
}

/// Why a record could not be used.
pub(crate) enum RecordRead {
    Missing,
    /// A record of another format: older (outdated) or newer (another version's).
    OtherVersion {
        newer: bool,
    },
    /// Read, and not a record: something else is under its name.
    Invalid(Error),
    /// Could not be read this time (permissions, descriptors, I/O): says
    /// nothing about the entry, which must not be removed for it.
    Unreadable(Error),
}

impl EntryFiles {
    pub(crate) fn new(layout: Layout) -> EntryFiles {
        EntryFiles { layout, memo: Mutex::default(), boot_checks: AtomicU64::new(0) }
    }

    pub(crate) fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        cache_core::lock(&self.memo)
    }

    /// The record of `key`: from memory while its file is the one last read
    /// (same identity, size and times), else read from disk. One stat
    /// instead of open, read and close on repeated hits.
    pub(crate) fn read_record(&self, key: &str) -> Result<Arc<EntryRecord>, RecordRead> {
        let path = self.layout.record(key);
        let failed = |e: io::Error| {
            // Too large, or not a regular file: not a record at all.
            let invalid = e.kind() == io::ErrorKind::FileTooLarge || layout::is_not_regular(&e);
            let error =
                Error::Damaged { place: Place::File(path.clone()), reason: format!("could not read its record: {e}") };
            if invalid {
                RecordRead::Invalid(error)
            } else {
                RecordRead::Unreadable(error)
            }
        };
        let stat = match fs::symlink_metadata(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RecordRead::Missing),
            Err(e) => return Err(failed(e)),
        };
        if let Some(memoized) = self.memo().entries.get(key) {
            if memoized.stamp == FileStamp::of(&stat) {
                return Ok(memoized.record.clone());
            }
        }
        let (bytes, stat) = match layout::read_capped(&path, MAX_RECORD_LEN) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RecordRead::Missing),
            Err(e) => return Err(failed(e)),
        };
        let record = match EntryRecord::decode(&bytes) {
            Ok(r) => Arc::new(r),
            Err(RecordProblem::Older(_)) => return Err(RecordRead::OtherVersion { newer: false }),
            Err(RecordProblem::Newer(_)) => return Err(RecordRead::OtherVersion { newer: true }),
            Err(problem) => {
                return Err(RecordRead::Invalid(Error::Damaged {
                    place: Place::File(path.clone()),
                    reason: problem.to_string(),
                }))
            }
        };
        self.memo().insert(key, FileStamp::of(&stat), record.clone());
        Ok(record)
    }

    /// Whether both files of `key` are there as regular files and the
    /// record is one of this version.
    pub(crate) fn exists(&self, key: &str) -> bool {
        let is_file = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        self.read_record(key).is_ok_and(|r| is_file(&self.layout.array(key, r.result.is_archive())))
    }

    /// Removes an entry's files, the record first (its absence makes a
    /// miss). Keys may come from the index, which anyone who can write the
    /// directory can edit: one that is not a key never names a file.
    pub(crate) fn unlink(&self, key: &str) -> Result<(), Error> {
        if layout::check_key(key).is_err() {
            return Ok(());
        }
        self.memo().remove(key);
        let [npy, npz] = self.layout.data_files(key);
        for path in [self.layout.record(key), npy, npz, self.layout.blocks(key)] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io("remove", &path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// What tells the record of `key` from a replaced one, if it is there:
    /// a store judges the entry by it, and places its own only while the
    /// record is still the one judged.
    pub(crate) fn record_stamp(&self, key: &str) -> Option<FileStamp> {
        fs::symlink_metadata(self.layout.record(key)).ok().map(|m| FileStamp::of(&m))
    }

    /// Whether `key` holds an entry of a newer format, which a store of
    /// this version must leave to the version that wrote it.
    pub(crate) fn is_newer(&self, key: &str) -> bool {
        matches!(self.read_record(key), Err(RecordRead::OtherVersion { newer: true }))
    }
}
