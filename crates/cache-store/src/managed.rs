//! A cache that manages itself: the index of entries (opened lazily, and
//! again if another process replaced it), uses recorded in memory and
//! written in batches, limits applied after stores and on demand, and
//! leftovers of crashed processes tidied.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader};
use std::path::Path;
use std::sync::MutexGuard;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cache_index::{EntryRow, Index, Journal, Limits, Totals};

use crate::lease::process_alive;
use crate::{check_key, entry_key, host_tag, io_err, is_network_fs, CacheDir, ClearReport, StoreError};

/// The index file, hidden beside the entries; SQLite adds `-wal`, `-shm`
/// or `-journal` files next to it.
pub const INDEX_FILE: &str = ".numpy-func-cache-index.sqlite";

/// The index file's own suffix and those of the files SQLite keeps beside it.
const INDEX_SUFFIXES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

pub(crate) fn is_index_file_name(name: &str) -> bool {
    name.strip_prefix(INDEX_FILE).is_some_and(|rest| INDEX_SUFFIXES.contains(&rest))
}

/// Uses are written to the index at most this often (and on demand), so a
/// hit costs a map insert, not a transaction.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The directory is reconciled with the index at least this often.
const RECONCILE_EVERY_US: i64 = 24 * 3600 * 1_000_000;
/// Temporary files of another host (whose processes cannot be checked) are
/// leftovers after this long.
const FOREIGN_TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Entries removed per pair of index transactions during a prune.
const REMOVE_BATCH: usize = 1000;

pub(crate) fn now_us() -> i64 {
    us_since_epoch(SystemTime::now())
}

/// Index times are microseconds: uses a millisecond apart must still order.
fn us_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

