mod common;

use std::fs;
use std::ops::ControlFlow;

use cache_core::progress::quiet;
use cache_core::{ArrayClass, Error, Lookup, NewEntry, ResultForm, Stored};
use cache_store::{is_cache_file_name, CacheDir};
use common::*;

#[test]
fn store_then_load_round_trips_array_and_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path().join("cache")).unwrap();
    assert!(!tmp.path().join("cache").exists(), "opening must not create the directory");
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
    let data = bytes_of(&[1.0, 2.5, -3.0, f64::NAN]);
    dir.store(KEY, &f8(&[2, 2]), &data, &ND).unwrap();
    let entry = hit(dir.load(KEY, false).unwrap());
    assert_eq!(entry.array.header(), &f8(&[2, 2]));
    assert_eq!(entry.array.data(), &data[..]);
    let mapped = hit(dir.load(KEY, true).unwrap());
    assert!(matches!(mapped.array, cache_core::LoadedArray::Mapped(_)));
    assert_eq!(mapped.array.data(), &data[..]);
    assert_eq!(
        (entry.record.function.as_str(), entry.record.result, entry.record.class),
        ("f", ResultForm::NdArray, ArrayClass::Float64Array)
    );
    assert_eq!(names(dir.root()), vec![format!("{KEY}.json"), format!("{KEY}.npy")]);
}

#[test]
fn a_store_keeps_a_whole_entry_already_there_and_replaces_a_damaged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    assert!(dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap().is_published());
    assert_eq!(dir.store(KEY, &f8(&[2]), &bytes_of(&[2.0, 3.0]), &ND).unwrap(), Stored::AlreadyThere);
    assert_eq!(hit(dir.load(KEY, false).unwrap()).array.data(), &bytes_of(&[1.0])[..], "the first writer's stands");
    flip_last_byte(&tmp.path().join(format!("{KEY}.npy")));
    assert!(dir.store(KEY, &f8(&[2]), &bytes_of(&[2.0, 3.0]), &ND).unwrap().is_published());
    let entry = hit(dir.load(KEY, false).unwrap());
    assert_eq!(entry.array.data(), &bytes_of(&[2.0, 3.0])[..]);
    assert_eq!(entry.array.header().shape, vec![2]);
    assert_eq!(names(tmp.path()).len(), 2, "no temporary files are left behind");
}

#[test]
fn a_record_without_array_or_an_array_without_record_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    fs::remove_file(tmp.path().join(format!("{KEY}.json"))).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    fs::remove_file(tmp.path().join(format!("{KEY}.npy"))).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
}

#[test]
fn truncated_or_garbage_arrays_are_damaged_not_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let npy = tmp.path().join(format!("{KEY}.npy"));
    dir.store(KEY, &f8(&[100]), &bytes_of(&[7.0; 100]), &ND).unwrap();
    let full = fs::read(&npy).unwrap();
    for bad in
        [full[..full.len() - 8].to_vec(), full[..40].to_vec(), b"garbage".to_vec(), [&full[..], &[0u8; 8]].concat()]
    {
        fs::write(&npy, &bad).unwrap();
        assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)), "{} bytes read as an entry", bad.len());
        assert!(matches!(dir.load(KEY, true).unwrap(), Lookup::Damaged(_)), "{} bytes mapped as an entry", bad.len());
    }
}

/// A link at `link` to `target`; false where the OS does not let this user
/// make one (Windows grants it to administrators and developer mode) or
/// makes one that is not a link (wine's resolve nowhere).
fn plant_link(target: &std::path::Path, link: &std::path::Path) -> bool {
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link).unwrap();
    #[cfg(windows)]
    if std::os::windows::fs::symlink_file(target, link).is_err() {
        return false;
    }
    fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn links_and_directories_under_entry_names_are_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path().join("c")).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    let target = outside.path().join("secret.npy");
    npy_format::write_npy(&target, &f8(&[1]), &bytes_of(&[666.0])).unwrap();
    let npy = dir.root().join(format!("{KEY}.npy"));
    fs::remove_file(&npy).unwrap();
    if plant_link(&target, &npy) {
        assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)));
    }
    let _ = fs::remove_file(&npy);
    fs::create_dir(&npy).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)));
}

