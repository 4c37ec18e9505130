//! A tier whose failures never fail a cached call: a store that fails is a
//! note and the call returns its result all the same; a load or `has`
//! that finds the tier unavailable (after its own retries) is a miss with
//! a note. With a pause (the object store's), the tier is not tried again
//! for that long after it was unavailable, so calls fail open at once
//! instead of each waiting out the retries. Refused credentials are never
//! turned into a miss: they are the caller's to fix. Removals fail open
//! too (with a note: what was not removed is said); maintenance that lists
//! or prunes passes through unchanged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cache_core::{
    lock, Alloc, Buffer, Claim, ClearReport, Clock, Draft, Entry, EntryRow, Error, ErrorKind, Holder, Key, Limits,
    NewArray, NewEntry, Note, NoteKind, Notes, OnDisk, OpenedEntry, Progress, PruneReport, Stored, Tier, Totals,
    VerifyReport, Wait,
};
use npy_format::Header;

/// After the object store is unavailable, calls skip it for this long.
pub const STORE_PAUSE: Duration = Duration::from_secs(10);

/// A tier that fails open (see the module's docs).
pub struct FailOpen<B: Buffer> {
    inner: Arc<dyn Tier<B>>,
    /// How notes name the tier.
    label: String,
    pause: Option<Duration>,
    down: Mutex<Option<Down>>,
}

impl<B: Buffer> std::fmt::Debug for FailOpen<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailOpen").field("inner", &self.inner).field("pause", &self.pause).finish_non_exhaustive()
    }
}

/// The failure that paused the tier (as it read), and until when.
#[derive(Debug)]
struct Down {
    until: Instant,
    cause: String,
}

/// A failure remembered while the tier is paused, as the source of the
/// notes of calls that skipped it.
#[derive(Debug)]
struct Remembered(String);

impl std::fmt::Display for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped for a while after it failed: {}", self.0)
    }
}

impl std::error::Error for Remembered {}

/// How an operation fails open.
struct Rule {
    /// The note of a failure.
    kind: NoteKind,
    /// What the operation was doing, for the note of a call that skipped the paused tier.
    action: &'static str,
    /// Any failure fails open (a store's), not only unavailability.
    any_failure: bool,
    /// Skipped in a pause without a note: a read, whose failure was noted
    /// when it paused the tier.
    quiet_in_pause: bool,
}

const READ: Rule =
    Rule { kind: NoteKind::Unavailable, action: "read an entry", any_failure: false, quiet_in_pause: true };
const PROBE: Rule =
    Rule { kind: NoteKind::Unavailable, action: "look for an entry", any_failure: false, quiet_in_pause: true };
const STORE: Rule =
    Rule { kind: NoteKind::StoreFailed, action: "store an entry", any_failure: true, quiet_in_pause: false };
const REMOVE: Rule =
    Rule { kind: NoteKind::Unavailable, action: "remove an entry", any_failure: false, quiet_in_pause: false };

/// What became of an operation that may fail open.
enum Went<T> {
    Done(T),
    /// Skipped or failed open: a note says why.
    Open,
}

impl<B: Buffer> FailOpen<B> {
    /// `inner`, failing open; named `label` in notes; paused for `pause`
    /// after it is unavailable.
    pub fn new(inner: Arc<dyn Tier<B>>, label: impl Into<String>, pause: Option<Duration>) -> FailOpen<B> {
        FailOpen { inner, label: label.into(), pause, down: Mutex::new(None) }
    }

    fn note(&self, notes: &mut Notes, kind: NoteKind, error: Error) {
        notes.push(Note { kind, error, tier: self.label.clone() });
    }

    /// The failure that paused the tier, while the pause lasts.
    fn paused(&self) -> Option<String> {
        let mut down = lock(&self.down);
        match &*down {
            Some(d) if Instant::now() < d.until => Some(d.cause.clone()),
            Some(_) => {
                *down = None;
                None
            }
            None => None,
        }
    }

    /// Pauses the tier after `cause` made it unavailable (if it pauses).
    fn pause_after(&self, cause: &Error) {
        if let Some(pause) = self.pause {
            *lock(&self.down) = Some(Down { until: Instant::now() + pause, cause: cause.to_string() });
        }
    }

    /// The error of a call that skipped the paused tier.
    fn skipped(&self, cause: String, action: &'static str) -> Error {
        Error::Unavailable { location: self.inner.location().to_owned(), action, source: Box::new(Remembered(cause)) }
    }