pub(crate) fn shape_json(shape: &[u64]) -> String {
    format!("[{}]", shape.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed_entries: u64,
    pub removed_bytes: u64,
    /// Entries found on disk that the index lacked (stored by a process killed mid-store).
    pub adopted: u64,
    /// Index rows whose files were gone.
    pub dropped: u64,
    /// Temporary and partial files left by killed processes.
    pub removed_leftovers: u64,
    /// Totals after the prune.
    pub totals: Totals,
}

/// The open index. Its lock is held across index transactions, which can
/// wait for other processes; hits never take it (see `Uses`).
#[derive(Default, Debug)]
pub(crate) struct Book {
    /// The open index and the identity of its file when opened.
    index: Option<(Index, (u64, u64))>,
    /// Entries counted when this process made the index, reported by the next prune.
    adopted_on_open: u64,
}

/// What hits and stores recorded and the index has not been told yet.
/// Its lock is only ever held briefly.
#[derive(Default, Debug)]
pub(crate) struct Uses {
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

/// How long a write of uses may wait for the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: if another thread or process is writing, try later.
    Never,
    /// Up to this long for another process's transaction.
    AtMost(Duration),
    /// As long as any write.
    AsNeeded,
}

/// What tells the index file from one that replaced it.
fn file_identity(m: &fs::Metadata) -> (u64, u64) {
    crate::dev_ino(m).unwrap_or_else(|| (m.len(), m.modified().map(us_since_epoch).unwrap_or(0) as u64))
}

impl CacheDir {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn uses(&self) -> MutexGuard<'_, Uses> {
        self.uses.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index, opened (and on first creation filled from the files on
    /// disk) or reopened if its file was replaced. None while the directory
    /// does not exist: the index never creates it.
    fn index<'b>(&self, book: &'b mut Book) -> Result<Option<&'b mut Index>, StoreError> {
        if !self.root.is_dir() {
            book.index = None;
            return Ok(None);
        }
        let path = self.root.join(INDEX_FILE);
        let current = fs::metadata(&path).ok().map(|m| file_identity(&m));
        if book.index.as_ref().is_some_and(|(_, id)| Some(*id) == current) {
            return Ok(book.index.as_mut().map(|(index, _)| index));
        }
        book.index = None;
        let network = *self.network.get_or_init(|| is_network_fs(&self.root));
        let journal = if network { Journal::Rollback } else { Journal::Wal };
        let (mut index, created) = match Index::open(&path, journal) {
            // Only bookkeeping is lost: rebuild it from the files.
            Err(e) if e.is_damaged() => {
                self.remove_index_files();
                Index::open(&path, journal)?
            }
            opened => opened?,
        };
        if created {
            share_like_dir(&self.root, &path);
        }
        // Removed already (a clear elsewhere): an identity no file has makes the next use reopen it.
        let id = fs::metadata(&path).map(|m| file_identity(&m)).unwrap_or((0, 0));
        if created {
            // A directory from before the index, or one whose index was removed.
            book.adopted_on_open += index.reconcile(now_us(), || self.scan(&mut 0), |k| self.row_from_files(k))?.0;
        }
        book.index = Some((index, id));
        Ok(book.index.as_mut().map(|(index, _)| index))
    }

    fn remove_index_files(&self) {
        for suffix in INDEX_SUFFIXES {
            let _ = fs::remove_file(self.root.join(format!("{INDEX_FILE}{suffix}")));
        }
    }

    /// Mapped hits are read instead on a network filesystem: a file another
    /// host unlinks can vanish under a mapping there.
    pub(crate) fn on_network_fs(&self) -> bool {
        if let Some(&n) = self.network.get() {
            return n;
        }
        if !self.root.is_dir() {
            return false;
        }
        *self.network.get_or_init(|| is_network_fs(&self.root))
    }

    /// Turns the recording of hits off or on; with it off, hits do not
    /// count as uses for eviction. For measuring what recording costs.
    pub fn set_recording(&self, on: bool) {
        self.uses().not_recording = !on;
    }

    pub(crate) fn note_use(&self, key: &str) {
        let due = {
            let mut uses = self.uses();
            if uses.not_recording {
                return;
            }
            uses.pending.insert(key.to_owned(), now_us());
            uses.hits += 1;
            uses.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY)
        };
        if due {
            // Only if the index is free this moment: a hit never waits for it.
            let _ = self.flush(Wait::Never);
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
            pending: uses.pending.drain().collect(),
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

    fn flush_into(&self, book: &mut Book, wait: Wait) -> Result<(), StoreError> {
        let Some(taken) = self.take_uses() else { return Ok(()) };
        let busy_wait = match wait {
            Wait::Never => Some(Duration::ZERO),
            Wait::AtMost(d) => Some(d),
            Wait::AsNeeded => None,
        };
        let written = match self.index(book) {
            Ok(Some(index)) => index.record(&taken.pending, taken.hits, taken.misses, busy_wait).map_err(StoreError::from),
            // The directory is gone, and its entries with it.
            Ok(None) => return Ok(()),
            Err(e) => Err(e),
        };
        if written.is_err() {
            self.give_back(taken);
        }
        written
    }

    /// Writes the uses and counts recorded in memory to the index, waiting
    /// for it no longer than `wait` says.
    pub fn flush(&self, wait: Wait) -> Result<(), StoreError> {
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

    /// With `max_age`, removes the entry of `key` if it went unused that
    /// long, and says so. Entries the index does not know are kept.
    pub(crate) fn expire_if_old(&self, key: &str) -> Result<bool, StoreError> {
        let Some(max_age) = self.limits.max_age else { return Ok(false) };
        let now = now_us();
        let pending = self.uses().pending.get(key).copied();
        let mut book = self.book();
        let Ok(Some(index)) = self.index(&mut book) else { return Ok(false) };
        let last = match index.last_used(key)? {
            Some(t) => t.max(pending.unwrap_or(i64::MIN)),
            None => return Ok(false),
        };
        if now.saturating_sub(last) <= max_age {
            return Ok(false);
        }
        self.uses().pending.remove(key);
        // Unless it was used or stored anew since it was judged.
        self.remove_in(&mut book, &[(key.to_owned(), last)])?;
        Ok(true)
    }

    /// Runs `place` and records `row` in one index transaction (see
    /// `Index::insert`). If the index cannot be written (another user's,
    /// or busy past the timeout) the entry is placed all the same: it is
    /// whole and loads, and a later reconcile counts it.
    pub(crate) fn index_entry(&self, row: &EntryRow, place: impl Fn() -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.uses().misses += 1;
        let mut book = self.book();
        let index = match self.index(&mut book) {
            Ok(Some(index)) => index,
            // No index (the directory was removed under us, or the index cannot be opened).
            Ok(None) | Err(_) => return place(),
        };
        let placed = std::cell::Cell::new(false);
        match index.insert(row, || {
            placed.set(true);
            place()
        }) {
            // The files are in place; only the commit failed.
            Err(StoreError::Index(_)) if placed.get() => Ok(()),
            Err(StoreError::Index(_)) => place(),
            other => other,
        }
    }

    /// Applies the limits after a store; writes pending uses first so the
    /// eviction order is current; reconciles once a day. Failures are
    /// bookkeeping only (the entry is stored); `prune` reports them.
    pub(crate) fn after_store(&self) {
        let _ = self.apply_limits();
    }

    fn apply_limits(&self) -> Result<(), StoreError> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        let now = now_us();
        let Some(index) = self.index(&mut book)? else { return Ok(()) };
        if now.saturating_sub(index.reconciled_at()?) > RECONCILE_EVERY_US {
            index.reconcile(now, || self.scan(&mut 0), |k| self.row_from_files(k))?;
        }
        if self.limits.is_none() {
            return Ok(());
        }
        let victims = index.victims(&self.limits, now)?;
        if !victims.is_empty() {
            self.remove_in(&mut book, &removals(&victims))?;
        }
        Ok(())
    }

    /// Removes entries (key, last use when judged; `i64::MAX` for any).
    fn remove_in(&self, book: &mut Book, keys: &[(String, i64)]) -> Result<u64, StoreError> {
        match self.index(book)? {
            Some(index) => index.remove(keys, |key| self.unlink_entry(key)),
            None => Ok(0),
        }
    }

    /// Removes an entry's files, metadata first (its absence makes a miss).
    /// Keys come from the index, which anyone who can write the directory
    /// can edit: one that is not a key never names a file to remove.
    fn unlink_entry(&self, key: &str) -> Result<(), StoreError> {
        if check_key(key).is_err() {
            return Ok(());
        }
        self.meta_memo.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        for path in [self.meta_path(key), self.root.join(format!("{key}.npy"))] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("remove", &path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the entry of `key`; says whether there was one.
    pub fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let existed = self.contains_files(key)?;
        self.uses().pending.remove(key);
        let mut book = self.book();
        match self.index(&mut book) {
            Ok(Some(_)) => {
                self.remove_in(&mut book, &[(key.to_owned(), i64::MAX)])?;
            }
            Ok(None) => {}
            // Without a usable index the files go all the same; a reconcile drops the row.
            Err(_) => self.unlink_entry(key)?,
        }
        Ok(existed)
    }

    /// Whether `key` has an entry that a load would return (expired ones are removed).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.contains_files(key)? && !self.expire_if_old(key)?)
    }

    fn contains_files(&self, key: &str) -> Result<bool, StoreError> {
        let array = self.array_path(key)?;
        let is_file = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        Ok(is_file(&self.meta_path(key)) && is_file(&array))
    }

    /// Totals for the whole cache, from all processes.
    pub fn stats(&self) -> Result<Totals, StoreError> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        match self.index(&mut book)? {
            Some(index) => Ok(index.totals()?),
            None => Ok(Totals::default()),
        }
    }

    /// Every entry the index knows, most recently used first.
    pub fn entries(&self) -> Result<Vec<EntryRow>, StoreError> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        match self.index(&mut book)? {
            Some(index) => Ok(index.rows()?),
            None => Ok(Vec::new()),
        }
    }

    /// Reconciles the index with the directory (adopting entries it lacks,
    /// dropping rows without files, tidying leftovers of killed processes),
    /// then removes entries until `limits` hold. `progress(done, total)` is
    /// called after each batch of removals.
    pub fn prune(&self, limits: &Limits, progress: &mut dyn FnMut(u64, u64)) -> Result<PruneReport, StoreError> {
        let mut book = self.book();
        self.flush_into(&mut book, Wait::AsNeeded)?;
        let now = now_us();
        let mut report = PruneReport::default();
        let Some(index) = self.index(&mut book)? else { return Ok(report) };
        let mut leftovers = 0;
        (report.adopted, report.dropped) = index.reconcile(now, || self.scan(&mut leftovers), |k| self.row_from_files(k))?;
        report.removed_leftovers = leftovers;
        let victims = removals(&index.victims(limits, now)?);
        report.adopted += std::mem::take(&mut book.adopted_on_open);
        drop(book);
        // The index is not locked while `progress` runs: it may call back into this cache.
        let total = victims.len() as u64;
        progress(0, total);
        for batch in victims.chunks(REMOVE_BATCH) {
            report.removed_bytes += self.remove_in(&mut self.book(), batch)?;
            report.removed_entries += batch.len() as u64;
            progress(report.removed_entries, total);
        }
        if let Some(index) = self.index(&mut self.book())? {
            report.totals = index.totals()?;
        }
        Ok(report)
    }

    /// Removes every entry; then the index too if nothing but the cache's
    /// own files was in the directory (leaving it empty, as before the cache
    /// used it), else the index stays, empty, and marks it as a cache; with
    /// `remove_dir`, then the directory. Entries stored by other processes
    /// during the clear stay (unless the directory goes).
    pub fn clear(&self, remove_dir: bool) -> Result<ClearReport, StoreError> {
        {
            let mut uses = self.uses();
            *uses = Uses { not_recording: uses.not_recording, ..Uses::default() };
        }
        let mut book = self.book();
        self.meta_memo.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut report = match self.index(&mut book) {
            Ok(Some(index)) => index.clear(|stored_since| self.clear_files(false, false, stored_since))?,
            Ok(None) => return Ok(ClearReport::default()),
            // An unreadable index must not stop a clear.
            Err(_) => self.clear_files(false, false, &|_| false)?,
        };
        if report.foreign > 0 && !remove_dir {
            return Ok(report);
        }
        book.index = None;
        let rest = self.clear_files(true, remove_dir, &|_| !remove_dir)?;
        report.removed_files += rest.removed_files;
        report.removed_dir = rest.removed_dir;
        Ok(report)
    }

    /// Lists the keys of complete entries on disk for `reconcile`, and removes
    /// leftovers: temporary files of dead processes, and halves of entries
    /// (safe here: stores rename under the index's write lock, held now).
    fn scan(&self, leftovers: &mut u64) -> Result<Vec<String>, StoreError> {
        let listing = match fs::read_dir(&self.root) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list cache directory", &self.root)(e)),
        };
        let mut names = Vec::new();
        for item in listing {
            let item = item.map_err(io_err("list cache directory", &self.root))?;
            if item.file_type().is_ok_and(|t| t.is_file()) {
                if let Ok(name) = item.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        let present: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut keys = Vec::new();
        let mut remove = |name: &str| {
            if fs::remove_file(self.root.join(name)).is_ok() {
                *leftovers += 1;
            }
        };
        for name in &names {
            let Some(key) = entry_key(name) else { continue };
            if name.ends_with(".tmp") {
                if temp_is_leftover(&self.root.join(name), name) {
                    remove(name);
                }
            } else if let Some(stem) = name.strip_suffix(".json") {
                match present.contains(format!("{stem}.npy").as_str()) {
                    true => keys.push(key.to_owned()),
                    false => remove(name),
                }
            } else if let Some(stem) = name.strip_suffix(".npy") {
                if !present.contains(format!("{stem}.json").as_str()) {
                    remove(name);
                }
            }
        }
        Ok(keys)
    }

    /// An index row for an entry found on disk; None if it does not read as one.
    fn row_from_files(&self, key: &str) -> Option<EntryRow> {
        let array_path = self.root.join(format!("{key}.npy"));
        let meta_path = self.meta_path(key);
        let array_stat = fs::symlink_metadata(&array_path).ok()?;
        let meta_stat = fs::symlink_metadata(&meta_path).ok()?;
        let (header, _) = npy_format::decode_header(&mut BufReader::new(fs::File::open(&array_path).ok()?)).ok()?;
        let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta_path).ok()?).ok()?;
        let modified = |m: &fs::Metadata| m.modified().map(us_since_epoch).unwrap_or(0);
        let written = modified(&meta_stat);
        Some(EntryRow {
            key: key.to_owned(),
            function: meta.get("function").and_then(|f| f.as_str()).unwrap_or("").to_owned(),
            dtype: header.dtype.descr(),
            shape: shape_json(&header.shape),
            bytes: array_stat.len() + meta_stat.len(),
            created: written,
            last_used: written.max(modified(&array_stat)),
        })
    }
}

