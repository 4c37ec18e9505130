use std::path::Path;

use cache_index::{EntryRow, Index, IndexError, Journal, Limits, Removed, Totals, Victim};

fn row(key: &str, bytes: u64, last_used: i64) -> EntryRow {
    EntryRow {
        key: key.to_owned(),
        function: "f".to_owned(),
        dtype: "<f8".to_owned(),
        shape: vec![2, 3],
        bytes,
        created: last_used,
        last_used,
    }
}

fn open(path: &Path) -> Index {
    Index::open(path, Journal::Wal).unwrap().0
}

fn keys(v: &[Victim]) -> Vec<&str> {
    v.iter().map(|v| v.key.as_str()).collect()
}

/// Removal of any row of these keys, whenever it was last used.
fn any(keys: &[&str]) -> Vec<(String, i64)> {
    keys.iter().map(|k| (k.to_string(), i64::MAX)).collect()
}

fn add(index: &mut Index, r: EntryRow) {
    index.insert(&r, || Ok::<(), IndexError>(())).unwrap();
}

#[test]
fn totals_follow_inserts_replacements_and_removals() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut index, created) = Index::open(&tmp.path().join("i.sqlite"), Journal::Wal).unwrap();
    assert!(created);
    add(&mut index, row("a", 100, 1));
    add(&mut index, row("b", 50, 2));
    add(&mut index, row("a", 30, 3)); // replaces a
    assert_eq!(index.totals().unwrap(), Totals { entries: 2, bytes: 80, hits: 0, misses: 0, foreign: 0 });
    let mut unlinked = Vec::new();
    let removed = index.remove(&any(&["a", "zzz"]), |k| {
        unlinked.push(k.to_owned());
        Ok::<(), IndexError>(())
    });
    assert_eq!(removed.unwrap(), Removed { entries: 1, bytes: 30 });
    // Files of keys the index never knew are removed too.
    assert_eq!(unlinked, ["a", "zzz"]);
    assert_eq!(index.totals().unwrap(), Totals { entries: 1, bytes: 50, hits: 0, misses: 0, foreign: 0 });
    // Reopening keeps everything and does not report a creation.
    drop(index);
    let (index, created) = Index::open(&tmp.path().join("i.sqlite"), Journal::Wal).unwrap();
    assert!(!created);
    assert_eq!(index.rows().unwrap(), vec![row("b", 50, 2)]);
}

#[test]
fn a_failed_placement_leaves_no_row() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    let err = index.insert(&row("a", 10, 1), || Err(IndexError::new("x", "rename failed")));
    assert!(err.unwrap_err().to_string().contains("rename failed"));
    assert_eq!(index.totals().unwrap().entries, 0);
    assert!(index.rows().unwrap().is_empty());
}

#[test]
fn victims_are_expired_entries_then_least_recently_used_until_under_the_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    for (k, bytes, used) in [("a", 10, 100), ("b", 20, 300), ("c", 30, 200), ("d", 40, 400)] {
        add(&mut index, row(k, bytes, used));
    }
    let none = Limits::default();
    assert!(index.victims(&none, 1000).unwrap().is_empty());
    let by_count = Limits { max_entries: Some(2), ..none };
    assert_eq!(keys(&index.victims(&by_count, 1000).unwrap()), ["a", "c"]);
    // 100 bytes in all; at most 65 means dropping a (10), c (30): 60 left.
    let by_size = Limits { max_bytes: Some(65), ..none };
    assert_eq!(keys(&index.victims(&by_size, 1000).unwrap()), ["a", "c"]);
    let by_size = Limits { max_bytes: Some(70), ..none };
    assert_eq!(keys(&index.victims(&by_size, 1000).unwrap()), ["a", "c"]);
    let by_size = Limits { max_bytes: Some(90), ..none };
    assert_eq!(keys(&index.victims(&by_size, 1000).unwrap()), ["a"]);
    // Unused for more than 250 ms at t=500: a (100) and c (200).
    let by_age = Limits { max_age: Some(250), ..none };
    assert_eq!(keys(&index.victims(&by_age, 500).unwrap()), ["a", "c"]);
    // A limit of zero empties the cache.
    let zero = Limits { max_bytes: Some(0), ..none };
    assert_eq!(index.victims(&zero, 1000).unwrap().len(), 4);
}

