//! The contract every tier implements: a directory, an object store, and a
//! local directory in front of an object store. A binding holds one
//! `Arc<dyn Tier>` and never asks which it is; the conformance suite
//! (feature `conformance`) runs every scenario on each.

use std::time::Duration;

use async_trait::async_trait;
use npy_format::{AlignedBuf, Header};

use crate::books::{ClearReport, EntryRow, Limits, PruneReport, Stored, Totals, VerifyReport, Wait};
use crate::content::Content;
use crate::draft::Draft;
use crate::entry::{Alloc, Buffer, Entry};
use crate::lease::{Claim, Holder};
use crate::notes::Notes;
use crate::opened::OpenedEntry;
use crate::progress::Progress;
use crate::record::NewEntry;
use crate::{Clock, Key, Result};

/// What a store writes: the entry's file and what the record says of it.
#[derive(Debug, Clone, Copy)]
pub struct NewArray<'a> {
    /// The caller's memory: a tier reads it during the call and never after.
    pub content: &'a Content<'a>,
    pub entry: NewEntry<'a>,
}

impl NewArray<'_> {
    /// Bytes of the file it makes.
    pub fn file_len(&self) -> u64 {
        self.content.len()
    }
}

/// What [`Tier::load_on_disk`] found.
#[derive(Debug)]
pub enum OnDisk<B: Buffer> {
    /// The load was decided on this machine's disk: a hit, or a miss that
    /// asks nothing further.
    Decided(Option<Entry<B>>),
    /// Deciding takes a request, or reading a larger array: left to
    /// [`Tier::load`].
    Elsewhere,
}

/// A place entries are kept. Every operation is a future (see
/// [`runtime`](crate::runtime)); what an operation noticed and got past
/// goes into `notes`.
///
/// The rules each implementation keeps, which the conformance suite checks:
///
/// - `load` returns an entry only after the checks that make it one: its
///   record, its header and length, and its data against its digest
///   (always on an object store; up to 64 KiB, or all with `verify`, in a
///   directory). A damaged entry is a miss with a [`NoteKind::Damaged`]
///   note, and the next `store` replaces it. A hit counts as a use.
/// - `has` makes the checks a load makes (a large entry's data is not
///   read) and is not a use.
/// - `store` is create-only: a whole entry already there (another
///   writer's) stands, and the call says so. An entry over the tier's
///   limits on its own ([`Limits::refuses`]) is refused before anything is
///   written, and evicts nothing. A store that publishes reports what its
///   limits then evicted, as removed. Every store but a failed one counts
///   one miss (a computed call), and a load's miss counts none: a call
///   that loads twice (under a lease) is one miss.
/// - `claim` follows [`crate::lease`]: one holder at a time, and a lease
///   held by this process says so whichever cache object took it;
///   `lease_holder` judges as `claim` does, and only reads.
/// - Maintenance (`totals`, `entries`, `prune`, `verify`, `clear`,
///   `remove_function`) reports through `progress` and stops when it asks.
///
/// [`NoteKind::Damaged`]: crate::NoteKind::Damaged
#[async_trait]
pub trait Tier<B: Buffer = AlignedBuf>: Send + Sync + std::fmt::Debug {
    /// Where the tier is, as its user named it: an absolute path, or a URL.
    fn location(&self) -> &str;