/// Victims as removals that spare an entry used or stored since it was judged.
fn removals(victims: &[cache_index::Victim]) -> Vec<(String, i64)> {
    victims.iter().map(|v| (v.key.clone(), v.last_used)).collect()
}

/// Lets the index be written by whoever may write the directory: a cache
/// shared through a group- or world-writable directory is written by
/// several users. (SQLite gives its `-wal` and `-shm` files the same mode.)
fn share_like_dir(dir: &Path, index: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(dir_mode) = fs::metadata(dir).map(|m| m.permissions().mode()) else { return };
        let shared = dir_mode & 0o022;
        if shared == 0 {
            return;
        }
        for suffix in INDEX_SUFFIXES {
            let path = index.with_file_name(format!("{INDEX_FILE}{suffix}"));
            if let Ok(m) = fs::metadata(&path) {
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(m.permissions().mode() | shared));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, index);
}

/// Whether an entry-pattern file is not in use by a running process:
/// entries always are leftovers in this sense; temporary files and leases
/// only once their process is gone.
pub(crate) fn is_leftover(path: &Path, name: &str) -> bool {
    if name.ends_with(".tmp") {
        temp_is_leftover(path, name)
    } else if name.ends_with(".lock") {
        crate::lease::is_abandoned(path)
    } else {
        true
    }
}

/// Whether a temporary file (`.<key>.<kind>.<host>-<pid>-<random>.tmp`)
/// was left by a process that is gone: one of this host that no longer
/// runs, or of another host after a day.
fn temp_is_leftover(path: &Path, name: &str) -> bool {
    let owner = name.strip_suffix(".tmp").and_then(|n| n.splitn(4, '.').nth(3)).unwrap_or("");
    let mut parts = owner.rsplitn(3, '-');
    let (_random, pid, host) = (parts.next(), parts.next(), parts.next());
    if let (Some(host), Some(Ok(pid))) = (host, pid.map(str::parse::<u32>)) {
        if host == host_tag() {
            return !process_alive(pid);
        }
    }
    let age = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    // Broken leases are renamed aside and removed at once; a minute covers the gap.
    let limit = if owner.starts_with("broken-") { Duration::from_secs(60) } else { FOREIGN_TEMP_MAX_AGE };
    age > limit
}
