//! The object store as a [`Tier`]. It fails loudly here: turning an
//! outage into a miss (failing open) is the caller's policy
//! (`cache-tiered`'s `FailOpen`).

use std::time::Duration;

use async_trait::async_trait;
use cache_core::{
    Alloc, Buffer, Claim, ClearReport, Clock, Entry, EntryRow, Error, Holder, Key, Limits, NewArray, Note, NoteKind,
    Notes, OpenedEntry, Progress, PruneReport, Stored, Tier, Totals, VerifyReport, Wait,
};

use crate::RemoteCache;

#[async_trait]
impl<B: Buffer> Tier<B> for RemoteCache {
    fn location(&self) -> &str {
        RemoteCache::location(self)
    }

    async fn load(&self, key: &Key, alloc: &mut Alloc<'_, B>, notes: &mut Notes) -> Result<Option<Entry<B>>, Error> {
        Ok(self.load_into(key, alloc).await?.into_entry(notes, &self.location))
    }

    async fn open(&self, key: &Key, notes: &mut Notes) -> Result<Option<OpenedEntry>, Error> {
        // As a load: what is damaged at `.npy` stands only if `.npz` holds no entry either.
        let mut damaged = None;
        for archive in [false, true] {
            let found = match self.find(key, archive).await? {
                None => continue,
                Some(Ok(found)) => OpenedEntry::open_found(found).await?,
                Some(Err(error)) => Err(error),
            };
            match found {
                Ok(opened) => return Ok(Some(opened)),
                Err(error) => damaged = damaged.or(Some(error)),
            }
        }
        if let Some(error) = damaged {
            notes.push(Note { kind: NoteKind::Damaged, error, tier: self.location.clone() });
        }
        Ok(None)
    }

    async fn has(&self, key: &Key, _: &mut Notes) -> Result<bool, Error> {
        RemoteCache::has(self, key).await
    }

    async fn store(&self, key: &Key, array: NewArray<'_>, _: &mut Notes) -> Result<Stored, Error> {
        RemoteCache::store(self, key, array).await
    }

    async fn remove(&self, key: &Key, _: &mut Notes) -> Result<bool, Error> {
        RemoteCache::remove(self, key).await
    }

    async fn remove_function(
        &self,
        function: &str,
        progress: &mut Progress<'_>,
        _: &mut Notes,
    ) -> Result<Vec<Key>, Error> {
        RemoteCache::remove_function(self, function, progress).await
    }

    async fn claim(&self, key: &Key, stale_after: Duration) -> Result<Claim, Error> {
        Ok(RemoteCache::claim(self, key, stale_after).await)
    }

    async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>, Error> {
        RemoteCache::lease_holder(self, key, stale_after).await
    }

    async fn totals(&self, progress: &mut Progress<'_>) -> Result<Totals, Error> {
        RemoteCache::totals(self, progress).await
    }

    async fn entries(&self, progress: &mut Progress<'_>) -> Result<Vec<EntryRow>, Error> {
        RemoteCache::entries(self, progress).await
    }

    async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        RemoteCache::prune(self, limits, progress).await
    }

    async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        RemoteCache::verify(self, remove, progress).await
    }

    async fn clear(&self, _remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        // A store has no directory to remove.
        RemoteCache::clear(self, progress).await
    }

    async fn flush(&self, _: Wait) -> Result<(), Error> {
        // Uses are written as they happen (in the background); nothing waits in memory.
        Ok(())
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }

    fn clock(&self) -> &Clock {
        RemoteCache::clock(self)
    }
}
