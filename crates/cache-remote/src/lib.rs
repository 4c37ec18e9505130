//! The object-store tier of the cache: entries shared by many machines
//! through S3 (or GCS, Azure), with no lock server.
//!
//! One object per entry, `<prefix>/<ab>/<key>.npy`: a plain `.npy` that
//! NumPy reads from the bytes, its record (form, class, function, digests)
//! in the object's metadata, so an entry is published by one create-only
//! write (`If-None-Match: *`, first writer wins) and is never half-visible.
//! Every load checks every byte against the record's digest; a damaged
//! object reads as damaged and the next store replaces exactly that version
//! (`If-Match`). Compute-once leases are objects too ([`lease`]).
//!
//! Every operation is async and awaits its requests on the cache's runtime
//! (`cache_core::runtime`). Modules: `location` opens a store, `names`
//! names objects, `record_meta` carries records, `opening` and `check`
//! judge an object, `transfer` moves bytes (`lent` lends the caller's),
//! `lease` is compute-once, `uses` keeps last uses, `maintenance` lists and
//! prunes (`listing` lists past names that are not paths), and `tier` makes
//! [`RemoteCache`] a [`cache_core::Tier`].

#![warn(unreachable_pub)]

mod check;
mod create_only;
mod error;
mod lease;
mod lent;
mod listing;
mod location;
mod maintenance;
mod names;
mod opening;
mod profile;
mod ranges;
mod record_meta;
mod tier;
mod transfer;
mod uses;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cache_core::{
    lock, Alloc, Claim, Clock, Entry, Error, Filling, Holder, Key, Limits, LoadedArray, Lookup, NewArray, Place, Stored,
};
use object_store::list::PaginatedListStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

pub use lease::CLOCK_SKEW;
pub use location::{is_remote, Settings, MIN_PART_SIZE, SCHEMES};
pub use transfer::{max_single_put, Transfer};
pub use uses::{RECORD_USES_AFTER, RECORD_USE_EVERY};

use check::Checked;
use names::Names;
use transfer::{FetchError, Fetched};
use uses::Uses;

