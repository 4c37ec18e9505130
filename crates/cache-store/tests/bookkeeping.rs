//! The self-managing side of a cache directory: limits, the index,
//! reconciling with the files, compute-once leases.
mod common;

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cache_core::progress::quiet;
use cache_core::{Claim, Error, Limits, Lookup, Stored};
use cache_store::CacheDir;
use common::*;

fn store(dir: &CacheDir, i: u32) {
    let data: Vec<u8> = (0..4).flat_map(|v| (v as f64 + i as f64).to_le_bytes()).collect();
    dir.store(&key(i), &f8(&[4]), &data, &ND).unwrap();
}

fn is_hit(dir: &CacheDir, i: u32) -> bool {
    matches!(dir.load(&key(i), false).unwrap(), Lookup::Hit(_))
}

fn has_files(root: &Path, i: u32) -> bool {
    root.join(format!("{}.npy", key(i))).exists() || root.join(format!("{}.json", key(i))).exists()
}

/// Moves the cache's clock on, so uses fall at distinct times without sleeping.
fn tick(dir: &CacheDir) {
    dir.clock().advance(Duration::from_millis(1));
}

#[test]
fn a_store_over_max_entries_evicts_the_least_recently_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_entries: Some(2), ..Limits::default() });
    store(&dir, 1);
    tick(&dir);
    store(&dir, 2);
    tick(&dir);
    assert!(is_hit(&dir, 1)); // 1 is now more recent than 2
    tick(&dir);
    store(&dir, 3);
    assert!(!has_files(tmp.path(), 2), "the least recently used entry goes");
    assert!(is_hit(&dir, 1) && is_hit(&dir, 3));
    let totals = dir.stats().unwrap();
    assert_eq!(totals.entries, 2);
    assert_eq!(totals.misses, 3);
    assert_eq!(totals.hits, 3);
}

#[test]
fn a_store_reports_the_entries_it_evicted_and_an_entry_over_max_bytes_evicts_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    let one = dir.stats().unwrap().bytes;
    let data: Vec<u8> = (0..4).flat_map(|v: u32| (v as f64).to_le_bytes()).collect();
    let put = |dir: &CacheDir, i: u32| dir.store(&key(i), &f8(&[4]), &data, &ND).unwrap();
    // Exactly at the limit fits (it is judged as the index counts it); a byte under does not.
    let exact = CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_bytes: Some(one), ..Limits::default() });
    assert_eq!(put(&exact, 2), Stored::Published { evicted: 1 });
    let under =
        CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_bytes: Some(one - 1), ..Limits::default() });
    assert_eq!(put(&under, 3), Stored::TooLarge { bytes: one, limit: one - 1 });
    assert!(!has_files(tmp.path(), 3), "nothing written");
    assert!(is_hit(&under, 2), "nothing evicted");
    let two = CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_entries: Some(1), ..Limits::default() });
    for i in 4..=5 {
        store(&dir, i);
    }
    assert_eq!(put(&two, 6), Stored::Published { evicted: 3 });
    assert_eq!(dir.stats().unwrap().entries, 1);
}

#[test]
fn max_bytes_counts_both_files_of_each_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    let one = dir.stats().unwrap().bytes;
    let on_disk = ["npy", "json"]
        .iter()
        .map(|e| fs::metadata(tmp.path().join(format!("{}.{e}", key(1)))).unwrap().len())
        .sum::<u64>();
    assert_eq!(one, on_disk);
    let dir = dir.with_limits(Limits { max_bytes: Some(one * 3), ..Limits::default() });
    for i in 2..=5 {
        store(&dir, i);
    }
    assert_eq!(dir.stats().unwrap().entries, 3);
    assert!(!has_files(tmp.path(), 1) && !has_files(tmp.path(), 2));
}

