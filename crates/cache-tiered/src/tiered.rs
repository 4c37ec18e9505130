//! A local directory in front of an object store, as one tier:
//!
//! - *read-through*: a load tries the local tier, then the store; a store's
//!   hit is kept in the local tier before it is returned (so later changes
//!   to the returned array cannot reach it), and later hits on this machine
//!   cost what a directory's do;
//! - *write order*: a store goes to the store first (other machines wait
//!   for it), then to the local tier (this machine's);
//! - removals act on both; leases are the store's (they are cluster-wide);
//! - the cache's own limits are the local tier's: a prune without limits
//!   prunes it alone, and the shared store is pruned only to limits given
//!   (`max_age` also holds for the store's hits: an entry unused there for
//!   longer is a miss);
//! - listings and totals are the store's, the shared truth; a verify and a
//!   clear cover both.
//!
//! Each tier fails open by itself (see `FailOpen`): the store's outage is a
//! note, and the local tier carries on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cache_core::{
    Alloc, Buffer, Claim, ClearReport, Clock, Draft, Entry, EntryRow, Error, Holder, Key, Limits, NewArray, NewEntry,
    Notes, OnDisk, OpenedEntry, Progress, PruneReport, Stored, Tier, Totals, VerifyReport, Wait,
};
use npy_format::Header;

/// A local tier in front of a store.
pub struct Tiered<B: Buffer> {
    local: Arc<dyn Tier<B>>,
    store: Arc<dyn Tier<B>>,
}

/// What a store in both tiers says: the store's outcome, but what was
/// evicted, was evicted from the local tier (the store keeps no limits of
/// its own on a store), and a store that failed leaves the local outcome.
fn both_stored(shared: Stored, local: Stored) -> Stored {
    match (shared, local) {
        (Stored::Failed, local) => local,
        (Stored::Published { .. }, Stored::Published { evicted }) => Stored::Published { evicted },
        (shared, _) => shared,
    }
}

impl<B: Buffer> std::fmt::Debug for Tiered<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiered").field("local", &self.local).field("store", &self.store).finish()
    }
}

impl<B: Buffer> Tiered<B> {
    /// `local` in front of `store`; both should keep time by one clock.
    pub fn new(local: Arc<dyn Tier<B>>, store: Arc<dyn Tier<B>>) -> Tiered<B> {
        Tiered { local, store }
    }
}

#[async_trait]
impl<B: Buffer> Tier<B> for Tiered<B> {
    fn location(&self) -> &str {
        self.store.location()
    }

    async fn load(&self, key: &Key, alloc: &mut Alloc<'_, B>, notes: &mut Notes) -> Result<Option<Entry<B>>, Error> {
        if let Some(entry) = self.local.load(key, alloc, notes).await? {
            return Ok(Some(entry));
        }
        let Some(entry) = self.store.load(key, alloc, notes).await? else { return Ok(None) };
        let content = entry.content();
        self.local.store(key, NewArray { content: &content, entry: entry.record.as_new() }, notes).await?;
        Ok(Some(entry))
    }

    async fn load_on_disk(
        &self,
        key: &Key,
        up_to: u64,
        alloc: &mut Alloc<'_, B>,
        notes: &mut Notes,
    ) -> Result<OnDisk<B>, Error> {
        // Only a local hit is decided here: a miss asks the store.
        Ok(match self.local.load_on_disk(key, up_to, alloc, notes).await? {
            OnDisk::Decided(Some(entry)) => OnDisk::Decided(Some(entry)),
            _ => OnDisk::Elsewhere,
        })
    }

    async fn open(&self, key: &Key, notes: &mut Notes) -> Result<Option<OpenedEntry>, Error> {
        // The store's entry is read in parts where it is: a copy here would read all of it.
        match self.local.open(key, notes).await? {
            Some(opened) => Ok(Some(opened)),
            None => self.store.open(key, notes).await,
        }
    }

