//! The directory as a [`Tier`]: each operation is the directory's own,
//! run as blocking work where the future is polled (see
//! `cache_core::runtime`).

use std::time::Duration;

use async_trait::async_trait;
use cache_core::{
    blocking, Alloc, Buffer, Claim, ClearReport, Clock, Draft, Entry, EntryRow, Error, Filling, Holder, Key, Limits,
    NewArray, NewEntry, Note, NoteKind, Notes, OnDisk, OpenedEntry, Progress, PruneReport, Stored, Tier, Totals,
    VerifyReport, Wait,
};

use npy_format::Header;

use crate::CacheDir;

#[async_trait]
impl<B: Buffer> Tier<B> for CacheDir {
    fn location(&self) -> &str {
        CacheDir::location(self)
    }

    async fn load(&self, key: &Key, alloc: &mut Alloc<'_, B>, notes: &mut Notes) -> Result<Option<Entry<B>>, Error> {
        let lookup = blocking(|| self.load_into(&key.hex(), self.maps(), &mut |len| alloc(len, Filling::InOrder)))?;
        Ok(lookup.into_entry(notes, self.location()))
    }

    async fn load_on_disk(
        &self,
        key: &Key,
        up_to: u64,
        alloc: &mut Alloc<'_, B>,
        notes: &mut Notes,
    ) -> Result<OnDisk<B>, Error> {
        // A guess from the file's length: the load checks it all again.
        if self.array_len(&key.hex()).is_some_and(|len| len >= up_to) {
            return Ok(OnDisk::Elsewhere);
        }
        Ok(OnDisk::Decided(Tier::load(self, key, alloc, notes).await?))
    }

    fn stores_on_disk(&self) -> bool {
        true
    }

    async fn open(&self, key: &Key, notes: &mut Notes) -> Result<Option<OpenedEntry>, Error> {
        // Twice when damaged: a store may have replaced the entry between
        // the record's read and the file's open (as a load does).
        let mut damaged = None;
        for _ in 0..2 {
            let found = match blocking(|| CacheDir::find(self, &key.hex()))? {
                None => return Ok(None),
                Some(Ok(found)) => OpenedEntry::open_found(found).await?,
                Some(Err(error)) => Err(error),
            };
            match found {
                Ok(opened) => return Ok(Some(opened)),
                Err(error @ Error::Damaged { .. }) => damaged = Some(error),
                Err(error) => return Err(error),
            }
        }
        if let Some(error) = damaged {
            notes.push(Note { kind: NoteKind::Damaged, error, tier: self.location().to_owned() });
        }
        Ok(None)
    }

    async fn has(&self, key: &Key, _: &mut Notes) -> Result<bool, Error> {
        blocking(|| self.contains(&key.hex()))
    }

    async fn store(&self, key: &Key, array: NewArray<'_>, _: &mut Notes) -> Result<Stored, Error> {
        blocking(|| CacheDir::store_content(self, &key.hex(), array.content, &array.entry))
    }

    async fn draft(&self, key: &Key, header: &Header, _: &mut Notes) -> Result<Draft, Error> {
        blocking(|| CacheDir::draft(self, &key.hex(), header))
    }

    async fn publish(&self, key: &Key, draft: &mut Draft, entry: NewEntry<'_>, _: &mut Notes) -> Result<Stored, Error> {
        blocking(|| CacheDir::publish(self, &key.hex(), draft, &entry))
    }

    async fn remove(&self, key: &Key, _: &mut Notes) -> Result<bool, Error> {
        blocking(|| CacheDir::remove(self, &key.hex()))
    }

    async fn remove_function(
        &self,
        function: &str,
        progress: &mut Progress<'_>,
        _: &mut Notes,
    ) -> Result<Vec<Key>, Error> {
        blocking(|| CacheDir::remove_function(self, function, progress))
    }

    async fn claim(&self, key: &Key, stale_after: Duration) -> Result<Claim, Error> {
        blocking(|| CacheDir::claim(self, &key.hex(), stale_after))
    }

    async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>, Error> {
        blocking(|| CacheDir::lease_holder(self, &key.hex(), stale_after))
    }

    async fn totals(&self, _: &mut Progress<'_>) -> Result<Totals, Error> {
        blocking(|| self.stats())
    }

    async fn entries(&self, _: &mut Progress<'_>) -> Result<Vec<EntryRow>, Error> {
        blocking(|| CacheDir::entries(self))
    }

    async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        blocking(|| CacheDir::prune(self, &limits.unwrap_or(self.limits()), progress))
    }

    async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        blocking(|| CacheDir::verify(self, remove, progress))
    }

    async fn clear(&self, remove_dir: bool, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        blocking(|| CacheDir::clear(self, remove_dir, progress))
    }

    async fn flush(&self, wait: Wait) -> Result<(), Error> {
        blocking(|| CacheDir::flush(self, wait))
    }

    async fn close(&self) -> Result<(), Error> {
        blocking(|| CacheDir::close(self))
    }

    fn clock(&self) -> &Clock {
        CacheDir::clock(self)
    }

    fn set_recording(&self, on: bool) {
        CacheDir::set_recording(self, on)
    }
}