#[test]
fn an_entry_unused_past_max_age_is_a_miss_and_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    // Minutes, not milliseconds: however slow the machine, real time cannot age 2 past max_age.
    let dir =
        CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_age: Some(150_000_000), ..Limits::default() });
    store(&dir, 1);
    store(&dir, 2);
    for _ in 0..4 {
        dir.clock().advance(Duration::from_secs(60));
        assert!(is_hit(&dir, 2), "used often enough to stay");
    }
    assert!(!is_hit(&dir, 1));
    assert!(!has_files(tmp.path(), 1));
    assert!(dir.contains(&key(2)).unwrap());
}

#[test]
fn keys_from_a_tampered_index_never_name_files_outside_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cache");
    let dir = CacheDir::open(&root).unwrap();
    store(&dir, 1);
    fs::write(tmp.path().join("victim.json"), "keep").unwrap();
    fs::write(tmp.path().join("victim.npy"), "keep").unwrap();
    let (mut index, _) =
        cache_index::Index::open(&root.join(".numpy-func-cache-index.sqlite"), cache_index::Journal::Wal).unwrap();
    let planted = cache_index::EntryRow {
        key: "../victim".into(),
        function: "x".into(),
        dtype: "<f8".into(),
        shape: vec![1],
        bytes: 1,
        created: 0,
        last_used: 0,
    };
    index.insert(&planted, || Ok::<(), cache_index::IndexError>(())).unwrap();
    index.remove(&[("../victim".to_owned(), i64::MAX)], |_| Ok::<(), cache_index::IndexError>(())).unwrap();
    index.insert(&planted, || Ok::<(), cache_index::IndexError>(())).unwrap();
    // The next store evicts down to one entry, the planted row first (oldest use).
    let dir = dir.with_limits(Limits { max_entries: Some(1), ..Limits::default() });
    store(&dir, 3);
    assert_eq!(fs::read_to_string(tmp.path().join("victim.json")).unwrap(), "keep");
    assert_eq!(fs::read_to_string(tmp.path().join("victim.npy")).unwrap(), "keep");
    assert!(is_hit(&dir, 3));
    assert!(!has_files(&root, 1));
}

#[test]
fn prune_adopts_orphans_drops_rows_without_files_and_removes_leftovers_of_dead_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = CacheDir::open(root).unwrap();
    store(&dir, 1);
    store(&dir, 2);
    // An entry the index lacks (as after a kill between rename and commit).
    for ext in ["npy", "json"] {
        fs::copy(root.join(format!("{}.{ext}", key(1))), root.join(format!("{}.{ext}", key(7)))).unwrap();
    }
    // Files removed by hand.
    fs::remove_file(root.join(format!("{}.json", key(2)))).unwrap();
    fs::remove_file(root.join(format!("{}.npy", key(2)))).unwrap();
    // Half an entry, and temporary files of a dead and of a live process on this host.
    fs::write(root.join(format!("{}.npy", key(8))), b"half").unwrap();
    let host = host_tag();
    let dead = root.join(format!(".{}.npy.{host}-999999999-00aa.tmp", key(9)));
    let live = root.join(format!(".{}.npy.{host}-{}-00bb.tmp", key(9), std::process::id()));
    fs::write(&dead, b"x").unwrap();
    fs::write(&live, b"x").unwrap();
    // And an index being made by a dead process and by a live one.
    let index = cache_store::INDEX_FILE;
    let dead_index = root.join(format!("{index}.{host}-999999999-00cc.tmp"));
    let live_index = root.join(format!("{index}.{host}-{}-00dd.tmp", std::process::id()));
    fs::write(&dead_index, b"").unwrap();
    fs::write(&live_index, b"").unwrap();
    let report = dir.prune(&Limits::default(), &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!((report.adopted, report.dropped, report.removed_leftovers), (1, 1, 3), "{report:?}");
    assert_eq!(report.totals.entries, 2);
    assert!(!dead.exists() && live.exists());
    assert!(!dead_index.exists() && live_index.exists());
    assert!(!root.join(format!("{}.npy", key(8))).exists());
    let listed: Vec<String> = dir.entries().unwrap().into_iter().map(|r| r.key).collect();
    assert!(listed.contains(&key(7)) && listed.contains(&key(1)) && listed.len() == 2);
}

