//! The tier's logic against object_store's in-memory store, which honours
//! conditional puts, ranges and metadata as S3 does. The JS tests run the
//! same paths against a real S3 server.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_core::{
    block_on, zeroed, ArrayClass, Claim, Error, Key, Limits, Lookup, NewArray, NewEntry, ResultForm, Stored,
};
use npy_format::{Dtype, Header};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;

fn key(n: u8) -> Key {
    Key::parse(&format!("{:02x}{}", n, "0".repeat(62))).unwrap()
}

fn cache_over(store: &Arc<InMemory>) -> RemoteCache {
    let store: Arc<dyn ObjectStore> = store.clone();
    RemoteCache::with_store(store, Path::from("team/cache"), "mem://bucket/team/cache")
}

fn entry() -> NewEntry<'static> {
    NewEntry { function: "embed", result: ResultForm::NdArray, class: ArrayClass::Float64Array, members: &[] }
}

fn floats(n: usize, seed: f64) -> (Header, Bytes) {
    let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![n as u64], fortran_order: false };
    let data: Vec<u8> = (0..n).flat_map(|i| (i as f64 * seed).to_le_bytes()).collect();
    (header, Bytes::from(data))
}

fn load(cache: &RemoteCache, key: &Key) -> Lookup {
    block_on(cache.load_into(key, &mut zeroed)).unwrap()
}

fn store(cache: &RemoteCache, key: &Key, header: &Header, data: &[u8]) -> Stored {
    let content = cache_core::Content::npy(header, data).unwrap();
    block_on(cache.store(key, NewArray { content: &content, entry: entry() })).unwrap()
}

fn contains(cache: &RemoteCache, key: &Key) -> bool {
    block_on(cache.has(key)).unwrap()
}

fn go(_: u64, _: u64) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn data_of(found: Lookup) -> Vec<u8> {
    match found {
        Lookup::Hit(e) => e.array.data().to_vec(),
        other => panic!("expected a hit, got {other:?}"),
    }
}

#[test]
fn a_stored_entry_loads_back_whole_through_ranged_reads() {
    let mem = Arc::new(InMemory::new());
    // Tiny parts, so a 80 KB array takes a first GET and many ranged ones.
    let t = Transfer { first_part: 1000, part_size: 4096, concurrency: 3, ..Transfer::default() };
    let cache = cache_over(&mem).with_transfer(t);
    let (header, data) = floats(10_000, 0.5);
    assert!(store(&cache, &key(1), &header, &data).is_published());
    assert!(matches!(load(&cache, &key(2)), Lookup::Miss));
    assert_eq!(data_of(load(&cache, &key(1))), data.to_vec());
    assert!(contains(&cache, &key(1)));
    // The object is a plain .npy: header, then the data.
    let object = block_on(mem.get(&cache.names.entry(&key(1), false))).unwrap();
    let bytes = block_on(object.bytes()).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    assert_eq!(&bytes[bytes.len() - data.len()..], &data[..]);
}

#[test]
fn the_first_writer_wins() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let (header, first) = floats(100, 1.0);
    let (_, second) = floats(100, 2.0);
    assert!(store(&cache, &key(1), &header, &first).is_published());
    assert_eq!(store(&cache, &key(1), &header, &second), Stored::AlreadyThere);
    assert_eq!(data_of(load(&cache, &key(1))), first.to_vec());
}

#[test]
fn a_damaged_or_tampered_object_is_reported_and_the_next_store_replaces_it() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let path = cache.names.entry(&key(1), false);
    block_on(mem.put(&path, PutPayload::from_static(b"not an array"))).unwrap();
    match load(&cache, &key(1)) {
        Lookup::Damaged(e) => assert!(e.to_string().contains("record"), "{e}"),
        other => panic!("expected damaged, got {other:?}"),
    }
    let (header, data) = floats(100, 1.0);
    assert!(store(&cache, &key(1), &header, &data).is_published());
    assert_eq!(data_of(load(&cache, &key(1))), data.to_vec());

    // Same record, other data: the digest tells.
    let object = block_on(mem.get(&path)).unwrap();
    let attributes = object.attributes.clone();
    let mut bytes = block_on(object.bytes()).unwrap().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let options = object_store::PutOptions { attributes, ..Default::default() };
    block_on(mem.put_opts(&path, PutPayload::from(bytes), options)).unwrap();
    match load(&cache, &key(1)) {
        Lookup::Damaged(e) => assert!(e.to_string().contains("digest"), "{e}"),
        other => panic!("expected damaged, got {other:?}"),
    }
}

