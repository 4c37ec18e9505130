//! What a directory remembers of what it read: each entry's record, while
//! its file is unchanged, and a small array's data, served again without
//! reading it while both files stay the ones read.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cache_core::{Entry, EntryRecord, Error, LoadedArray, Lookup, Place};
use npy_format::{ByteOrder, Header, NpyArray};

/// Records kept in memory at most (a few hundred bytes each): enough that
/// a process hitting 100,000 distinct entries reads each record once.
pub(crate) const RECORD_MEMO_LIMIT: usize = 100_000;

/// Arrays of at most this many bytes are kept in memory with their record
/// after a checked read: a repeated hit is one `lstat` of each file and a
/// copy, not an open, read, close and digest.
pub(crate) const KEEP_UP_TO: usize = 64 * 1024;

/// The kept arrays hold at most this much data in all.
const KEPT_BYTES_LIMIT: usize = 64 << 20;

/// What tells a file from a rewritten or replaced one without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    id: (u64, u64, i64, i64),
}

impl FileStamp {
    pub(crate) fn of(m: &fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            // Device, inode and change time: a rename over the file or any write changes one.
            #[cfg(unix)]
            id: (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()),
        }
    }

    /// The stamp as text, as the index keeps it.
    pub(crate) fn text(&self) -> String {
        let modified = self.modified.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_nanos());
        #[cfg(unix)]
        return format!("{} {modified:?} {:?}", self.len, self.id);
        #[cfg(not(unix))]
        return format!("{} {modified:?}", self.len);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Memo {
    pub(crate) entries: HashMap<String, Memoized>,
    /// Bytes of data in all the kept arrays.
    kept_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Memoized {
    /// The record file's stamp when read.
    pub(crate) stamp: FileStamp,
    pub(crate) record: Arc<EntryRecord>,
    kept: Option<Arc<KeptArray>>,
    /// The stamp of an array file whose data was checked whole against
    /// this record in this boot (see `read`'s check of earlier boots).
    checked: Option<FileStamp>,
}

/// A small array as a checked read found it, with the stamp of the file it
/// was read from: while the file keeps that stamp, it holds these bytes.
#[derive(Debug)]
struct KeptArray {
    stamp: FileStamp,
    header: Header,
    stored_order: ByteOrder,
    data: Box<[u8]>,
}

impl Memo {
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.kept_bytes -= old.kept.map_or(0, |k| k.data.len());
        }
    }

    /// Memoizes a record just read (its array is kept later, by `keep`).
    pub(crate) fn insert(&mut self, key: &str, stamp: FileStamp, record: Arc<EntryRecord>) {
        self.remove(key);
        if self.entries.len() >= RECORD_MEMO_LIMIT {
            // Drop one arbitrary entry: clearing all would make a working
            // set just over the limit miss every time.
            if let Some(old) = self.entries.keys().next().cloned() {
                self.remove(&old);
            }
        }
        self.entries.insert(key.to_owned(), Memoized { stamp, record, kept: None, checked: None });
    }

    /// Whether the array file of `stamp` was checked whole against `record`.
    pub(crate) fn is_checked(&self, key: &str, record: &Arc<EntryRecord>, stamp: &FileStamp) -> bool {
        self.entries.get(key).is_some_and(|m| Arc::ptr_eq(&m.record, record) && m.checked.as_ref() == Some(stamp))
    }

    /// Notes that the array file of `stamp` was checked whole against `record`.
    pub(crate) fn set_checked(&mut self, key: &str, record: &Arc<EntryRecord>, stamp: FileStamp) {
        if let Some(m) = self.entries.get_mut(key).filter(|m| Arc::ptr_eq(&m.record, record)) {
            m.checked = Some(stamp);
        }
    }
}

/// A file's times may tick this coarsely (some kernels' timestamps move
/// once per scheduler tick): a file changed more recently than this could
/// be replaced within the same tick, and an inode reused at once, with an
/// identical stamp.
const STAMP_TICK: Duration = Duration::from_millis(100);

