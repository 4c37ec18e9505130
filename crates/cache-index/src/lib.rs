//! An index of cache entries kept in SQLite: each entry's size, function,
//! dtype, shape, creation and last use, plus running totals, so limits are
//! enforced and statistics read without listing the cache directory.
//!
//! Many processes share one index safely: every change is a transaction
//! under SQLite's write lock. The caller's file operations that must agree
//! with the index run inside those transactions, through closures:
//!
//! - [`Index::insert`] renames an entry into place and adds its row in one
//!   transaction. A crash before the commit leaves files without a row
//!   (an entry the index does not count yet), never a row without files.
//! - [`Index::remove`] deletes rows in one transaction, then unlinks the
//!   files of keys that still have no row in a second. A crash between the
//!   two again leaves only files without a row, and an entry stored anew
//!   between the two keeps its files.
//! - [`Index::reconcile`] lists the directory under the write lock and
//!   brings the rows in line with the files.
//!
//! The files are the truth; the index never makes a load return a wrong
//! array, it only decides what is evicted and what statistics say.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

pub use cache_core::{EntryRow, Limits, Totals};

/// The schema version this crate writes, in SQLite's `user_version`. An
/// index of an older version is rebuilt: it is bookkeeping, and the entries
/// on disk say what it should hold.
const SCHEMA_VERSION: i64 = 2;

/// Drops what older schema versions made.
const DROP_OLD: &str = "
DROP TRIGGER IF EXISTS entries_added;
DROP TRIGGER IF EXISTS entries_removed;
DROP TRIGGER IF EXISTS entries_resized;
DROP TABLE IF EXISTS entries;
DROP TABLE IF EXISTS totals;
";

/// `shape` holds the dimensions as 64-bit little-endian integers, packed.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
  key TEXT PRIMARY KEY NOT NULL,
  function TEXT NOT NULL,
  dtype TEXT NOT NULL,
  shape BLOB NOT NULL,
  bytes INTEGER NOT NULL,
  created INTEGER NOT NULL,
  last_used INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_last_use ON entries (last_used, key);
CREATE TABLE IF NOT EXISTS totals (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  entries INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  hits INTEGER NOT NULL,
  misses INTEGER NOT NULL,
  reconciled INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0, 0, 0, 0);
-- Totals follow the rows in the same transaction, so they never drift.
CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN
  UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN
  UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.bytes;
END;
CREATE TRIGGER IF NOT EXISTS entries_resized AFTER UPDATE OF bytes ON entries BEGIN
  UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes;
END;
-- Arrays whose data was checked whole in a boot (see `Index::mark_checked`).
-- Added without a new schema version: older versions ignore it.
CREATE TABLE IF NOT EXISTS checked (
  key TEXT PRIMARY KEY NOT NULL,
  boot TEXT NOT NULL,
  array TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS entries_unchecked AFTER DELETE ON entries BEGIN
  DELETE FROM checked WHERE key = OLD.key;
END;
";

/// How long a process waits for another's write lock before failing.
/// Long: a reconcile of a very large directory holds it for seconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong, with the index file it went wrong on.
#[derive(Debug)]
pub struct IndexError {
    pub path: PathBuf,
    pub source: Box<dyn std::error::Error + Send + Sync>,
    /// Not this cache's index (another database under its name).
    foreign: bool,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache index {}: {}", self.path.display(), self.source)
    }
}

/// Maps SQLite's errors to ours, naming the index file.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> IndexError + Copy + '_ {
    move |source| IndexError { path: path.to_path_buf(), source: Box::new(source), foreign: false }
}

impl IndexError {
    /// An error of the index at `path` for another reason, e.g. a caller's
    /// file operation inside an index transaction.
    pub fn new(path: impl Into<PathBuf>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> IndexError {
        IndexError { path: path.into(), source: source.into(), foreign: false }
    }

    /// Whether the index file is damaged or not an index at all (as
    /// opposed to busy or unwritable): the caller may rebuild it.
    pub fn is_damaged(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        self.foreign
            || matches!(
                self.source.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(e, _)) if matches!(e.code, DatabaseCorrupt | NotADatabase)
            )
    }
}

impl From<IndexError> for cache_core::Error {
    fn from(e: IndexError) -> cache_core::Error {
        cache_core::Error::Index { path: e.path, source: e.source }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// An entry chosen for removal, with its last use when chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub key: String,
    pub bytes: u64,
    pub last_used: i64,
}

/// What a removal removed: rows, and the bytes they counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
}