#[test]
fn recorded_uses_move_last_use_forward_only_and_count_hits_and_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    add(&mut index, row("a", 1, 500));
    index.record(&[("a".to_owned(), 400), ("unknown".to_owned(), 900)], 2, 1, None).unwrap();
    assert_eq!(index.last_used("a").unwrap(), Some(500));
    index.record(&[("a".to_owned(), 700)], 1, 0, None).unwrap();
    assert_eq!(index.last_used("a").unwrap(), Some(700));
    assert_eq!(index.last_used("unknown").unwrap(), None);
    let t = index.totals().unwrap();
    assert_eq!((t.entries, t.hits, t.misses), (1, 3, 1));
}

#[test]
fn reconcile_adopts_files_the_index_lacks_and_drops_rows_without_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    add(&mut index, row("kept", 5, 10));
    add(&mut index, row("gone", 7, 10));
    let on_disk = vec!["kept".to_owned(), "new".to_owned(), "unreadable".to_owned()];
    let mut described = Vec::new();
    let (added, dropped) = index
        .reconcile(
            12345,
            || Ok::<_, IndexError>(on_disk),
            |key| {
                described.push(key.to_owned());
                (key == "new").then(|| row("new", 3, 20))
            },
        )
        .unwrap();
    // Only entries the index lacks are read from disk.
    described.sort();
    assert_eq!(described, ["new", "unreadable"]);
    assert_eq!((added, dropped), (1, 1));
    // A known row keeps what the index knew (its last use).
    assert_eq!(index.rows().unwrap(), vec![row("new", 3, 20), row("kept", 5, 10)]);
    assert_eq!(index.totals().unwrap().bytes, 8);
    assert_eq!(index.reconciled_at().unwrap(), 12345);
}

#[test]
fn clear_empties_rows_and_counters_and_passes_a_test_for_later_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    add(&mut index, row("a", 5, 10));
    index.record(&[], 4, 4, None).unwrap();
    let seen = index.clear(|| Ok(()), |stored_since| Ok::<_, IndexError>(stored_since("a"))).unwrap();
    assert!(!seen);
    assert_eq!(index.totals().unwrap(), Totals::default());
}

#[test]
fn connections_in_many_threads_keep_the_totals_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    open(&path);
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = &path;
            s.spawn(move || {
                let mut index = open(path);
                for i in 0..200 {
                    add(&mut index, row(&format!("k{}", i % 50 + t * 25), 1 + (i % 7) as u64, i));
                    index.record(&[(format!("k{}", i % 50), i)], 1, 1, None).unwrap();
                    if i % 10 == 0 {
                        index
                            .remove(&[(format!("k{}", (i + 5) % 50 + t * 25), i64::MAX)], |_| Ok::<(), IndexError>(()))
                            .unwrap();
                    }
                }
            });
        }
    });
    let index = open(&path);
    let rows = index.rows().unwrap();
    let t = index.totals().unwrap();
    assert_eq!(t.entries, rows.len() as u64);
    assert_eq!(t.bytes, rows.iter().map(|r| r.bytes).sum::<u64>());
    assert_eq!((t.hits, t.misses), (800, 800));
}

#[test]
fn an_index_from_a_newer_schema_is_refused_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    set_schema_version_99(&path);
    let err = Index::open(&path, Journal::Wal).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
    assert!(err.to_string().contains("i.sqlite"), "{err}");
}

/// Creates an index, then patches its header's `user_version` to 99.
fn set_schema_version_99(path: &Path) {
    open(path);
    let mut bytes = std::fs::read(path).unwrap();
    // user_version is the big-endian u32 at offset 60 of the database header.
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

#[test]
fn a_file_that_is_not_an_index_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let err = Index::open(&path, Journal::Wal).unwrap_err();
    assert!(err.to_string().contains("i.sqlite"), "{err}");
    assert!(err.is_damaged(), "{err}");
}

#[test]
fn rollback_journal_mode_works_too() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    let (mut index, _) = Index::open(&path, Journal::Rollback).unwrap();
    add(&mut index, row("a", 5, 10));
    assert_eq!(index.totals().unwrap().entries, 1);
    assert!(!tmp.path().join("i.sqlite-wal").exists());
}