/// Whether `meta`'s file changed within [`STAMP_TICK`] of now (or in the
/// future): its stamp cannot yet stand for its contents, so it is not kept
/// (git calls such files racily clean).
fn changed_lately(meta: &fs::Metadata) -> bool {
    let now = SystemTime::now();
    let recent = |t: SystemTime| now.duration_since(t).map_or(true, |age| age < STAMP_TICK);
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        let ctime = u64::try_from(meta.ctime()).ok().map(|s| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(s) + Duration::from_nanos(meta.ctime_nsec().max(0) as u64)
        });
        ctime.is_none_or(recent)
    };
    #[cfg(not(unix))]
    let changed = false;
    changed || meta.modified().map_or(true, recent)
}

impl Memo {
    /// What is kept of `key`: its record's stamp and record, and its array.
    /// Cloned, so the lock is not held while the files are looked at.
    pub(crate) fn kept(&self, key: &str) -> Option<Kept> {
        let memoized = self.entries.get(key)?;
        Some(Kept {
            record_stamp: memoized.stamp.clone(),
            record: memoized.record.clone(),
            array: memoized.kept.clone()?,
        })
    }

    /// Keeps a small array just read and checked beside its record, if the
    /// record in memory is still the one it was checked against.
    pub(crate) fn keep<B: AsRef<[u8]>>(
        &mut self,
        key: &str,
        record: &Arc<EntryRecord>,
        meta: &fs::Metadata,
        read: &NpyArray<B>,
    ) {
        if changed_lately(meta) {
            return;
        }
        let data = read.data.as_ref();
        let Memo { entries, kept_bytes } = self;
        let Some(memoized) = entries.get_mut(key).filter(|m| Arc::ptr_eq(&m.record, record)) else {
            return;
        };
        // What was kept before is of an older file: replaced, or dropped if this one does not fit.
        *kept_bytes -= memoized.kept.take().map_or(0, |k| k.data.len());
        if *kept_bytes + data.len() > KEPT_BYTES_LIMIT {
            return;
        }
        *kept_bytes += data.len();
        memoized.kept = Some(Arc::new(KeptArray {
            stamp: FileStamp::of(meta),
            header: read.header.clone(),
            stored_order: read.stored_order,
            data: data.into(),
        }));
    }

    pub(crate) fn kept_arrays(&self) -> usize {
        self.entries.values().filter(|m| m.kept.is_some()).count()
    }
}

/// A small array kept in memory, and the record it was checked against.
pub(crate) struct Kept {
    record_stamp: FileStamp,
    record: Arc<EntryRecord>,
    array: Arc<KeptArray>,
}

impl Kept {
    /// The hit it serves, if both files are still the ones it and its
    /// record were read from: one `lstat` each. A store renames new files
    /// over both; a write in place changes a file's times.
    pub(crate) fn hit<B: AsMut<[u8]>>(
        self,
        record_path: &Path,
        array_path: &Path,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Option<Lookup<B>> {
        let unchanged =
            |path: &Path, stamp: &FileStamp| fs::symlink_metadata(path).is_ok_and(|m| FileStamp::of(&m) == *stamp);
        if !unchanged(record_path, &self.record_stamp) || !unchanged(array_path, &self.array.stamp) {
            return None;
        }
        let kept = &self.array;
        let mut data = match alloc(kept.data.len()) {
            Ok(data) => data,
            Err(e) => {
                let place = Place::File(array_path.to_owned());
                return Some(Lookup::Damaged(Error::Damaged { place, reason: e.to_string() }));
            }
        };
        data.as_mut().copy_from_slice(&kept.data);
        let array = NpyArray { header: kept.header.clone(), data, stored_order: kept.stored_order };
        Some(Lookup::Hit(Entry { array: LoadedArray::Read(array), record: self.record, members: vec![] }))
    }
}