#[test]
fn a_prune_stopped_by_its_progress_removes_nothing_after_the_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    for i in 1..=3 {
        store(&dir, i);
    }
    let everything = Limits { max_entries: Some(0), ..Limits::default() };
    let mut seen = Vec::new();
    let stopped = dir.prune(&everything, &mut |done, total| {
        seen.push((done, total));
        ControlFlow::Break(())
    });
    assert!(matches!(stopped, Err(Error::Stopped)), "{stopped:?}");
    assert_eq!(seen, [(0, 3)], "stopped at the first call, before any removal");
    assert_eq!(dir.stats().unwrap().entries, 3);
    assert!((1..=3).all(|i| has_files(tmp.path(), i) && is_hit(&dir, i)));
    // Asked at the last report, a stop is too late to spare anything: the prune is done and says so.
    let report = dir
        .prune(&everything, &mut |done, total| {
            if done == total {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(report.removed_entries, 3);
}

#[test]
fn a_directory_from_before_the_index_is_counted_when_the_index_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    for i in 0..5 {
        store(&dir, i);
    }
    drop(dir);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(tmp.path().join(format!(".numpy-func-cache-index.sqlite{suffix}")));
    }
    let dir = CacheDir::open(tmp.path()).unwrap();
    assert_eq!(dir.stats().unwrap().entries, 5);
    assert_eq!(
        dir.prune(&Limits::default(), &mut |_, _| ControlFlow::Continue(())).unwrap().adopted,
        5,
        "the next prune reports them"
    );
}

#[test]
fn remove_and_contains_act_on_one_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    store(&dir, 2);
    assert!(dir.contains(&key(1)).unwrap());
    assert!(dir.remove(&key(1)).unwrap());
    assert!(!dir.remove(&key(1)).unwrap());
    assert!(!dir.contains(&key(1)).unwrap());
    assert!(!has_files(tmp.path(), 1));
    assert!(is_hit(&dir, 2));
    assert_eq!(dir.stats().unwrap().entries, 1);
}

#[test]
fn an_index_that_is_not_a_database_is_rebuilt_from_the_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    drop(dir);
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(tmp.path().join(format!(".numpy-func-cache-index.sqlite{suffix}")));
    }
    fs::write(tmp.path().join(".numpy-func-cache-index.sqlite"), vec![0x55u8; 8192]).unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 2);
    assert_eq!(dir.stats().unwrap().entries, 2);
    assert!(is_hit(&dir, 1) && is_hit(&dir, 2));
}

#[test]
fn a_lease_is_held_once_and_released_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let stale = Duration::from_secs(60);
    let Claim::Taken(lease) = dir.claim(&key(1), stale).unwrap() else { panic!("first claim must take it") };
    match dir.claim(&key(1), stale).unwrap() {
        Claim::Held { holder, this_process, .. } => {
            assert!(this_process && holder.pid == std::process::id(), "{holder}")
        }
        other => panic!("a held lease was taken twice, or none can be: {other:?}"),
    }
    assert!(matches!(dir.claim(&key(2), stale).unwrap(), Claim::Taken(_)), "leases are per key");
    drop(lease);
    assert!(!tmp.path().join(format!(".{}.lock", key(1))).exists());
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Taken(_)));
    // No unique lease files are left behind.
    assert!(fs::read_dir(tmp.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
}

#[test]
fn a_lease_of_a_dead_process_here_or_unrefreshed_elsewhere_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let stale = Duration::from_secs(60);
    let lock = tmp.path().join(format!(".{}.lock", key(1)));
    let host = host_tag();
    fs::write(&lock, format!("{host} 999999999\n")).unwrap();
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Taken(_)), "dead pid on this host");

    fs::write(&lock, "other-host 1\n").unwrap();
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Held { .. }), "fresh lease of another host");
    let old = SystemTime::now() - Duration::from_secs(120);
    fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Taken(_)), "unrefreshed for longer than stale_after");
}

