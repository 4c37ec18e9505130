//! The tier contract's conformance suite, on a directory.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use cache_core::conformance::{Damage, Fixture};
use cache_core::{Key, Limits, Tier};
use cache_store::CacheDir;

/// A directory under a fresh temporary one.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir { tmp: tempfile::tempdir().unwrap() }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
}

/// Damages the files of `key` in the directory `root`.
pub fn damage_files(root: &std::path::Path, key: &Key, how: Damage) {
    let npz = root.join(format!("{key}.npz"));
    let path = if npz.exists() { npz } else { root.join(format!("{key}.npy")) };
    match how.apply(&fs::read(&path).unwrap()) {
        Some(damaged) => fs::write(&path, damaged).unwrap(),
        None => fs::remove_file(root.join(format!("{key}.json"))).unwrap(),
    }
}

impl Fixture for Dir {
    fn tier(&self, limits: Limits) -> Arc<dyn Tier> {
        Arc::new(CacheDir::open(self.root()).unwrap().with_limits(limits))
    }

    fn reopen(&self) -> Arc<dyn Tier> {
        Arc::new(CacheDir::open(self.root()).unwrap())
    }

    fn damage(&self, key: &Key, how: Damage) {
        damage_files(&self.root(), key, how)
    }

    fn plant_lease(&self, key: &Key, line: &[u8]) {
        fs::create_dir_all(self.root()).unwrap();
        fs::write(self.root().join(format!(".{key}.lock")), line).unwrap();
    }

    fn has_lease(&self, key: &Key) -> bool {
        fs::symlink_metadata(self.root().join(format!(".{key}.lock"))).is_ok()
    }

    fn remove_blocks(&self, key: &Key) {
        fs::remove_file(self.root().join(format!("{key}.blocks"))).unwrap();
    }
}

cache_core::conformance_suite!(Dir::new());
