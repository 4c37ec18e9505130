//! The cache directory's layout: every name the cache gives a file, how a
//! name is parsed back, and the one way its files are opened for reading.
//!
//! ```text
//! <key>.npy                                   an entry's array
//! <key>.npz                                   or its arrays, if several
//! <key>.json                                  its record (see `record`)
//! .<key>.<npy|npz|json|lock>.<host>-<pid>-<random>.tmp   a file being written
//! .<key>.lock.broken-<random>.tmp             a stale lease being removed
//! .numpy-func-cache-index.sqlite.<host>-<pid>-<random>.tmp   an index being made
//! .<key>.lock                                 a compute-once lease
//! .numpy-func-cache-index.sqlite[-wal|-shm|-journal]  the index
//! ```
//!
//! Everything else in the directory belongs to someone else and is never
//! touched. The directory may be shared, so what is under these names is
//! data, not trust: [`open_regular`] opens without following links and
//! without blocking, and accepts only regular files.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cache_core::{host, is_key, Error};

/// The index file, hidden beside the entries; SQLite adds `-wal`, `-shm`
/// or `-journal` files next to it.
pub const INDEX_FILE: &str = ".numpy-func-cache-index.sqlite";

/// The index file's own suffix and those of the files SQLite keeps beside it.
pub(crate) const INDEX_SUFFIXES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

/// Which of an entry's files a temporary one becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Array,
    Archive,
    Record,
    Lease,
    /// The block digests of an entry of more than one block.
    Blocks,
}

impl Part {
    fn ext(self) -> &'static str {
        match self {
            Part::Array => "npy",
            Part::Archive => "npz",
            Part::Record => "json",
            Part::Lease => "lock",
            Part::Blocks => "blocks",
        }
    }

    fn from_ext(ext: &str) -> Option<Part> {
        match ext {
            "npy" => Some(Part::Array),
            "npz" => Some(Part::Archive),
            "json" => Some(Part::Record),
            "lock" => Some(Part::Lease),
            "blocks" => Some(Part::Blocks),
            _ => None,
        }
    }
}

/// Who wrote a temporary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Writer<'a> {
    /// A process: its host tag and pid.
    Process { host: &'a str, pid: u32 },
    /// A stale lease renamed aside to be removed.
    Breaker,
    /// A name of the temporary pattern whose writer cannot be told.
    Unknown,
}

/// What a file of the cache directory is, by its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CacheFile<'a> {
    /// An entry's data: its `.npy`, or its `.npz` of several arrays.
    Array(&'a str),
    Record(&'a str),
    /// An entry's block digests (see `cache_core::blocks`).
    Blocks(&'a str),
    Lease(&'a str),
    Temp {
        key: &'a str,
        part: Part,
        writer: Writer<'a>,
    },
    Index,
    /// An empty index made under its own name before it is linked into place.
    IndexTemp(Writer<'a>),
}

impl<'a> CacheFile<'a> {
    /// Parses a name the cache writes; None for any other name.
    pub(crate) fn parse(name: &'a str) -> Option<CacheFile<'a>> {
        if is_index_name(name) {
            return Some(CacheFile::Index);
        }
        if let Some(writer) = name.strip_prefix(INDEX_FILE).and_then(|r| r.strip_prefix('.')?.strip_suffix(".tmp")) {
            return Some(CacheFile::IndexTemp(process_writer(writer)));
        }
        for part in [Part::Array, Part::Archive] {
            if let Some(key) = name.strip_suffix(part.ext()).and_then(|k| k.strip_suffix('.')).filter(|k| is_key(k)) {
                return Some(CacheFile::Array(key));
            }
        }
        if let Some(key) = name.strip_suffix(".json").filter(|k| is_key(k)) {
            return Some(CacheFile::Record(key));
        }
        if let Some(key) = name.strip_suffix(".blocks").filter(|k| is_key(k)) {
            return Some(CacheFile::Blocks(key));
        }
        let hidden = name.strip_prefix('.')?;
        if let Some(key) = hidden.strip_suffix(".lock").filter(|k| is_key(k)) {
            return Some(CacheFile::Lease(key));
        }
        let mut parts = hidden.strip_suffix(".tmp")?.splitn(3, '.');
        let (key, part, writer) = (parts.next()?, parts.next()?, parts.next()?);
        if !is_key(key) {
            return None;
        }
        let part = Part::from_ext(part)?;
        let writer =
            if writer.starts_with("broken-") && part == Part::Lease { Writer::Breaker } else { process_writer(writer) };
        Some(CacheFile::Temp { key, part, writer })
    }

    /// The key of the entry the file belongs to (none for the index).
    pub(crate) fn key(&self) -> Option<&'a str> {
        match *self {
            CacheFile::Array(k) | CacheFile::Record(k) | CacheFile::Blocks(k) | CacheFile::Lease(k) => Some(k),
            CacheFile::Temp { key, .. } => Some(key),
            CacheFile::Index | CacheFile::IndexTemp(_) => None,
        }
    }
}

/// The writer named by `<host>-<pid>-<random>`.
fn process_writer(fields: &str) -> Writer<'_> {
    let mut fields = fields.rsplitn(3, '-');
    let (_random, pid, host) = (fields.next(), fields.next(), fields.next());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid)) => Writer::Process { host, pid },
        _ => Writer::Unknown,
    }
}