#[test]
fn a_held_lease_is_refreshed_while_its_holder_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let Claim::Taken(_lease) = dir.claim(&key(1), Duration::from_millis(400)).unwrap() else { panic!() };
    // Made to look old; the holder's heartbeat (every 100 ms) makes it new again.
    let lock = tmp.path().join(format!(".{}.lock", key(1)));
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    let refreshed = || fs::metadata(&lock).unwrap().modified().unwrap() > old + Duration::from_secs(1800);
    // However slow this machine, the heartbeat comes; a minute is far beyond its period.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !refreshed() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refreshed(), "the heartbeat refreshed the lease");
    assert!(matches!(dir.claim(&key(1), Duration::from_secs(60)).unwrap(), Claim::Held { .. }));
}

#[test]
fn a_waiter_with_a_shorter_stale_after_does_not_break_a_live_lease() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let Claim::Taken(_lease) = dir.claim(&key(1), Duration::from_secs(600)).unwrap() else { panic!() };
    // Older than the waiter's 200 ms and the default 60 s, younger than the holder's 600 s (set, not slept for).
    let lock = tmp.path().join(format!(".{}.lock", key(1)));
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    // The holder refreshes every 150 s; a waiter's own 200 ms does not make it stale.
    assert!(matches!(dir.claim(&key(1), Duration::from_millis(200)).unwrap(), Claim::Held { .. }));
    // Nor does a clear remove it.
    dir.clear(false, &mut quiet).unwrap();
    assert!(tmp.path().join(format!(".{}.lock", key(1))).exists());
}

#[test]
fn only_hits_that_pass_every_check_count_as_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    fs::write(tmp.path().join(format!("{}.json", key(1))), b"{ damaged").unwrap();
    assert!(matches!(dir.load(&key(1), false).unwrap(), Lookup::Damaged(_)));
    assert!(matches!(dir.load(&key(2), false).unwrap(), Lookup::Miss));
    let totals = dir.stats().unwrap();
    assert_eq!((totals.hits, totals.misses), (0, 1), "{totals:?}");
    store(&dir, 1);
    assert!(is_hit(&dir, 1));
    assert_eq!(dir.stats().unwrap().hits, 1);
}

