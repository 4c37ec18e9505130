//! An entry's two files: written under temporary names and renamed into
//! place, read back through the hardened opener and checked against each
//! other; and the tidying of files that do not form entries.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cache_index::EntryRow;
use npy_format::{AlignedBuf, ByteOrder, Header, MappedNpy, NpyArray};

use crate::clock::us_since_epoch;
use crate::fs_kind;
use crate::host;
use crate::layout::{self, CacheFile, Layout, Part, Writer};
use crate::lease;
use crate::record::{self, EntryRecord, NewEntry, RecordProblem, MAX_RECORD_LEN, VERIFY_DATA_UP_TO};
use crate::StoreError;

/// What `clear` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClearReport {
    pub removed_files: usize,
    pub removed_dir: bool,
    /// Files and directories the cache did not write, left in place.
    pub foreign: usize,
}

/// A stored entry read back and checked; a read array's data is in memory
/// of type `B` (see [`CacheDir::load_into`](crate::CacheDir::load_into)).
#[derive(Debug)]
pub struct Entry<B = AlignedBuf> {
    pub array: LoadedArray<B>,
    pub record: Arc<EntryRecord>,
}

/// An entry's array: read into memory of its own, or mapped from its file.
#[derive(Debug)]
pub enum LoadedArray<B = AlignedBuf> {
    Read(NpyArray<B>),
    Mapped(MappedNpy),
}

impl<B: AsRef<[u8]>> LoadedArray<B> {
    pub fn header(&self) -> &Header {
        match self {
            LoadedArray::Read(a) => &a.header,
            LoadedArray::Mapped(m) => &m.header,
        }
    }

    pub fn data(&self) -> &[u8] {
        match self {
            LoadedArray::Read(a) => a.data.as_ref(),
            LoadedArray::Mapped(m) => m.data(),
        }
    }

    fn stored_order(&self) -> ByteOrder {
        match self {
            LoadedArray::Read(a) => a.stored_order,
            // Only native-order data is mapped.
            LoadedArray::Mapped(_) => ByteOrder::NATIVE,
        }
    }
}

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Lookup<B = AlignedBuf> {
    Hit(Entry<B>),
    /// No entry, only part of one (an interrupted store), or one written
    /// by another version of the cache.
    Miss,
    /// Files are there but do not form an entry; the caller recomputes and
    /// the store replaces them.
    Damaged(StoreError),
}

/// Which data a load checks against its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Data up to `VERIFY_DATA_UP_TO` (a large entry's header is always checked).
    #[default]
    Small,
    /// All data, whatever its size: a large load costs a hash of it too.
    All,
}

/// What the check of one entry found.
#[derive(Debug)]
pub(crate) enum Checked {
    Whole,
    Damaged(String),
    /// Gone, or not an entry of this version: nothing to say of it.
    NotAnEntry,
}

/// Records kept in memory at most (a few hundred bytes each): enough that
/// a process hitting 100,000 distinct entries reads each record once.
const RECORD_MEMO_LIMIT: usize = 100_000;

/// Arrays of at most this many bytes are kept in memory with their record
/// after a checked read: a repeated hit is one `lstat` of each file and a
/// copy, not an open, read, close and digest.
const KEEP_UP_TO: usize = 64 * 1024;

/// The kept arrays hold at most this much data in all.
const KEPT_BYTES_LIMIT: usize = 64 << 20;

/// Temporary files of another host (whose processes cannot be checked) are
/// leftovers after this long.
const FOREIGN_TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Stale leases are renamed aside and removed at once; a minute covers the gap.
const BROKEN_LEASE_MAX_AGE: Duration = Duration::from_secs(60);

/// What tells a file from a rewritten or replaced one without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    id: (u64, u64, i64, i64),
}

