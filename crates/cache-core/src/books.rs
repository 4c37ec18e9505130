//! A tier's books: the limits it keeps, and what its listings and
//! maintenance report. Times are microseconds since the Unix epoch.

use std::time::Duration;

/// Limits on a tier; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: Option<u64>,
    pub max_entries: Option<u64>,
    /// Microseconds since last use after which an entry expires.
    pub max_age: Option<i64>,
    /// The largest entry a store keeps (see [`Limits::refuses`]).
    pub max_entry_bytes: Option<u64>,
}

impl Limits {
    pub fn is_none(&self) -> bool {
        *self == Limits::default()
    }

    /// The limit an entry of `bytes` (as the tier counts them) exceeds on
    /// its own: `max_entry_bytes`, or `max_bytes`, which it could only
    /// meet by evicting everything, itself included. Such an entry is not
    /// stored, and evicts nothing.
    pub fn refuses(&self, bytes: u64) -> Option<u64> {
        [self.max_entry_bytes, self.max_bytes].into_iter().flatten().filter(|&max| bytes > max).min()
    }
}

/// Totals over a whole tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub entries: u64,
    /// What the entries take where they are kept (files, objects).
    pub bytes: u64,
    /// Loads answered, and loads not answered, as far as the tier counts
    /// them (a directory: every process's; an object store: this process's).
    pub hits: u64,
    pub misses: u64,
    /// What a listing of the tier skipped as not the cache's: objects
    /// under an object store's fan-out prefixes with other names, or with
    /// names that are not paths (0 where nothing was listed).
    pub foreign: u64,
}

/// One entry as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub key: String,
    /// The function that computed it ("" when it could not be read).
    pub function: String,
    /// Its NumPy descr in native order ("" when it could not be read); of
    /// an entry of several arrays, its members as [`MemberRow::encode_all`]
    /// writes them (an index keeps them in the same column).
    pub dtype: String,
    pub shape: Vec<u64>,
    pub bytes: u64,
    pub created: i64,
    pub last_used: i64,
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed_entries: u64,
    pub removed_bytes: u64,
    /// Entries found that the tier's index lacked (stored by a process killed mid-store).
    pub adopted: u64,
    /// Index rows whose entries were gone.
    pub dropped: u64,
    /// Temporary files, halves of entries, leases and use marks that no one
    /// will finish or refresh, and entries of an older version.
    pub removed_leftovers: u64,
    /// Totals after the prune.
    pub totals: Totals,
}

/// What a clear removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClearReport {
    /// Files or objects removed.
    pub removed: u64,
    pub removed_dir: bool,
    /// Files the cache did not write, left in place.
    pub foreign: u64,
}

/// What a verify found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked, data included.
    pub checked: u64,
    /// The damaged ones: key and what is wrong.
    pub damaged: Vec<(String, String)>,
    /// Damaged entries removed.
    pub removed: u64,
}

/// How long a write of bookkeeping may wait for another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: if another thread or process is writing, try later.
    Never,
    /// Up to this long.
    AtMost(Duration),
    /// As long as any write.
    AsNeeded,
}

/// What a store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Published; to keep the tier's limits, its least recently used
    /// entries then went: `evicted` of them, as the tier removed them (not
    /// as it planned to, nor as counts suggest).
    Published { evicted: u64 },
    /// Not stored, and nothing evicted: the entry, `bytes` as the tier
    /// counts them, is over `limit` on its own (see [`Limits::refuses`]).
    TooLarge { bytes: u64, limit: u64 },
    /// A whole entry was there first (another writer's, or another version's): it stands.
    AlreadyThere,
    /// It could not be stored: a note says why (the call goes on without it).
    Failed,
}

impl Stored {
    pub fn is_published(self) -> bool {
        matches!(self, Stored::Published { .. })
    }
}

/// One array of an entry of several, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberRow {
    pub name: String,
    /// NumPy descr in native order.
    pub dtype: String,
    pub shape: Vec<u64>,
}

impl MemberRow {
    pub fn of(name: &str, header: &npy_format::Header) -> MemberRow {
        MemberRow { name: name.to_owned(), dtype: header.dtype.native().descr(), shape: header.shape.clone() }
    }

    /// Members as an [`EntryRow`]'s `dtype` holds them: a JSON array, which
    /// no descr begins like.
    pub fn encode_all(members: impl IntoIterator<Item = MemberRow>) -> String {
        serde_json::to_string(&members.into_iter().collect::<Vec<_>>()).expect("rows always serialize")
    }

    /// The members a row's `dtype` lists, if it is of several arrays.
    pub fn decode_all(dtype: &str) -> Option<Vec<MemberRow>> {
        dtype.starts_with('[').then(|| serde_json::from_str(dtype).ok()).flatten()
    }
}