fn is_index_name(name: &str) -> bool {
    name.strip_prefix(INDEX_FILE).is_some_and(|rest| INDEX_SUFFIXES.contains(&rest))
}

/// Refuses a string that is not a key before it names any file.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if is_key(key) {
        Ok(())
    } else {
        Err(Error::BadKey { key: key.to_owned() })
    }
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

/// Entry, lease, index and temporary file names this cache writes, and only those.
pub fn is_cache_file_name(name: &str) -> bool {
    CacheFile::parse(name).is_some()
}

/// Whether a file of this name shows that its directory is a cache: the
/// index, or a file of an entry (not a temporary file or lease alone).
pub fn marks_a_cache(name: &str) -> bool {
    name == INDEX_FILE || matches!(CacheFile::parse(name), Some(CacheFile::Array(_) | CacheFile::Record(_)))
}

/// The names an entry's data may have: `<key>.npy`, `<key>.npz`.
pub(crate) fn data_names(key: &str) -> [String; 2] {
    [Part::Array, Part::Archive].map(|part| format!("{key}.{}", part.ext()))
}

/// Which part holds an entry's data: its `.npz` if it is of several arrays.
pub(crate) fn data_part(archive: bool) -> Part {
    if archive {
        Part::Archive
    } else {
        Part::Array
    }
}

/// The name of an entry's record, `<key>.json`.
pub(crate) fn record_name(key: &str) -> String {
    format!("{key}.{}", Part::Record.ext())
}