#[test]
fn bad_keys_are_refused_before_touching_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    for key in ["../etc/passwd", "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "abc", ""] {
        assert!(matches!(dir.load(key, false), Err(Error::BadKey { .. })), "{key}");
        assert!(matches!(dir.store(key, &f8(&[0]), &[], &ND), Err(Error::BadKey { .. })), "{key}");
    }
}

#[test]
fn a_data_length_that_does_not_match_the_shape_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    assert!(dir.store(KEY, &f8(&[3]), &bytes_of(&[1.0]), &ND).is_err());
    assert!(names(tmp.path()).is_empty(), "left {:?}", names(tmp.path()));
}

#[test]
fn a_path_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"x").unwrap();
    let err = CacheDir::open(&file).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }));
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn clear_removes_only_cache_files_and_unlinks_links_without_following() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    let dir = CacheDir::open(&root).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    let foreign = ["notes.txt", "data.npy", &format!("{KEY}.txt"), &format!("{}.npy", &KEY[1..])];
    for name in foreign {
        fs::write(root.join(name), b"user").unwrap();
    }
    fs::create_dir(root.join("sub")).unwrap();
    // Left by a process of this host that is gone.
    fs::write(root.join(format!(".{KEY}.npy.{}-999999999-00.tmp", host_tag())), b"partial").unwrap();
    let victim = outside.path().join("keep.npy");
    fs::write(&victim, b"precious").unwrap();
    let other_key = KEY.replace('0', "f");
    let linked = plant_link(&victim, &root.join(format!("{other_key}.npy")));

    let report = dir.clear(false, &mut quiet).unwrap();
    // Entry, temporary file and link.
    assert_eq!(report.removed, if linked { 4 } else { 3 }, "{report:?}");
    assert_eq!(report.foreign, 5);
    assert!(
        root.join(".numpy-func-cache-index.sqlite").exists(),
        "an emptied index marks a directory shared with other files as a cache"
    );
    assert_eq!(dir.stats().unwrap().entries, 0);
    let mut expected: Vec<String> = foreign.iter().map(|s| s.to_string()).chain(["sub".to_string()]).collect();
    // (names() leaves out the index.)
    expected.sort();
    assert_eq!(names(&root), expected);
    assert_eq!(fs::read(&victim).unwrap(), b"precious");

    let err = dir.clear(true, &mut quiet).unwrap_err();
    assert!(matches!(err, Error::NotEmpty { remaining: 5, .. }), "{err}");
    assert!(root.exists());
    assert!(root.join(".numpy-func-cache-index.sqlite").exists(), "a failed removal keeps the index");
}

#[test]
fn clear_with_remove_dir_removes_a_directory_of_cache_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    let dir = CacheDir::open(&root).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    let report = dir.clear(true, &mut quiet).unwrap();
    // The entry's two files and the index's (one to three, by journal state).
    assert!((3..=5).contains(&report.removed), "{report:?}");
    assert!(report.removed_dir);
    assert!(!root.exists());
    // Clearing what is already gone is not an error.
    assert_eq!(dir.clear(true, &mut quiet).unwrap().removed, 0);
}

#[test]
fn cache_file_names_are_recognised_exactly() {
    assert!(is_cache_file_name(&format!("{KEY}.npy")));
    assert!(is_cache_file_name(&format!("{KEY}.json")));
    assert!(is_cache_file_name(&format!(".{KEY}.npy.node1-42-00ff.tmp")));
    assert!(is_cache_file_name(&format!("{KEY}.npz")));
    assert!(!is_cache_file_name(&format!("{KEY}.npx")));
    assert!(!is_cache_file_name(&format!("{}.npy", KEY.to_uppercase())));
    assert!(!is_cache_file_name(&format!(".{KEY}.txt.x.tmp")));
    assert!(!is_cache_file_name(&format!(".{KEY}.npy")));
    assert!(!is_cache_file_name("notes.txt"));
}