#[test]
fn a_reconcile_removes_entries_of_older_versions_and_damaged_ones_and_leaves_newer_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = CacheDir::open(root).unwrap();
    for i in 1..=4 {
        store(&dir, i);
    }
    drop(dir);
    for file in fs::read_dir(root).unwrap() {
        let path = file.unwrap().path();
        if path.to_string_lossy().contains(".numpy-func-cache-index") {
            fs::remove_file(path).unwrap();
        }
    }
    let record = |i: u32| root.join(format!("{}.json", key(i)));
    fs::write(record(2), r#"{"format":1,"function":"f","dtype":"<f8","shape":[4]}"#).unwrap();
    fs::write(record(3), r#"{"format":99,"anything":"else"}"#).unwrap();
    fs::write(record(4), b"\x00not a record").unwrap();
    let dir = CacheDir::open(root).unwrap();
    let report = dir.prune(&Limits::default(), &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!((report.adopted, report.removed_leftovers, report.totals.entries), (1, 2, 1), "{report:?}");
    assert!(has_files(root, 1) && !has_files(root, 2) && has_files(root, 3) && !has_files(root, 4));
    assert_eq!(
        fs::read_to_string(record(3)).unwrap(),
        r#"{"format":99,"anything":"else"}"#,
        "a newer version's entry is its own"
    );
}

#[test]
fn a_row_the_index_cannot_read_never_makes_a_load_or_has_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir =
        CacheDir::open(tmp.path()).unwrap().with_limits(Limits { max_age: Some(3_600_000_000), ..Limits::default() });
    store(&dir, 1);
    let conn = rusqlite::Connection::open(tmp.path().join(".numpy-func-cache-index.sqlite")).unwrap();
    conn.execute("UPDATE entries SET last_used = 'not a time'", []).unwrap();
    drop(conn);
    assert!(is_hit(&dir, 1), "the entry is whole; the index's damage only costs its bookkeeping");
    assert!(dir.contains(&key(1)).unwrap());
    assert!(dir.remove(&key(1)).unwrap());
    assert!(!has_files(tmp.path(), 1));
}

#[test]
fn an_entry_of_a_newer_version_is_a_miss_that_a_store_leaves_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    store(&dir, 1);
    let record = tmp.path().join(format!("{}.json", key(1)));
    let array = tmp.path().join(format!("{}.npy", key(1)));
    fs::write(&record, r#"{"format":4,"whatever":"a later version writes"}"#).unwrap();
    let array_before = fs::read(&array).unwrap();
    assert!(matches!(dir.load(&key(1), false).unwrap(), Lookup::Miss));
    store(&dir, 1);
    assert_eq!(fs::read_to_string(&record).unwrap(), r#"{"format":4,"whatever":"a later version writes"}"#);
    assert_eq!(fs::read(&array).unwrap(), array_before);
}

#[test]
fn a_function_name_whose_record_would_be_too_long_to_read_back_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    // Short in bytes, but six times longer once escaped in JSON.
    let name = "\u{1}".repeat(12_000);
    let entry = cache_core::NewEntry { function: &name, ..ND };
    let err = dir.store(&key(1), &f8(&[1]), &bytes_of(&[1.0]), &entry).unwrap_err();
    assert!(matches!(err, Error::NameTooLong { .. }), "{err}");
    assert!(names(tmp.path()).is_empty(), "nothing was left: {:?}", names(tmp.path()));
}

#[cfg(unix)]
#[test]
fn what_is_not_a_lease_under_a_leases_name_is_broken_never_read_or_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let stale = Duration::from_secs(60);
    let lock = tmp.path().join(format!(".{}.lock", key(1)));
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    };
    // A FIFO: opening it to read would block until someone writes.
    mkfifo(&lock);
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Taken(_)), "a FIFO is broken and the lease taken");
    // A link to /dev/zero: reading it would never end.
    std::os::unix::fs::symlink("/dev/zero", &lock).unwrap();
    assert!(matches!(dir.claim(&key(1), stale).unwrap(), Claim::Taken(_)), "a link is broken and the lease taken");
    assert!(fs::metadata("/dev/zero").is_ok(), "the link's target is untouched");
    // And a clear removes both kinds without hanging.
    mkfifo(&lock);
    std::os::unix::fs::symlink("/dev/zero", tmp.path().join(format!(".{}.lock", key(2)))).unwrap();
    dir.clear(false, &mut quiet).unwrap();
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

/// SQLite opens a file it may not write read-only, for good: another user
/// who opened the index of a shared directory in the moment between its
/// creation and its widening could never write it. Watched from another
/// thread while it is made, it is never narrower than the directory.
#[cfg(unix)]
#[test]
fn the_index_of_a_shared_directory_is_never_seen_narrower_than_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut seen = Vec::new();
    for _ in 0..40 {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("shared");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let index = root.join(cache_store::INDEX_FILE);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut modes = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    if let Ok(m) = fs::symlink_metadata(&index) {
                        modes.push(m.permissions().mode() & 0o777);
                    }
                }
                modes
            });
            let dir = CacheDir::open(&root).unwrap();
            store(&dir, 1);
            done.store(true, Ordering::Relaxed);
            seen.extend(watcher.join().unwrap());
        });
    }
    assert!(!seen.is_empty(), "the index was made");
    let narrow: Vec<_> = seen.iter().filter(|m| *m & 0o022 != 0o022).collect();
    assert!(narrow.is_empty(), "seen {} times narrower than the directory: {:o}", narrow.len(), narrow[0]);
}