/// The paths of one cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Callers check the key first (`check_key`): these only join names.
    /// The file of an entry's data: its `.npy`, or with `archive` its `.npz`.
    pub(crate) fn array(&self, key: &str, archive: bool) -> PathBuf {
        self.root.join(format!("{key}.{}", data_part(archive).ext()))
    }

    /// Both names an entry's data may have.
    pub(crate) fn data_files(&self, key: &str) -> [PathBuf; 2] {
        [self.array(key, false), self.array(key, true)]
    }

    pub(crate) fn record(&self, key: &str) -> PathBuf {
        self.root.join(record_name(key))
    }

    /// The file of an entry's block digests, `<key>.blocks`.
    pub(crate) fn blocks(&self, key: &str) -> PathBuf {
        self.root.join(format!("{key}.{}", Part::Blocks.ext()))
    }

    pub(crate) fn lease(&self, key: &str) -> PathBuf {
        self.root.join(format!(".{key}.lock"))
    }

    /// A name no other writer uses, on any host: no writer relies on
    /// `O_EXCL` or locks to keep its temporary file to itself.
    pub(crate) fn temp(&self, key: &str, part: Part) -> PathBuf {
        let (host, pid, random) = (host::tag(), std::process::id(), host::random_u64());
        self.root.join(format!(".{key}.{}.{host}-{pid}-{random:016x}.tmp", part.ext()))
    }

    /// Where a stale lease is renamed before it is removed.
    pub(crate) fn broken_lease(&self, key: &str) -> PathBuf {
        self.root.join(format!(".{key}.lock.broken-{:016x}.tmp", host::random_u64()))
    }

    pub(crate) fn index(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// Where an empty index is made before it is linked into place (unix only).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn index_temp(&self) -> PathBuf {
        let (host, pid, random) = (host::tag(), std::process::id(), host::random_u64());
        self.root.join(format!("{INDEX_FILE}.{host}-{pid}-{random:016x}.tmp"))
    }

    /// The index file and the files SQLite may keep beside it.
    pub(crate) fn index_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        INDEX_SUFFIXES.iter().map(|suffix| self.root.join(format!("{INDEX_FILE}{suffix}")))
    }

    /// The names directly in the directory (none if it does not exist),
    /// with what each is, links not followed.
    pub(crate) fn list(&self) -> Result<Vec<Listed>, Error> {
        let listing = match fs::read_dir(&self.root) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list cache directory", &self.root)(e)),
        };
        let mut out = Vec::new();
        for item in listing {
            let item = item.map_err(Error::io("list cache directory", &self.root))?;
            // file_type() does not follow links: a link named like an entry is a file here.
            let file_type = item.file_type().map_err(Error::io("list cache directory", &self.root))?;
            let name = item.file_name().into_string().ok();
            out.push(Listed { name, is_dir: file_type.is_dir(), is_file: file_type.is_file() });
        }
        Ok(out)
    }
}

/// One name of a listing.
pub(crate) struct Listed {
    /// None when the name is not UTF-8 (never one of the cache's).
    pub name: Option<String>,
    pub is_dir: bool,
    /// A regular file (not a link, FIFO, device or directory).
    pub is_file: bool,
}

/// Opens a file of the cache directory for reading: without following a
/// link (a link is an error, so a planted link cannot point a read outside
/// the cache), without blocking on a FIFO, and only if it is a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    // Windows' O_NOFOLLOW: open a link (or junction) itself, not its
    // target; with backup semantics a directory opens too. The regular-file
    // check below then refuses either.
    #[cfg(windows)]
    {
        use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT};
        std::os::windows::fs::OpenOptionsExt::custom_flags(
            &mut options,
            FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS,
        );
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, meta))
}

/// Whether an error of [`open_regular`] means something other than a
/// regular file is under the name (a link, a directory, a FIFO).
pub(crate) fn is_not_regular(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    e.kind() == io::ErrorKind::InvalidInput
}

/// Reads a whole small file through [`open_regular`]: at most `cap` bytes,
/// and an error if it holds more (what is under a cache name is never read
/// without bound). Also returns the file's metadata as opened.
pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<(Vec<u8>, fs::Metadata)> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} bytes, more than the {cap} allowed", meta.len()),
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    // One byte more than allowed, so a file that grew since the stat is noticed.
    file.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 != meta.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the file changed while being read"));
    }
    Ok((buf, meta))
}