#[test]
fn the_index_and_entry_files_mark_a_cache_directory_and_nothing_else_does() {
    assert!(cache_store::marks_a_cache(".numpy-func-cache-index.sqlite"));
    assert!(cache_store::marks_a_cache(&format!("{KEY}.npy")));
    assert!(cache_store::marks_a_cache(&format!("{KEY}.json")));
    for name in [
        ".numpy-func-cache-index.sqlite-wal".to_owned(),
        format!(".{KEY}.lock"),
        format!(".{KEY}.npy.node1-42-00ff.tmp"),
        format!("{}.npy", &KEY[1..]),
        "notes.txt".to_owned(),
    ] {
        assert!(!cache_store::marks_a_cache(&name), "{name}");
    }
}

#[test]
fn temporary_names_differ_between_stores() {
    // Two stores of one key from one process must not share a temporary file:
    // run them concurrently and check both complete and the entry is whole.
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let data = bytes_of(&vec![4.0; 1 << 16]);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    dir.store(KEY, &f8(&[1 << 16]), &data, &ND).unwrap();
                }
            });
        }
    });
    assert_eq!(hit(dir.load(KEY, false).unwrap()).array.data(), &data[..]);
    assert_eq!(names(tmp.path()).len(), 2);
}

#[test]
fn a_record_rewritten_in_place_or_removed_is_noticed_on_the_next_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    assert_eq!(hit(dir.load(KEY, false).unwrap()).record.function, "f");
    let record = tmp.path().join(format!("{KEY}.json"));
    let text = fs::read_to_string(&record).unwrap();
    // Same length, then longer: the memory of records must see both.
    fs::write(&record, text.replace("\"function\":\"f\"", "\"function\":\"g\"")).unwrap();
    assert_eq!(hit(dir.load(KEY, false).unwrap()).record.function, "g");
    fs::write(&record, text.replace("\"function\":\"f\"", "\"function\":\"longer\"")).unwrap();
    assert_eq!(hit(dir.load(KEY, false).unwrap()).record.function, "longer");
    fs::remove_file(&record).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
}

#[test]
fn the_record_holds_what_the_header_cannot_say_and_a_record_that_disagrees_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let bare =
        NewEntry { function: "ramp", result: ResultForm::TypedArray, class: ArrayClass::Float64Array, members: &[] };
    dir.store(KEY, &f8(&[2]), &bytes_of(&[1.0, 2.0]), &bare).unwrap();
    let record = tmp.path().join(format!("{KEY}.json"));
    let text = fs::read_to_string(&record).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["boot", "class", "created", "dataDigest", "format", "function", "headerDigest", "result"]);
    assert_eq!(
        (json["format"].as_u64(), json["result"].as_str(), json["class"].as_str()),
        (Some(2), Some("typedarray"), Some("Float64Array"))
    );
    for (from, to) in [("Float64Array", "Float32Array"), ("Float64Array", "Nonsense"), ("typedarray", "list")] {
        fs::write(&record, text.replace(from, to)).unwrap();
        assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)), "{from} -> {to}");
    }
    // An older record format is not damage: the entry is from another version and misses.
    fs::write(&record, r#"{"format":1,"function":"ramp","result":"typedarray","class":"Float64Array","dtype":"<f8","shape":[2],"fortranOrder":false,"created":"2026-01-01T00:00:00Z"}"#).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
    assert!(!dir.contains(KEY).unwrap());
}