    /// Runs `op` unless the tier is paused. An unavailable tier (then
    /// paused) is a note, and, for a store, so is any failure: refused
    /// permission to write too, so readers may hold read-only credentials.
    /// Other failures are the call's.
    async fn guarded<T>(
        &self,
        rule: Rule,
        notes: &mut Notes,
        op: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<Went<T>, Error> {
        if let Some(cause) = self.paused() {
            if !rule.quiet_in_pause {
                self.note(notes, rule.kind, self.skipped(cause, rule.action));
            }
            return Ok(Went::Open);
        }
        match op.await {
            Ok(v) => Ok(Went::Done(v)),
            Err(e) if e.kind() == ErrorKind::Unavailable || rule.any_failure => {
                if e.kind() == ErrorKind::Unavailable {
                    self.pause_after(&e);
                }
                self.note(notes, rule.kind, e);
                Ok(Went::Open)
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl<B: Buffer> Tier<B> for FailOpen<B> {
    fn location(&self) -> &str {
        self.inner.location()
    }

    async fn load(&self, key: &Key, alloc: &mut Alloc<'_, B>, notes: &mut Notes) -> Result<Option<Entry<B>>, Error> {
        let mut own = Notes::new();
        let went = self.guarded(READ, notes, self.inner.load(key, alloc, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(entry) => entry,
            Went::Open => None,
        })
    }

    async fn load_on_disk(
        &self,
        key: &Key,
        up_to: u64,
        alloc: &mut Alloc<'_, B>,
        notes: &mut Notes,
    ) -> Result<OnDisk<B>, Error> {
        let mut own = Notes::new();
        let went = self.guarded(READ, notes, self.inner.load_on_disk(key, up_to, alloc, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(found) => found,
            Went::Open => OnDisk::Decided(None),
        })
    }

    fn stores_on_disk(&self) -> bool {
        self.inner.stores_on_disk()
    }

    async fn open(&self, key: &Key, notes: &mut Notes) -> Result<Option<OpenedEntry>, Error> {
        let mut own = Notes::new();
        let went = self.guarded(READ, notes, self.inner.open(key, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(opened) => opened,
            Went::Open => None,
        })
    }

    async fn has(&self, key: &Key, notes: &mut Notes) -> Result<bool, Error> {
        let mut own = Notes::new();
        let went = self.guarded(PROBE, notes, self.inner.has(key, &mut own)).await;
        notes.append(&mut own);
        Ok(matches!(went?, Went::Done(true)))
    }

    async fn store(&self, key: &Key, array: NewArray<'_>, notes: &mut Notes) -> Result<Stored, Error> {
        let mut own = Notes::new();
        let went = self.guarded(STORE, notes, self.inner.store(key, array, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(stored) => stored,
            Went::Open => Stored::Failed,
        })
    }

    async fn draft(&self, key: &Key, header: &Header, notes: &mut Notes) -> Result<Draft, Error> {
        let mut own = Notes::new();
        let went = self.guarded(STORE, notes, self.inner.draft(key, header, &mut own)).await;
        notes.append(&mut own);
        match went? {
            Went::Done(draft) => Ok(draft),
            // The result is still computed, into a file of its own, and publish then stores what it holds.
            Went::Open => Draft::in_temp_dir(header.clone()),
        }
    }

    async fn publish(
        &self,
        key: &Key,
        draft: &mut Draft,
        entry: NewEntry<'_>,
        notes: &mut Notes,
    ) -> Result<Stored, Error> {
        let mut own = Notes::new();
        let went = self.guarded(STORE, notes, self.inner.publish(key, draft, entry, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(stored) => stored,
            Went::Open => Stored::Failed,
        })
    }

    async fn remove(&self, key: &Key, notes: &mut Notes) -> Result<bool, Error> {
        let mut own = Notes::new();
        let went = self.guarded(REMOVE, notes, self.inner.remove(key, &mut own)).await;
        notes.append(&mut own);
        Ok(matches!(went?, Went::Done(true)))
    }

    async fn remove_function(
        &self,
        function: &str,
        progress: &mut Progress<'_>,
        notes: &mut Notes,
    ) -> Result<Vec<Key>, Error> {
        let mut own = Notes::new();
        let went = self.guarded(REMOVE, notes, self.inner.remove_function(function, progress, &mut own)).await;
        notes.append(&mut own);
        Ok(match went? {
            Went::Done(keys) => keys,
            Went::Open => Vec::new(),
        })
    }

    async fn claim(&self, key: &Key, stale_after: Duration) -> Result<Claim, Error> {
        if let Some(cause) = self.paused() {
            return Ok(Claim::Unavailable(self.skipped(cause, "take a compute-once lease")));
        }
        let claim = self.inner.claim(key, stale_after).await?;
        if let Claim::Unavailable(e) = &claim {
            if e.kind() == ErrorKind::Unavailable {
                self.pause_after(e);
            }
        }
        Ok(claim)
    }

    /// A lease that cannot be read is no longer waited for: the next claim
    /// decides (and, the tier still down, computes without one).
    async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>, Error> {
        if self.paused().is_some() {
            return Ok(None);
        }
        Ok(self.inner.lease_holder(key, stale_after).await.unwrap_or(None))
    }

    async fn totals(&self, progress: &mut Progress<'_>) -> Result<Totals, Error> {
        self.inner.totals(progress).await
    }

    async fn entries(&self, progress: &mut Progress<'_>) -> Result<Vec<EntryRow>, Error> {
        self.inner.entries(progress).await
    }

    async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        self.inner.prune(limits, progress).await
    }

    async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        self.inner.verify(remove, progress).await
    }

    async fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        self.inner.clear(remove_dir, progress).await
    }

    async fn flush(&self, wait: Wait) -> Result<(), Error> {
        self.inner.flush(wait).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }

    fn clock(&self) -> &Clock {
        self.inner.clock()
    }

    fn set_recording(&self, on: bool) {
        self.inner.set_recording(on)
    }
}