/// Creates `path`, which must not exist, for writing. Readable by all,
/// writable by its owner only (whatever the umask allows beyond that):
/// files are replaced, never changed in place, so no one else needs to
/// write one, and one only its owner can change is safe to map.
pub(crate) fn create_new(path: &Path) -> Result<File, Error> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path).map_err(Error::io("create", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn every_name_the_layout_makes_parses_back_to_its_kind_and_key() {
        let layout = Layout::new(PathBuf::from("/c"));
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(CacheFile::parse(&name(layout.array(KEY, false))), Some(CacheFile::Array(KEY)));
        assert_eq!(CacheFile::parse(&name(layout.array(KEY, true))), Some(CacheFile::Array(KEY)));
        assert_eq!(CacheFile::parse(&name(layout.record(KEY))), Some(CacheFile::Record(KEY)));
        assert_eq!(CacheFile::parse(&name(layout.blocks(KEY))), Some(CacheFile::Blocks(KEY)));
        assert_eq!(CacheFile::parse(&name(layout.lease(KEY))), Some(CacheFile::Lease(KEY)));
        for part in [Part::Array, Part::Archive, Part::Record, Part::Lease, Part::Blocks] {
            let temp = name(layout.temp(KEY, part));
            let tag = host::tag();
            let expected = Writer::Process { host: tag, pid: std::process::id() };
            assert_eq!(CacheFile::parse(&temp), Some(CacheFile::Temp { key: KEY, part, writer: expected }), "{temp}");
        }
        let broken = name(layout.broken_lease(KEY));
        assert_eq!(
            CacheFile::parse(&broken),
            Some(CacheFile::Temp { key: KEY, part: Part::Lease, writer: Writer::Breaker })
        );
        for index in layout.index_files() {
            assert_eq!(CacheFile::parse(&name(index)), Some(CacheFile::Index));
        }
        let writer = Writer::Process { host: host::tag(), pid: std::process::id() };
        assert_eq!(CacheFile::parse(&name(layout.index_temp())), Some(CacheFile::IndexTemp(writer)));
    }

    #[test]
    fn names_are_the_golden_ones() {
        let text = include_str!("../../../test-vectors/layout.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let key = v["key"].as_str().unwrap();
        let layout = Layout::new(PathBuf::from("/c"));
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();
        let d = &v["directory"];
        assert_eq!(name(layout.array(key, false)), d["array"].as_str().unwrap());
        assert_eq!(name(layout.array(key, true)), d["arrays"].as_str().unwrap());
        assert_eq!(name(layout.record(key)), d["record"].as_str().unwrap());
        assert_eq!(name(layout.blocks(key)), d["blocks"].as_str().unwrap());
        assert_eq!(name(layout.lease(key)), d["lease"].as_str().unwrap());
        assert_eq!(INDEX_FILE, d["index"].as_str().unwrap());
    }

    #[test]
    fn names_of_other_patterns_are_not_the_caches() {
        for name in [
            format!("{}.npy", KEY.to_uppercase()),
            format!("{}.npy", &KEY[1..]),
            format!("{KEY}.npx"),
            format!("{KEY}npz"),
            format!(".{KEY}.npy"),
            format!(".{KEY}.txt.h-1-00.tmp"),
            format!(".{}.npy.h-1-00.tmp", &KEY[2..]),
            format!("{INDEX_FILE}-other"),
            "notes.txt".to_owned(),
        ] {
            assert_eq!(CacheFile::parse(&name), None, "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_opener_refuses_links_directories_and_fifos_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"data").unwrap();
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = tmp.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_regular(&file).is_ok());
        assert!(open_regular(&link).is_err());
        assert!(open_regular(tmp.path()).is_err());
        assert!(open_regular(&fifo).is_err());
        assert_eq!(read_capped(&file, 4).unwrap().0, b"data");
        assert!(read_capped(&file, 3).is_err());
    }

    #[cfg(windows)]
    #[test]
    fn the_opener_refuses_links_and_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"data").unwrap();
        assert!(open_regular(&file).is_ok());
        assert!(is_not_regular(&open_regular(tmp.path()).unwrap_err()), "a directory is not a regular file");
        assert_eq!(read_capped(&file, 4).unwrap().0, b"data");
        // Creating links takes a privilege (administrators, developer mode),
        // and wine makes ones that resolve nowhere: test only a working link.
        let link = tmp.path().join("l");
        let works = |l: &std::path::Path| fs::symlink_metadata(l).is_ok_and(|m| m.file_type().is_symlink());
        if std::os::windows::fs::symlink_file(&file, &link).is_ok() && works(&link) {
            assert!(is_not_regular(&open_regular(&link).unwrap_err()));
        } else {
            eprintln!("no working file link could be made here: the link case is not tested");
        }
        let dir_link = tmp.path().join("d");
        if std::os::windows::fs::symlink_dir(tmp.path(), &dir_link).is_ok() && works(&dir_link) {
            assert!(is_not_regular(&open_regular(&dir_link).unwrap_err()));
        }
    }
}
