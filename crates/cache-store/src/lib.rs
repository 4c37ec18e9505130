//! A cache directory of `.npy` entries.
//!
//! Each entry is two files named by its key: `<key>.npy`, a plain NumPy file,
//! and `<key>.json`, opaque metadata owned by the caller. Both are written to
//! temporary names and renamed into place, the metadata last, so a reader
//! that finds the metadata finds a complete array beside it, and a crash at
//! any moment leaves at worst an entry that reads as a miss.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::fmt;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use npy_format::{Header, MappedNpy, NpyArray};

mod fs_kind;
mod lease;
mod managed;

pub use cache_index::{EntryRow, Limits, Totals};
pub use fs_kind::is_network_fs;
pub use lease::{Claim, Lease};
pub use managed::{PruneReport, Wait};
use managed::{Book, Uses};

/// What went wrong, with the path it went wrong on.
#[derive(Debug)]
pub enum StoreError {
    /// The cache path exists but is not a directory.
    NotADirectory(PathBuf),
    /// A key that is not 64 lower-case hex digits (it would name a file).
    BadKey(String),
    /// An I/O operation failed.
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// The array could not be encoded.
    Npy(npy_format::Error),
    /// `clear(remove_dir)` left the directory because files it did not write remain.
    NotEmpty { path: PathBuf, remaining: usize },
    /// The index of entries could not be read or written.
    Index(cache_index::IndexError),
}

impl From<cache_index::IndexError> for StoreError {
    fn from(e: cache_index::IndexError) -> StoreError {
        StoreError::Index(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotADirectory(p) => {
                write!(f, "cache path {} exists and is not a directory", p.display())
            }
            StoreError::BadKey(k) => write!(f, "cache key {k:?} is not 64 lower-case hex digits"),
            StoreError::Io { action, path, source } => {
                write!(f, "could not {action} {}: {source}", path.display())
            }
            StoreError::Npy(e) => write!(f, "{e}"),
            StoreError::NotEmpty { path, remaining } => write!(
                f,
                "cache directory {} was cleared but not removed: {remaining} file(s) the cache did not write remain in it",
                path.display()
            ),
            StoreError::Index(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Npy(e) => Some(e),
            StoreError::Index(e) => Some(e),
            _ => None,
        }
    }
}

impl StoreError {
    /// The OS error kind behind an I/O failure, for callers that report it.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StoreError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

pub(crate) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// A stored entry read back.
pub struct Entry {
    pub array: LoadedArray,
    pub meta: Arc<[u8]>,
    /// False when `meta` came from memory: the file is the one last read.
    pub meta_read: bool,
}

/// An entry's array: read into memory of its own, or mapped from its file.
#[derive(Debug)]
pub enum LoadedArray {
    Read(NpyArray),
    Mapped(MappedNpy),
}

impl LoadedArray {
    pub fn header(&self) -> &Header {
        match self {
            LoadedArray::Read(a) => &a.header,
            LoadedArray::Mapped(m) => &m.header,
        }
    }

    pub fn data(&self) -> &[u8] {
        match self {
            LoadedArray::Read(a) => a.data.as_slice(),
            LoadedArray::Mapped(m) => m.data(),
        }
    }
}

/// The outcome of a lookup.
pub enum Lookup {
    Hit(Entry),
    /// No entry, or only part of one (an interrupted store).
    Miss,
    /// Files exist but do not read as an entry; the caller recomputes and the store replaces them.
    Damaged(StoreError),
}

/// What `clear` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClearReport {
    pub removed_files: usize,
    pub removed_dir: bool,
    /// Files and directories the cache did not write, left in place.
    pub foreign: usize,
}

/// A cache directory. Creating one touches nothing on disk; the directory is
/// made by the first store.
#[derive(Debug, Clone)]
pub struct CacheDir {
    root: PathBuf,
    /// Metadata last read per key, shared by clones (the async tasks).
    meta_memo: Arc<Mutex<HashMap<String, (FileStamp, Arc<[u8]>)>>>,
    /// The index, shared by clones (the async tasks).
    book: Arc<Mutex<Book>>,
    /// Uses not yet written to the index, shared by clones.
    uses: Arc<Mutex<Uses>>,
    /// Whether the directory is on a network filesystem, once known.
    network: Arc<std::sync::OnceLock<bool>>,
    limits: Limits,
}

/// Metadata files remembered at most (about 300 bytes each): enough that a
/// process hitting 100,000 distinct entries reads each metadata file once.
const META_MEMO_LIMIT: usize = 100_000;

/// What tells a file from a rewritten or replaced one without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
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

const KEY_LEN: usize = 64;

impl CacheDir {
    fn at(root: PathBuf) -> CacheDir {
        CacheDir {
            root,
            meta_memo: Arc::default(),
            book: Arc::default(),
            uses: Arc::default(),
            network: Arc::default(),
            limits: Limits::default(),
        }
    }

