//! The tier contract's conformance suite, on a local directory in front of
//! an object store (object_store's in-memory one), each failing open as
//! `open` builds them.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use cache_core::conformance::{Damage, Fixture};
use cache_core::{block_on, Clock, Key, Limits, Tier};
use cache_remote::RemoteCache;
use cache_store::CacheDir;
use cache_tiered::{FailOpen, Tiered, STORE_PAUSE};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

const PREFIX: &str = "team/cache";

struct LocalAndStore {
    tmp: tempfile::TempDir,
    mem: Arc<InMemory>,
}

impl LocalAndStore {
    fn new() -> LocalAndStore {
        LocalAndStore { tmp: tempfile::tempdir().unwrap(), mem: Arc::new(InMemory::new()) }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("local")
    }

    fn tiered(&self, limits: Limits) -> Arc<dyn Tier> {
        let clock = Clock::system();
        let store: Arc<dyn ObjectStore> = self.mem.clone();
        let location = format!("mem://bucket/{PREFIX}");
        let store_limits = cache_tiered::shared_limits(&limits);
        let remote = RemoteCache::with_store(store, Path::from(PREFIX), &location)
            .with_clock(clock.clone())
            .with_limits(store_limits);
        let local = CacheDir::open_with_clock(self.root(), clock).unwrap().with_limits(limits);
        let local = FailOpen::new(Arc::new(local), format!("the local tier of {location}"), None);
        let store = FailOpen::new(Arc::new(remote), location, Some(STORE_PAUSE));
        Arc::new(Tiered::new(Arc::new(local), Arc::new(store)))
    }

    fn object(&self, key: &Key, ext: &str) -> Path {
        let hex = key.to_string();
        Path::from(format!("{PREFIX}/{}/{hex}.{ext}", &hex[..2]))
    }
}

impl Fixture for LocalAndStore {
    fn tier(&self, limits: Limits) -> Arc<dyn Tier> {
        self.tiered(limits)
    }

    fn reopen(&self) -> Arc<dyn Tier> {
        self.tiered(Limits::default())
    }

    /// Damages both copies: the local tier's files and the store's object.
    fn damage(&self, key: &Key, how: Damage) {
        let ext = if self.root().join(format!("{key}.npz")).exists() { "npz" } else { "npy" };
        let local_path = self.root().join(format!("{key}.{ext}"));
        let path = self.object(key, ext);
        let object = block_on(self.mem.get(&path)).unwrap();
        let attributes = object.attributes.clone();
        let remote = block_on(object.bytes()).unwrap().to_vec();
        let (local, remote, attributes) = match (how.apply(&fs::read(&local_path).unwrap()), how.apply(&remote)) {
            (Some(local), Some(remote)) => (local, remote, attributes),
            _ => {
                fs::remove_file(self.root().join(format!("{key}.json"))).unwrap();
                (fs::read(&local_path).unwrap(), remote, Default::default())
            }
        };
        fs::write(&local_path, local).unwrap();
        block_on(self.mem.put_opts(&path, PutPayload::from(remote), PutOptions { attributes, ..Default::default() }))
            .unwrap();
    }

    fn plant_lease(&self, key: &Key, line: &[u8]) {
        block_on(self.mem.put(&self.object(key, "lease"), PutPayload::from(line.to_vec()))).unwrap();
    }

    fn has_lease(&self, key: &Key) -> bool {
        block_on(self.mem.head(&self.object(key, "lease"))).is_ok()
    }

    fn remove_blocks(&self, key: &Key) {
        fs::remove_file(self.root().join(format!("{key}.blocks"))).unwrap();
        block_on(self.mem.head(&self.object(key, "blocks"))).expect("block digests to remove");
        block_on(self.mem.delete(&self.object(key, "blocks"))).unwrap();
    }
}

cache_core::conformance_suite!(LocalAndStore::new());