    /// The entry of `key`, read into memory from `alloc` (or mapped).
    async fn load(&self, key: &Key, alloc: &mut Alloc<'_, B>, notes: &mut Notes) -> Result<Option<Entry<B>>>;

    /// `load`, when it is decided on this machine's disk alone and reads
    /// less than `up_to` bytes of array: a binding runs such a load on its
    /// caller's thread, where a hop to another thread costs more than the
    /// load. What it noticed is in `notes` either way. A tier that reads
    /// over the network decides nothing here (the default).
    async fn load_on_disk(
        &self,
        _key: &Key,
        _up_to: u64,
        _alloc: &mut Alloc<'_, B>,
        _notes: &mut Notes,
    ) -> Result<OnDisk<B>> {
        Ok(OnDisk::Elsewhere)
    }

    /// Whether a store is done on this machine's disk alone, with no
    /// request (a binding runs a small one on its caller's thread).
    fn stores_on_disk(&self) -> bool {
        false
    }

    /// The entry of `key` opened for reads of its parts, none of its data
    /// read yet (see [`crate::opened`]): its record and headers are checked
    /// as a load checks them, and each read checks the blocks it touches.
    /// A damaged entry is None with a note, as a load's. A use, as a hit.
    async fn open(&self, key: &Key, notes: &mut Notes) -> Result<Option<OpenedEntry>>;

    /// Whether a load of `key` would hit now.
    async fn has(&self, key: &Key, notes: &mut Notes) -> Result<bool>;

    /// Publishes `array` as the entry of `key`, create-only.
    async fn store(&self, key: &Key, array: NewArray<'_>, notes: &mut Notes) -> Result<Stored>;

    /// A file on this machine to fill with the entry of `key`, an array of
    /// `header`, before [`publish`](Self::publish) makes it the entry: where
    /// the tier can rename it into place, else in the system's temporary
    /// directory (the default).
    async fn draft(&self, _key: &Key, header: &Header, _notes: &mut Notes) -> Result<Draft> {
        Draft::in_temp_dir(header.clone())
    }

    /// Publishes a filled `draft` as the entry of `key`: what `store` does
    /// with the same content, and says. A tier that can renames the file
    /// into place (and marks the draft published); the default stores what
    /// the file holds, read through a map of it.
    async fn publish(&self, key: &Key, draft: &mut Draft, entry: NewEntry<'_>, notes: &mut Notes) -> Result<Stored> {
        let filled = draft.filled()?;
        let content = filled.content()?;
        self.store(key, NewArray { content: &content, entry }, notes).await
    }

    /// Removes the entry of `key`; says whether there was one.
    async fn remove(&self, key: &Key, notes: &mut Notes) -> Result<bool>;

    /// Removes every entry of the function named `function`; returns their keys.
    async fn remove_function(&self, function: &str, progress: &mut Progress<'_>, notes: &mut Notes)
        -> Result<Vec<Key>>;

    /// Takes the compute-once lease of `key`, or says who holds it.
    async fn claim(&self, key: &Key, stale_after: Duration) -> Result<Claim>;

    /// The live holder of the lease of `key`, None once it is gone or stale
    /// (judged as `claim` judges): what a waiter polls, a read of at most a
    /// lease's length that never writes nor breaks the lease.
    async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>>;

    /// Totals over the whole tier.
    async fn totals(&self, progress: &mut Progress<'_>) -> Result<Totals>;

    /// Every entry, most recently used first.
    async fn entries(&self, progress: &mut Progress<'_>) -> Result<Vec<EntryRow>>;

    /// Removes expired entries, then the least recently used until `limits`
    /// hold (the tier's own limits when None), and leftovers no one will
    /// finish.
    async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport>;

    /// Checks every entry completely, its data included; with `remove`,
    /// removes the damaged ones.
    async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport>;

    /// Removes everything the cache wrote, and nothing else; with
    /// `remove_dir`, then a directory, if only the cache's files were in it.
    async fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport>;

    /// Writes what is kept in memory (uses, counts) where other processes
    /// see it, waiting for them no longer than `wait` says.
    async fn flush(&self, wait: Wait) -> Result<()>;

    /// Flushes, then lets go of handles (an index's); later calls reopen them.
    async fn close(&self) -> Result<()>;

    /// The clock of stores, uses and expiry (tests move it forward).
    fn clock(&self) -> &Clock;

    /// Turns the recording of hits as uses off or on, to measure what it costs.
    fn set_recording(&self, _on: bool) {}
}