    /// The same directory with `limits` applied after each store.
    pub fn with_limits(mut self, limits: Limits) -> CacheDir {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Errors if `root` exists and is not a directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<CacheDir, StoreError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if !m.is_dir() => Err(StoreError::NotADirectory(root)),
            Ok(_) => Ok(CacheDir::at(root)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CacheDir::at(root)),
            Err(e) => Err(io_err("inspect cache path", &root)(e)),
        }
    }

    /// The metadata of `key`: from memory while its file is the one last
    /// read (same identity, size and times), else read from disk. One stat
    /// instead of open, read and close on repeated hits.
    /// Also says whether the bytes were read from disk this time.
    fn read_meta(&self, key: &str, path: &Path) -> io::Result<(Arc<[u8]>, bool)> {
        let stat = fs::symlink_metadata(path)?;
        if !stat.file_type().is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
        }
        let stamp = FileStamp::of(&stat);
        if let Some((seen, bytes)) = self.meta_memo.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            if *seen == stamp {
                return Ok((bytes.clone(), false));
            }
        }
        let file = open_entry_file(path)?;
        let stat = file.metadata()?;
        if !stat.file_type().is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
        }
        let stamp = FileStamp::of(&stat);
        let bytes: Arc<[u8]> = read_small(file, stat.len())?.into();
        let mut memo = self.meta_memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= META_MEMO_LIMIT {
            // Drop one arbitrary entry: clearing all would make a working set
            // just over the limit miss every time.
            if let Some(old) = memo.keys().next().cloned() {
                memo.remove(&old);
            }
        }
        memo.insert(key.to_owned(), (stamp, bytes.clone()));
        Ok((bytes, true))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the `.npy` file of `key`.
    pub fn array_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(format!("{key}.npy")))
    }

    pub(crate) fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(format!("{key}.json"))
    }

    /// Reads the entry of `key`: its metadata, then its array, validated
    /// against its own header and the file length. With `map`, the array is
    /// memory-mapped where it can be used in place, else read.
    pub fn load(&self, key: &str, map: bool) -> Result<Lookup, StoreError> {
        let array_path = self.array_path(key)?;
        let meta_path = self.meta_path(key);
        if self.expire_if_old(key)? {
            return Ok(Lookup::Miss);
        }
        let lookup = self.load_files(key, &array_path, &meta_path, map && !self.on_network_fs())?;
        if let Lookup::Hit(_) = lookup {
            self.note_use(key);
        }
        Ok(lookup)
    }

    fn load_files(&self, key: &str, array_path: &Path, meta_path: &Path, map: bool) -> Result<Lookup, StoreError> {
        let damaged = |action, path: &Path, e| Ok(Lookup::Damaged(io_err(action, path)(e)));
        let (meta, meta_read) = match self.read_meta(key, meta_path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(e) => return damaged("read cache metadata", meta_path, e),
        };
        let mut file = match open_entry_file(array_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(e) => return damaged("read cache entry", array_path, e),
        };
        let mapped = if map { npy_format::map_npy_file(&file, array_path) } else { Ok(None) };
        let array = match mapped {
            Ok(Some(m)) => Ok(LoadedArray::Mapped(m)),
            Ok(None) => npy_format::read_npy_file(&mut file, array_path).map(LoadedArray::Read),
            Err(e) => Err(e),
        };
        Ok(match array {
            Ok(array) => Lookup::Hit(Entry { array, meta, meta_read }),
            Err(e) => Lookup::Damaged(StoreError::Npy(e)),
        })
    }

    /// Writes the entry of `key`, replacing any earlier one. Readers see the
    /// old entry or the new one, never a mix or a partial file.
    /// The files are renamed into place inside an index transaction that
    /// records the entry, and then the cache's limits are applied.
    /// `function` names the entry in the index.
    pub fn store(&self, key: &str, header: &Header, data: &[u8], meta: &[u8], function: &str) -> Result<(), StoreError> {
        let array_path = self.array_path(key)?;
        let meta_path = self.meta_path(key);
        self.ensure_dir()?;
        let tmp_array = self.temp_path(key, "npy");
        let tmp_meta = self.temp_path(key, "json");
        let result = (|| {
            write_new(&tmp_array, |f| npy_format::write_npy_to(f, header, data).map_err(StoreError::Npy))?;
            write_new(&tmp_meta, |f| f.write_all(meta).map_err(io_err("write", &tmp_meta)))?;
            let bytes = file_len(&tmp_array)? + meta.len() as u64;
            let now = managed::now_us();
            let row = EntryRow {
                key: key.to_owned(),
                function: function.to_owned(),
                dtype: header.dtype.descr(),
                shape: managed::shape_json(&header.shape),
                bytes,
                created: now,
                last_used: now,
            };
            self.index_entry(&row, || {
                fs::rename(&tmp_array, &array_path).map_err(io_err("rename into place", &array_path))?;
                // The metadata goes last: its presence is what makes an entry a hit.
                fs::rename(&tmp_meta, &meta_path).map_err(io_err("rename into place", &meta_path))
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_array);
            let _ = fs::remove_file(&tmp_meta);
        }
        result?;
        self.after_store();
        Ok(())
    }

    /// Takes the compute-once lease of `key`, or says who holds it. A lease
    /// unrefreshed for `stale_after` (or whose holder on this host died) is broken.
    pub fn claim(&self, key: &str, stale_after: std::time::Duration) -> Result<Claim, StoreError> {
        check_key(key)?;
        self.ensure_dir()?;
        lease::claim(&self.root, key, stale_after)
    }

    /// Removes the entries and temporary files this cache writes, nothing
    /// else; then, with `remove_dir`, the directory itself if it is empty.
    /// Links are removed as links, never followed.
    /// With `index`, the index files too. Entries whose key `keep` names stay.
    pub(crate) fn clear_files(&self, index: bool, remove_dir: bool, keep: &dyn Fn(&str) -> bool) -> Result<ClearReport, StoreError> {
        let mut report = ClearReport::default();
        let listing = match fs::read_dir(&self.root) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(io_err("list cache directory", &self.root)(e)),
        };
        let mut remaining = 0usize;
        let mut ours = Vec::new();
        for item in listing {
            let item = item.map_err(io_err("list cache directory", &self.root))?;
            let name = item.file_name();
            // file_type() does not follow links, so a link named like an entry is unlinked, not followed.
            let is_dir = item.file_type().map(|t| t.is_dir()).unwrap_or(false);
            match name.to_str() {
                Some(n) if !is_dir && managed::is_index_file_name(n) => {
                    if index {
                        ours.push(item.path())
                    }
                }
                // Temporary files and leases of processes still at work stay, unless the directory goes.
                Some(n) if !is_dir && is_cache_file_name(n) && !remove_dir && !managed::is_leftover(&item.path(), n) => {}
                Some(n) if !is_dir && is_cache_file_name(n) => {
                    if !keep(entry_key(n).unwrap_or("")) {
                        ours.push(item.path())
                    }
                }
                _ => remaining += 1,
            }
        }
        // Metadata first: a clear interrupted half way leaves arrays without
        // metadata (misses), never metadata without its array.
        ours.sort_by_key(|p| p.extension().is_none_or(|e| e != "json"));
        for path in ours {
            match fs::remove_file(&path) {
                Ok(()) => report.removed_files += 1,
                // Another process removed it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        report.foreign = remaining;
        if remove_dir {
            if remaining > 0 {
                return Err(StoreError::NotEmpty { path: self.root.clone(), remaining });
            }
            match fs::remove_dir(&self.root) {
                Ok(()) => report.removed_dir = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove cache directory", &self.root)(e)),
            }
        }
        Ok(report)
    }

    pub(crate) fn ensure_dir(&self) -> Result<(), StoreError> {
        match fs::create_dir_all(&self.root) {
            Ok(()) => Ok(()),
            Err(_) if self.root.exists() && !self.root.is_dir() => {
                Err(StoreError::NotADirectory(self.root.clone()))
            }
            Err(e) => Err(io_err("create cache directory", &self.root)(e)),
        }
    }

    /// `.<key>.<ext>.<host>-<pid>-<random>.tmp`: unique across processes and
    /// hosts sharing one directory, so no writer relies on O_EXCL or locks.
    fn temp_path(&self, key: &str, ext: &str) -> PathBuf {
        self.root.join(format!(".{key}.{ext}.{}-{}-{:016x}.tmp", host_tag(), std::process::id(), random_u64()))
    }
}

/// Entry, lease, index and temporary file names this cache writes, and only those.
pub fn is_cache_file_name(name: &str) -> bool {
    entry_key(name).is_some() || managed::is_index_file_name(name)
}

/// Whether a file of this name shows that its directory is a cache: the
/// index, or a file of an entry (not a temporary file or lease alone).
pub fn marks_a_cache(name: &str) -> bool {
    name == managed::INDEX_FILE || ((name.ends_with(".npy") || name.ends_with(".json")) && entry_key(name).is_some())
}

/// The key an entry, lease or temporary file belongs to.
pub(crate) fn entry_key(name: &str) -> Option<&str> {
    let entry = |s: &str| s.len() == KEY_LEN && s.bytes().all(is_lower_hex);
    if let Some(stem) = name.strip_suffix(".npy").or_else(|| name.strip_suffix(".json")) {
        return entry(stem).then_some(stem);
    }
    if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".lock")) {
        return entry(stem).then_some(stem);
    }
    if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        let mut parts = rest.splitn(3, '.');
        return match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some("npy" | "json" | "lock"), Some(_)) if entry(k) => Some(k),
            _ => None,
        };
    }
    None
}