#[test]
fn an_array_replaced_or_edited_behind_its_record_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let npy = tmp.path().join(format!("{KEY}.npy"));
    let data = bytes_of(&[1.0, 2.0, 3.0, 4.0]);
    dir.store(KEY, &f8(&[2, 2]), &data, &ND).unwrap();
    let stored = fs::read(&npy).unwrap();
    let edits: Vec<(&str, Vec<u8>)> = vec![
        ("same data, another shape", stored_with(&stored, "(2, 2)", "(4, 1)")),
        ("same data, Fortran order", stored_with(&stored, "'fortran_order': False", "'fortran_order': True ")),
        ("same data, big-endian", stored_with(&stored, "'<f8'", "'>f8'")),
        ("one data bit flipped", {
            let mut b = stored.clone();
            *b.last_mut().unwrap() ^= 1;
            b
        }),
    ];
    for (what, bytes) in edits {
        fs::write(&npy, &bytes).unwrap();
        assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)), "{what}");
        assert!(matches!(dir.load(KEY, true).unwrap(), Lookup::Damaged(_)), "{what}, mapped");
    }
    // Another valid array of the same class under the entry's name.
    npy_format::write_npy(&npy, &f8(&[4]), &data).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)));
}

fn stored_with(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "an edit keeps the header's length");
    let text = String::from_utf8_lossy(&bytes[..128]).into_owned();
    assert!(text.contains(from), "{text}");
    let mut out = text.replacen(from, to, 1).into_bytes();
    out.extend_from_slice(&bytes[128..]);
    out
}

#[test]
fn clear_leaves_the_temporary_files_and_leases_of_running_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    let mine = format!(".{KEY}.npy.{}-{}-00.tmp", host_tag(), std::process::id());
    let other_host = format!(".{KEY}.json.elsewhere-7-00.tmp");
    fs::write(tmp.path().join(&mine), b"in progress").unwrap();
    fs::write(tmp.path().join(&other_host), b"in progress").unwrap();
    let cache_core::Claim::Taken(_lease) = dir.claim(KEY, std::time::Duration::from_secs(60)).unwrap() else {
        panic!()
    };
    dir.clear(false, &mut quiet).unwrap();
    let mut left = names(tmp.path());
    left.sort();
    let mut expected = vec![mine, other_host, format!(".{KEY}.lock")];
    expected.sort();
    assert_eq!(left, expected);
    // The directory itself goes only with everything in it.
    assert!(dir.clear(true, &mut quiet).unwrap().removed_dir);
}

#[cfg(unix)]
#[test]
fn a_clear_empties_the_index_in_place_so_processes_holding_it_open_keep_one_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join(".numpy-func-cache-index.sqlite");
    let (a, b) = (CacheDir::open(tmp.path()).unwrap(), CacheDir::open(tmp.path()).unwrap());
    a.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    assert_eq!(b.stats().unwrap().entries, 1, "b has the index open");
    let inode = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&index);
    a.clear(false, &mut quiet).unwrap();
    assert_eq!(inode(&index), before, "the same index file, emptied");
    assert!(names(tmp.path()).is_empty());
    b.store(&key(2), &f8(&[1]), &bytes_of(&[2.0]), &ND).unwrap();
    assert_eq!(a.stats().unwrap().entries, 1, "a store through b's connection is counted where a looks");
}

#[test]
fn a_clear_that_cannot_remove_the_directory_keeps_the_index_so_it_still_reads_as_a_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    dir.store(KEY, &f8(&[1]), &bytes_of(&[1.0]), &ND).unwrap();
    fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    assert!(matches!(dir.clear(true, &mut quiet), Err(Error::NotEmpty { remaining: 1, .. })));
    assert!(tmp.path().join(".numpy-func-cache-index.sqlite").exists());
    assert_eq!(names(tmp.path()), ["notes.txt"]);
}

/// A store of `len` f64 values of `key`, its files, and the bytes of its data.
fn stored(dir: &CacheDir, key: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let data = bytes_of(&(0..len).map(|i| i as f64).collect::<Vec<_>>());
    dir.store(key, &f8(&[len as u64]), &data, &ND).unwrap();
    (dir.root().join(format!("{key}.npy")), data)
}