#[test]
fn a_truncated_object_is_damaged_not_a_short_array() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let (header, data) = floats(100, 1.0);
    store(&cache, &key(1), &header, &data);
    let path = cache.names.entry(&key(1), false);
    let object = block_on(mem.get(&path)).unwrap();
    let attributes = object.attributes.clone();
    let bytes = block_on(object.bytes()).unwrap();
    let options = object_store::PutOptions { attributes, ..Default::default() };
    block_on(mem.put_opts(&path, PutPayload::from(bytes.slice(..bytes.len() - 8)), options)).unwrap();
    match load(&cache, &key(1)) {
        Lookup::Damaged(e) => assert!(e.to_string().contains("bytes of data"), "{e}"),
        other => panic!("expected damaged, got {other:?}"),
    }
}

#[test]
fn a_large_entry_goes_up_in_parts() {
    let mem = Arc::new(InMemory::new());
    let t = Transfer { multipart_from: 1 << 20, part_size: 5 << 20, ..Transfer::default() };
    let cache = cache_over(&mem).with_transfer(t);
    let (header, data) = floats(2_000_000, 3.0);
    assert!(store(&cache, &key(3), &header, &data).is_published());
    assert_eq!(data_of(load(&cache, &key(3))), data.to_vec());
    assert_eq!(store(&cache, &key(3), &header, &data), Stored::AlreadyThere);
}

#[test]
fn a_dead_holders_lease_is_taken_over_and_a_live_one_is_not() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let stale_after = Duration::from_millis(200);
    // A killed holder's lease, on another host: nobody refreshes it.
    let line = "0123456789abcdef 1 200 elsewhere\n";
    block_on(mem.put(&cache.names.lease(&key(1)), PutPayload::from_static(line.as_bytes()))).unwrap();
    let Claim::Taken(live) = block_on(cache.claim(&key(2), stale_after)) else { panic!("not taken") };
    assert!(matches!(block_on(cache.claim(&key(1), stale_after)), Claim::Held { this_process: false, .. }));
    // Past its staleAfter and the clock skew allowed: the store's time of it is what ages.
    std::thread::sleep(stale_after + CLOCK_SKEW + Duration::from_millis(300));
    assert!(matches!(block_on(cache.claim(&key(1), stale_after)), Claim::Taken(_)));
    // The live holder refreshed its lease every 50 ms all along.
    let again = block_on(cache.claim(&key(2), stale_after));
    assert!(matches!(again, Claim::Held { this_process: true, .. }), "{again:?}");
    assert!(!live.lost());
}

#[test]
fn a_prune_stopped_between_batches_of_deletes_leaves_the_rest() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let n = 1100;
    for i in 0..n {
        let key = Key::parse(&format!("{i:064x}")).unwrap();
        block_on(mem.put(&cache.names.entry(&key, false), PutPayload::new())).unwrap();
    }
    let mut reports = Vec::new();
    let limits = Limits { max_entries: Some(0), ..Limits::default() };
    let stopped = block_on(cache.prune(Some(limits), &mut |done, total| {
        reports.push((done, total));
        // Past the listing (total 0): stop at the first report of deletes.
        if total > 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }));
    assert!(matches!(stopped, Err(Error::Stopped)), "{stopped:?}");
    assert_eq!(reports.last(), Some(&(1000, n)));
    let left = block_on(cache.totals(&mut go)).unwrap().entries;
    // The deletes in flight at the stop may finish; the rest stay.
    assert!(left > 0 && left <= n - 1000, "{left} entries left");
}

#[test]
fn a_changed_byte_in_any_block_is_caught_when_blocks_are_hashed_as_they_land() {
    let mem = Arc::new(InMemory::new());
    let t = Transfer { first_part: 1000, part_size: 4096, concurrency: 3, ..Transfer::default() };
    let cache = cache_over(&mem).with_transfer(t);
    let (header, data) = floats(10_000, 0.25);
    store(&cache, &key(1), &header, &data);
    let path = cache.names.entry(&key(1), false);
    let object = block_on(mem.get(&path)).unwrap();
    let attributes = object.attributes.clone();
    let original = block_on(object.bytes()).unwrap().to_vec();
    // In the first part, in the block the first part began, in a whole block, in the last block.
    for at in [500, 3000, 50_000, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[at] ^= 1;
        let options = object_store::PutOptions { attributes: attributes.clone(), ..Default::default() };
        block_on(mem.put_opts(&path, PutPayload::from(bytes), options)).unwrap();
        match load(&cache, &key(1)) {
            Lookup::Damaged(e) => assert!(e.to_string().contains("digest"), "byte {at}: {e}"),
            other => panic!("byte {at}: expected damaged, got {other:?}"),
        }
    }
}

