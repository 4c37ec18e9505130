//! The bookkeeping of a cache directory: its index of entries (opened
//! lazily, and again if another process replaced it), uses recorded in
//! memory and written in batches, limits applied after stores and on
//! demand, and leftovers of crashed processes tidied.
//!
//! The entries' files stay the truth (see `entry_files`); nothing here can
//! make a load return a wrong array.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cache_core::clock::us_since_epoch;
use cache_core::progress::{self, Progress};
use cache_core::{is_key, lock, ClearReport, Clock, EntryRow, Error, Limits, PruneReport, Stored, Totals, Wait};
use cache_index::{Index, Journal, Removed};

use crate::files::EntryFiles;
use crate::fs_kind::{self, is_network_fs};
use crate::layout::dev_ino;
use crate::layout::Layout;
use crate::write::Prepared;

/// Uses are written to the index at most this often (and on demand), so a
/// hit costs a map insert, not a transaction.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The directory is reconciled with the index at least this often.
const RECONCILE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Entries removed per pair of index transactions during a prune.
const REMOVE_BATCH: usize = 1000;

/// The open index. Its lock is held across index transactions, which can
/// wait for other processes; hits never take it (see `Uses`).
#[derive(Default, Debug)]
struct Book {
    /// The open index and the identity of its file when opened.
    index: Option<(Index, (u64, u64))>,
    /// What the reconcile of a newly made index found, reported by the next prune.
    adopted_on_open: u64,
    removed_on_open: u64,
}

/// What hits and stores recorded and the index has not been told yet.
/// Its lock is only ever held briefly.
#[derive(Default, Debug)]
struct Uses {
    /// Key to time of last use.
    pending: HashMap<String, i64>,
    hits: u64,
    misses: u64,
    last_flush: Option<Instant>,
    /// Off only to measure what recording uses costs.
    not_recording: bool,
}

/// What `Uses` held when a write of them began.
struct Recorded {
    pending: Vec<(String, i64)>,
    hits: u64,
    misses: u64,
}

/// What a reconcile found: entries adopted, rows dropped, files removed.
struct Reconciled {
    adopted: u64,
    dropped: u64,
    removed: u64,
}

/// The bookkeeping of one directory, shared by a cache's clones.
#[derive(Debug)]
pub(crate) struct Bookkeeper {
    files: Arc<EntryFiles>,
    clock: Clock,
    book: Mutex<Book>,
    uses: Mutex<Uses>,
    /// Whether the directory is on a network filesystem, once known.
    network: OnceLock<bool>,
    /// Arrays checked whole because of an earlier boot, not yet marked in
    /// the index: key to (boot, the array file's stamp as text).
    checked: Mutex<HashMap<String, (String, String)>>,
}

/// What tells the index file from one that replaced it.
fn file_identity(m: &fs::Metadata) -> (u64, u64) {
    dev_ino(m).unwrap_or_else(|| (m.len(), m.modified().map(us_since_epoch).unwrap_or(0) as u64))
}

impl Bookkeeper {
    pub(crate) fn new(files: Arc<EntryFiles>, clock: Clock) -> Bookkeeper {
        Bookkeeper {
            files,
            clock,
            book: Mutex::default(),
            uses: Mutex::default(),
            network: OnceLock::new(),
            checked: Mutex::default(),
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    fn root(&self) -> &Path {
        self.files.layout.root()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    fn uses(&self) -> MutexGuard<'_, Uses> {
        lock(&self.uses)
    }

    /// The index, opened (and on first creation filled from the files on
    /// disk) or reopened if its file was replaced. None while the directory
    /// does not exist: the index never creates it.
    fn index<'b>(&self, book: &'b mut Book) -> Result<Option<&'b mut Index>, Error> {
        if !self.root().is_dir() {
            book.index = None;
            return Ok(None);
        }
        let path = self.files.layout.index();
        let current = fs::metadata(&path).ok().map(|m| file_identity(&m));
        if book.index.as_ref().is_some_and(|(_, id)| Some(*id) == current) {
            return Ok(book.index.as_mut().map(|(index, _)| index));
        }
        book.index = None;
        self.remove_planted_index_files();
        // WAL keeps its shared memory in a file (`-shm`) that others could
        // truncate under us: only where no one else writes, and hosts share memory.
        let others_write = fs_kind::others_write_bits(self.root());
        let shared = self.on_network_fs() || others_write != 0;
        let journal = if shared { Journal::Rollback } else { Journal::Wal };
        make_shared_index(&self.files.layout, others_write);
        let (mut index, created) = match Index::open(&path, journal) {
            // Only bookkeeping is lost: rebuild it from the files.
            Err(e) if e.is_damaged() => {
                for file in self.files.layout.index_files() {
                    let _ = fs::remove_file(file);
                }
                make_shared_index(&self.files.layout, others_write);
                Index::open(&path, journal)?
            }
            opened => opened?,
        };
        // Also on opening one made by a process killed before it widened it.
        share_like_dir(others_write, self.files.layout.index_files());
        // Removed already (a clear elsewhere): an identity no file has makes the next use reopen it.
        let id = fs::metadata(&path).map(|m| file_identity(&m)).unwrap_or((0, 0));
        if created {
            // A directory from before the index, or one whose index was removed.
            let found = self.reconcile(&mut index)?;
            book.adopted_on_open += found.adopted;
            book.removed_on_open += found.removed;
        }
        book.index = Some((index, id));
        Ok(book.index.as_mut().map(|(index, _)| index))
    }