/// Which SQLite journal the index uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: readers never block the writer. Needs memory shared
    /// between the processes, so only on a local filesystem.
    Wal,
    /// Rollback journal with POSIX byte-range locks: for network
    /// filesystems, where processes on different hosts share no memory.
    Rollback,
}

/// An open index. Not shared between threads; the caller serialises use.
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Index {
    /// Opens the index at `path`, creating it if needed (or rebuilding one of
    /// an older schema). Also says whether this call created it, so the
    /// caller can adopt entries already on disk. A link at `path` is not
    /// followed (SQLite opens its journal files without following links
    /// too), and a database that is not an index of this cache is refused
    /// (as damaged), never changed.
    pub fn open(path: &Path, journal: Journal) -> Result<(Index, bool), IndexError> {
        let err = sqlite_error(path);
        let conn =
            Connection::open_with_flags(path, OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let refuse = |msg: String, foreign: bool| IndexError { path: path.to_path_buf(), source: msg.into(), foreign };
        // Before anything changes it (even its journal mode): is it ours?
        if is_foreign(&conn).map_err(err)? {
            return Err(refuse(
                "it is a database with tables but no schema version, not an index of this cache".into(),
                true,
            ));
        }
        let mode = match journal {
            Journal::Wal => "wal",
            Journal::Rollback => "delete",
        };
        // Changing the journal mode needs a moment with no other connection;
        // if another process holds one, its mode (the same one) stays.
        let _ = conn.pragma_update(None, "journal_mode", mode);
        // No fsync, as for the entries: the index is bookkeeping that an OS
        // crash can at worst damage, and a damaged index is rebuilt from the
        // files. (Syncing made every checkpoint of a large prune wait on the disk.)
        conn.pragma_update(None, "synchronous", "OFF").map_err(err)?;
        // Room for the pages of a large index (SQLite takes it only as it
        // needs it): recording the uses of 100,000 entries at once no longer
        // spills pages mid-transaction.
        conn.pragma_update(None, "cache_size", -32768).map_err(err)?;
        let mut index = Index { conn, path: path.to_path_buf() };
        let version = index.write(|tx| {
            if is_foreign(tx)? {
                return Ok(None);
            }
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if (1..SCHEMA_VERSION).contains(&version) {
                tx.execute_batch(DROP_OLD)?;
            }
            if version <= SCHEMA_VERSION {
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            Ok(Some(version))
        })?;
        let Some(version) = version else {
            return Err(refuse(
                "it is a database with tables but no schema version, not an index of this cache".into(),
                true,
            ));
        };
        if version > SCHEMA_VERSION {
            let msg =
                format!("it has schema version {version}; this version of the cache reads up to {SCHEMA_VERSION}");
            return Err(refuse(msg, false));
        }
        // An older schema was emptied above: the caller refills it as a new one.
        let created = version < SCHEMA_VERSION;
        Ok((index, created))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> IndexError + Copy + '_ {
        sqlite_error(&self.path)
    }

    /// Runs `f` in a transaction that holds the write lock from its start.
    fn write<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>) -> Result<T, IndexError> {
        let path = self.path.clone();
        self.write_with(|tx| f(tx).map_err(sqlite_error(&path)))
    }

    /// Like `write`, for closures whose own errors pass through. A closure
    /// error rolls the transaction back.
    fn write_with<T, E: From<IndexError>>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let path = self.path.clone();
        let err = sqlite_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let out = f(&tx)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Runs `place` (which puts the entry's files under their real names)
    /// and adds or replaces the entry's row, in one transaction. If `place`
    /// fails nothing changes in the index.
    pub fn insert<E: From<IndexError>>(
        &mut self,
        row: &EntryRow,
        place: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let path = self.path.clone();
        self.write_with(|tx| {
            place()?;
            upsert(tx, row).map_err(sqlite_error(&path))?;
            Ok(())
        })
    }

    /// Records uses of entries (key, time of use) and hit and miss counts.
    /// Keys without a row are skipped: the index only learns of entries
    /// through `insert` and `reconcile`. With `wait`, waits at most that
    /// long for another process's transaction (else as long as any write).
    pub fn record(
        &mut self,
        uses: &[(String, i64)],
        hits: u64,
        misses: u64,
        wait: Option<Duration>,
    ) -> Result<(), IndexError> {
        if let Some(wait) = wait {
            self.conn.busy_timeout(wait).map_err(self.err())?;
        }
        let written = self.write(|tx| {
            let mut touch = tx.prepare_cached("UPDATE entries SET last_used = max(last_used, ?2) WHERE key = ?1")?;
            for (key, when) in uses {
                touch.execute(params![key, when])?;
            }
            tx.execute(
                "UPDATE totals SET hits = hits + ?1, misses = misses + ?2",
                params![to_i64(hits), to_i64(misses)],
            )?;
            Ok(())
        });
        if wait.is_some() {
            self.conn.busy_timeout(BUSY_TIMEOUT).map_err(self.err())?;
        }
        written
    }

    /// Notes that the arrays of `marks` (key, boot, the array file's
    /// identity as the caller spells it) had all their data checked in that
    /// boot, so other processes of the boot need not check them again. With
    /// `wait`, waits at most that long for another process's transaction.
    pub fn mark_checked(
        &mut self,
        marks: &[(String, String, String)],
        wait: Option<Duration>,
    ) -> Result<(), IndexError> {
        if let Some(wait) = wait {
            self.conn.busy_timeout(wait).map_err(self.err())?;
        }
        let written = self.write(|tx| {
            let mut mark =
                tx.prepare_cached("INSERT OR REPLACE INTO checked (key, boot, array) VALUES (?1, ?2, ?3)")?;
            for (key, boot, array) in marks {
                mark.execute(params![key, boot, array])?;
            }
            Ok(())
        });
        if wait.is_some() {
            self.conn.busy_timeout(BUSY_TIMEOUT).map_err(self.err())?;
        }
        written
    }

    /// The identity of the array of `key` as marked checked in boot `boot`, if it is.
    pub fn checked_in(&self, key: &str, boot: &str) -> Result<Option<String>, IndexError> {
        let mut q =
            self.conn.prepare_cached("SELECT array FROM checked WHERE key = ?1 AND boot = ?2").map_err(self.err())?;
        q.query_row([key, boot], |r| r.get(0)).optional().map_err(self.err())
    }

    /// When `key` was last used, as far as the index knows.
    pub fn last_used(&self, key: &str) -> Result<Option<i64>, IndexError> {
        let mut q = self.conn.prepare_cached("SELECT last_used FROM entries WHERE key = ?1").map_err(self.err())?;
        q.query_row([key], |r| r.get(0)).optional().map_err(self.err())
    }

    pub fn totals(&self) -> Result<Totals, IndexError> {
        self.conn
            .query_row("SELECT entries, bytes, hits, misses FROM totals", [], |r| {
                Ok(Totals {
                    entries: to_u64(r.get(0)?),
                    bytes: to_u64(r.get(1)?),
                    hits: to_u64(r.get(2)?),
                    misses: to_u64(r.get(3)?),
                    foreign: 0,
                })
            })
            .map_err(self.err())
    }

    /// All rows, most recently used first: the reverse of eviction order.
    /// Rows that do not read as rows (a value of the wrong type: an edited
    /// index) are skipped; a reconcile drops them.
    pub fn rows(&self) -> Result<Vec<EntryRow>, IndexError> {
        let mut q = self
            .conn
            .prepare("SELECT key, function, dtype, shape, bytes, created, last_used FROM entries ORDER BY last_used DESC, key DESC")
            .map_err(self.err())?;
        let rows = q.query_map([], |r| Ok(row_of(r).ok())).map_err(self.err())?;
        rows.filter_map(Result::transpose).collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Keys, as stored, of the rows that do not read as rows (see `rows`).
    fn malformed(tx: &rusqlite::Transaction) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
        let mut q = tx.prepare("SELECT key, function, dtype, shape, bytes, created, last_used FROM entries")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, rusqlite::types::Value>(0)?, row_of(r).is_ok())))?;
        rows.filter_map(|r| r.map(|(key, ok)| (!ok).then_some(key)).transpose()).collect()
    }

    /// Entries and bytes as the rows say, counted (not the running totals).
    fn counted(&self) -> Result<(u64, u64), IndexError> {
        self.conn
            .query_row("SELECT count(*), coalesce(sum(bytes), 0) FROM entries", [], |r| {
                Ok((to_u64(r.get(0)?), to_u64(r.get(1)?)))
            })
            .map_err(self.err())
    }

    /// The entries to remove so the cache meets `limits` at time `now`:
    /// first those unused for longer than `max_age`, then the least
    /// recently used until both size limits hold. Returns (key, bytes) in
    /// the order they should go.
    pub fn victims(&self, limits: &Limits, now: i64) -> Result<Vec<Victim>, IndexError> {
        let totals = self.totals()?;
        let over = |entries: u64, bytes: u64| {
            limits.max_entries.is_some_and(|m| entries > m) || limits.max_bytes.is_some_and(|m| bytes > m)
        };
        let expired_before = limits.max_age.map(|age| now.saturating_sub(age));
        if expired_before.is_none() && !over(totals.entries, totals.bytes) {
            return Ok(Vec::new());
        }
        // The running totals say there is something to remove; the rows
        // themselves say how much, so a wrong totals row (an edited or
        // damaged index) cannot make a store evict everything.
        let (mut entries, mut bytes) = self.counted()?;
        let mut q = self
            .conn
            .prepare("SELECT key, bytes, last_used FROM entries ORDER BY last_used, key")
            .map_err(self.err())?;
        let mut rows = q.query([]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            // A row that is not the cache's is no victim: a reconcile drops it.
            let (Ok(key), Ok(size), Ok(last_used)) = (r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, i64>(2))
            else {
                continue;
            };
            let expired = expired_before.is_some_and(|t| last_used < t);
            if !expired && !over(entries, bytes) {
                break;
            }
            let size = to_u64(size);
            out.push(Victim { key, bytes: size, last_used });
            entries = entries.saturating_sub(1);
            bytes = bytes.saturating_sub(size);
        }
        Ok(out)
    }

    /// Removes entries given as (key, last use when judged): their rows in
    /// one transaction, sparing a row used or stored anew since it was
    /// judged (`i64::MAX` spares none); then, under the write lock again,
    /// `unlink` for each key that has no row (one stored anew in between
    /// keeps its files). Returns the rows this call removed.
    pub fn remove<E: From<IndexError>>(
        &mut self,
        keys: &[(String, i64)],
        mut unlink: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<Removed, E> {
        let removed = self.write(|tx| {
            let mut delete = tx.prepare_cached(
                // i64::MAX removes the row whatever it holds (even a damaged last use).
                "DELETE FROM entries WHERE key = ?1 AND (?2 = 9223372036854775807 OR last_used <= ?2) RETURNING bytes",
            )?;
            let mut removed = Removed::default();
            for (key, judged) in keys {
                let size: Option<i64> = delete.query_row(params![key, judged], |r| r.get(0)).optional()?;
                if let Some(size) = size {
                    removed.entries += 1;
                    removed.bytes += to_u64(size);
                }
            }
            Ok(removed)
        })?;
        let path = self.path.clone();
        self.write_with(|tx| -> Result<(), E> {
            let mut present = tx.prepare_cached("SELECT 1 FROM entries WHERE key = ?1").map_err(sqlite_error(&path))?;
            for (key, _) in keys {
                let stored_again = present.exists([key]).map_err(sqlite_error(&path))?;
                if !stored_again {
                    unlink(key)?;
                }
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Empties the index (rows and counters) in one transaction, then runs
    /// `unlink_all` under the write lock with a test for keys stored since.
    /// `ready` runs first, once the write lock is held (after any wait for
    /// another process): its error ends the clear with nothing changed.
    pub fn clear<T, E: From<IndexError>>(
        &mut self,
        ready: impl FnOnce() -> Result<(), E>,
        unlink_all: impl FnOnce(&dyn Fn(&str) -> bool) -> Result<T, E>,
    ) -> Result<T, E> {
        let path = self.path.clone();
        self.write_with(|tx| {
            ready()?;
            let empty = || -> rusqlite::Result<()> {
                tx.execute("DELETE FROM entries", [])?;
                tx.execute("DELETE FROM checked", [])?;
                tx.execute("UPDATE totals SET entries = 0, bytes = 0, hits = 0, misses = 0", [])?;
                Ok(())
            };
            empty().map_err(|e| E::from(sqlite_error(&path)(e)))
        })?;
        self.write_with(|tx| {
            let stored_since = |key: &str| {
                tx.prepare_cached("SELECT 1 FROM entries WHERE key = ?1")
                    .and_then(|mut q| q.exists([key]))
                    .unwrap_or(true)
            };
            unlink_all(&stored_since)
        })
    }

    /// Brings the rows in line with the files, under the write lock: `scan`
    /// lists the keys of the complete entries on disk (it may also tidy
    /// leftovers), and `describe` makes the row of an entry the index lacks
    /// (None if it does not read as one). Rows are dropped for entries no
    /// longer on disk. Returns (added, dropped).
    pub fn reconcile<E: From<IndexError>>(
        &mut self,
        now: i64,
        scan: impl FnOnce() -> Result<Vec<String>, E>,
        mut describe: impl FnMut(&str) -> Option<EntryRow>,
    ) -> Result<(u64, u64), E> {
        let path = self.path.clone();
        self.write_with(|tx| {
            let err = sqlite_error(&path);
            let on_disk = scan()?;
            // Rows that do not read go (an entry on disk under such a key is
            // described anew); rows of keys not on disk, keys or not, go below.
            let mut repaired = 0;
            for key in Index::malformed(tx).map_err(err)? {
                repaired += tx.execute("DELETE FROM entries WHERE key = ?1", [key]).map_err(err)? as u64;
            }
            tx.execute("CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY) WITHOUT ROWID", []).map_err(err)?;
            tx.execute("DELETE FROM seen", []).map_err(err)?;
            let mut added = 0;
            {
                let mut mark = tx.prepare_cached("INSERT OR IGNORE INTO seen VALUES (?1)").map_err(err)?;
                for key in &on_disk {
                    mark.execute([key]).map_err(err)?;
                }
                let mut missing =
                    tx.prepare("SELECT key FROM seen WHERE key NOT IN (SELECT key FROM entries)").map_err(err)?;
                let unknown = missing.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
                let unknown: Vec<String> = unknown.collect::<rusqlite::Result<_>>().map_err(err)?;
                for key in unknown {
                    if let Some(row) = describe(&key) {
                        upsert(tx, &row).map_err(err)?;
                        added += 1;
                    }
                }
            }
            let dropped = repaired
                + tx.execute("DELETE FROM entries WHERE key NOT IN (SELECT key FROM seen)", []).map_err(err)? as u64;
            tx.execute("DELETE FROM checked WHERE key NOT IN (SELECT key FROM seen)", []).map_err(err)?;
            tx.execute("DELETE FROM seen", []).map_err(err)?;
            // The running totals are recounted from the rows: a wrong totals
            // row (edited, or from a damaged index) is set right here.
            tx.execute(
                "UPDATE totals SET reconciled = ?1, entries = (SELECT count(*) FROM entries),
                   bytes = (SELECT coalesce(sum(bytes), 0) FROM entries)",
                [now],
            )
            .map_err(err)?;
            Ok((added, dropped))
        })
    }

    /// When `reconcile` last ran (0: never).
    pub fn reconciled_at(&self) -> Result<i64, IndexError> {
        self.conn.query_row("SELECT reconciled FROM totals", [], |r| r.get(0)).map_err(self.err())
    }
}

fn upsert(tx: &rusqlite::Transaction, row: &EntryRow) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO entries (key, function, dtype, shape, bytes, created, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (key) DO UPDATE SET function = excluded.function, dtype = excluded.dtype,
           shape = excluded.shape, bytes = excluded.bytes, created = excluded.created,
           last_used = excluded.last_used",
    )?
    .execute(params![
        row.key,
        row.function,
        row.dtype,
        shape_blob(&row.shape),
        to_i64(row.bytes),
        row.created,
        row.last_used
    ])
}

/// A database someone else made (tables, but no schema version of ours):
/// never ours to change. One statement, so one snapshot: read apart, the
/// version could be read before another process's creation of the index
/// commits and the tables after.
fn is_foreign(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version) = 0 AND (SELECT count(*) FROM sqlite_schema) > 0",
        [],
        |r| r.get(0),
    )
}

fn shape_blob(shape: &[u64]) -> Vec<u8> {
    shape.iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// The dimensions packed by `shape_blob`; a blob that is not whole 64-bit
/// integers (an edited index) is an error of that row.
fn shape_of(blob: &[u8]) -> rusqlite::Result<Vec<u64>> {
    if !blob.len().is_multiple_of(8) {
        let msg = format!("a shape of {} bytes is not a list of 64-bit integers", blob.len());
        return Err(rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, msg.into()));
    }
    Ok(blob.chunks_exact(8).map(|d| u64::from_le_bytes(d.try_into().expect("8 bytes"))).collect())
}

fn row_of(r: &rusqlite::Row) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        key: r.get(0)?,
        function: r.get(1)?,
        dtype: r.get(2)?,
        shape: shape_of(r.get_ref(3)?.as_blob()?)?,
        bytes: to_u64(r.get(4)?),
        created: r.get(5)?,
        last_used: r.get(6)?,
    })
}