/// The in-memory store listed as S3 lists (a page of up to `max_keys`
/// names after the offset or token, in order), with `foreign` names added
/// that are not paths; each page's names are taken as paths as object_store's
/// S3 client takes them, so one such name fails its whole page.
#[derive(Debug)]
struct ListedAsS3 {
    mem: Arc<InMemory>,
    foreign: Vec<String>,
    requests: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl object_store::list::PaginatedListStore for ListedAsS3 {
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: object_store::list::PaginatedListOptions,
    ) -> object_store::Result<object_store::list::PaginatedListResult> {
        use futures_util::TryStreamExt;
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = prefix.unwrap_or("");
        let ours: Vec<object_store::ObjectMeta> = self.mem.list(None).try_collect().await?;
        let mut names: Vec<String> = ours.iter().map(|m| m.location.to_string()).collect();
        names.extend(self.foreign.iter().cloned());
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        let after = opts.page_token.or(opts.offset);
        names.retain(|n| after.as_ref().is_none_or(|a| n > a));
        let max = opts.max_keys.unwrap_or(1000);
        let token = (names.len() > max).then(|| names[max - 1].clone());
        names.truncate(max);
        let objects = names
            .iter()
            .map(|n| {
                let location = Path::parse(n)?;
                let meta = ours.iter().find(|m| m.location == location).cloned();
                let foreign = || object_store::ObjectMeta {
                    location,
                    last_modified: Default::default(),
                    size: 1,
                    e_tag: None,
                    version: None,
                };
                Ok(meta.unwrap_or_else(foreign))
            })
            .collect::<object_store::Result<_>>()?;
        let result = object_store::ListResult { common_prefixes: vec![], objects, extensions: Default::default() };
        Ok(object_store::list::PaginatedListResult { result, page_token: token })
    }
}

#[test]
fn listings_skip_and_count_names_that_are_not_paths_and_every_maintenance_call_goes_on() {
    let mem = Arc::new(InMemory::new());
    let (header, data) = floats(4, 1.0);
    // 300 entries in fan-out prefix ab, so the bad names sit among full pages.
    let keys: Vec<Key> = (0..300u32).map(|i| Key::parse(&format!("ab{:062x}", i)).unwrap()).collect();
    let foreign = vec![
        "team/cache/ab/\u{1}bad".to_owned(),
        format!("team/cache/ab/{}/../x", "0".repeat(64)),
        "team/cache/ab//y".to_owned(),
        "team/cache/uses/ab/./\u{1b}[31m\u{7}".to_owned(),
        "team/cache/ab/notes.txt".to_owned(),
    ];
    let paged = Arc::new(ListedAsS3 { mem: mem.clone(), foreign: foreign.clone(), requests: Default::default() });
    let cache = cache_over(&mem).with_pages(paged.clone());
    for k in &keys {
        assert!(store(&cache, k, &header, &data).is_published());
    }
    // The fake itself fails a page for one bad name, as object_store's S3 client does.
    let whole = block_on(object_store::list::PaginatedListStore::list_paginated(
        paged.as_ref(),
        Some("team/cache/ab/"),
        Default::default(),
    ));
    assert!(matches!(whole, Err(object_store::Error::InvalidPath { .. })));

    let totals = block_on(cache.totals(&mut go)).unwrap();
    assert_eq!((totals.entries, totals.foreign), (300, foreign.len() as u64));
    // 512 prefixes, one request each without bad names; each bad name costs the narrowing down to it.
    let requests = paged.requests.swap(0, std::sync::atomic::Ordering::Relaxed);
    assert!(requests < 512 + 4 * 25, "{requests} requests");
    eprintln!("a listing with 4 unparsable names took {requests} requests");
    let rows = block_on(cache.entries(&mut go)).unwrap();
    assert_eq!(rows.len(), 300);
    assert!(rows.iter().all(|r| r.function == "embed"));
    let report = block_on(cache.prune(Some(Limits { max_entries: Some(250), ..Limits::default() }), &mut go)).unwrap();
    assert_eq!((report.removed_entries, report.totals.entries, report.totals.foreign), (50, 250, 5));
    assert_eq!(block_on(cache.remove_function("embed", &mut go)).unwrap().len(), 250);
    let verified = block_on(cache.verify(false, &mut go)).unwrap();
    assert_eq!(verified.checked, 0);
    for k in &keys[..3] {
        store(&cache, k, &header, &data);
    }
    let cleared = block_on(cache.clear(&mut go)).unwrap();
    assert_eq!((cleared.removed, cleared.foreign), (3, 5));
    // The same store listed without pages: no bad name can be in it; other names are counted.
    let plain = cache_over(&mem);
    block_on(mem.put(&Path::from("team/cache/cd/notes.txt"), PutPayload::from_static(b"x"))).unwrap();
    assert_eq!(block_on(plain.totals(&mut go)).unwrap().foreign, 1);
}