fn flip_last_byte(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_bit_in_large_data_passes_a_plain_load_and_fails_a_verifying_one_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let (npy, _) = stored(&dir, KEY, 100_000);
    flip_last_byte(&npy);
    // 800 kB: a plain load checks the header, not the data.
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Hit(_)));
    let verifying = dir.clone().with_verify(cache_store::Verify::All);
    assert!(matches!(verifying.load(KEY, false).unwrap(), Lookup::Damaged(_)));
    assert!(matches!(verifying.load(KEY, true).unwrap(), Lookup::Damaged(_)), "mapped, too");
    let report = dir.verify(false, &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!((report.checked, report.removed), (1, 0));
    assert_eq!(report.damaged.len(), 1);
    assert!(report.damaged[0].1.contains("digest"), "{:?}", report.damaged);
    assert!(npy.exists(), "a dry run removes nothing");
    let report = dir.verify(true, &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!(report.removed, 1);
    assert!(!npy.exists());
}

#[test]
fn verify_passes_whole_entries_and_reports_progress_to_the_total() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    stored(&dir, &key(1), 10);
    stored(&dir, &key(2), 300_000);
    let mut seen = Vec::new();
    let report = dir
        .verify(true, &mut |done, total| {
            seen.push((done, total));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(report, cache_core::VerifyReport { checked: 2, damaged: vec![], removed: 0 });
    assert_eq!(seen, [(0, 2), (1, 2), (2, 2)]);
}

#[test]
fn verify_stops_where_progress_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    for i in 1..=3 {
        stored(&dir, &key(i), 10);
    }
    let mut calls = 0;
    let stopped = dir.verify(true, &mut |done, _| {
        calls += 1;
        if done == 1 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(matches!(stopped, Err(Error::Stopped)), "{stopped:?}");
    assert_eq!(calls, 2, "no entry is checked after the stop");
}

#[test]
fn contains_says_what_a_load_would_find_without_reading_large_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let (small, _) = stored(&dir, &key(1), 8);
    let (large, _) = stored(&dir, &key(2), 100_000);
    assert!(dir.contains(&key(1)).unwrap() && dir.contains(&key(2)).unwrap());
    flip_last_byte(&small);
    assert!(!dir.contains(&key(1)).unwrap(), "small data is checked, as a load checks it");
    fs::write(&large, &fs::read(&large).unwrap()[..4096]).unwrap();
    assert!(!dir.contains(&key(2)).unwrap(), "a large entry's length and header are checked");
}

/// Longer than the cache's 100 ms window in which a file just changed is
/// not kept (its stamp could still collide with a replacement's).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

#[test]
fn a_small_array_kept_from_a_read_is_served_only_while_its_files_are_the_ones_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let (npy, json) = (tmp.path().join(format!("{KEY}.npy")), tmp.path().join(format!("{KEY}.json")));
    dir.store(KEY, &f8(&[3]), &bytes_of(&[1.0, 2.0, 3.0]), &ND).unwrap();
    let first = hit(dir.load(KEY, false).unwrap());
    assert_eq!(dir.kept_arrays(), 0, "files changed just now are not kept");
    settle();
    hit(dir.load(KEY, false).unwrap());
    assert_eq!(dir.kept_arrays(), 1);
    let good = fs::read(&npy).unwrap();
    let again = hit(dir.load(KEY, false).unwrap());
    assert_eq!(again.array.data(), first.array.data());
    assert_ne!(again.array.data().as_ptr(), first.array.data().as_ptr(), "each hit gets its own memory");
    assert!(hit(dir.load(KEY, true).unwrap()).array.data() == first.array.data(), "mapped loads do not use it");

    // Another file renamed over the array (a new inode): read and checked again.
    let planted = tmp.path().join("planted");
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    fs::write(&planted, &bad).unwrap();
    fs::rename(&planted, &npy).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)));

    // A rewrite in place, same length: its times change.
    dir.store(KEY, &f8(&[3]), &bytes_of(&[1.0, 2.0, 3.0]), &ND).unwrap();
    settle();
    hit(dir.load(KEY, false).unwrap());
    assert_eq!(dir.kept_arrays(), 1);
    fs::write(&npy, &bad).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Damaged(_)));

    // The entry replaced by another process's store: the new entry, not the kept one.
    dir.store(KEY, &f8(&[3]), &bytes_of(&[1.0, 2.0, 3.0]), &ND).unwrap();
    settle();
    hit(dir.load(KEY, false).unwrap());
    let other = CacheDir::open(tmp.path()).unwrap();
    other.remove(KEY).unwrap();
    other.store(KEY, &f8(&[2]), &bytes_of(&[5.0, 6.0]), &ND).unwrap();
    assert_eq!(hit(dir.load(KEY, false).unwrap()).array.data(), &bytes_of(&[5.0, 6.0])[..]);

    // Either file removed: a miss at once.
    settle();
    hit(dir.load(KEY, false).unwrap());
    assert_eq!(dir.kept_arrays(), 1);
    fs::remove_file(&npy).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
    dir.store(KEY, &f8(&[2]), &bytes_of(&[5.0, 6.0]), &ND).unwrap();
    settle();
    hit(dir.load(KEY, false).unwrap());
    fs::remove_file(&json).unwrap();
    assert!(matches!(dir.load(KEY, false).unwrap(), Lookup::Miss));
}