impl FileStamp {
    fn of(m: &fs::Metadata) -> FileStamp {
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
}

/// The entries' files of one directory, and the records last read.
#[derive(Debug)]
pub(crate) struct EntryFiles {
    pub(crate) layout: Layout,
    memo: Mutex<Memo>,
}

/// What was last read of each entry: its record, and a small array's data.
#[derive(Debug, Default)]
struct Memo {
    entries: HashMap<String, Memoized>,
    /// Bytes of data in all the kept arrays.
    kept_bytes: usize,
}

#[derive(Debug)]
struct Memoized {
    /// The record file's stamp when read.
    stamp: FileStamp,
    record: Arc<EntryRecord>,
    kept: Option<Arc<KeptArray>>,
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
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.kept_bytes -= old.kept.map_or(0, |k| k.data.len());
        }
    }

    /// Memoizes a record just read (its array is kept later, by `keep`).
    fn insert(&mut self, key: &str, stamp: FileStamp, record: Arc<EntryRecord>) {
        self.remove(key);
        if self.entries.len() >= RECORD_MEMO_LIMIT {
            // Drop one arbitrary entry: clearing all would make a working
            // set just over the limit miss every time.
            if let Some(old) = self.entries.keys().next().cloned() {
                self.remove(&old);
            }
        }
        self.entries.insert(key.to_owned(), Memoized { stamp, record, kept: None });
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

/// How an entry is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    /// Map the array where it can be used in place.
    pub(crate) map: bool,
    pub(crate) verify: Verify,
    /// Keep small arrays in memory and serve repeated hits from there.
    pub(crate) keep: bool,
}

/// Why a record could not be used.
enum RecordRead {
    Missing,
    /// A record of another format: older (outdated) or newer (another version's).
    OtherVersion {
        newer: bool,
    },
    /// Read, and not a record: something else is under its name.
    Invalid(StoreError),
    /// Could not be read this time (permissions, descriptors, I/O): says
    /// nothing about the entry, which must not be removed for it.
    Unreadable(StoreError),
}

/// An entry written under temporary names, not yet in place. Dropping it
/// unplaced removes its files.
pub(crate) struct Prepared<'a> {
    files: &'a EntryFiles,
    key: &'a str,
    temp_array: PathBuf,
    temp_record: PathBuf,
    pub(crate) row: EntryRow,
    placed: bool,
}

impl Prepared<'_> {
    /// Renames the files into place: the array, then the record, whose
    /// presence is what makes an entry a hit.
    pub(crate) fn place(&self) -> Result<(), StoreError> {
        let (array, record) = (self.files.layout.array(self.key), self.files.layout.record(self.key));
        fs::rename(&self.temp_array, &array).map_err(StoreError::io("rename into place", &array))?;
        fs::rename(&self.temp_record, &record).map_err(StoreError::io("rename into place", &record))
    }

    pub(crate) fn placed(mut self) {
        self.placed = true;
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.temp_array);
            let _ = fs::remove_file(&self.temp_record);
        }
    }
}