#[test]
fn an_entry_of_several_arrays_goes_up_in_parts_and_comes_back_through_ranged_reads_as_one_npz() {
    let mem = Arc::new(InMemory::new());
    // Parts of 5 MiB and ranges of 4 KiB: members and their headers straddle both.
    let t = Transfer { first_part: 1000, part_size: 4096, concurrency: 3, multipart_from: 1 << 20 };
    let cache = cache_over(&mem).with_transfer(t);
    let (big, big_data) = floats(1_000_000, 0.25);
    let (small, small_data) = floats(3, 2.0);
    let members: [(&str, &Header, &[u8]); 3] =
        [("arr_0", &big, &big_data), ("arr_1", &small, &small_data), ("arr_2", &big, &big_data)];
    let forms = [cache_core::MemberForm { class: ArrayClass::Float64Array, form: ResultForm::TypedArray }; 3];
    let entry = NewEntry { function: "pair", result: ResultForm::Tuple, class: forms[0].class, members: &forms };
    let content = cache_core::Content::npz(cache_core::NewArchive::new(&members).unwrap());
    assert!(block_on(cache.store(&key(1), NewArray { content: &content, entry })).unwrap().is_published());
    // One object, named .npz, byte for byte the archive npy-format writes.
    let object = block_on(mem.get(&cache.names.entry(&key(1), true))).unwrap();
    let bytes = block_on(object.bytes()).unwrap();
    let mut expected = Vec::new();
    npy_format::write_npz_to(&mut expected, &members).unwrap();
    assert!(bytes[..] == expected[..], "the object is not the archive");
    assert!(block_on(mem.head(&cache.names.entry(&key(1), false))).is_err());
    let Lookup::Hit(hit) = load(&cache, &key(1)) else { panic!("expected a hit") };
    assert_eq!(hit.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["arr_0", "arr_1", "arr_2"]);
    for (i, (_, header, data)) in members.iter().enumerate() {
        assert_eq!(&hit.members[i].header, *header);
        assert!(hit.member_data(i) == *data, "member {i}");
    }
    assert!(contains(&cache, &key(1)));
    let rows = block_on(cache.entries(&mut go)).unwrap();
    let listed = cache_core::MemberRow::decode_all(&rows[0].dtype).expect("members listed");
    assert_eq!(listed.iter().map(|m| m.shape.clone()).collect::<Vec<_>>(), [vec![1_000_000], vec![3], vec![1_000_000]]);
    assert!(block_on(cache.remove(&key(1))).unwrap());
    assert!(!contains(&cache, &key(1)));
}

#[test]
fn both_forms_of_one_key_are_listed_and_removed_and_a_damaged_npy_does_not_hide_the_npz() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let (header, data) = floats(3, 1.0);
    let forms = [cache_core::MemberForm { class: ArrayClass::Float64Array, form: ResultForm::TypedArray }];
    let entry = NewEntry { function: "embed", result: ResultForm::Tuple, class: forms[0].class, members: &forms };
    let members: [(&str, &Header, &[u8]); 1] = [("arr_0", &header, &data)];
    let content = cache_core::Content::npz(cache_core::NewArchive::new(&members).unwrap());
    assert!(block_on(cache.store(&key(1), NewArray { content: &content, entry })).unwrap().is_published());
    // Garbage planted under the key's other name, as a co-user could.
    block_on(mem.put(&cache.names.entry(&key(1), false), PutPayload::from_static(b"garbage"))).unwrap();
    let Lookup::Hit(hit) = load(&cache, &key(1)) else { panic!("the .npz was hidden") };
    assert_eq!(hit.member_data(0), &data[..]);
    // Nor from an open.
    let mut notes = cache_core::Notes::new();
    let opened = block_on(cache_core::Tier::<npy_format::AlignedBuf>::open(&cache, &key(1), &mut notes)).unwrap();
    let opened = opened.expect("the .npz was hidden from open");
    let mut out = vec![0; data.len()];
    block_on(opened.read_into(opened.member_range(0), &mut out)).unwrap();
    assert_eq!(out, &data[..]);
    let rows = block_on(cache.entries(&mut go)).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(block_on(cache.remove_function("embed", &mut go)).unwrap(), vec![key(1)]);
    assert!(matches!(load(&cache, &key(1)), Lookup::Miss | Lookup::Damaged(_)));
    assert!(block_on(cache.remove(&key(1))).unwrap());
    assert!(block_on(cache.entries(&mut go)).unwrap().is_empty());
}
