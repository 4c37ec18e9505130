//! A cache directory: what the rest of the crate does, behind one handle.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cache_index::{EntryRow, Limits, Totals};
use npy_format::{AlignedBuf, Header};

use crate::bookkeeping::{Bookkeeper, PruneReport, Wait};
use crate::clock::Clock;
use crate::entry_files::{Checked, ClearReport, EntryFiles, Lookup, Reading, Verify};
use crate::layout::{check_key, Layout};
use crate::lease::{self, Claim};
use crate::record::NewEntry;
use crate::{Progress, StoreError};

/// A cache directory. Opening one touches nothing on disk; the directory
/// is made by the first store. Clones share the bookkeeping and memory of
/// records, so they can go to other threads.
#[derive(Debug, Clone)]
pub struct CacheDir {
    files: Arc<EntryFiles>,
    books: Arc<Bookkeeper>,
    limits: Limits,
    verify: Verify,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked, data included.
    pub checked: u64,
    /// The damaged ones: key and what is wrong.
    pub damaged: Vec<(String, String)>,
    /// Damaged entries removed.
    pub removed: u64,
}

impl CacheDir {
    /// Errors if `root` exists and is not a directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<CacheDir, StoreError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if !m.is_dir() => return Err(StoreError::NotADirectory(root)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("inspect cache path", &root)(e)),
        }
        let files = Arc::new(EntryFiles::new(Layout::new(root)));
        let books = Arc::new(Bookkeeper::new(files.clone(), Clock::system()));
        Ok(CacheDir { files, books, limits: Limits::default(), verify: Verify::default() })
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

    /// The clock of stores, uses and expiry (tests move it forward).
    pub fn clock(&self) -> &Clock {
        self.books.clock()
    }

    pub fn root(&self) -> &Path {
        self.files.layout.root()
    }

    /// Reads the entry of `key`: its record, then its array, checked against
    /// its own header, the file length and the record. With `map`, the
    /// array is memory-mapped where it can be used in place, else read. An
    /// entry unused for longer than the `max_age` limit is removed and is a
    /// miss. A hit counts as a use.
    pub fn load(&self, key: &str, map: bool) -> Result<Lookup, StoreError> {
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
    ) -> Result<Lookup<B>, StoreError> {
        check_key(key)?;
        if self.books.expire_if_old(key, self.limits.max_age) {
            return Ok(Lookup::Miss);
        }
        // A file another host unlinks can vanish under a mapping on a network
        // filesystem, and one it replaces may show cached attributes there.
        let network = self.books.on_network_fs();
        let how = Reading { map: map && !network, verify: self.verify, keep: !network };
        let lookup = self.files.read(key, how, alloc);
        if let Lookup::Hit(_) = lookup {
            self.books.note_use(key);
        }
        Ok(lookup)
    }

    /// Writes the entry of `key`, replacing any earlier one. Readers see the
    /// old entry or the new one, never a mix or a partial file. The files
    /// are renamed into place inside an index transaction that records the
    /// entry, and then the cache's limits are applied.
    pub fn store(&self, key: &str, header: &Header, data: &[u8], entry: &NewEntry) -> Result<(), StoreError> {
        check_key(key)?;
        self.ensure_dir()?;
        if self.files.is_newer(key) {
            // Another version's entry: its loads hit, ours miss; neither overwrites the other.
            return Ok(());
        }
        let prepared = self.files.prepare(key, header, data, entry, self.clock().now_us())?;
        self.books.place(&prepared)?;
        prepared.placed();
        // Bookkeeping only (the entry is stored): `prune` reports its failures.
        let _ = self.books.apply_limits(&self.limits);
        Ok(())
    }

    /// How many small arrays this process keeps in memory: for tests.
    #[doc(hidden)]
    pub fn kept_arrays(&self) -> usize {
        self.files.kept_arrays()
    }

    /// The length of the `.npy` file of `key` if there is one (a lstat, no
    /// checks): for deciding where to load it, not whether.
    pub fn array_len(&self, key: &str) -> Option<u64> {
        check_key(key).ok()?;
        fs::symlink_metadata(self.files.layout.array(key)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    /// Takes the compute-once lease of `key`, or says who holds it. A lease
    /// unrefreshed for its holder's `stale_after` (or whose holder on this
    /// host died) is broken.
    pub fn claim(&self, key: &str, stale_after: Duration) -> Result<Claim, StoreError> {
        check_key(key)?;
        self.ensure_dir()?;
        lease::claim(&self.files.layout, key, stale_after)
    }

    /// Removes the entry of `key`; says whether there was one.
    pub fn remove(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let existed = self.files.exists(key);
        self.books.remove(key)?;
        Ok(existed)
    }

    /// Whether a load of `key` would hit: an entry of this version that
    /// passes the checks a load makes (a large array's data is not read)
    /// and has not expired (an expired one is removed). Not a use.
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        Ok(self.files.holds(key) && !self.books.expire_if_old(key, self.limits.max_age))
    }

    /// Totals for the whole cache, from all processes.
    pub fn stats(&self) -> Result<Totals, StoreError> {
        self.books.stats()
    }

    /// Every entry the index knows, most recently used first.
    pub fn entries(&self) -> Result<Vec<EntryRow>, StoreError> {
        self.books.entries()
    }

    /// Reconciles the index with the directory (adopting entries it lacks,
    /// dropping rows without files, removing leftovers of killed processes
    /// and entries of older versions), then removes entries until `limits`
    /// hold. `progress(done, total)` is called after each batch of removals,
    /// and may stop the prune there.
    pub fn prune(&self, limits: &Limits, progress: &mut Progress<'_>) -> Result<PruneReport, StoreError> {
        self.books.prune(limits, progress)
    }

    /// Checks every entry on disk completely (data included, read in
    /// pieces), like a load with `Verify::All` but without keeping the
    /// arrays; with `remove`, removes the damaged ones. `progress(done,
    /// total)` is called as entries are checked, and may stop the check.
    pub fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, StoreError> {
        let keys = self.files.keys_on_disk()?;
        let mut report = VerifyReport::default();
        let total = keys.len() as u64;
        if progress(0, total).is_break() && total > 0 {
            return Err(StoreError::Stopped);
        }
        for (done, key) in keys.iter().enumerate() {
            // Twice when damaged: a store may have replaced the entry between its two files' reads.
            let checked = match self.files.check_whole(key) {
                Checked::Damaged(_) => self.files.check_whole(key),
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
            // Past the last entry, a stop has nothing left to spare.
            if progress(done as u64 + 1, total).is_break() && done as u64 + 1 < total {
                return Err(StoreError::Stopped);
            }
        }
        Ok(report)
    }

    /// Removes every entry, the temporary files and leases of processes
    /// that are gone, and the index if nothing else is in the directory;
    /// never anything else. With `remove_dir`, then the directory, if only
    /// the cache's files were in it.
    pub fn clear(&self, remove_dir: bool) -> Result<ClearReport, StoreError> {
        self.books.clear(remove_dir)
    }

    /// Writes the uses and counts recorded in memory to the index, waiting
    /// for it no longer than `wait` says.
    pub fn flush(&self, wait: Wait) -> Result<(), StoreError> {
        self.books.flush(wait)
    }

    /// Writes pending uses and closes the index, releasing its file handles;
    /// any later call opens it again.
    pub fn close(&self) -> Result<(), StoreError> {
        self.books.close()
    }

    /// Turns the recording of hits off or on; with it off, hits do not
    /// count as uses for eviction. For measuring what recording costs.
    pub fn set_recording(&self, on: bool) {
        self.books.set_recording(on)
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        let root = self.root();
        match fs::create_dir_all(root) {
            Ok(()) => Ok(()),
            Err(_) if root.exists() && !root.is_dir() => Err(StoreError::NotADirectory(root.to_path_buf())),
            Err(e) => Err(StoreError::io("create cache directory", root)(e)),
        }
    }
}
