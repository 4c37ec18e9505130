//! What the composition and fail-open add to the contract: read-through,
//! write order, and the call that goes on when the store is gone (a real
//! closed port, not a mock).

use std::sync::Arc;
use std::time::Duration;

use cache_core::{
    block_on, zeroed, ArrayClass, Claim, Content, ErrorKind, Key, Limits, NewArray, NewEntry, NoteKind, Notes,
    ResultForm, Stored, Tier,
};
use cache_remote::{RemoteCache, Settings};
use cache_store::CacheDir;
use cache_tiered::{open, FailOpen, Options, Tiered};
use npy_format::{Dtype, Header};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

const ENTRY: NewEntry<'static> =
    NewEntry { function: "embed", result: ResultForm::TypedArray, class: ArrayClass::Float64Array, members: &[] };

fn array() -> (Header, Vec<u8>) {
    let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![4], fortran_order: false };
    (header, [1.0f64, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn store(tier: &dyn Tier, key: &Key, notes: &mut Notes) -> Stored {
    let (header, data) = array();
    let content = Content::npy(&header, &data).unwrap();
    block_on(tier.store(key, NewArray { content: &content, entry: ENTRY }, notes)).unwrap()
}

fn hits(tier: &dyn Tier, key: &Key, notes: &mut Notes) -> bool {
    block_on(tier.load(key, &mut zeroed, notes)).unwrap().is_some()
}

fn over(mem: &Arc<InMemory>) -> Arc<dyn Tier> {
    let store: Arc<dyn ObjectStore> = mem.clone();
    Arc::new(RemoteCache::with_store(store, Path::from("p"), "mem://bucket/p"))
}

#[test]
fn a_store_hit_is_kept_locally_and_a_store_goes_to_both_tiers() {
    let (tmp, mem) = (tempfile::tempdir().unwrap(), Arc::new(InMemory::new()));
    let key = Key([7; 32]);
    // Another machine stored it.
    assert!(store(over(&mem).as_ref(), &key, &mut Notes::new()).is_published());
    let local: Arc<dyn Tier> = Arc::new(CacheDir::open(tmp.path()).unwrap());
    let tiered = Tiered::new(local.clone(), over(&mem));
    let mut notes = Notes::new();
    assert!(!hits(local.as_ref(), &key, &mut notes));
    assert!(hits(&tiered, &key, &mut notes), "read through to the store");
    assert!(hits(local.as_ref(), &key, &mut notes), "kept in the local tier");
    // Gone from the store: this machine still hits its copy.
    assert!(block_on(over(&mem).remove(&key, &mut notes)).unwrap());
    assert!(hits(&tiered, &key, &mut notes));
    // A store goes to both.
    let other = Key([8; 32]);
    assert!(store(&tiered, &other, &mut notes).is_published());
    assert!(hits(local.as_ref(), &other, &mut notes) && hits(over(&mem).as_ref(), &other, &mut notes));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn with_the_store_gone_calls_go_on_and_say_why_and_the_store_is_skipped_for_a_pause() {
    let settings = Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        allow_http: Some(true),
        max_retries: Some(0),
        ..Settings::default()
    };
    let gone: Arc<dyn Tier> = Arc::new(RemoteCache::open("s3://bucket/p", &settings).unwrap());
    let pause = Duration::from_millis(200);
    let tier = FailOpen::new(gone, "s3://bucket/p", Some(pause));
    let key = Key([1; 32]);
    let mut notes = Notes::new();
    assert!(!hits(&tier, &key, &mut notes));
    assert_eq!(
        notes.iter().map(|n| (n.kind, n.error.kind())).collect::<Vec<_>>(),
        [(NoteKind::Unavailable, ErrorKind::Unavailable)]
    );
    assert_eq!(notes[0].tier, "s3://bucket/p");
    // Paused: a read is a quiet miss, a store is noted without a request, a lease is unavailable.
    notes.clear();
    assert!(!hits(&tier, &key, &mut notes) && !block_on(tier.has(&key, &mut notes)).unwrap());
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(store(&tier, &key, &mut notes), Stored::Failed);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].kind, NoteKind::StoreFailed);
    assert!(notes[0].error.to_string().contains("skipped for a while"), "{}", notes[0].error);
    assert!(matches!(block_on(tier.claim(&key, Duration::from_secs(60))).unwrap(), Claim::Unavailable(_)));
    notes.clear();
    assert!(!block_on(tier.remove(&key, &mut notes)).unwrap());
    assert_eq!(
        notes.iter().map(|n| n.kind).collect::<Vec<_>>(),
        [NoteKind::Unavailable],
        "a removal that did not happen says so"
    );
    // Past the pause, the store is tried again: a fresh failure, not the remembered one.
    std::thread::sleep(pause * 2);
    notes.clear();
    assert_eq!(store(&tier, &key, &mut notes), Stored::Failed);
    assert!(!notes[0].error.to_string().contains("skipped for a while"), "{}", notes[0].error);
}

