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
    let bytes = fs::read(&path).unwrap();
    match how {
        Damage::Garbage => fs::write(&path, b"garbage").unwrap(),
        Damage::Truncated => fs::write(&path, &bytes[..bytes.len() - 8]).unwrap(),
        Damage::NoRecord => fs::remove_file(root.join(format!("{key}.json"))).unwrap(),
        Damage::FlippedData => {
            // The last byte of array data: an archive's last member's.
            let end = match npy_format::aligned_npz_file_members(&fs::File::open(&path).unwrap()) {
                Ok(members) => members.last().map(|m| m.data + m.data_len).unwrap() as usize,
                Err(_) => bytes.len(),
            };
            let mut bytes = bytes;
            bytes[end - 1] ^= 1;
            fs::write(&path, &bytes).unwrap()
        }
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
}

cache_core::conformance_suite!(Dir::new());