/// An object-store location used as a cache.
#[derive(Debug)]
pub struct RemoteCache {
    store: Arc<dyn ObjectStore>,
    /// The same store listed page by page (see `listing`); None for a store built by the caller.
    paged: Option<listing::Paged>,
    names: Names,
    location: String,
    transfer: Transfer,
    limits: Limits,
    clock: Clock,
    /// Versions of objects found damaged, which a store may replace.
    damaged: Mutex<HashMap<Key, (Path, String)>>,
    uses: Uses,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl RemoteCache {
    /// Opens `location` (`s3://bucket/prefix`, ...). Makes no request.
    pub fn open(location: &str, settings: &Settings) -> Result<RemoteCache, Error> {
        let (opened, prefix, transfer) = location::open(location, settings)?;
        let cache = RemoteCache::with_store(opened.store, prefix, location).with_transfer(transfer);
        Ok(cache.with_pages(opened.paged))
    }

    /// A cache under `prefix` of an already built store.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: Path, location: &str) -> RemoteCache {
        RemoteCache {
            store,
            paged: None,
            names: Names::new(prefix),
            location: location.trim_end_matches('/').to_owned(),
            transfer: Transfer::default(),
            limits: Limits::default(),
            clock: Clock::system(),
            damaged: Mutex::default(),
            uses: Uses::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The same cache listing `paged`, the same store as its own, page by page.
    pub fn with_pages(mut self, paged: Arc<dyn PaginatedListStore>) -> RemoteCache {
        self.paged = Some(listing::Paged(paged));
        self
    }

    pub fn with_transfer(mut self, transfer: Transfer) -> RemoteCache {
        self.transfer = transfer;
        self
    }

    /// The same cache with `limits` as its own: `max_age` judged on every
    /// hit, all of them by a prune without limits of its own. (A store is
    /// not pruned after each store: that takes a listing of it.)
    pub fn with_limits(mut self, limits: Limits) -> RemoteCache {
        self.limits = limits;
        self
    }

    /// The same cache keeping time by `clock` (shared with another tier).
    pub fn with_clock(mut self, clock: Clock) -> RemoteCache {
        self.clock = clock;
        self
    }

    pub fn transfer(&self) -> Transfer {
        self.transfer
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    fn err(&self, action: &'static str) -> impl FnOnce(object_store::Error) -> Error + '_ {
        move |e| error::of(&self.location, action, e)
    }

    /// `scheme://bucket/<object path>`: where an object is, for messages.
    fn url_of(&self, path: &Path) -> String {
        let prefix = self.names.prefix().as_ref();
        let root = self.location.strip_suffix(prefix).unwrap_or(&self.location).trim_end_matches('/');
        format!("{root}/{path}")
    }

    /// Loads the entry of `key` into memory from `alloc`. A damaged object
    /// is reported, and remembered so that the next store of the key
    /// replaces that version. An entry unused for longer than `max_age` is
    /// removed and is a miss.
    pub async fn load_into<B: AsMut<[u8]> + AsRef<[u8]>>(
        &self,
        key: &Key,
        alloc: &mut Alloc<'_, B>,
    ) -> Result<Lookup<B>, Error> {
        // An entry of one array, else one of several: a hit of the latter,
        // and a miss, take a request more. What is at `.npy` (damaged, of
        // another version) stands only if `.npz` holds no entry either.
        let mut at_npy = None;
        let (mut path, mut found) = (self.names.entry(key, false), Fetched::Missing);
        for archive in [false, true] {
            path = self.names.entry(key, archive);
            let fetched =
                transfer::fetch(&self.store, &path, &self.transfer, |len| alloc(len, Filling::InParallel)).await;
            found = match fetched {
                Ok(f) => f,
                Err(FetchError::Store(e)) => return Err(self.err("read an entry")(e)),
                Err(FetchError::Memory(e)) => return Err(e.into()),
            };
            match found {
                Fetched::Found { .. } => break,
                Fetched::Missing => {}
                other if !archive => {
                    at_npy = Some((path.clone(), other));
                    found = Fetched::Missing;
                }
                _ => break,
            }
        }
        if let (Fetched::Missing, Some((npy, other))) = (&found, at_npy) {
            (path, found) = (npy, other);
        }
        let lookup = match found {
            Fetched::Found { modified, .. } if self.expired(key, modified).await => Lookup::Miss,
            Fetched::Found { array, record, modified, members } => {
                self.note_use(key, modified);
                Lookup::Hit(Entry { array: LoadedArray::Read(array), record, members })
            }
            Fetched::Missing | Fetched::OtherVersion => Lookup::Miss,
            Fetched::Damaged { reason, e_tag } => {
                if let Some(tag) = e_tag {
                    lock(&self.damaged).insert(*key, (path.clone(), tag));
                }
                Lookup::Damaged(Error::Damaged { place: Place::Object(self.url_of(&path)), reason })
            }
        };
        // A miss is counted by the store of what the call computed: a call
        // that loads twice (under a lease) is one miss.
        if let Lookup::Hit(_) = lookup {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(lookup)
    }

    /// Whether a load of `key` would hit now: the checks a load makes, a
    /// large entry's data aside (one ranged GET), and `max_age`.
    pub async fn has(&self, key: &Key) -> Result<bool, Error> {
        for path in self.names.entries(key) {
            let checked = check::probe(self.store.as_ref(), &path).await;
            match checked.map_err(self.err("look for an entry"))? {
                Checked::Whole { modified } => return Ok(!self.expired(key, modified).await),
                Checked::Damaged(_) => return Ok(false),
                Checked::NotAnEntry => {}
            }
        }
        Ok(false)
    }

    /// Whether the entry of `key`, written at `modified`, has gone unused
    /// for longer than `max_age`: then it is removed. Its use mark is read
    /// only when its own time is that old; a store that cannot say keeps it.
    async fn expired(&self, key: &Key, modified: SystemTime) -> bool {
        let now = self.clock.now();
        if !uses::expired(modified, now, &self.limits) {
            return false;
        }
        let used = match self.store.head(&self.names.use_mark(key)).await {
            Ok(mark) => SystemTime::from(mark.last_modified),
            Err(object_store::Error::NotFound { .. }) => modified,
            Err(_) => return false,
        };
        if !uses::expired(used, now, &self.limits) {
            return false;
        }
        // A miss either way: what is not deleted now, a prune deletes.
        let _ = self.delete_entry(key, true).await;
        true
    }

    /// Deletes the entry of `key`, its use mark, and with `blocks` its
    /// block digests; one already gone is no failure.
    async fn delete_entry(&self, key: &Key, blocks: bool) -> Result<(), object_store::Error> {
        let [npy, npz] = self.names.entries(key);
        let blocks = blocks.then(|| self.names.blocks(key));
        for path in [npy, npz, self.names.use_mark(key)].into_iter().chain(blocks) {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Marks `key` used now, in the background, when its last known use is
    /// getting old (see `uses`): one small empty PUT, off the hit's path.
    fn note_use(&self, key: &Key, modified: SystemTime) {
        let age = self.clock.now().duration_since(modified).unwrap_or_default();
        if !self.uses.due(key, age, &self.limits) {
            return;
        }
        let (store, path) = (Arc::clone(&self.store), self.names.use_mark(key));
        cache_core::runtime().spawn(async move {
            // Bookkeeping only: a lost mark makes the entry look older to prune, never wrong.
            let _ = store.put(&path, PutPayload::new()).await;
        });
    }

    /// Publishes `array` as the entry of `key`, create-only: if another
    /// writer was first, its entry stands, unless it is the damaged version
    /// a load of this process found. The caller's memory is sent as it is
    /// (not copied), and not read after this returns. An entry over the
    /// limits on its own is not sent. Each store but a failed one is a miss.
    pub async fn store(&self, key: &Key, array: NewArray<'_>) -> Result<Stored, Error> {
        let stored = self.publish(key, array).await;
        if let Ok(Stored::Published { .. } | Stored::AlreadyThere | Stored::TooLarge { .. }) = stored {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    async fn publish(&self, key: &Key, array: NewArray<'_>) -> Result<Stored, Error> {
        // Over the limits on its own: refused before any request (a prune
        // would remove it, and everything else first).
        let bytes = array.file_len();
        if let Some(limit) = self.limits.refuses(bytes) {
            return Ok(Stored::TooLarge { bytes, limit });
        }
        let content = array.content;
        let (digest, blocks) = content.body_digests();
        let record = content.record(&array.entry, digest, self.clock.now())?;
        record.encode_checked()?;
        let path = self.names.entry(key, content.is_archive());
        let found_damaged = lock(&self.damaged).remove(key);
        let damaged = match found_damaged {
            Some((damaged_path, tag)) if damaged_path == path => Some(tag),
            Some((other, _)) => {
                // A damaged entry of the other form would be found first, or found at all: it goes.
                let _ = self.store.delete(&other).await;
                None
            }
            None => None,
        };
        let (preamble, body) = (content.preamble(), content.body());
        let pieces: Vec<&[u8]> = std::iter::once(&*preamble).chain(body.iter().map(|b| &**b)).collect();
        let put = lent::lend_all(&pieces, move |parts| async move {
            let publish =
                |mode| transfer::publish(self.store.as_ref(), &path, &self.transfer, parts.clone(), &record, mode);
            match &damaged {
                Some(tag) => {
                    let version = UpdateVersion { e_tag: Some(tag.clone()), version: None };
                    match publish(PutMode::Update(version)).await {
                        // The damaged version was removed meanwhile: publish as new.
                        Err(object_store::Error::NotFound { .. }) => publish(PutMode::Create).await,
                        put => put,
                    }
                }
                None => publish(PutMode::Create).await,
            }
        })
        .await;
        match put {
            Ok(_) => {
                if let Some(blocks) = blocks {
                    // After the entry, so only its publisher writes them. Lost
                    // (a failed PUT), a read makes them from the whole entry.
                    let _ = self.store.put(&self.names.blocks(key), PutPayload::from(blocks.encode())).await;
                }
                Ok(Stored::Published { evicted: 0 })
            }
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(Stored::AlreadyThere)
            }
            Err(e) => Err(self.err("store an entry")(e)),
        }
    }

    /// Removes the entry of `key` and its use mark; says whether there was one.
    pub async fn remove(&self, key: &Key) -> Result<bool, Error> {
        let (mut found, mut blocks) = (false, false);
        for path in self.names.entries(key) {
            match self.store.head(&path).await {
                // Only an entry of more than a block has block digests: a DELETE saved for the others.
                Ok(meta) => (found, blocks) = (true, blocks || meta.size > cache_core::blocks::BLOCK),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("look for an entry")(e)),
            };
        }
        self.delete_entry(key, blocks).await.map_err(self.err("remove an entry"))?;
        Ok(found)
    }

    /// Takes the compute-once lease of `key`, or says who holds it. A store
    /// that cannot be written is no lease here.
    pub async fn claim(&self, key: &Key, stale_after: Duration) -> Claim {
        match lease::claim(&self.store, &self.names.lease(key), stale_after, &self.clock).await {
            Ok(claim) => claim,
            Err(e) => Claim::Unavailable(self.err("take a compute-once lease")(e)),
        }
    }

    /// The live holder of the lease of `key`: one ranged GET, never a write.
    pub async fn lease_holder(&self, key: &Key, stale_after: Duration) -> Result<Option<Holder>, Error> {
        lease::live_holder(self.store.as_ref(), &self.names.lease(key), stale_after, &self.clock)
            .await
            .map_err(self.err("read a compute-once lease"))
    }

    /// Hits and misses of this process (the store keeps no shared counters).
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

#[cfg(test)]
mod tests;