#[test]
fn a_location_opens_as_the_tier_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let opened = open::<npy_format::AlignedBuf>(dir.to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(opened.location(), dir.to_str().unwrap());
    let store = Settings { region: Some("us-east-1".into()), ..Settings::default() };
    let remote = Options { store: Some(store.clone()), ..Options::default() };
    assert_eq!(
        open::<npy_format::AlignedBuf>("s3://bucket/team/", remote.clone()).unwrap().location(),
        "s3://bucket/team"
    );
    let tiered = Options { local_dir: Some(tmp.path().join("local")), ..remote };
    assert_eq!(
        open::<npy_format::AlignedBuf>("s3://bucket/team", tiered.clone()).unwrap().location(),
        "s3://bucket/team"
    );
    let e = open::<npy_format::AlignedBuf>(dir.to_str().unwrap(), tiered).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("for object-store locations"), "{e}");
    // A relative path is made absolute once, now.
    let relative =
        open::<npy_format::AlignedBuf>("rel-cache", Options { limits: Limits::default(), ..Options::default() })
            .unwrap();
    assert!(std::path::Path::new(relative.location()).is_absolute());
}

#[test]
fn a_local_copy_that_lost_blocks_in_a_crash_is_not_a_hit_after_the_reboot_and_the_store_serves() {
    use std::io::{Seek, SeekFrom, Write};
    let (tmp, mem) = (tempfile::tempdir().unwrap(), Arc::new(InMemory::new()));
    let key = Key([9; 32]);
    // 1 MiB: past the size whose every hit checks its data.
    let values: Vec<f64> = (0..1 << 17).map(f64::from).collect();
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![values.len() as u64], fortran_order: false };
    let in_boot = |boot: &str| {
        let local: Arc<dyn Tier> = Arc::new(CacheDir::open(tmp.path()).unwrap().with_boot(Some(boot)));
        Tiered::new(local, over(&mem))
    };
    let mut notes = Notes::new();
    let content = Content::npy(&header, &data).unwrap();
    let array = NewArray { content: &content, entry: ENTRY };
    assert!(block_on(in_boot("aaaaaaaaaaaaaaaa").store(&key, array, &mut notes)).unwrap().is_published());
    // The crash: the local copy keeps its length, its middle is zeros.
    let npy = tmp.path().join(format!("{}.npy", key.hex()));
    let mut file = std::fs::OpenOptions::new().write(true).open(&npy).unwrap();
    file.seek(SeekFrom::Start(data.len() as u64 / 2)).unwrap();
    file.write_all(&[0; 64 << 10]).unwrap();
    drop(file);
    let entry = block_on(in_boot("bbbbbbbbbbbbbbbb").load(&key, &mut zeroed, &mut notes)).unwrap().unwrap();
    assert_eq!(entry.array.data(), &data[..], "the store's copy, not the lost one");
    assert_eq!(notes.iter().map(|n| n.kind).collect::<Vec<_>>(), [NoteKind::Damaged]);
}