    async fn has(&self, key: &Key, notes: &mut Notes) -> Result<bool, Error> {
        Ok(self.local.has(key, notes).await? || self.store.has(key, notes).await?)
    }

    async fn store(&self, key: &Key, array: NewArray<'_>, notes: &mut Notes) -> Result<Stored, Error> {
        let shared = self.store.store(key, array, notes).await?;
        if let Stored::TooLarge { .. } = shared {
            // Over the per-entry limit both tiers keep (see `shared_limits`): not written locally either.
            return Ok(shared);
        }
        let local = self.local.store(key, array, notes).await?;
        Ok(both_stored(shared, local))
    }

    async fn draft(&self, key: &Key, header: &Header, notes: &mut Notes) -> Result<Draft, Error> {
        // The local tier's, renamed into place there once it is in the store.
        self.local.draft(key, header, notes).await
    }

    async fn publish(
        &self,
        key: &Key,
        draft: &mut Draft,
        entry: NewEntry<'_>,
        notes: &mut Notes,
    ) -> Result<Stored, Error> {
        let shared = {
            let filled = draft.filled()?;
            self.store.store(key, NewArray { content: &filled.content()?, entry }, notes).await?
        };
        if let Stored::TooLarge { .. } = shared {
            return Ok(shared);
        }
        let local = self.local.publish(key, draft, entry, notes).await?;
        Ok(both_stored(shared, local))
    }

    async fn remove(&self, key: &Key, notes: &mut Notes) -> Result<bool, Error> {
        let local = self.local.remove(key, notes).await?;
        let shared = self.store.remove(key, notes).await?;
        Ok(local || shared)
    }

    async fn remove_function(
        &self,
        function: &str,
        progress: &mut Progress<'_>,
        notes: &mut Notes,
    ) -> Result<Vec<Key>, Error> {
        let mut removed: BTreeSet<Key> =
            self.store.remove_function(function, progress, notes).await?.into_iter().collect();
        removed.extend(self.local.remove_function(function, progress, notes).await?);
        Ok(removed.into_iter().collect())
    }

    async fn claim(&self, key: &Key, stale_after: Duration) -> Result<Claim, Error> {
        self.store.claim(key, stale_after).await
    }

    async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>, Error> {
        self.store.lease_holder(key, stale_after).await
    }

    async fn totals(&self, progress: &mut Progress<'_>) -> Result<Totals, Error> {
        let shared = self.store.totals(progress).await?;
        let local = self.local.totals(progress).await?;
        // A local miss the store answered is not a miss of the cache; the store's misses are.
        Ok(Totals { hits: shared.hits + local.hits, ..shared })
    }

    async fn entries(&self, progress: &mut Progress<'_>) -> Result<Vec<EntryRow>, Error> {
        self.store.entries(progress).await
    }

    async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        match limits {
            None => self.local.prune(None, progress).await,
            Some(limits) => {
                self.local.prune(None, &mut cache_core::progress::quiet).await?;
                let report = self.store.prune(Some(limits), progress).await?;
                // The store has no index to adopt into or drop from.
                Ok(PruneReport { adopted: 0, dropped: 0, ..report })
            }
        }
    }

    async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        let mut report = self.local.verify(remove, progress).await?;
        let shared = self.store.verify(remove, progress).await?;
        report.checked += shared.checked;
        report.removed += shared.removed;
        report.damaged.extend(shared.damaged);
        Ok(report)
    }

    async fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        let shared = self.store.clear(remove_dir, progress).await?;
        let local = self.local.clear(remove_dir, &mut cache_core::progress::quiet).await?;
        Ok(ClearReport { removed: shared.removed + local.removed, foreign: shared.foreign + local.foreign, ..local })
    }

    async fn flush(&self, wait: Wait) -> Result<(), Error> {
        self.local.flush(wait).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.local.close().await
    }

    fn clock(&self) -> &Clock {
        self.local.clock()
    }

    fn set_recording(&self, on: bool) {
        self.local.set_recording(on)
    }
}