/// A record `{ mean, mode }` of a large array and a 3x4 grid, stored in `dir`.
fn store_pair(dir: &CacheDir) -> Vec<u8> {
    use cache_core::{Content, MemberForm, NewArchive};
    let big: Vec<u8> = bytes_of(&(0..100_000).map(f64::from).collect::<Vec<_>>());
    let grid: Vec<u8> = bytes_of(&(0..12).map(f64::from).collect::<Vec<_>>());
    let (h_big, h_grid) = (f8(&[100_000]), f8(&[3, 4]));
    let members: [(&str, &npy_format::Header, &[u8]); 2] = [("mean", &h_big, &big), ("mode", &h_grid, &grid)];
    let forms = [MemberForm { class: ArrayClass::Float64Array, form: ResultForm::NdArray }; 2];
    let entry = NewEntry { function: "pair", result: ResultForm::Record, class: forms[0].class, members: &forms };
    let content = Content::npz(NewArchive::new(&members).unwrap());
    assert!(dir.store_content(KEY, &content, &entry).unwrap().is_published());
    grid
}

#[test]
fn a_later_arrays_header_or_name_rewritten_in_place_is_damaged_even_where_data_goes_unchecked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CacheDir::open(tmp.path()).unwrap();
    let grid = store_pair(&dir);
    let loaded = hit(dir.load(KEY, false).unwrap());
    assert_eq!(loaded.member_data(1), &grid[..]);
    let path = tmp.path().join(format!("{KEY}.npz"));
    let original = fs::read(&path).unwrap();
    // Same lengths: the archive stays well formed, and its data (large, of
    // this boot) is not hashed on a hit; only the header digest sees these.
    let swap = |bytes: &[u8], from: &[u8], to: &[u8]| -> Vec<u8> {
        let mut out = bytes.to_vec();
        let mut at = 0;
        while let Some(i) = out[at..].windows(from.len()).position(|w| w == from) {
            out[at + i..at + i + from.len()].copy_from_slice(to);
            at += i + from.len();
        }
        assert_ne!(out, bytes, "nothing to swap");
        out
    };
    for edited in [swap(&original, b"(3, 4)", b"(4, 3)"), swap(&swap(&original, b"mean", b"tmp_"), b"mode", b"mean")] {
        fs::write(&path, &edited).unwrap();
        match dir.load(KEY, false).unwrap() {
            Lookup::Damaged(e) => assert!(e.to_string().contains("headers or names"), "{e}"),
            other => panic!("an edited archive read as {other:?}"),
        }
        fs::write(&path, &original).unwrap();
        hit(dir.load(KEY, false).unwrap());
    }
}
