//! A cache directory: what the rest of the crate does, behind one handle.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cache_core::progress::{self, Progress};
use cache_core::{
    Claim, ClearReport, Clock, Content, Draft, EntryRow, Error, Holder, Key, Limits, Lookup, NewEntry, PruneReport,
    Stored, Totals, VerifyReport, Wait,
};
use npy_format::{AlignedBuf, Header};

use crate::bookkeeping::Bookkeeper;
use crate::files::EntryFiles;
use crate::layout::{check_key, Layout, Part};
use crate::lease;
use crate::read::{Reading, Verify};
use crate::verify::Checked;

/// A cache directory. Opening one touches nothing on disk; the directory
/// is made by the first store. Clones share the bookkeeping and memory of
/// records, so they can go to other threads.
#[derive(Debug, Clone)]
pub struct CacheDir {
    files: Arc<EntryFiles>,
    books: Arc<Bookkeeper>,
    limits: Limits,
    verify: Verify,
    map: bool,
    location: Arc<str>,
    /// This boot, as records note it (`host::boot`; tests set another).
    boot: Option<Arc<str>>,
}

impl CacheDir {
    /// Errors if `root` exists and is not a directory. A relative `root` is
    /// made absolute now, against the current directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<CacheDir, Error> {
        CacheDir::open_with_clock(root, Clock::system())
    }

    /// [`open`](Self::open), keeping time by `clock` (shared with another tier).
    pub fn open_with_clock(root: impl Into<PathBuf>, clock: Clock) -> Result<CacheDir, Error> {
        let given = root.into();
        let root = std::path::absolute(&given).map_err(Error::io("resolve cache path", &given))?;
        match fs::metadata(&root) {
            Ok(m) if !m.is_dir() => return Err(Error::NotADirectory { path: root }),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("inspect cache path", &root)(e)),
        }
        let location = root.display().to_string().into();
        let files = Arc::new(EntryFiles::new(Layout::new(root)));
        let books = Arc::new(Bookkeeper::new(files.clone(), clock));
        let boot = cache_core::host::boot().map(Arc::from);
        Ok(CacheDir { files, books, limits: Limits::default(), verify: Verify::default(), map: false, location, boot })
    }

    /// The same directory with `limits` applied after each store.
    pub fn with_limits(mut self, limits: Limits) -> CacheDir {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The same directory with loads checking `verify`'s data against its digest.
    pub fn with_verify(mut self, verify: Verify) -> CacheDir {
        self.verify = verify;
        self
    }

    /// The same directory with hits memory-mapped where the data can be
    /// used in place (as a tier; [`load`](Self::load) says it per call).
    pub fn with_map(mut self, map: bool) -> CacheDir {
        self.map = map;
        self
    }

    /// The same directory as seen from boot `boot` (a `host::boot` tag, or
    /// None for a system that names no boot): for tests, which store in one
    /// boot and load in another, as after a reboot.
    #[doc(hidden)]
    pub fn with_boot(mut self, boot: Option<&str>) -> CacheDir {
        self.boot = boot.map(Arc::from);
        self
    }

    /// How many hits of this handle checked all their data because their
    /// entry was not known to be of this boot: for tests.
    #[doc(hidden)]
    pub fn boot_checks(&self) -> u64 {
        self.files.boot_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn maps(&self) -> bool {
        self.map
    }

    /// The clock of stores, uses and expiry (tests move it forward).
    pub fn clock(&self) -> &Clock {
        self.books.clock()
    }

    pub fn root(&self) -> &Path {
        self.files.layout.root()
    }

    /// The absolute path, as text.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Reads the entry of `key`: its record, then its array, checked against
    /// its own header, the file length and the record. With `map`, the
    /// array is memory-mapped where it can be used in place, else read. An
    /// entry unused for longer than the `max_age` limit is removed and is a
    /// miss. A hit counts as a use.
    pub fn load(&self, key: &str, map: bool) -> Result<Lookup, Error> {
        self.load_into(key, map, &mut AlignedBuf::zeroed)
    }

    /// [`load`](Self::load), reading the array into memory from `alloc`
    /// (called with the data's length, at most twice: a read that races a
    /// store is retried). The memory's contents do not matter: a hit has
    /// overwritten every byte.
    pub fn load_into<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        key: &str,
        map: bool,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Result<Lookup<B>, Error> {
        check_key(key)?;
        if self.books.expire_if_old(key, self.limits.max_age) {
            return Ok(Lookup::Miss);
        }
        // A file another host unlinks can vanish under a mapping on a network
        // filesystem, and one it replaces may show cached attributes there.
        let network = self.books.on_network_fs();
        let how = Reading {
            map: map && !network,
            verify: self.verify,
            keep: !network,
            boot: self.boot.as_deref(),
            books: Some(&self.books),
        };
        let lookup = self.files.read(key, how, alloc);
        if let Lookup::Hit(_) = lookup {
            self.books.note_use(key);
        }
        Ok(lookup)
    }

    /// Writes the entry of `key`, create-only: a whole entry of this
    /// version already there (checked completely) stands, and so does one
    /// of a newer version; a damaged one is replaced. Readers see the old
    /// entry or the new one, never a mix or a partial file. The files are
    /// renamed into place inside an index transaction that records the
    /// entry, and then the cache's limits are applied. An entry over the
    /// limits on its own is not written, and evicts nothing.
    pub fn store(&self, key: &str, header: &Header, data: &[u8], entry: &NewEntry) -> Result<Stored, Error> {
        self.store_content(key, &Content::npy(header, data)?, entry)
    }

    /// [`store`](Self::store) of an entry's file as `content` makes it: one
    /// array's `.npy`, or several arrays' `.npz`.
    pub fn store_content(&self, key: &str, content: &Content, entry: &NewEntry) -> Result<Stored, Error> {
        self.store_from(key, content, entry, None)
    }

    /// A file in this directory to fill with the entry of `key`, an array
    /// of `header` (see [`cache_core::draft`]). A process killed while
    /// filling it leaves a temporary file that `prune` removes.
    pub fn draft(&self, key: &str, header: &Header) -> Result<Draft, Error> {
        check_key(key)?;
        self.ensure_dir()?;
        let draft = Draft::create(self.files.layout.temp(key, Part::Array), header.clone())?;
        // As hits: a file another host unlinks can vanish under a map on a network filesystem.
        Ok(if self.books.on_network_fs() { draft.read_back() } else { draft })
    }

    /// Publishes a filled `draft` as the entry of `key`, as
    /// [`store`](Self::store) would store what it holds: one of this
    /// directory's is hashed and renamed into place (then marked
    /// published); another's is written as a store writes.
    pub fn publish(&self, key: &str, draft: &mut Draft, entry: &NewEntry) -> Result<Stored, Error> {
        let filled = draft.filled()?;
        let content = filled.content()?;
        let own = draft.path().parent() == Some(self.root()) && draft.is_own();
        let stored = self.store_from(key, &content, entry, own.then(|| draft.path()))?;
        if own && stored.is_published() {
            draft.published();
        }
        Ok(stored)
    }

    fn store_from(
        &self,
        key: &str,
        content: &Content,
        entry: &NewEntry,
        filled: Option<&Path>,
    ) -> Result<Stored, Error> {
        check_key(key)?;
        let now_us = self.clock().now_us();
        // Over the limits on its own: refused before anything is read or
        // written (storing it would evict every entry, then it).
        let bytes = crate::write::entry_len(content, entry, now_us, self.boot.as_deref())?;
        if let Some(limit) = self.limits.refuses(bytes) {
            return self.books.place_skipped(Stored::TooLarge { bytes, limit });
        }
        self.ensure_dir()?;
        let before = self.files.record_stamp(key);
        if before.is_some()
            && (self.files.is_newer(key) || matches!(self.files.check_whole(key, false), Checked::Whole))
        {
            return self.books.place_skipped(Stored::AlreadyThere);
        }
        let prepared = self.files.prepare(key, content, entry, now_us, self.boot.as_deref(), filled)?;
        // Under the index's write lock: a record placed since it was judged
        // is another writer's, stored meanwhile, and it stands.
        let stored = self.books.place(&prepared, || self.files.record_stamp(key) == before)?;
        if !stored.is_published() {
            return Ok(stored);
        }
        prepared.placed();
        // Bookkeeping only (the entry is stored): `prune` reports its failures.
        let evicted = self.books.apply_limits(&self.limits).unwrap_or(0);
        Ok(Stored::Published { evicted })
    }

    /// How many small arrays this process keeps in memory: for tests.
    #[doc(hidden)]
    pub fn kept_arrays(&self) -> usize {
        self.files.memo().kept_arrays()
    }

    /// The length of the data file of `key` if there is one (a lstat, no
    /// checks): for deciding where to load it, not whether.
    pub fn array_len(&self, key: &str) -> Option<u64> {
        check_key(key).ok()?;
        let len = |p: PathBuf| fs::symlink_metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len());
        // The larger, should both forms be there: a guess never too small.
        self.files.layout.data_files(key).into_iter().filter_map(len).max()
    }

    /// Takes the compute-once lease of `key`, or says who holds it (see
    /// `cache_core::lease`). Where no lease can be taken (a filesystem
    /// without hard links) the claim is unavailable.
    pub fn claim(&self, key: &str, stale_after: Duration) -> Result<Claim, Error> {
        check_key(key)?;
        if let Err(e) = self.ensure_dir() {
            return Ok(Claim::Unavailable(e));
        }
        Ok(lease::claim(&self.files.layout, key, stale_after, self.clock()))
    }

    /// The live holder of the lease of `key`, read only (see `Tier::lease_holder`).
    pub fn lease_holder(&self, key: &str, stale_after: Duration) -> Result<Option<Holder>, Error> {
        check_key(key)?;
        Ok(lease::live_holder(&self.files.layout, key, stale_after, self.clock().now()))
    }

    /// Removes the entry of `key`; says whether there was one.
    pub fn remove(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        let existed = self.files.exists(key);
        self.books.remove(key)?;
        Ok(existed)
    }

    /// Removes every entry the index knows of the function `function`;
    /// returns their keys. `progress(done, total)` is called after each.
    pub fn remove_function(&self, function: &str, progress: &mut Progress<'_>) -> Result<Vec<Key>, Error> {
        let keys: Vec<Key> =
            self.entries()?.iter().filter(|e| e.function == function).filter_map(|e| Key::parse(&e.key)).collect();
        let total = keys.len() as u64;
        let mut removed = Vec::new();
        for (done, key) in keys.into_iter().enumerate() {
            if self.remove(&key.hex())? {
                removed.push(key);
            }
            progress::step(progress, done as u64 + 1, total)?;
        }
        Ok(removed)
    }

    /// What opening the entry of `key` for reads of its parts needs (see
    /// `cache_core::opened`); None on a miss (or an expired entry, which is
    /// removed). A use, as a hit.
    pub fn find(&self, key: &str) -> Result<Option<Result<cache_core::Found, Error>>, Error> {
        check_key(key)?;
        if self.books.expire_if_old(key, self.limits.max_age) {
            return Ok(None);
        }
        let found = self.files.find(key);
        if let Some(Ok(_)) = found {
            self.books.note_use(key);
        }
        Ok(found)
    }

    /// Whether a load of `key` would hit: an entry of this version that
    /// passes the checks a load makes (a large array's data is not read)
    /// and has not expired (an expired one is removed). Not a use.
    pub fn contains(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        Ok(self.files.holds(key) && !self.books.expire_if_old(key, self.limits.max_age))
    }

    /// Totals for the whole cache, from all processes.
    pub fn stats(&self) -> Result<Totals, Error> {
        self.books.stats()
    }

    /// Every entry the index knows, most recently used first.
    pub fn entries(&self) -> Result<Vec<EntryRow>, Error> {
        self.books.entries()
    }

    /// Reconciles the index with the directory (adopting entries it lacks,
    /// dropping rows without files, removing leftovers of killed processes
    /// and entries of older versions), then removes entries until `limits`
    /// hold. `progress(done, total)` is called after each batch of removals,
    /// and may stop the prune there.
    pub fn prune(&self, limits: &Limits, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        self.books.prune(limits, progress)
    }

    /// Checks every entry on disk completely (data included, read in
    /// pieces), like a load with `Verify::All` but without keeping the
    /// arrays; with `remove`, removes the damaged ones and writes the block
    /// digests of whole ones where they are missing or wrong. `progress(done,
    /// total)` is called as entries are checked, and may stop the check.
    pub fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        let keys = self.files.keys_on_disk()?;
        let mut report = VerifyReport::default();
        let total = keys.len() as u64;
        progress::step(progress, 0, total)?;
        for (done, key) in keys.iter().enumerate() {
            // Twice when damaged: a store may have replaced the entry between its two files' reads.
            let checked = match self.files.check_whole(key, remove) {
                Checked::Damaged(_) => self.files.check_whole(key, remove),
                checked => checked,
            };
            match checked {
                Checked::Whole => report.checked += 1,
                Checked::Damaged(reason) => {
                    report.checked += 1;
                    if remove && self.books.remove(key).is_ok() {
                        report.removed += 1;
                    }
                    report.damaged.push((key.clone(), reason));
                }
                Checked::NotAnEntry => {}
            }
            progress::step(progress, done as u64 + 1, total)?;
        }
        Ok(report)
    }

    /// Removes every entry, the temporary files and leases of processes
    /// that are gone, and the index if nothing else is in the directory;
    /// never anything else. With `remove_dir`, then the directory, if only
    /// the cache's files were in it. One step: `progress` hears of it once
    /// the index is held (a stop asked for by then changes nothing).
    pub fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        self.books.clear(remove_dir, progress)
    }

    /// Writes the uses and counts recorded in memory to the index, waiting
    /// for it no longer than `wait` says.
    pub fn flush(&self, wait: Wait) -> Result<(), Error> {
        self.books.flush(wait)
    }

    /// Writes pending uses and closes the index, releasing its file handles;
    /// any later call opens it again.
    pub fn close(&self) -> Result<(), Error> {
        self.books.close()
    }

    /// Turns the recording of hits off or on; with it off, hits do not
    /// count as uses for eviction. For measuring what recording costs.
    pub fn set_recording(&self, on: bool) {
        self.books.set_recording(on)
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        let root = self.root();
        match fs::create_dir_all(root) {
            Ok(()) => Ok(()),
            Err(_) if root.exists() && !root.is_dir() => Err(Error::NotADirectory { path: root.to_path_buf() }),
            Err(e) => Err(Error::io("create cache directory", root)(e)),
        }
    }
}
