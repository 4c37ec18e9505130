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
//! The API is blocking, for the binding's threads; requests run on one
//! shared Tokio runtime. Modules: `location` opens a store, `names` names
//! objects, `record_meta` carries records, `transfer` moves bytes, `lease`
//! is compute-once, `maintenance` lists and prunes.

mod block_digest;
mod create_only;
mod error;
mod lease;
mod location;
mod maintenance;
mod names;
mod profile;
mod record_meta;
mod transfer;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_store::{Entry, EntryRecord, LoadedArray, Lookup, NewEntry, StoreError};
use npy_format::Header;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

pub use error::RemoteError;
pub use lease::{RemoteClaim, RemoteLease, CLOCK_SKEW};
pub use location::{is_remote, Settings, SCHEMES};
pub use maintenance::{RemoteEntry, RemotePruneReport, RemoteTotals};
pub use transfer::{Transfer, MAX_SINGLE_PUT};

use names::{check_key, Names};
use transfer::{FetchError, Fetched};

/// A hit is recorded as a use at most this often per entry by one process.
pub const RECORD_USE_EVERY: Duration = Duration::from_secs(3600);

/// Hits on an entry stored less than this long ago are not recorded: its
/// own modification time says it is recent, and a use mark (a PUT, 12.5
/// times the price of a GET on S3) would add nothing prune could tell.
pub const RECORD_USES_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The runtime every store's requests run on.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
            .thread_name("numpy-func-cache-remote")
            .enable_all()
            .build()
            .expect("the remote tier's runtime starts")
    })
}

/// Runs `f` to completion from a thread outside the runtime.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// What a store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Published,
    /// Another writer published the key first: its entry stands.
    AlreadyThere,
}

/// An object-store location used as a cache.
#[derive(Debug)]
pub struct RemoteCache {
    store: Arc<dyn ObjectStore>,
    names: Names,
    location: String,
    transfer: Transfer,
    /// Versions of objects found damaged, which a store may replace.
    damaged: Mutex<HashMap<String, String>>,
    /// Keys whose use this process recorded lately.
    used: Mutex<HashSet<String>>,
    used_since: Mutex<SystemTime>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Leases this process holds.
    held_here: lease::HeldHere,
}

impl RemoteCache {
    /// Opens `location` (`s3://bucket/prefix`, ...). Makes no request.
    pub fn open(location: &str, settings: &Settings) -> Result<RemoteCache, RemoteError> {
        let (store, prefix) = location::open(location, settings)?;
        let cache = RemoteCache::with_store(store, prefix, location);
        // Only S3's multipart completion is made create-only: elsewhere one
        // PUT publishes entries up to the largest it takes (Azure's Put Blob: 5000 MiB).
        let multipart_from = match location.split_once("://").map(|(scheme, _)| scheme) {
            Some("s3") => return Ok(cache),
            Some("az") => 5000 << 20,
            _ => transfer::MAX_SINGLE_PUT,
        };
        Ok(cache.with_transfer(Transfer { multipart_from, ..Transfer::default() }))
    }

    /// A cache under `prefix` of an already built store.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: Path, location: &str) -> RemoteCache {
        RemoteCache {
            store,
            names: Names::new(prefix),
            location: location.trim_end_matches('/').to_owned(),
            transfer: Transfer::default(),
            damaged: Mutex::default(),
            used: Mutex::default(),
            used_since: Mutex::new(SystemTime::now()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            held_here: lease::HeldHere::default(),
        }
    }

    pub fn with_transfer(mut self, transfer: Transfer) -> RemoteCache {
        self.transfer = transfer;
        self
    }

