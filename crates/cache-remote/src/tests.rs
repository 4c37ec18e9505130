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
    NewEntry { function: "embed", result: ResultForm::NdArray, class: ArrayClass::Float64Array }
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
    block_on(cache.store(key, NewArray { header, data, entry: entry() })).unwrap()
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
    let object = block_on(mem.get(&cache.names.entry(&key(1)))).unwrap();
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
    let path = cache.names.entry(&key(1));
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
    let path = cache.names.entry(&key(1));
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
        block_on(mem.put(&cache.names.entry(&key), PutPayload::new())).unwrap();
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
    let path = cache.names.entry(&key(1));
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
