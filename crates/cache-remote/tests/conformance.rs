//! The tier contract's conformance suite, on an object store
//! (object_store's in-memory store, which honours conditional writes,
//! ranges and metadata as S3 does; the JS suite runs the same scenarios
//! against real servers).

use std::sync::Arc;

use cache_core::conformance::{Damage, Fixture};
use cache_core::{block_on, Key, Limits, Tier};
use cache_remote::RemoteCache;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

const PREFIX: &str = "team/cache";

struct Store {
    mem: Arc<InMemory>,
}

fn entry_path(key: &Key, ext: &str) -> Path {
    let hex = key.to_string();
    Path::from(format!("{PREFIX}/{}/{hex}.{ext}", &hex[..2]))
}

impl Fixture for Store {
    fn tier(&self, limits: Limits) -> Arc<dyn Tier> {
        Arc::new(self.cache().with_limits(limits))
    }

    fn reopen(&self) -> Arc<dyn Tier> {
        Arc::new(self.cache())
    }

    fn damage(&self, key: &Key, how: Damage) {
        let npz = entry_path(key, "npz");
        let path = if block_on(self.mem.head(&npz)).is_ok() { npz } else { entry_path(key, "npy") };
        let object = block_on(self.mem.get(&path)).unwrap();
        let attributes = object.attributes.clone();
        let bytes = block_on(object.bytes()).unwrap().to_vec();
        let (bytes, attributes) = match how.apply(&bytes) {
            Some(damaged) => (damaged, attributes),
            None => (bytes, Default::default()),
        };
        let options = PutOptions { attributes, ..Default::default() };
        block_on(self.mem.put_opts(&path, PutPayload::from(bytes), options)).unwrap();
    }

    fn plant_lease(&self, key: &Key, line: &[u8]) {
        let hex = key.to_string();
        let path = Path::from(format!("{PREFIX}/{}/{hex}.lease", &hex[..2]));
        block_on(self.mem.put(&path, PutPayload::from(line.to_vec()))).unwrap();
    }

    fn has_lease(&self, key: &Key) -> bool {
        let hex = key.to_string();
        block_on(self.mem.head(&Path::from(format!("{PREFIX}/{}/{hex}.lease", &hex[..2])))).is_ok()
    }

    fn remove_blocks(&self, key: &Key) {
        block_on(self.mem.head(&entry_path(key, "blocks"))).expect("block digests to remove");
        block_on(self.mem.delete(&entry_path(key, "blocks"))).unwrap();
    }
}

impl Store {
    fn new() -> Store {
        Store { mem: Arc::new(InMemory::new()) }
    }

    fn cache(&self) -> RemoteCache {
        let store: Arc<dyn ObjectStore> = self.mem.clone();
        RemoteCache::with_store(store, Path::from(PREFIX), &format!("mem://bucket/{PREFIX}"))
    }
}

cache_core::conformance_suite!(Store::new());