    pub fn transfer(&self) -> Transfer {
        self.transfer
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    fn err(&self, action: &'static str) -> impl FnOnce(object_store::Error) -> RemoteError + '_ {
        move |e| RemoteError::of(&self.location, action, e)
    }

    /// Loads the entry of `key` into memory from `alloc(len)` (see
    /// `cache_store::CacheDir::load_into`). A damaged object is reported,
    /// and remembered so that the next store of the key replaces it.
    pub fn load_into<B: AsMut<[u8]> + AsRef<[u8]>>(
        &self,
        key: &str,
        alloc: impl FnOnce(usize) -> Result<B, npy_format::Error>,
    ) -> Result<Lookup<B>, RemoteError> {
        check_key(key)?;
        let path = self.names.entry(key);
        let fetched = block_on(transfer::fetch(&self.store, &path, &self.transfer, alloc));
        let found = match fetched {
            Ok(f) => f,
            Err(FetchError::Store(e)) => return Err(self.err("read an entry")(e)),
            Err(FetchError::Memory(e)) => return Err(e.into()),
        };
        match found {
            Fetched::Found { array, record, modified } => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                if modified.elapsed().unwrap_or_default() > RECORD_USES_AFTER {
                    self.record_use(key);
                }
                Ok(Lookup::Hit(Entry { array: LoadedArray::Read(array), record: Arc::new(record) }))
            }
            Fetched::Missing | Fetched::OtherVersion => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(Lookup::Miss)
            }
            Fetched::Damaged { reason, e_tag } => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                if let Some(tag) = e_tag {
                    self.damaged.lock().unwrap().insert(key.to_owned(), tag);
                }
                Ok(Lookup::Damaged(StoreError::Damaged {
                    path: format!("{}/{}", self.location_root(), path).into(),
                    reason,
                }))
            }
        }
    }

    /// `scheme://bucket`, to which object paths are relative.
    fn location_root(&self) -> String {
        let prefix = self.names.prefix().as_ref();
        self.location.strip_suffix(prefix).unwrap_or(&self.location).trim_end_matches('/').to_owned()
    }

    /// Publishes `data` (the caller's memory, not copied) as the entry of
    /// `key`, create-only: if another writer was first, its entry stands,
    /// unless it is the damaged version a load of this process found.
    pub fn store(&self, key: &str, header: &Header, data: Bytes, entry: &NewEntry) -> Result<Stored, RemoteError> {
        check_key(key)?;
        if entry.function.len() > 512 {
            return Err(RemoteError::Config(format!(
                "the function name is {} bytes long; an entry's record holds at most 512",
                entry.function.len()
            )));
        }
        let record = EntryRecord::new(entry, header, cache_store::data_digest(&data), SystemTime::now());
        let path = self.names.entry(key);
        let damaged = self.damaged.lock().unwrap().get(key).cloned();
        let mode = match &damaged {
            Some(tag) => PutMode::Update(UpdateVersion { e_tag: Some(tag.clone()), version: None }),
            None => PutMode::Create,
        };
        let mut put = block_on(transfer::publish(
            self.store.as_ref(),
            &path,
            &self.transfer,
            header,
            data.clone(),
            &record,
            mode,
        ));
        if damaged.is_some() {
            self.damaged.lock().unwrap().remove(key);
            // The damaged version was removed meanwhile: publish as new.
            if let Err(object_store::Error::NotFound { .. }) = put {
                put = block_on(transfer::publish(
                    self.store.as_ref(),
                    &path,
                    &self.transfer,
                    header,
                    data,
                    &record,
                    PutMode::Create,
                ));
            }
        }
        match put {
            Ok(_) => Ok(Stored::Published),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(Stored::AlreadyThere)
            }
            Err(e) => Err(self.err("store an entry")(e)),
        }
    }

    /// Whether the entry's object exists (one HEAD; its data is not checked).
    pub fn contains(&self, key: &str) -> Result<bool, RemoteError> {
        check_key(key)?;
        match block_on(self.store.head(&self.names.entry(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("look for an entry")(e)),
        }
    }

    /// Removes the entry of `key`; says whether there was one.
    pub fn remove(&self, key: &str) -> Result<bool, RemoteError> {
        let found = self.contains(key)?;
        let paths = [self.names.entry(key), self.names.use_mark(key)];
        block_on(async {
            for p in &paths {
                match self.store.delete(p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err("remove an entry")(e)),
                }
            }
            Ok(found)
        })
    }

    /// Takes the compute-once lease of `key`, or says who holds it.
    pub fn claim(&self, key: &str, stale_after: Duration) -> Result<RemoteClaim, RemoteError> {
        check_key(key)?;
        block_on(lease::claim(&self.store, &self.names.lease(key), stale_after, &self.held_here))
            .map_err(self.err("take a compute-once lease"))
    }

    /// Hits and misses of this process (the store keeps no shared counters).
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// Marks `key` used now, in the background, once per `RECORD_USE_EVERY`
    /// per process: one small empty PUT, off the hit's path.
    fn record_use(&self, key: &str) {
        {
            let mut since = self.used_since.lock().unwrap();
            let mut used = self.used.lock().unwrap();
            if since.elapsed().unwrap_or_default() > RECORD_USE_EVERY {
                used.clear();
                *since = SystemTime::now();
            }
            if !used.insert(key.to_owned()) {
                return;
            }
        }
        let (store, path) = (Arc::clone(&self.store), self.names.use_mark(key));
        runtime().spawn(async move {
            // Bookkeeping only: a lost mark makes the entry look older to prune, never wrong.
            let _ = store.put(&path, PutPayload::new()).await;
        });
    }
}

#[cfg(test)]
mod tests;