impl EntryFiles {
    pub(crate) fn new(layout: Layout) -> EntryFiles {
        EntryFiles { layout, memo: Mutex::default() }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the entry of `key` (a checked key): its record, then its
    /// array, checked against its own header, the file length and the
    /// record. The array is mapped where it can be used in place if
    /// `how.map`, else read into memory from `alloc`, or copied from memory
    /// if it is a small one kept from an earlier read of the same file.
    pub(crate) fn read<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        key: &str,
        how: Reading,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Lookup<B> {
        match self.read_once(key, how, alloc) {
            // A store of this key may have replaced the array between our
            // reads of the record and the array: read both once more.
            Lookup::Damaged(_) => self.read_once(key, how, alloc),
            lookup => lookup,
        }
    }

    fn read_once<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        key: &str,
        how: Reading,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Lookup<B> {
        let Reading { map, verify, keep } = how;
        let path = self.layout.array(key);
        let damaged = |reason: String| Lookup::Damaged(StoreError::Damaged { path: path.clone(), reason });
        let keep = keep && !map;
        if let Some(hit) = keep.then(|| self.kept_hit(key, &path, alloc)).flatten() {
            return hit;
        }
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Missing | RecordRead::OtherVersion { .. }) => return Lookup::Miss,
            Err(RecordRead::Invalid(e) | RecordRead::Unreadable(e)) => return Lookup::Damaged(e),
        };
        let (mut file, meta) = match layout::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return damaged(format!("could not open it: {e}")),
        };
        // A file someone else could truncate is read, not mapped: a mapping
        // past a file's end kills the process (SIGBUS).
        let map = map && fs_kind::only_we_write(&meta);
        let mapped = if map { npy_format::map_npy_file(&file, &path) } else { Ok(None) };
        let array = match mapped {
            Ok(Some(m)) => Ok(LoadedArray::Mapped(m)),
            Ok(None) => npy_format::read_npy_file_into(&mut file, &path, &mut *alloc).map(LoadedArray::Read),
            Err(e) => Err(e),
        };
        let array = match array {
            Ok(array) => array,
            Err(e) => return damaged(e.root().to_string()),
        };
        let data = array.data();
        let checked_data = (verify == Verify::All || data.len() <= VERIFY_DATA_UP_TO).then_some(data);
        if let Err(reason) = record.check(array.header(), array.stored_order(), checked_data) {
            self.memo().remove(key);
            return damaged(reason);
        }
        if let LoadedArray::Read(read) = &array {
            if keep && data.len() <= KEEP_UP_TO {
                self.keep(key, &record, &meta, read);
            }
        }
        Lookup::Hit(Entry { array, record })
    }

    /// The hit of a small array kept in memory, if both files are still the
    /// ones it and its record were read from: one `lstat` each. A store
    /// renames new files over both; a write in place changes a file's times.
    fn kept_hit<B: AsMut<[u8]>>(
        &self,
        key: &str,
        path: &Path,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Option<Lookup<B>> {
        let (record_stamp, record, kept) = {
            let memo = self.memo();
            let memoized = memo.entries.get(key)?;
            (memoized.stamp.clone(), memoized.record.clone(), memoized.kept.clone()?)
        };
        let unchanged =
            |path: &Path, stamp: &FileStamp| fs::symlink_metadata(path).is_ok_and(|m| FileStamp::of(&m) == *stamp);
        if !unchanged(&self.layout.record(key), &record_stamp) || !unchanged(path, &kept.stamp) {
            return None;
        }
        let mut data = match alloc(kept.data.len()) {
            Ok(data) => data,
            Err(e) => {
                return Some(Lookup::Damaged(StoreError::Damaged { path: path.to_owned(), reason: e.to_string() }))
            }
        };
        data.as_mut().copy_from_slice(&kept.data);
        let array = NpyArray { header: kept.header.clone(), data, stored_order: kept.stored_order };
        Some(Lookup::Hit(Entry { array: LoadedArray::Read(array), record }))
    }

    /// Keeps a small array just read and checked beside its record, if the
    /// record in memory is still the one it was checked against.
    fn keep<B: AsRef<[u8]>>(&self, key: &str, record: &Arc<EntryRecord>, meta: &fs::Metadata, read: &NpyArray<B>) {
        if changed_lately(meta) {
            return;
        }
        let data = read.data.as_ref();
        let mut memo = self.memo();
        let Memo { entries, kept_bytes } = &mut *memo;
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

    /// The record of `key`: from memory while its file is the one last read
    /// (same identity, size and times), else read from disk. One stat
    /// instead of open, read and close on repeated hits.
    fn read_record(&self, key: &str) -> Result<Arc<EntryRecord>, RecordRead> {
        let path = self.layout.record(key);
        let failed = |e: io::Error| {
            // Too large, or not a regular file: not a record at all.
            let invalid = e.kind() == io::ErrorKind::FileTooLarge || layout::is_not_regular(&e);
            let error = StoreError::Damaged { path: path.clone(), reason: format!("could not read its record: {e}") };
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
                return Err(RecordRead::Invalid(StoreError::Damaged {
                    path: path.clone(),
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
        is_file(&self.layout.array(key)) && self.read_record(key).is_ok()
    }

    /// Whether a load of `key` would hit, without reading a large array:
    /// the record and the array's header and length are checked, and a
    /// small array's data too (as a load checks it).
    pub(crate) fn holds(&self, key: &str) -> bool {
        let Ok(record) = self.read_record(key) else { return false };
        let Ok((file, meta)) = layout::open_regular(&self.layout.array(key)) else { return false };
        if meta.len() <= (VERIFY_DATA_UP_TO + 64 * 1024) as u64 {
            let how = Reading { map: false, verify: Verify::Small, keep: false };
            return matches!(self.read(key, how, &mut AlignedBuf::zeroed), Lookup::Hit(_));
        }
        check_header(&record, BufReader::new(file), &meta).is_ok()
    }

    /// Writes the entry of `key` (a checked key) under temporary names:
    /// the array straight from `data`, hashed meanwhile, then its record.
    pub(crate) fn prepare<'a>(
        &'a self,
        key: &'a str,
        header: &Header,
        data: &[u8],
        entry: &NewEntry,
        now_us: i64,
    ) -> Result<Prepared<'a>, StoreError> {
        let max = (MAX_RECORD_LEN / 4) as usize;
        if entry.function.len() > max {
            return Err(StoreError::NameTooLong { len: entry.function.len(), max });
        }
        let mut prepared = Prepared {
            files: self,
            key,
            temp_array: self.layout.temp(key, Part::Array),
            temp_record: self.layout.temp(key, Part::Record),
            row: EntryRow {
                key: key.to_owned(),
                function: entry.function.to_owned(),
                dtype: header.dtype.descr(),
                shape: header.shape.clone(),
                bytes: 0,
                created: now_us,
                last_used: now_us,
            },
            placed: false,
        };
        let mut array_file = layout::create_new(&prepared.temp_array)?;
        let temp_array = &prepared.temp_array;
        // No fsync: a killed process cannot leave a partial file under a
        // real name, and after an OS crash a short file fails the checks
        // and reads as a miss.
        let (digest, written) = std::thread::scope(|s| {
            // A large array is hashed on another thread while this one writes it.
            let hashing = (data.len() > VERIFY_DATA_UP_TO).then(|| s.spawn(|| record::data_digest(data)));
            let written = npy_format::write_npy_to(&mut array_file, header, data).map_err(|e| match e {
                // A failed write (a full disk) names the file it failed on.
                npy_format::Error::Io { action, source } => {
                    StoreError::Io { action, path: temp_array.to_path_buf(), source }
                }
                e => StoreError::Npy(e),
            });
            let digest = match hashing {
                Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                None => record::data_digest(data),
            };
            (digest, written)
        });
        written?;
        let record = EntryRecord::new(entry, header, digest, crate::clock::time_of_us(now_us)).encode();
        if record.len() as u64 > MAX_RECORD_LEN {
            // (Names are escaped in JSON: the limit is on the record as written.)
            return Err(StoreError::NameTooLong { len: entry.function.len(), max: MAX_RECORD_LEN as usize / 4 });
        }
        let mut record_file = layout::create_new(&prepared.temp_record)?;
        record_file.write_all(&record).map_err(StoreError::io("write", &prepared.temp_record))?;
        let array_len = array_file.metadata().map_err(StoreError::io("inspect", &prepared.temp_array))?.len();
        prepared.row.bytes = array_len + record.len() as u64;
        Ok(prepared)
    }

    /// Removes an entry's files, the record first (its absence makes a
    /// miss). Keys may come from the index, which anyone who can write the
    /// directory can edit: one that is not a key never names a file.
    pub(crate) fn unlink(&self, key: &str) -> Result<(), StoreError> {
        if layout::check_key(key).is_err() {
            return Ok(());
        }
        self.memo().remove(key);
        for path in [self.layout.record(key), self.layout.array(key)] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(StoreError::io("remove", &path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the entry of `key` completely, the data against its digest
    /// included, reading the file in pieces: memory stays small whatever
    /// the entry's size.
    pub(crate) fn check_whole(&self, key: &str) -> Checked {
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Missing | RecordRead::OtherVersion { .. }) => return Checked::NotAnEntry,
            Err(RecordRead::Invalid(e) | RecordRead::Unreadable(e)) => return Checked::Damaged(e.to_string()),
        };
        let path = self.layout.array(key);
        let (file, meta) = match layout::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Checked::NotAnEntry,
            Err(e) => return Checked::Damaged(format!("could not open {}: {e}", path.display())),
        };
        let mut reader = match check_header(&record, BufReader::with_capacity(1 << 20, file), &meta) {
            Ok(reader) => reader,
            Err(reason) => return Checked::Damaged(reason),
        };
        let mut hasher = blake3::Hasher::new();
        if let Err(e) = hasher.update_reader(&mut reader) {
            return Checked::Damaged(format!("could not read {}: {e}", path.display()));
        }
        if *hasher.finalize().as_bytes() != record.data_digest {
            return Checked::Damaged("its data does not match the digest stored with it".to_owned());
        }
        Checked::Whole
    }

    /// The keys of the entries on disk with both files (regular files).
    pub(crate) fn keys_on_disk(&self) -> Result<Vec<String>, StoreError> {
        let names: HashSet<String> =
            self.layout.list()?.into_iter().filter(|l| l.is_file).filter_map(|l| l.name).collect();
        let mut keys: Vec<String> = names
            .iter()
            .filter_map(|n| match CacheFile::parse(n) {
                Some(CacheFile::Record(key)) if names.contains(&layout::array_name(key)) => Some(key.to_owned()),
                _ => None,
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    pub(crate) fn kept_arrays(&self) -> usize {
        self.memo().entries.values().filter(|m| m.kept.is_some()).count()
    }

    pub(crate) fn forget_records(&self) {
        *self.memo() = Memo::default();
    }

    /// The index row of an entry found on disk: `None` if its files do not
    /// form an entry of this version. An entry of an older version, or one
    /// whose record was read and is not a record, is removed (counted in
    /// `removed`); one of a newer version, or whose record this process
    /// cannot read (another user's, say), is left alone. Runs under the
    /// index's write lock, where no store renames files into place.
    pub(crate) fn describe(&self, key: &str, removed: &mut u64) -> Option<EntryRow> {
        let array_path = self.layout.array(key);
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Invalid(_) | RecordRead::OtherVersion { newer: false }) => {
                if self.unlink(key).is_ok() {
                    *removed += 1;
                }
                return None;
            }
            Err(RecordRead::Missing | RecordRead::OtherVersion { newer: true } | RecordRead::Unreadable(_)) => {
                return None
            }
        };
        let (file, array_stat) = layout::open_regular(&array_path).ok()?;
        let (header, _) = npy_format::decode_header(&mut BufReader::new(file)).ok()?;
        let record_stat = fs::symlink_metadata(self.layout.record(key)).ok()?;
        let modified = |m: &fs::Metadata| m.modified().map(us_since_epoch).unwrap_or(0);
        Some(EntryRow {
            key: key.to_owned(),
            function: record.function.clone(),
            dtype: header.dtype.descr(),
            shape: header.shape,
            bytes: array_stat.len() + record_stat.len(),
            created: us_since_epoch(record.created),
            last_used: modified(&record_stat).max(modified(&array_stat)),
        })
    }

    /// Whether `key` holds an entry of a newer format, which a store of
    /// this version must leave to the version that wrote it.
    pub(crate) fn is_newer(&self, key: &str) -> bool {
        matches!(self.read_record(key), Err(RecordRead::OtherVersion { newer: true }))
    }

    /// Lists the keys of complete entries on disk, and removes leftovers
    /// (counted in `removed`): temporary files of processes that are gone,
    /// and halves of entries. Run under the index's write lock only, where
    /// no store renames files into place.
    pub(crate) fn scan(&self, removed: &mut u64) -> Result<Vec<String>, StoreError> {
        let names: Vec<String> = self.layout.list()?.into_iter().filter(|l| l.is_file).filter_map(|l| l.name).collect();
        let present: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut keys = Vec::new();
        let mut remove = |name: &str| {
            if fs::remove_file(self.layout.root().join(name)).is_ok() {
                *removed += 1;
            }
        };
        for name in &names {
            match CacheFile::parse(name) {
                Some(file @ CacheFile::Temp { .. }) if self.is_leftover(&file, name) => remove(name),
                Some(CacheFile::Record(key)) if present.contains(layout::array_name(key).as_str()) => {
                    keys.push(key.to_owned())
                }
                Some(CacheFile::Record(_)) => remove(name),
                Some(CacheFile::Array(key)) if !present.contains(layout::record_name(key).as_str()) => remove(name),
                _ => {}
            }
        }
        Ok(keys)
    }

    /// Whether a file of the cache's is not in use by a running process:
    /// entries always are leftovers in this sense; temporary files only
    /// once their writer is gone (one of this host that no longer runs, or
    /// of another host after a day), leases once they are stale.
    pub(crate) fn is_leftover(&self, file: &CacheFile, name: &str) -> bool {
        let path = self.layout.root().join(name);
        let age = || {
            fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default()
        };
        match file {
            CacheFile::Temp { writer: Writer::Process { host, pid }, .. } if *host == host::tag() => {
                !host::process_alive(*pid)
            }
            CacheFile::Temp { writer: Writer::Breaker, .. } => age() > BROKEN_LEASE_MAX_AGE,
            CacheFile::Temp { .. } => age() > FOREIGN_TEMP_MAX_AGE,
            CacheFile::Lease(_) => lease::is_abandoned(&path),
            CacheFile::Array(_) | CacheFile::Record(_) | CacheFile::Index => true,
        }
    }

    /// Removes the files this cache writes and nothing else: entries (but
    /// those `keep` names), and temporary files and leases of processes no
    /// longer at work (all of them with `remove_dir`); with `index`, the
    /// index files too; then, with `remove_dir`, the directory if it is
    /// empty. Links are removed as links, never followed.
    pub(crate) fn remove_all(
        &self,
        index: bool,
        remove_dir: bool,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<ClearReport, StoreError> {
        let mut report = ClearReport::default();
        // (whether it is a record, path)
        let mut ours = Vec::new();
        for listed in self.layout.list()? {
            let parsed =
                listed.name.as_deref().filter(|_| !listed.is_dir).and_then(|n| Some((n, CacheFile::parse(n)?)));
            match parsed {
                Some((name, CacheFile::Index)) => {
                    if index {
                        ours.push((false, self.layout.root().join(name)))
                    }
                }
                Some((name, file)) => {
                    let gone = remove_dir || self.is_leftover(&file, name);
                    if gone && !file.key().is_some_and(keep) {
                        ours.push((matches!(file, CacheFile::Record(_)), self.layout.root().join(name)))
                    }
                }
                None => report.foreign += 1,
            }
        }
        // Records first: a clear interrupted half way leaves arrays without
        // records (misses), never records without their arrays.
        ours.sort_by_key(|(is_record, _)| !is_record);
        self.forget_records();
        for (_, path) in ours {
            match fs::remove_file(&path) {
                Ok(()) => report.removed_files += 1,
                // Another process removed it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", &path)(e)),
            }
        }
        if remove_dir {
            if report.foreign > 0 {
                return Err(StoreError::NotEmpty { path: self.layout.root().to_path_buf(), remaining: report.foreign });
            }
            match fs::remove_dir(self.layout.root()) {
                Ok(()) => report.removed_dir = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove cache directory", self.layout.root())(e)),
            }
        }
        Ok(report)
    }
}

/// Checks an opened array file against its record without reading its
/// data: the header (against the record's digest, class and form) and the
/// file's length. Returns the reader positioned at the data.
fn check_header(
    record: &EntryRecord,
    mut reader: BufReader<fs::File>,
    meta: &fs::Metadata,
) -> Result<BufReader<fs::File>, String> {
    let (stored, offset) = npy_format::decode_header(&mut reader).map_err(|e| e.to_string())?;
    if stored.data_len().ok().and_then(|len| offset.checked_add(len)) != Some(meta.len()) {
        return Err("its file is not the length its header says".to_owned());
    }
    let header = Header { dtype: stored.dtype.native(), ..stored.clone() };
    record.check(&header, stored.dtype.byte_order, None)?;
    Ok(reader)
}