    /// Unlinks what is not a regular file under the index's names (a link,
    /// a FIFO): never opened, never followed; unlinking it touches nothing
    /// else, and lets a real index be made.
    fn remove_planted_index_files(&self) {
        for path in self.files.layout.index_files() {
            if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Brings the index in line with the files (see `Index::reconcile`).
    fn reconcile(&self, index: &mut Index) -> Result<Reconciled, Error> {
        let (mut scanned_out, mut described_out) = (0, 0);
        let (adopted, dropped) = index.reconcile(
            self.clock.now_us(),
            || self.files.scan(self.clock.now(), &mut scanned_out),
            |key| self.files.describe(key, &mut described_out),
        )?;
        Ok(Reconciled { adopted, dropped, removed: scanned_out + described_out })
    }

    /// Whether the directory is on a network filesystem, where a file
    /// another host unlinks can vanish under a mapping, and the index needs
    /// a rollback journal. False while the directory does not exist.
    pub(crate) fn on_network_fs(&self) -> bool {
        if let Some(&n) = self.network.get() {
            return n;
        }
        if !self.root().is_dir() {
            return false;
        }
        *self.network.get_or_init(|| is_network_fs(self.root()))
    }

    /// Turns the recording of hits off or on; with it off, hits do not
    /// count as uses for eviction. For measuring what recording costs.
    pub(crate) fn set_recording(&self, on: bool) {
        self.uses().not_recording = !on;
    }

    /// Records a hit on `key`; writes the uses recorded so far if a second
    /// has passed and the index is free this moment (a hit never waits).
    pub(crate) fn note_use(&self, key: &str) {
        let due = {
            let mut uses = self.uses();
            if uses.not_recording {
                return;
            }
            uses.pending.insert(key.to_owned(), self.clock.now_us());
            uses.hits += 1;
            uses.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY)
        };
        if due {
            let _ = self.flush(Wait::Never);
        }
    }

    /// Whether the index marks the array of `key` with stamp `array` as
    /// checked whole in `boot`. Never waits for another thread: if one is
    /// in the index, the answer is no (and the hit checks the data).
    pub(crate) fn checked_in(&self, key: &str, boot: &str, array: &str) -> bool {
        let mut book = match self.book.try_lock() {
            Ok(book) => book,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        let Ok(Some(index)) = self.index(&mut book) else { return false };
        index.checked_in(key, boot).ok().flatten().as_deref() == Some(array)
    }

    /// Notes that the array of `key` with stamp `array` was checked whole
    /// in `boot`; marked in the index with the next write of uses.
    pub(crate) fn note_checked(&self, key: &str, boot: &str, array: String) {
        lock(&self.checked).insert(key.to_owned(), (boot.to_owned(), array));
    }

    /// Marks the arrays noted as checked in the index. A failure is not the
    /// caller's (a mark only saves other processes a check): they stay for
    /// the next write, unless noted anew meanwhile.
    fn mark_checked(&self, index: &mut cache_index::Index, busy_wait: Option<Duration>) {
        let taken = std::mem::take(&mut *lock(&self.checked));
        let marks: Vec<(String, String, String)> = taken.into_iter().map(|(k, (b, a))| (k, b, a)).collect();
        if index.mark_checked(&marks, busy_wait).is_err() {
            let mut checked = lock(&self.checked);
            for (key, boot, array) in marks {
                checked.entry(key).or_insert((boot, array));
            }
        }
    }

    /// Takes what is recorded so far; None if nothing is.
    fn take_uses(&self) -> Option<Recorded> {
        let mut uses = self.uses();
        uses.last_flush = Some(Instant::now());
        if uses.pending.is_empty() && uses.hits == 0 && uses.misses == 0 {
            return None;
        }
        Some(Recorded {
            pending: {
                // In key order: the index's rows are, so the updates walk its pages once.
                let mut pending: Vec<(String, i64)> = uses.pending.drain().collect();
                pending.sort_unstable();
                pending
            },
            hits: std::mem::take(&mut uses.hits),
            misses: std::mem::take(&mut uses.misses),
        })
    }

    /// Puts back what a failed write took.
    fn give_back(&self, taken: Recorded) {
        let mut uses = self.uses();
        for (key, when) in taken.pending {
            let t = uses.pending.entry(key).or_insert(when);
            *t = (*t).max(when);
        }
        uses.hits += taken.hits;
        uses.misses += taken.misses;
    }

    fn flush_into(&self, book: &mut Book, wait: Wait) -> Result<(), Error> {
        let busy_wait = match wait {
            Wait::Never => Some(Duration::ZERO),
            Wait::AtMost(d) => Some(d),
            Wait::AsNeeded => None,
        };
        if !lock(&self.checked).is_empty() {
            if let Ok(Some(index)) = self.index(book) {
                self.mark_checked(index, busy_wait);
            }
        }
        let Some(taken) = self.take_uses() else { return Ok(()) };
        let written = match self.index(book) {
            Ok(Some(index)) => index.record(&taken.pending, taken.hits, taken.misses, busy_wait).map_err(Error::from),
            // The directory is gone, and its entries with it.
            Ok(None) => return Ok(()),
            Err(e) => Err(e),
        };
        if written.is_err() {
            self.give_back(taken);
        }
        written
    }

    /// Writes the uses recorded in memory to the index and closes it (its
    /// file handles and SQLite's); the next use opens it again.
    pub(crate) fn close(&self) -> Result<(), Error> {
        let mut book = self.book();
        let flushed = self.flush_into(&mut book, Wait::AsNeeded);
        book.index = None;
        flushed
    }

    /// Writes the uses and counts recorded in memory to the index, waiting
    /// for it no longer than `wait` says.
    pub(crate) fn flush(&self, wait: Wait) -> Result<(), Error> {
        match wait {
            Wait::Never => match self.book.try_lock() {
                Ok(mut book) => self.flush_into(&mut book, wait),
                Err(std::sync::TryLockError::Poisoned(e)) => self.flush_into(&mut e.into_inner(), wait),
                // Another thread is in the index; the uses stay for the next write.
                Err(std::sync::TryLockError::WouldBlock) => Ok(()),
            },
            _ => self.flush_into(&mut self.book(), wait),
        }
    }

    /// With `max_age` (microseconds), removes the entry of `key` if it went
    /// unused that long, and says so. Entries the index does not know are
    /// kept, and so is every entry while the index cannot be read: a load
    /// never fails because of the index.
    pub(crate) fn expire_if_old(&self, key: &str, max_age: Option<i64>) -> bool {
        let Some(max_age) = max_age else { return false };
        let now = self.clock.now_us();
        let pending = self.uses().pending.get(key).copied();
        let mut book = self.book();
        let Ok(Some(index)) = self.index(&mut book) else { return false };
        let last = match index.last_used(key) {
            Ok(Some(t)) => t.max(pending.unwrap_or(i64::MIN)),
            Ok(None) | Err(_) => return false,
        };
        if now.saturating_sub(last) <= max_age {
            return false;
        }
        self.uses().pending.remove(key);
        // Unless it was used or stored anew since it was judged. If the
        // removal fails, the entry is still too old to return: the store
        // that follows replaces it.
        let _ = self.remove_in(&mut book, &[(key.to_owned(), last)]);
        true
    }

    /// Places `prepared` and records its row in one index transaction (see
    /// `Index::insert`), if `still_free()` says, under the index's write
    /// lock, that no other writer placed the entry meanwhile. If the index
    /// cannot be written (another user's, or busy past the timeout) the
    /// entry is placed all the same: it is whole and loads, and a later
    /// reconcile counts it.
    pub(crate) fn place(&self, prepared: &Prepared, still_free: impl Fn() -> bool) -> Result<Stored, Error> {
        let mut book = self.book();
        let place = || {
            if !still_free() {
                return Ok(Stored::AlreadyThere);
            }
            prepared.place().map(|()| Stored::Published { evicted: 0 })
        };
        let index = match self.index(&mut book) {
            Ok(Some(index)) => index,
            // No index (the directory was removed under us, or the index cannot be opened).
            Ok(None) | Err(_) => return self.counted(place()),
        };
        let outcome = std::cell::Cell::new(None);
        let inserted = index.insert(&prepared.row, || {
            let stored = place()?;
            outcome.set(Some(stored));
            // Nothing placed: no row to record, and nothing to commit.
            match stored {
                Stored::Published { .. } => Ok(()),
                Stored::AlreadyThere | Stored::TooLarge { .. } | Stored::Failed => Err(Error::Stopped),
            }
        });
        self.counted(match (inserted, outcome.get()) {
            (_, Some(Stored::AlreadyThere)) => Ok(Stored::AlreadyThere),
            (Ok(()), Some(stored)) => Ok(stored),
            // The files are in place; only the commit failed.
            (Err(Error::Index { .. }), Some(stored)) => Ok(stored),
            (Err(Error::Index { .. }), None) => place(),
            (Err(e), _) => Err(e),
            (Ok(()), None) => unreachable!("an insert that succeeds ran its closure"),
        })
    }

    /// A store that wrote nothing (a whole entry was there first, or this
    /// one is too large): still a miss.
    pub(crate) fn place_skipped(&self, stored: Stored) -> Result<Stored, Error> {
        self.counted(Ok(stored))
    }

    /// Counts a store as a miss: a call computed its result (whether
    /// this store or another writer's was first, or it was not kept).
    fn counted(&self, stored: Result<Stored, Error>) -> Result<Stored, Error> {
        if let Ok(Stored::Published { .. } | Stored::AlreadyThere | Stored::TooLarge { .. }) = stored {
            self.uses().misses += 1;
        }
        stored
    }

    /// Applies `limits` after a store; writes pending uses first so the
    /// eviction order is current; reconciles once a day.
    /// Returns how many entries it removed (not how many it chose: one
    /// used or stored anew meanwhile is spared, and one another process
    /// removed first is not counted).
    pub(crate) fn apply_limits(&self, limits: &Limits) -> Result<u64, Error> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        let now = self.clock.now_us();
        let Some(index) = self.index(&mut book)? else { return Ok(0) };
        if now.saturating_sub(index.reconciled_at()?) > RECONCILE_EVERY.as_micros() as i64 {
            self.reconcile(index)?;
        }
        if limits.is_none() {
            return Ok(0);
        }
        let victims = index.victims(limits, now)?;
        if victims.is_empty() {
            return Ok(0);
        }
        Ok(self.remove_in(&mut book, &removals(&victims))?.entries)
    }

    /// Removes entries (key, last use when judged; `i64::MAX` for any).
    fn remove_in(&self, book: &mut Book, keys: &[(String, i64)]) -> Result<Removed, Error> {
        match self.index(book)? {
            Some(index) => index.remove(keys, |key| self.files.unlink(key)),
            None => Ok(Removed::default()),
        }
    }

    /// Removes the entry of `key`, with or without an index.
    pub(crate) fn remove(&self, key: &str) -> Result<(), Error> {
        self.uses().pending.remove(key);
        let mut book = self.book();
        let removed = match self.index(&mut book) {
            Ok(Some(_)) => self.remove_in(&mut book, &[(key.to_owned(), i64::MAX)]).map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match removed {
            // Without a usable index the files go all the same; a reconcile drops the row.
            Err(Error::Index { .. }) => self.files.unlink(key),
            other => other,
        }
    }

    /// Totals for the whole cache, from all processes.
    pub(crate) fn stats(&self) -> Result<Totals, Error> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        match self.index(&mut book)? {
            Some(index) => Ok(index.totals()?),
            None => Ok(Totals::default()),
        }
    }

    /// Every entry the index knows, most recently used first.
    pub(crate) fn entries(&self) -> Result<Vec<EntryRow>, Error> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        match self.index(&mut book)? {
            // A row whose key is not a key is not the cache's (an edited index): a reconcile drops it.
            Some(index) => Ok(index.rows()?.into_iter().filter(|r| is_key(&r.key)).collect()),
            None => Ok(Vec::new()),
        }
    }

