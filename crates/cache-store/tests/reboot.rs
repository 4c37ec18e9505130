//! Crashes of the whole machine: entries are not synced, so after an OS
//! crash a file can keep its length and lose its data. A large entry
//! written in an earlier boot has all its data checked on its first hit in
//! this boot (read or mapped), once per boot across processes. Boots are
//! simulated with `CacheDir::with_boot`.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use cache_core::{LoadedArray, Lookup, Wait};
use cache_store::CacheDir;
use common::*;

const BOOT_A: &str = "aaaaaaaaaaaaaaaa";
const BOOT_B: &str = "bbbbbbbbbbbbbbbb";
const BOOT_C: &str = "cccccccccccccccc";

/// 1 MiB of data: past the size whose every hit is checked.
const LEN: usize = 1 << 17;

fn in_boot(root: &Path, boot: &str) -> CacheDir {
    CacheDir::open(root).unwrap().with_boot(Some(boot))
}

fn store_large(dir: &CacheDir, key: &str) {
    dir.store(key, &f8(&[LEN as u64]), &bytes_of(&vec![7.0; LEN]), &ND).unwrap();
}

/// What a crash can leave: the file's length kept, its middle blocks zeros.
fn lose_blocks(root: &Path, key: &str) {
    let path = root.join(format!("{key}.npy"));
    let len = fs::metadata(&path).unwrap().len();
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(len / 2)).unwrap();
    file.write_all(&[0; 64 << 10]).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
}

fn is_damaged(lookup: Lookup) -> bool {
    matches!(lookup, Lookup::Damaged(_))
}

#[test]
fn a_large_entry_of_an_earlier_boot_that_lost_blocks_is_damaged_on_its_first_hit_read_or_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    store_large(&in_boot(tmp.path(), BOOT_A), KEY);
    lose_blocks(tmp.path(), KEY);
    let later = in_boot(tmp.path(), BOOT_B);
    assert!(is_damaged(later.load(KEY, false).unwrap()), "read");
    assert!(is_damaged(later.load(KEY, true).unwrap()), "mapped");
    assert!(is_damaged(in_boot(tmp.path(), BOOT_C).load(KEY, true).unwrap()), "mapped, first");
    // Within the boot that wrote it, a large hit checks its header and
    // length only: damage without a crash is not caught there.
    let same = in_boot(tmp.path(), BOOT_A);
    assert!(matches!(same.load(KEY, false).unwrap(), Lookup::Hit(_)));
    assert_eq!(same.boot_checks(), 0);
}

#[test]
fn an_earlier_boots_entry_is_checked_once_in_a_boot_by_all_its_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    store_large(&in_boot(root, BOOT_A), KEY);
    let first = in_boot(root, BOOT_B);
    hit(first.load(KEY, false).unwrap());
    assert_eq!(first.boot_checks(), 1);
    hit(first.load(KEY, false).unwrap());
    assert!(matches!(hit(first.load(KEY, true).unwrap()).array, LoadedArray::Mapped(_)));
    assert_eq!(first.boot_checks(), 1, "checked once in this process");
    first.flush(Wait::AsNeeded).unwrap();
    // Another process of the boot finds the index's mark.
    let second = in_boot(root, BOOT_B);
    hit(second.load(KEY, true).unwrap());
    assert_eq!(second.boot_checks(), 0, "marked in the index");
    // A later boot checks again.
    let third = in_boot(root, BOOT_C);
    hit(third.load(KEY, false).unwrap());
    assert_eq!(third.boot_checks(), 1);
    // The mark is of the file checked: one changed since is checked again.
    lose_blocks(root, KEY);
    assert!(is_damaged(in_boot(root, BOOT_B).load(KEY, false).unwrap()));
    // An entry stored in this boot is not checked.
    store_large(&second, &key(1));
    hit(second.load(&key(1), false).unwrap());
    assert_eq!(second.boot_checks(), 0);
}

#[test]
fn a_record_without_a_boot_or_a_system_without_one_checks_the_first_hit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = in_boot(tmp.path(), BOOT_A);
    store_large(&dir, KEY);
    // A record as an older version wrote it: no boot, so of an unknown one.
    let record = tmp.path().join(format!("{KEY}.json"));
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["boot"], BOOT_A);
    json.as_object_mut().unwrap().remove("boot");
    fs::write(&record, serde_json::to_vec(&json).unwrap()).unwrap();
    lose_blocks(tmp.path(), KEY);
    assert!(is_damaged(in_boot(tmp.path(), BOOT_A).load(KEY, false).unwrap()));
    // Where the system names no boot, each process checks a large entry's first hit.
    let tmp = tempfile::tempdir().unwrap();
    let unknown = || CacheDir::open(tmp.path()).unwrap().with_boot(None);
    store_large(&unknown(), KEY);
    let dir = unknown();
    hit(dir.load(KEY, false).unwrap());
    hit(dir.load(KEY, false).unwrap());
    assert_eq!(dir.boot_checks(), 1);
    lose_blocks(tmp.path(), KEY);
    assert!(is_damaged(unknown().load(KEY, true).unwrap()));
}