#[test]
fn a_removal_spares_a_row_used_or_stored_since_it_was_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    add(&mut index, row("a", 5, 10));
    add(&mut index, row("b", 5, 10));
    let victims = index.victims(&Limits { max_entries: Some(0), ..Limits::default() }, 100).unwrap();
    // Used by another process between the choice and the removal.
    index.record(&[("a".to_owned(), 50)], 1, 0, None).unwrap();
    let mut unlinked = Vec::new();
    let judged: Vec<(String, i64)> = victims.iter().map(|v| (v.key.clone(), v.last_used)).collect();
    let removed = index
        .remove(&judged, |k| {
            unlinked.push(k.to_owned());
            Ok::<(), IndexError>(())
        })
        .unwrap();
    assert_eq!(unlinked, ["b"]);
    // Two chosen, one removed: what a store reports as evicted.
    assert_eq!((victims.len(), removed.entries), (2, 1));
    assert_eq!(index.rows().unwrap().iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a"]);
}

#[test]
fn a_write_that_may_not_wait_fails_at_once_while_another_connection_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    let mut index = open(&path);
    add(&mut index, row("a", 5, 10));
    let mut other = open(&path);
    let started = std::time::Instant::now();
    let mut result = None;
    other
        .insert(&row("b", 1, 1), || {
            // Inside the other connection's write transaction.
            result = Some(index.record(&[("a".to_owned(), 20)], 1, 0, Some(std::time::Duration::ZERO)));
            Ok::<(), IndexError>(())
        })
        .unwrap();
    assert!(result.unwrap().is_err());
    // Far below the 120 s an ordinary write waits, yet beyond any stall of a busy machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Afterwards it waits again as usual, and writes.
    index.record(&[("a".to_owned(), 20)], 1, 0, None).unwrap();
    assert_eq!(index.last_used("a").unwrap(), Some(20));
}

#[test]
fn shapes_come_back_as_the_integers_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = open(&tmp.path().join("i.sqlite"));
    for (key, shape) in [("scalar", vec![]), ("empty", vec![0, 3]), ("wide", vec![1, u64::MAX, 7, 0, 2])] {
        add(&mut index, EntryRow { shape: shape.clone(), ..row(key, 1, 1) });
        let rows = index.rows().unwrap();
        assert_eq!(rows.iter().find(|r| r.key == key).unwrap().shape, shape);
    }
}

#[test]
fn an_index_of_the_previous_schema_is_emptied_and_reported_as_new() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    {
        // Schema 1 kept shapes as JSON text.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE entries (key TEXT PRIMARY KEY NOT NULL, function TEXT NOT NULL, dtype TEXT NOT NULL,
               shape TEXT NOT NULL, bytes INTEGER NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL);
             INSERT INTO entries VALUES ('k', 'f', '<f8', '[2,3]', 10, 1, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let (index, created) = Index::open(&path, Journal::Wal).unwrap();
    assert!(created, "the caller must refill it from the files");
    assert_eq!(index.rows().unwrap(), vec![]);
    assert_eq!(index.totals().unwrap(), Totals::default());
}

#[test]
fn a_database_that_is_not_an_index_is_refused_as_damaged_and_left_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE entries (id INTEGER); INSERT INTO entries VALUES (42); CREATE TABLE totals (x);",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Index::open(&path, Journal::Wal).unwrap_err();
    assert!(err.is_damaged(), "{err}");
    assert!(err.to_string().contains("not an index of this cache"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed, not even its journal mode");
}

#[cfg(unix)]
#[test]
fn a_link_under_the_index_name_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim.sqlite");
    {
        let conn = rusqlite::Connection::open(&victim).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    }
    let before = std::fs::read(&victim).unwrap();
    let path = tmp.path().join("i.sqlite");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    assert!(Index::open(&path, Journal::Wal).is_err());
    // A link to where nothing is yet must not create a database there either.
    let elsewhere = tmp.path().join("elsewhere.sqlite");
    let dangling = tmp.path().join("j.sqlite");
    std::os::unix::fs::symlink(&elsewhere, &dangling).unwrap();
    assert!(Index::open(&dangling, Journal::Wal).is_err());
    assert!(!elsewhere.exists());
    assert_eq!(std::fs::read(&victim).unwrap(), before);
}