    /// Reconciles the index with the directory (adopting entries it lacks,
    /// dropping rows without files, tidying leftovers of killed processes),
    /// then removes entries until `limits` hold. `progress(done, total)` is
    /// called after each batch of removals, and may stop the prune there.
    pub(crate) fn prune(&self, limits: &Limits, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        let now = self.clock.now_us();
        let mut report = PruneReport::default();
        let Some(index) = self.index(&mut book)? else { return Ok(report) };
        let found = self.reconcile(index)?;
        (report.adopted, report.dropped, report.removed_leftovers) = (found.adopted, found.dropped, found.removed);
        let victims = removals(&index.victims(limits, now)?);
        report.adopted += std::mem::take(&mut book.adopted_on_open);
        report.removed_leftovers += std::mem::take(&mut book.removed_on_open);
        drop(book);
        // The index is not locked while `progress` runs: it may call back into this cache.
        let total = victims.len() as u64;
        // A stop asked for at the last report comes too late to spare anything: the prune is done.
        progress::step(progress, 0, total)?;
        let mut done = 0;
        for batch in victims.chunks(REMOVE_BATCH) {
            let removed = self.remove_in(&mut self.book(), batch)?;
            (report.removed_bytes, report.removed_entries) =
                (report.removed_bytes + removed.bytes, report.removed_entries + removed.entries);
            done += batch.len() as u64;
            progress::step(progress, done, total)?;
        }
        if let Some(index) = self.index(&mut self.book())? {
            report.totals = index.totals()?;
        }
        Ok(report)
    }

