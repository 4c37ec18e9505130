//! The tier's logic against object_store's in-memory store, which honours
//! conditional puts, ranges and metadata as S3 does. The JS tests run the
//! same paths against a real S3 server.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_index::Limits;
use cache_store::{ArrayClass, Lookup, NewEntry, ResultForm};
use npy_format::{AlignedBuf, Dtype, Header};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;

fn key(n: u8) -> String {
    format!("{:02x}{}", n, "0".repeat(62))
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

fn load(cache: &RemoteCache, key: &str) -> Lookup {
    cache.load_into(key, AlignedBuf::zeroed).unwrap()
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
    assert_eq!(cache.store(&key(1), &header, data.clone(), &entry()).unwrap(), Stored::Published);
    assert!(matches!(load(&cache, &key(2)), Lookup::Miss));
    assert_eq!(data_of(load(&cache, &key(1))), data.to_vec());
    assert!(cache.contains(&key(1)).unwrap());
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
    assert_eq!(cache.store(&key(1), &header, first.clone(), &entry()).unwrap(), Stored::Published);
    assert_eq!(cache.store(&key(1), &header, second, &entry()).unwrap(), Stored::AlreadyThere);
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
    assert_eq!(cache.store(&key(1), &header, data.clone(), &entry()).unwrap(), Stored::Published);
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
    cache.store(&key(1), &header, data, &entry()).unwrap();
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
    assert_eq!(cache.store(&key(3), &header, data.clone(), &entry()).unwrap(), Stored::Published);
    assert_eq!(data_of(load(&cache, &key(3))), data.to_vec());
    assert_eq!(cache.store(&key(3), &header, data, &entry()).unwrap(), Stored::AlreadyThere);
}

#[test]
fn one_lease_holder_at_a_time_and_a_released_lease_is_free() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let RemoteClaim::Taken(lease) = cache.claim(&key(1), Duration::from_secs(60)).unwrap() else { panic!("not taken") };
    match cache.claim(&key(1), Duration::from_secs(60)).unwrap() {
        RemoteClaim::Held { holder, this_process } => {
            assert!(this_process);
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
        }
        RemoteClaim::Taken(_) => panic!("taken twice"),
    }
    lease.release();
    // The release's DELETE runs in the background: the lease is free once it lands.
    let path = cache.names.lease(&key(1));
    while block_on(mem.head(&path)).is_ok() {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(cache.claim(&key(1), Duration::from_secs(60)).unwrap(), RemoteClaim::Taken(_)));
}

#[test]
fn a_dead_holders_lease_is_taken_over_and_a_live_one_is_not() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let stale_after = Duration::from_millis(200);
    // A killed holder's lease: nobody refreshes it.
    block_on(mem.put(&cache.names.lease(&key(1)), PutPayload::from_static(b"{}"))).unwrap();
    let RemoteClaim::Taken(live) = cache.claim(&key(2), stale_after).unwrap() else { panic!("not taken") };
    std::thread::sleep(stale_after + CLOCK_SKEW + Duration::from_millis(300));
    assert!(matches!(cache.claim(&key(1), stale_after).unwrap(), RemoteClaim::Taken(_)));
    // The live holder refreshed its lease every 50 ms all along.
    assert!(matches!(cache.claim(&key(2), stale_after).unwrap(), RemoteClaim::Held { .. }));
    assert!(!live.lost());
}

#[test]
fn prune_removes_the_least_recently_used_and_clear_leaves_foreign_objects() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let (header, data) = floats(100, 1.0);
    for n in 1..=3 {
        cache.store(&key(n), &header, data.clone(), &entry()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // Entry 1 is used after the others were stored: entry 2 is the least recently used.
    block_on(mem.put(&cache.names.use_mark(&key(1)), PutPayload::new())).unwrap();
    block_on(mem.put(&Path::from("team/cache/README.txt"), PutPayload::from_static(b"ours, not the cache's"))).unwrap();
    let limits = Limits { max_entries: Some(2), ..Limits::default() };
    let report = cache.prune(&limits, &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!((report.removed_entries, report.totals.entries), (1, 2));
    assert!(!cache.contains(&key(2)).unwrap());
    assert!(cache.contains(&key(1)).unwrap() && cache.contains(&key(3)).unwrap());
    let listed = cache.entries(true, &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!(listed[0].key, key(1));
    assert_eq!(listed[0].function.as_deref(), Some("embed"));
    assert_eq!(listed[0].shape.as_deref(), Some(&[100u64][..]));
    assert_eq!(cache.clear(&mut |_, _| ControlFlow::Continue(())).unwrap(), 3);
    assert_eq!(cache.totals(&mut |_, _| ControlFlow::Continue(())).unwrap(), RemoteTotals::default());
    assert!(block_on(mem.head(&Path::from("team/cache/README.txt"))).is_ok());
}

#[test]
fn a_clear_stopped_by_its_progress_deletes_nothing() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let (header, data) = floats(10, 1.0);
    for n in 1..=3 {
        cache.store(&key(n), &header, data.clone(), &entry()).unwrap();
    }
    let stopped = cache.clear(&mut |_, _| ControlFlow::Break(()));
    assert!(matches!(stopped, Err(RemoteError::Stopped)), "{stopped:?}");
    assert!((1..=3).all(|n| cache.contains(&key(n)).unwrap()), "stopped while listing, before any delete");
    // A stop at the last report is too late to spare anything: the clear is done.
    assert_eq!(
        cache
            .clear(&mut |_, total| if total > 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
            .unwrap(),
        3
    );
}

#[test]
fn a_prune_stopped_between_batches_of_deletes_leaves_the_rest() {
    let mem = Arc::new(InMemory::new());
    let cache = cache_over(&mem);
    let n = 1100;
    for i in 0..n {
        block_on(mem.put(&cache.names.entry(&format!("{i:064x}")), PutPayload::new())).unwrap();
    }
    let mut reports = Vec::new();
    let stopped = cache.prune(&Limits { max_entries: Some(0), ..Limits::default() }, &mut |done, total| {
        reports.push((done, total));
        // Past the listing (total 0): stop at the first report of deletes.
        if total > 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(matches!(stopped, Err(RemoteError::Stopped)), "{stopped:?}");
    assert_eq!(reports.last(), Some(&(1000, n)));
    let left = cache.totals(&mut |_, _| ControlFlow::Continue(())).unwrap().entries;
    // The deletes in flight at the stop may finish; the rest stay.
    assert!(left > 0 && left <= n - 1000, "{left} entries left");
}

#[test]
fn a_changed_byte_in_any_block_is_caught_when_blocks_are_hashed_as_they_land() {
    let mem = Arc::new(InMemory::new());
    let t = Transfer { first_part: 1000, part_size: 4096, concurrency: 3, ..Transfer::default() };
    let cache = cache_over(&mem).with_transfer(t);
    let (header, data) = floats(10_000, 0.25);
    cache.store(&key(1), &header, data.clone(), &entry()).unwrap();
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