#[test]
fn processes_making_the_index_at_once_never_take_each_others_for_a_foreign_database() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..60 {
        let path = tmp.path().join(format!("i{round}.sqlite"));
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for i in 0..6 {
                let (path, barrier) = (&path, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut index = match Index::open(path, Journal::Wal) {
                        Ok((index, _)) => index,
                        Err(e) => panic!("round {round}, opener {i}: {e}"),
                    };
                    add(&mut index, row(&format!("k{i}"), 1, 1));
                });
            }
        });
        assert_eq!(open(&path).totals().unwrap().entries, 6, "round {round}");
    }
}

#[test]
fn a_wrong_totals_row_cannot_make_a_store_evict_everything_and_a_reconcile_sets_it_right() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    let mut index = open(&path);
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        add(&mut index, row(key, 100, i as i64));
    }
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE totals SET entries = 1000000, bytes = 1000000000000", [])
        .unwrap();
    let limits = Limits { max_bytes: Some(250), max_entries: Some(10), ..Limits::default() };
    assert_eq!(keys(&index.victims(&limits, 10).unwrap()), ["a"], "only as many as the rows call for");
    let (adopted, dropped) =
        index.reconcile(10, || Ok::<_, IndexError>(vec!["a".into(), "b".into(), "c".into()]), |_| None).unwrap();
    assert_eq!((adopted, dropped), (0, 0));
    assert_eq!(index.totals().unwrap(), Totals { entries: 3, bytes: 300, hits: 0, misses: 0, foreign: 0 });
}

#[test]
fn rows_of_the_wrong_types_are_skipped_never_fail_a_read_and_a_reconcile_drops_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    let mut index = open(&path);
    add(&mut index, row("a", 100, 1));
    add(&mut index, row("b", 100, 2));
    // Edited by hand: a function that is a blob, a shape of 3 bytes, a last use that is text.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for edit in [
        "INSERT INTO entries VALUES ('x', x'66', '<f8', x'', 8, 0, 3)",
        "INSERT INTO entries VALUES ('y', 'f', '<f8', x'000000', 8, 0, 4)",
        "INSERT INTO entries VALUES ('z', 'f', '<f8', x'', 8, 0, 'soon')",
        "UPDATE entries SET last_used = 'later' WHERE key = 'b'",
    ] {
        conn.execute(edit, []).unwrap();
    }
    assert_eq!(index.rows().unwrap(), vec![row("a", 100, 1)]);
    let limits = Limits { max_entries: Some(0), ..Limits::default() };
    assert_eq!(
        keys(&index.victims(&limits, 10).unwrap()),
        ["a", "x", "y"],
        "rows whose key, size or last use do not read are no victims"
    );
    // b is on disk: its row goes and it is described anew; the others are gone.
    let (added, dropped) =
        index.reconcile(10, || Ok::<_, IndexError>(vec!["a".into(), "b".into()]), |k| Some(row(k, 100, 7))).unwrap();
    assert_eq!((added, dropped), (1, 4));
    assert_eq!(index.rows().unwrap(), vec![row("b", 100, 7), row("a", 100, 1)]);
    assert_eq!(index.totals().unwrap().entries, 2);
}

#[test]
fn checked_marks_hold_for_their_boot_and_go_with_their_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.sqlite");
    let mut index = open(&path);
    add(&mut index, row("a", 10, 1));
    add(&mut index, row("b", 10, 1));
    let mark = |key: &str, array: &str| (key.to_owned(), "boot-1".to_owned(), array.to_owned());
    let marks = [mark("a", "ino-1"), mark("b", "ino-2")];
    index.mark_checked(&marks, None).unwrap();
    // Another process of the boot reads them; another boot does not.
    let other = open(&path);
    assert_eq!(other.checked_in("a", "boot-1").unwrap().as_deref(), Some("ino-1"));
    assert_eq!(other.checked_in("a", "boot-2").unwrap(), None);
    // A removed entry's mark goes with its row; so do those a reconcile drops.
    index.remove(&any(&["a"]), |_| Ok::<(), IndexError>(())).unwrap();
    assert_eq!(index.checked_in("a", "boot-1").unwrap(), None);
    index.reconcile(5, || Ok::<_, IndexError>(vec![]), |_| None).unwrap();
    assert_eq!(index.checked_in("b", "boot-1").unwrap(), None);
    index.mark_checked(&marks, None).unwrap();
    index.clear(|| Ok::<(), IndexError>(()), |_| Ok::<(), IndexError>(())).unwrap();
    assert_eq!(index.checked_in("b", "boot-1").unwrap(), None);
}