    /// Removes every entry and empties the index, which stays: other
    /// processes may hold it open, and deleting it under them would split
    /// their bookkeeping between the old file and a new one. With
    /// `remove_dir`, then the index and the directory, if only the cache's
    /// files were in it (else the index stays and the directory still
    /// reads as a cache). Entries stored by other processes during the
    /// clear stay (unless the directory goes).
    pub(crate) fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        let mut book = self.book();
        // A stop that came while this waited (for the index, or for a
        // thread) ends the clear before it changes anything.
        let mut ready = || progress::listed(progress, 0);
        let mut report = match self.index(&mut book) {
            Ok(Some(index)) => index.clear(&mut ready, |stored_since| {
                self.files.remove_all(false, false, stored_since, self.clock.now())
            })?,
            Ok(None) => return Ok(ClearReport::default()),
            // An unreadable index must not stop a clear.
            Err(_) => {
                ready()?;
                self.files.remove_all(false, false, &|_| false, self.clock.now())?
            }
        };
        {
            let mut uses = self.uses();
            *uses = Uses { not_recording: uses.not_recording, ..Uses::default() };
        }
        if !remove_dir {
            return Ok(report);
        }
        if report.foreign > 0 {
            return Err(Error::NotEmpty { path: self.root().to_path_buf(), remaining: report.foreign as usize });
        }
        book.index = None;
        let rest = self.files.remove_all(true, true, &|_| false, self.clock.now())?;
        report.removed += rest.removed;
        report.removed_dir = rest.removed_dir;
        Ok(report)
    }
}