fn file_len(path: &Path) -> Result<u64, StoreError> {
    fs::metadata(path).map(|m| m.len()).map_err(io_err("inspect", path))
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.len() == KEY_LEN && key.bytes().all(is_lower_hex) {
        Ok(())
    } else {
        Err(StoreError::BadKey(key.to_owned()))
    }
}

fn write_new(path: &Path, body: impl FnOnce(&mut File) -> Result<(), StoreError>) -> Result<(), StoreError> {
    let mut file = File::options().write(true).create_new(true).open(path).map_err(io_err("create", path))?;
    // No fsync: a killed process cannot leave a partial file under a real
    // name, and after an OS crash a short file fails the length check and
    // reads as a miss.
    body(&mut file)
}

/// Opens a file of an entry for reading without following a link (a link
/// is an error, so a planted link cannot point a load outside the cache),
/// and without blocking on a FIFO planted under an entry's name. The readers
/// check that it is a regular file.
pub(crate) fn open_entry_file(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options.open(path)
}

/// Metadata files are small; a larger one is not ours.
const MAX_META_LEN: u64 = 1 << 20;

/// Reads a file of known length, noticing if it is not that length.
pub(crate) fn read_small(file: File, len: u64) -> io::Result<Vec<u8>> {
    if len > MAX_META_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "metadata file is too large"));
    }
    let mut buf = Vec::with_capacity(len as usize + 1);
    // One byte more than expected, so a file that grew is noticed.
    file.take(len + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "metadata file changed while being read"));
    }
    Ok(buf)
}

/// A file's device and inode, where the platform has them.
pub(crate) fn dev_ino(m: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

pub(crate) fn host_tag() -> String {
    let host = gethostname::gethostname();
    let host: String = host.to_string_lossy().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
    if host.is_empty() { "host".to_owned() } else { host }
}

pub(crate) fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per process; the counter makes each call differ.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}