/// Victims as removals that spare an entry used or stored since it was judged.
fn removals(victims: &[cache_index::Victim]) -> Vec<(String, i64)> {
    victims.iter().map(|v| (v.key.clone(), v.last_used)).collect()
}

/// Makes a missing index of a directory others may write (`others_write`,
/// its group and other write bits) as an empty file (an empty
/// database to SQLite) already writable by whoever may write the
/// directory: SQLite opens a file it may not write read-only, for good, so
/// no other user may find the index before it is widened. It is made under
/// its own name and linked into place, never over one another process made
/// first. Where links cannot be made, SQLite creates the index and
/// [`share_like_dir`] widens it after.
fn make_shared_index(layout: &Layout, others_write: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if others_write == 0 || fs::symlink_metadata(layout.index()).is_ok() {
            return;
        }
        let temp = layout.index_temp();
        let Ok(file) = crate::layout::create_new(&temp) else { return };
        if file.set_permissions(fs::Permissions::from_mode(0o644 | others_write)).is_ok() {
            // Another process's index, linked first, stays.
            let _ = fs::hard_link(&temp, layout.index());
        }
        drop(file);
        let _ = fs::remove_file(&temp);
    }
    #[cfg(not(unix))]
    let _ = (layout, others_write);
}

/// Lets the index be written by whoever may write the directory (its group
/// and other write bits are `others_write`): a cache
/// shared through a group- or world-writable directory is written by
/// several users. (SQLite gives its `-wal`, `-shm` and `-journal` files the
/// same mode.) Each file is changed through its own descriptor, opened
/// without following links: a link planted under an index name changes
/// nothing. Only a file's owner can change it; for others this does nothing.
fn share_like_dir(others_write: u32, index_files: impl Iterator<Item = std::path::PathBuf>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if others_write == 0 {
            return;
        }
        for path in index_files {
            if let Ok((file, m)) = crate::layout::open_regular(&path) {
                if m.permissions().mode() & others_write != others_write {
                    let _ = file.set_permissions(fs::Permissions::from_mode(m.permissions().mode() | others_write));
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (others_write, index_files);
}
