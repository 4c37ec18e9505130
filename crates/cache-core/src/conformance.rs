//! The contract's conformance suite: every scenario, run on every tier.
//!
//! A tier's tests give a [`Fixture`] (the tier over fresh ground, and ways
//! to plant what a co-user could) and expand [`conformance_suite!`](crate::conformance_suite),
//! which makes one `#[test]` per scenario. A new tier passes this suite to
//! be accepted, as `object_store`'s backends pass its integration suite.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use npy_format::{AlignedBuf, Dtype, Header};

use crate::blocks::BLOCK;
use crate::lease::{claim_on, Holder, MAX_LEASE_LEN, MAX_STALE_AFTER};
use crate::{
    block_on, host, zeroed, ArrayClass, Claim, Content, Draft, Entry, ErrorKind, Key, Limits, LoadedArray, MemberForm,
    NewArchive, NewArray, NewEntry, NoteKind, Notes, OnDisk, OpenedEntry, ResultForm, Stored, Tier,
};

/// How a fixture damages a stored entry, as a co-user could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Garbage in place of the array.
    Garbage,
    /// The array cut short (its record kept).
    Truncated,
    /// The record gone, the array kept.
    NoRecord,
    /// The last byte of the data changed (record and header kept).
    FlippedData,
    /// The byte at this offset of the file changed.
    FlippedAt(usize),
}

impl Damage {
    /// An entry's data file (`.npy` or `.npz`) as this damage leaves it;
    /// None for [`Damage::NoRecord`], which leaves the file.
    pub fn apply(self, file: &[u8]) -> Option<Vec<u8>> {
        match self {
            Damage::Garbage => Some(b"garbage".to_vec()),
            Damage::Truncated => Some(file[..file.len() - 8].to_vec()),
            Damage::NoRecord => None,
            Damage::FlippedAt(at) => {
                let mut file = file.to_vec();
                file[at] ^= 1;
                Some(file)
            }
            Damage::FlippedData => {
                // The last byte of array data: an archive's last member's.
                let end = npy_format::npz_preamble_len(file)
                    .and_then(|at| npy_format::aligned_npz_members(&file[..at as usize], &file[at as usize..]))
                    .map_or(file.len(), |members| members.last().map(|m| (m.data + m.data_len) as usize).unwrap());
                let mut file = file.to_vec();
                file[end - 1] ^= 1;
                Some(file)
            }
        }
    }
}

/// A tier under test over fresh ground, and its ground.
pub trait Fixture {
    /// The tier, with `limits` as its own.
    fn tier(&self, limits: Limits) -> Arc<dyn Tier>;
    /// Another tier object over the same ground (another cache object of this process).
    fn reopen(&self) -> Arc<dyn Tier>;
    /// Damages the stored entry of `key`.
    fn damage(&self, key: &Key, how: Damage);
    /// Plants a lease of `key` holding `line`, written now.
    fn plant_lease(&self, key: &Key, line: &[u8]);
    /// Whether something is under the lease name of `key`.
    fn has_lease(&self, key: &Key) -> bool;
    /// Removes the block digests of `key` (wherever the tier keeps them).
    fn remove_blocks(&self, key: &Key);
}

/// Makes one test per scenario for the fixture `$fixture` makes.
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:expr) => {
        $crate::conformance_suite!(@tests $fixture;
            a_miss_then_a_hit_of_the_same_array_and_record,
            an_entry_of_several_arrays_hits_with_every_member_in_its_order,
            a_damaged_entry_of_several_arrays_is_a_miss_and_verify_finds_it,
            an_opened_entry_reads_any_range_and_checks_the_blocks_it_touches,
            an_opened_entry_of_several_arrays_reads_each_members_bytes,
            an_opened_entry_refuses_a_flipped_byte_with_or_without_its_block_digests,
            verify_writes_back_missing_block_digests_unless_it_is_a_dry_run,
            a_filled_draft_publishes_as_the_entry_and_an_unpublished_one_leaves_nothing,
            a_load_decided_on_disk_agrees_with_a_load,
            has_makes_the_checks_a_load_makes_and_is_not_a_use,
            a_damaged_entry_is_a_miss_with_a_note_and_the_next_store_replaces_it,
            a_store_is_create_only,
            remove_says_whether_there_was_an_entry,
            remove_function_removes_that_functions_entries_only,
            one_lease_holder_at_a_time_and_this_process_knows_its_own,
            another_hosts_lease_is_held_until_stale_and_a_dead_local_holders_at_once,
            a_lease_promising_too_long_is_broken_past_the_ceiling,
            prune_and_clear_remove_a_lease_past_the_ceiling,
            a_waiter_reads_the_lease_and_never_writes_it,
            a_lease_held_for_another_thread_is_waited_for,
            threads_racing_for_a_lease_find_one_holder_and_it_is_not_theirs,
            totals_and_entries_see_every_entry,
            prune_removes_the_least_recently_used_then_what_is_past_max_age,
            a_hit_past_the_tiers_max_age_is_a_miss,
            verify_reports_damaged_data_and_removes_it_unless_asked_not_to,
            clear_removes_every_entry,
            a_job_asked_to_stop_stops_before_its_next_step,
            a_function_name_past_the_limit_is_refused,
            an_entry_over_the_limits_on_its_own_is_not_stored_and_evicts_nothing,
            a_computed_call_is_one_miss_however_many_loads_it_made,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$fixture);
            }
        )*
    };
}

fn key(n: u8) -> Key {
    Key([n; 32])
}

fn f8(n: usize, seed: f64) -> (Header, Vec<u8>) {
    let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![n as u64], fortran_order: false };
    (header, (0..n).flat_map(|i| (i as f64 * seed + 1.0).to_le_bytes()).collect())
}

const ENTRY: NewEntry<'static> =
    NewEntry { function: "embed", result: ResultForm::NdArray, class: ArrayClass::Float64Array, members: &[] };

fn store(tier: &dyn Tier, k: &Key, n: usize, seed: f64, entry: NewEntry<'_>) -> Stored {
    let (header, data) = f8(n, seed);
    store_content(tier, k, &Content::npy(&header, &data).unwrap(), entry)
}

fn store_content(tier: &dyn Tier, k: &Key, content: &Content<'_>, entry: NewEntry<'_>) -> Stored {
    let mut notes = Notes::new();
    let stored = block_on(tier.store(k, NewArray { content, entry }, &mut notes)).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    stored
}

const MOMENTS_MEMBERS: [MemberForm; 3] = [
    MemberForm { class: ArrayClass::Float64Array, form: ResultForm::TypedArray },
    MemberForm { class: ArrayClass::Int32Array, form: ResultForm::NdArray },
    MemberForm { class: ArrayClass::Buffer, form: ResultForm::TypedArray },
];

/// A record of three arrays, as `{ mean, counts, mask }`: `n` doubles, a
/// 3x2 grid of int32, and 5 bytes.
const MOMENTS: NewEntry<'static> = NewEntry {
    function: "moments",
    result: ResultForm::Record,
    class: ArrayClass::Float64Array,
    members: &MOMENTS_MEMBERS,
};

/// The members of [`MOMENTS`]: name, header, data.
fn moments(n: usize, seed: f64) -> Vec<(&'static str, Header, Vec<u8>)> {
    let (mean, mean_data) = f8(n, seed);
    let counts = Header { dtype: Dtype::parse("<i4").unwrap(), shape: vec![3, 2], fortran_order: false };
    let counts_data = (0..6).flat_map(|i: i32| (i * seed as i32 - 2).to_le_bytes()).collect();
    let mask = Header { dtype: Dtype::parse("|u1").unwrap(), shape: vec![5], fortran_order: false };
    vec![("mean", mean, mean_data), ("counts", counts, counts_data), ("mask", mask, vec![1, 0, 1, 1, seed as u8])]
}

fn store_moments(tier: &dyn Tier, k: &Key, n: usize, seed: f64) -> Stored {
    let members = moments(n, seed);
    let refs: Vec<(&str, &Header, &[u8])> = members.iter().map(|(n, h, d)| (*n, h, d.as_slice())).collect();
    store_content(tier, k, &Content::npz(NewArchive::new(&refs).unwrap()), MOMENTS)
}

/// Checks a hit of [`moments`]`(n, seed)`.
fn assert_moments(entry: &Entry, n: usize, seed: f64) {
    assert_eq!((entry.record.result, &entry.record.members[..]), (ResultForm::Record, &MOMENTS_MEMBERS[..]));
    let expected = moments(n, seed);
    assert_eq!(entry.members.len(), expected.len());
    for (i, (m, (name, header, data))) in entry.members.iter().zip(&expected).enumerate() {
        assert_eq!((m.name.as_str(), &m.header), (*name, header));
        assert_eq!(entry.member_data(i), &data[..], "member {name}");
    }
}

fn load(tier: &dyn Tier, k: &Key) -> (Option<Entry>, Notes) {
    let mut notes = Notes::new();
    let mut alloc = zeroed;
    let entry = block_on(tier.load(k, &mut alloc, &mut notes)).unwrap();
    (entry, notes)
}

fn has(tier: &dyn Tier, k: &Key) -> bool {
    block_on(tier.has(k, &mut Notes::new())).unwrap()
}

fn go(_: u64, _: u64) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn claim(tier: &dyn Tier, k: &Key, stale_after: Duration) -> Claim {
    block_on(tier.claim(k, stale_after)).unwrap()
}

/// A line as another host's holder writes it.
fn elsewhere(stale_after_ms: u64) -> Vec<u8> {
    format!("0123456789abcdef 4242 {stale_after_ms} elsewhere\n").into_bytes()
}

pub fn a_miss_then_a_hit_of_the_same_array_and_record(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let (entry, notes) = load(tier.as_ref(), &key(1));
    assert!(entry.is_none() && notes.is_empty());
    assert!(store(tier.as_ref(), &key(1), 100, 0.5, ENTRY).is_published());
    let (entry, notes) = load(tier.as_ref(), &key(1));
    let entry = entry.expect("a hit");
    assert!(notes.is_empty(), "{notes:?}");
    let (header, data) = f8(100, 0.5);
    assert_eq!(entry.array.header(), &header);
    assert_eq!(entry.array.data(), &data[..]);
    assert_eq!(
        (entry.record.function.as_str(), entry.record.result, entry.record.class),
        ("embed", ENTRY.result, ENTRY.class)
    );
    // An empty array is an entry too.
    store(tier.as_ref(), &key(2), 0, 1.0, ENTRY);
    assert_eq!(load(tier.as_ref(), &key(2)).0.expect("a hit").array.data().len(), 0);
}

pub fn an_entry_of_several_arrays_hits_with_every_member_in_its_order(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    // Small enough to be read and checked whole, and large enough to be read in parts.
    for (k, n) in [(key(1), 10), (key(2), 300_000)] {
        assert!(store_moments(tier.as_ref(), &k, n, 3.0).is_published());
        assert!(has(tier.as_ref(), &k));
        let (entry, notes) = load(tier.as_ref(), &k);
        assert!(notes.is_empty(), "{notes:?}");
        assert_moments(&entry.expect("a hit"), n, 3.0);
        assert_moments(&load(f.reopen().as_ref(), &k).0.expect("a hit from another cache object"), n, 3.0);
        assert_eq!(store_moments(tier.as_ref(), &k, n, 4.0), Stored::AlreadyThere, "create-only");
    }
    // Beside an entry of one array under another key, each loads as stored.
    store(tier.as_ref(), &key(3), 10, 1.0, ENTRY);
    assert!(load(tier.as_ref(), &key(3)).0.expect("a hit").members.is_empty());
    let mut rows = block_on(tier.entries(&mut go)).unwrap();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let members = crate::MemberRow::decode_all(&rows[1].dtype).expect("an archive's row lists its members");
    let listed: Vec<_> = members.iter().map(|m| (m.name.as_str(), m.dtype.as_str(), m.shape.clone())).collect();
    assert_eq!(listed, [("mean", "<f8", vec![300_000]), ("counts", "<i4", vec![3, 2]), ("mask", "|u1", vec![5])]);
    assert_eq!((rows[1].function.as_str(), rows[2].dtype.as_str()), ("moments", "<f8"));
    let whole = block_on(tier.verify(false, &mut go)).unwrap();
    assert!(whole.damaged.is_empty() && whole.checked >= 3, "{whole:?}");
    assert_eq!(block_on(tier.remove_function("moments", &mut go, &mut Notes::new())).unwrap().len(), 2);
    assert!(!has(tier.as_ref(), &key(1)) && !has(tier.as_ref(), &key(2)) && has(tier.as_ref(), &key(3)));
}

pub fn a_damaged_entry_of_several_arrays_is_a_miss_and_verify_finds_it(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for (i, how) in [Damage::Garbage, Damage::FlippedData, Damage::Truncated, Damage::NoRecord].into_iter().enumerate()
    {
        let k = key(i as u8 + 1);
        store_moments(tier.as_ref(), &k, 100, 1.0);
        f.damage(&k, how);
        let (entry, notes) = load(tier.as_ref(), &k);
        assert!(entry.is_none(), "{how:?} read as a hit");
        assert!(!has(tier.as_ref(), &k), "{how:?}");
        if how != Damage::NoRecord {
            assert!(notes.iter().any(|n| n.kind == NoteKind::Damaged), "{how:?}: {notes:?}");
        }
        assert!(store_moments(tier.as_ref(), &k, 100, 2.0).is_published(), "{how:?} was not replaced");
        assert_moments(&load(tier.as_ref(), &k).0.expect("replaced"), 100, 2.0);
    }
    // Large enough that a plain load may check only its headers: verify reads it all.
    store_moments(tier.as_ref(), &key(9), 200_000, 1.0);
    f.damage(&key(9), Damage::FlippedData);
    let report = block_on(tier.verify(true, &mut go)).unwrap();
    assert!(report.damaged.iter().any(|(k, why)| *k == key(9).to_string() && why.contains("digest")), "{report:?}");
    assert!(!has(tier.as_ref(), &key(9)));
}

fn open(tier: &dyn Tier, k: &Key) -> (Option<OpenedEntry>, Notes) {
    let mut notes = Notes::new();
    let opened = block_on(tier.open(k, &mut notes)).unwrap();
    (opened, notes)
}

fn read(opened: &OpenedEntry, range: std::ops::Range<u64>) -> crate::Result<Vec<u8>> {
    let mut out = vec![0; (range.end - range.start) as usize];
    block_on(opened.read_into(range, &mut out))?;
    Ok(out)
}

/// Doubles enough for a body of more than three blocks, and not a whole number of them.
const MANY_BLOCKS: usize = (3 * BLOCK as usize + 12_345) / 8;

pub fn an_opened_entry_reads_any_range_and_checks_the_blocks_it_touches(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    assert!(open(tier.as_ref(), &key(9)).0.is_none(), "a miss opens nothing");
    for (k, n) in [(key(1), 100), (key(2), MANY_BLOCKS)] {
        assert!(store(tier.as_ref(), &k, n, 0.25, ENTRY).is_published());
        let (opened, notes) = open(tier.as_ref(), &k);
        let opened = opened.expect("an entry opens");
        assert!(notes.is_empty(), "{notes:?}");
        let (header, data) = f8(n, 0.25);
        assert_eq!(
            (&opened.header, opened.body_len(), opened.member_range(0)),
            (&header, data.len() as u64, 0..data.len() as u64)
        );
        let len = data.len() as u64;
        let b = BLOCK.min(len / 2);
        for range in [0..8, 0..0, b - 4..b + 4, b..2 * b, len - 3..len, 8..len - 8, 0..len] {
            assert_eq!(
                read(&opened, range.clone()).unwrap(),
                &data[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
        let past = read(&opened, len - 1..len + 1).unwrap_err();
        assert_eq!(past.kind(), ErrorKind::InvalidArgument, "{past}");
        // Another cache object opens it too; a removed entry opens no more.
        assert!(open(f.reopen().as_ref(), &k).0.is_some());
    }
    assert!(block_on(tier.remove(&key(2), &mut Notes::new())).unwrap());
    assert!(open(tier.as_ref(), &key(2)).0.is_none());
}

pub fn an_opened_entry_of_several_arrays_reads_each_members_bytes(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for (k, n) in [(key(1), 10), (key(2), MANY_BLOCKS)] {
        store_moments(tier.as_ref(), &k, n, 3.0);
        let opened = open(tier.as_ref(), &k).0.expect("an entry opens");
        let expected = moments(n, 3.0);
        assert_eq!(opened.members.len(), 3);
        for (i, (m, (name, header, data))) in opened.members.iter().zip(&expected).enumerate() {
            assert_eq!((m.name.as_str(), &m.header), (*name, header));
            let range = opened.member_range(i);
            assert_eq!(read(&opened, range.clone()).unwrap(), *data, "member {name}");
            let one = range.start + data.len() as u64 / 2;
            assert_eq!(read(&opened, one..one + 1).unwrap(), [data[data.len() / 2]], "member {name}");
        }
    }
}

pub fn an_opened_entry_refuses_a_flipped_byte_with_or_without_its_block_digests(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let (_, data) = f8(MANY_BLOCKS, 0.5);
    let preamble = Content::npy(&f8(MANY_BLOCKS, 0.5).0, &data).unwrap().preamble().len();
    let at = 2 * BLOCK + 100;
    for (i, blocks) in [true, false].into_iter().enumerate() {
        let k = key(i as u8 + 1);
        store(tier.as_ref(), &k, MANY_BLOCKS, 0.5, ENTRY);
        if !blocks {
            f.remove_blocks(&k);
            // Without them, a read makes them from the whole entry.
            let opened = open(tier.as_ref(), &k).0.expect("an entry opens without block digests");
            assert_eq!(read(&opened, at..at + 16).unwrap(), &data[at as usize..at as usize + 16]);
        }
        f.damage(&k, Damage::FlippedAt(preamble + at as usize + 5));
        let opened = open(tier.as_ref(), &k).0.expect("headers intact: it opens");
        let refused = read(&opened, at..at + 16).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Damaged, "{refused}");
        assert!(refused.to_string().contains("digest"), "{refused}");
        if blocks {
            // Blocks it does not touch are read and checked as before.
            assert_eq!(read(&opened, 0..64).unwrap(), &data[..64]);
            assert_eq!(read(&opened, BLOCK..BLOCK + 8).unwrap(), &data[BLOCK as usize..BLOCK as usize + 8]);
        }
    }
}

pub fn verify_writes_back_missing_block_digests_unless_it_is_a_dry_run(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let (header, data) = f8(MANY_BLOCKS, 0.75);
    let preamble = Content::npy(&header, &data).unwrap().preamble().len();
    for (i, restore) in [true, false].into_iter().enumerate() {
        let k = key(i as u8 + 1);
        store(tier.as_ref(), &k, MANY_BLOCKS, 0.75, ENTRY);
        f.remove_blocks(&k);
        let report = block_on(tier.verify(restore, &mut go)).unwrap();
        assert!(report.damaged.is_empty(), "{report:?}");
        // A byte of the third block flipped: with block digests, the first
        // block still reads; without, every read hashes the whole and refuses.
        f.damage(&k, Damage::FlippedAt(preamble + 2 * BLOCK as usize + 7));
        let opened = open(tier.as_ref(), &k).0.expect("headers intact: it opens");
        let first = read(&opened, 0..64);
        if restore {
            assert_eq!(first.unwrap(), &data[..64], "verify wrote the block digests back");
        } else {
            assert_eq!(first.unwrap_err().kind(), ErrorKind::Damaged, "a dry run wrote nothing");
        }
        assert_eq!(read(&opened, 2 * BLOCK..2 * BLOCK + 8).unwrap_err().kind(), ErrorKind::Damaged);
        block_on(tier.remove(&k, &mut Notes::new())).unwrap();
    }
}

/// Writes `data` into `draft` through a shared map of its file, as a caller fills it.
fn fill(draft: &Draft, data: &[u8]) {
    // SAFETY: the map is dropped here, before the draft is published.
    match unsafe { draft.fill_map() }.unwrap() {
        Some(mut map) => map[..data.len()].copy_from_slice(data),
        None => assert!(data.is_empty()),
    }
}

fn draft(tier: &dyn Tier, k: &Key, header: &Header) -> Draft {
    let mut notes = Notes::new();
    let draft = block_on(tier.draft(k, header, &mut notes)).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    draft
}

pub fn a_filled_draft_publishes_as_the_entry_and_an_unpublished_one_leaves_nothing(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for (k, n) in [(key(1), 100), (key(2), MANY_BLOCKS), (key(3), 0)] {
        let (header, data) = f8(n, 0.75);
        let mut draft = draft(tier.as_ref(), &k, &header);
        assert_eq!((draft.data_len(), draft.data_offset() % 64), (data.len() as u64, 0));
        fill(&draft, &data);
        let path = draft.path().to_owned();
        let mut notes = Notes::new();
        assert!(block_on(tier.publish(&k, &mut draft, ENTRY, &mut notes)).unwrap().is_published());
        assert!(notes.is_empty(), "{notes:?}");
        // The caller gets what it wrote, mapped where it can be.
        let given = draft.into_loaded(&mut zeroed).unwrap();
        assert_eq!((given.data(), matches!(given, LoadedArray::Mapped(_))), (&data[..], n > 0));
        drop(given);
        assert!(!path.exists(), "the draft's file is the entry's now, or gone: {path:?}");
        // What was written is the entry, to a load, another cache object, and reads of its parts.
        let entry = load(f.reopen().as_ref(), &k).0.expect("a hit");
        assert_eq!((entry.array.header(), entry.array.data()), (&header, &data[..]));
        assert_eq!(entry.record.function, "embed");
        let opened = open(tier.as_ref(), &k).0.expect("it opens");
        assert_eq!(read(&opened, 0..data.len() as u64).unwrap(), data);
    }
    // Create-only, as a store: the first entry stands.
    let (header, data) = f8(100, 9.0);
    let mut second = draft(tier.as_ref(), &key(1), &header);
    fill(&second, &data);
    assert_eq!(block_on(tier.publish(&key(1), &mut second, ENTRY, &mut Notes::new())).unwrap(), Stored::AlreadyThere);
    assert_eq!(load(tier.as_ref(), &key(1)).0.expect("a hit").array.data(), &f8(100, 0.75).1[..]);
    // Its caller still gets what it computed, and its file goes.
    let path = second.path().to_owned();
    assert_eq!(second.into_loaded(&mut zeroed).unwrap().data(), &data[..]);
    assert!(!path.exists());
    // A draft never published (its computation failed) leaves no entry and no file.
    let abandoned = draft(tier.as_ref(), &key(4), &header);
    fill(&abandoned, &data[..400]);
    let path = abandoned.path().to_owned();
    drop(abandoned);
    assert!(!path.exists());
    assert!(load(tier.as_ref(), &key(4)).0.is_none() && !has(tier.as_ref(), &key(4)));
    let keys: Vec<String> =
        block_on(tier.entries(&mut crate::progress::quiet)).unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
}

fn load_on_disk(tier: &dyn Tier, k: &Key, up_to: u64) -> (OnDisk<AlignedBuf>, Notes) {
    let mut notes = Notes::new();
    let mut alloc = zeroed;
    let found = block_on(tier.load_on_disk(k, up_to, &mut alloc, &mut notes)).unwrap();
    (found, notes)
}

pub fn a_load_decided_on_disk_agrees_with_a_load(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let tier = tier.as_ref();
    assert!(!matches!(load_on_disk(tier, &key(1), u64::MAX).0, OnDisk::Decided(Some(_))), "a hit of nothing");
    store(tier, &key(1), 100, 0.5, ENTRY);
    match load_on_disk(tier, &key(1), 1 << 20) {
        (OnDisk::Decided(Some(entry)), notes) => {
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(entry.array.data(), &f8(100, 0.5).1[..]);
            assert_eq!(entry.record.function, "embed");
        }
        (OnDisk::Decided(None), _) => panic!("a stored entry was decided a miss"),
        (OnDisk::Elsewhere, _) => assert!(!tier.stores_on_disk(), "a tier that stores on disk left a small load"),
    }
    // An array of `up_to` bytes or more is never read there.
    assert!(matches!(load_on_disk(tier, &key(1), 800).0, OnDisk::Elsewhere));
    f.damage(&key(1), Damage::Garbage);
    match load_on_disk(tier, &key(1), 1 << 20) {
        (OnDisk::Decided(Some(_)), _) => panic!("a damaged entry read as a hit"),
        (OnDisk::Decided(None), notes) => assert!(notes.iter().any(|n| n.kind == NoteKind::Damaged), "{notes:?}"),
        (OnDisk::Elsewhere, _) => {}
    }
}

pub fn has_makes_the_checks_a_load_makes_and_is_not_a_use(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    assert!(!has(tier.as_ref(), &key(1)));
    let damages = [Damage::Garbage, Damage::Truncated, Damage::NoRecord, Damage::FlippedData];
    for (i, how) in damages.into_iter().enumerate() {
        let k = key(i as u8 + 1);
        store(tier.as_ref(), &k, 100, i as f64, ENTRY);
        assert!(has(tier.as_ref(), &k));
        f.damage(&k, how);
        assert!(!has(tier.as_ref(), &k), "has() said true of an entry damaged by {how:?}");
    }
    let before = block_on(tier.totals(&mut go)).unwrap().hits;
    store(tier.as_ref(), &key(9), 10, 1.0, ENTRY);
    assert!(has(tier.as_ref(), &key(9)));
    assert_eq!(block_on(tier.totals(&mut go)).unwrap().hits, before, "has() counted as a hit");
}

pub fn a_damaged_entry_is_a_miss_with_a_note_and_the_next_store_replaces_it(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for (i, how) in [Damage::Garbage, Damage::FlippedData, Damage::Truncated].into_iter().enumerate() {
        let k = key(i as u8 + 1);
        store(tier.as_ref(), &k, 100, 1.0, ENTRY);
        f.damage(&k, how);
        let (entry, notes) = load(tier.as_ref(), &k);
        assert!(entry.is_none(), "{how:?} read as a hit");
        assert!(!notes.is_empty() && notes.iter().all(|n| n.kind == NoteKind::Damaged), "{how:?}: {notes:?}");
        assert!(notes.iter().all(|n| n.error.kind() == ErrorKind::Damaged && !n.tier.is_empty()));
        assert!(store(tier.as_ref(), &k, 100, 2.0, ENTRY).is_published(), "{how:?} was not replaced");
        assert_eq!(load(tier.as_ref(), &k).0.expect("replaced").array.data(), &f8(100, 2.0).1[..]);
    }
}

pub fn a_store_is_create_only(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    assert!(store(tier.as_ref(), &key(1), 10, 1.0, ENTRY).is_published());
    assert_eq!(store(tier.as_ref(), &key(1), 12, 2.0, ENTRY), Stored::AlreadyThere);
    assert_eq!(store(f.reopen().as_ref(), &key(1), 12, 2.0, ENTRY), Stored::AlreadyThere);
    assert_eq!(load(tier.as_ref(), &key(1)).0.expect("a hit").array.data(), &f8(10, 1.0).1[..], "the first stands");
}

pub fn remove_says_whether_there_was_an_entry(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    store(tier.as_ref(), &key(1), 10, 1.0, ENTRY);
    let mut notes = Notes::new();
    assert!(block_on(tier.remove(&key(1), &mut notes)).unwrap());
    assert!(!block_on(tier.remove(&key(1), &mut notes)).unwrap());
    assert!(notes.is_empty(), "{notes:?}");
    assert!(load(tier.as_ref(), &key(1)).0.is_none() && !has(tier.as_ref(), &key(1)));
}

pub fn remove_function_removes_that_functions_entries_only(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let other = NewEntry { function: "other", ..ENTRY };
    for n in 1..=3 {
        store(tier.as_ref(), &key(n), 10, n as f64, ENTRY);
    }
    store(tier.as_ref(), &key(4), 10, 4.0, other);
    let mut removed = block_on(tier.remove_function("embed", &mut go, &mut Notes::new())).unwrap();
    removed.sort();
    assert_eq!(removed, vec![key(1), key(2), key(3)]);
    assert!((1..=3).all(|n| load(tier.as_ref(), &key(n)).0.is_none()));
    assert!(load(tier.as_ref(), &key(4)).0.is_some());
    assert!(block_on(tier.remove_function("embed", &mut go, &mut Notes::new())).unwrap().is_empty());
}

pub fn one_lease_holder_at_a_time_and_this_process_knows_its_own(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let minute = Duration::from_secs(60);
    let Claim::Taken(lease) = claim(tier.as_ref(), &key(1), minute) else { panic!("the first claim takes it") };
    for t in [tier.clone(), f.reopen()] {
        match claim(t.as_ref(), &key(1), minute) {
            Claim::Held { holder, this_process, .. } => {
                assert!(this_process, "a lease of this process, held through another cache object");
                assert_eq!((holder.tag.as_str(), holder.pid), (host::tag(), std::process::id()));
            }
            other => panic!("a held lease: {other:?}"),
        }
    }
    assert!(matches!(claim(tier.as_ref(), &key(2), minute), Claim::Taken(_)), "leases are per key");
    lease.release();
    // A store's release may land in the background: the lease is free once it has.
    for _ in 0..500 {
        match claim(tier.as_ref(), &key(1), minute) {
            Claim::Taken(_) => return,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("a released lease was never free");
}

pub fn another_hosts_lease_is_held_until_stale_and_a_dead_local_holders_at_once(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let minute = Duration::from_secs(60);
    // Another host's lease promising 5 s: held, then stale once unrefreshed past it (and any skew).
    f.plant_lease(&key(1), &elsewhere(5000));
    match claim(tier.as_ref(), &key(1), minute) {
        Claim::Held { holder, this_process, .. } => {
            assert!(!this_process);
            assert_eq!((holder.tag.as_str(), holder.pid), ("0123456789abcdef", 4242));
        }
        other => panic!("another host's fresh lease: {other:?}"),
    }
    // What is not a lease line is judged by the claimant's own staleAfter.
    f.plant_lease(&key(3), b"\xff\xfe not a lease");
    assert!(matches!(claim(tier.as_ref(), &key(3), minute), Claim::Held { this_process: false, .. }));
    // A holder on this host whose process is gone: taken at once.
    f.plant_lease(&key(2), Holder { pid: 999_999_999, ..Holder::this_process(minute) }.line().as_bytes());
    assert!(matches!(claim(tier.as_ref(), &key(2), minute), Claim::Taken(_)), "a dead holder here");
    tier.clock().advance(Duration::from_secs(60) + Duration::from_secs(3));
    assert!(matches!(claim(tier.as_ref(), &key(1), minute), Claim::Taken(_)), "unrefreshed past its promise");
    assert!(matches!(claim(tier.as_ref(), &key(3), minute), Claim::Taken(_)), "unrefreshed past the claimant's");
}

pub fn a_lease_promising_too_long_is_broken_past_the_ceiling(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    f.plant_lease(&key(1), &elsewhere(u64::MAX / 4));
    assert!(matches!(claim(tier.as_ref(), &key(1), Duration::from_secs(60)), Claim::Held { .. }));
    tier.clock().advance(MAX_STALE_AFTER + Duration::from_secs(60));
    assert!(matches!(claim(tier.as_ref(), &key(1), Duration::from_secs(60)), Claim::Taken(_)));
}

pub fn prune_and_clear_remove_a_lease_past_the_ceiling(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    // (A prune given limits: with a local tier, one without prunes only the local tier.)
    f.plant_lease(&key(1), &elsewhere(u64::MAX / 4));
    f.plant_lease(&key(2), &elsewhere(u64::MAX / 4));
    block_on(tier.prune(Some(Limits::default()), &mut go)).unwrap();
    assert!(f.has_lease(&key(1)) && f.has_lease(&key(2)), "live until the ceiling");
    tier.clock().advance(MAX_STALE_AFTER + Duration::from_secs(60));
    block_on(tier.clear(false, &mut go)).unwrap();
    assert!(!f.has_lease(&key(1)) && !f.has_lease(&key(2)), "a clear removes leases past the ceiling");
    // Planted now, but a day and a minute old by the tier's clock.
    f.plant_lease(&key(3), &elsewhere(u64::MAX / 4));
    let report = block_on(tier.prune(Some(Limits::default()), &mut go)).unwrap();
    assert!(!f.has_lease(&key(3)), "a prune removes leases past the ceiling");
    assert!(report.removed_leftovers >= 1, "{report:?}");
}

pub fn a_waiter_reads_the_lease_and_never_writes_it(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let minute = Duration::from_secs(60);
    let holder = |k: u8| block_on(tier.lease_holder(&key(k), minute)).unwrap();
    assert_eq!(holder(1), None, "no lease");
    f.plant_lease(&key(1), &elsewhere(5000));
    assert_eq!(holder(1).map(|h| h.pid), Some(4242), "another host's fresh lease");
    let Claim::Taken(mine) = claim(tier.as_ref(), &key(2), minute) else { panic!("the first claim takes it") };
    assert_eq!(holder(2).map(|h| h.pid), Some(std::process::id()), "this process's");
    // Garbage is judged by the reader's own staleAfter; more than a lease's length is no lease at all.
    f.plant_lease(&key(3), b"\xff\xfe not a lease");
    assert!(holder(3).is_some(), "garbage, fresh");
    let mut oversized = elsewhere(5000);
    oversized.resize(MAX_LEASE_LEN as usize + 1, b' ');
    f.plant_lease(&key(4), &oversized);
    assert_eq!(holder(4), None, "a lease line padded past a lease's length is not a lease");
    tier.clock().advance(minute + Duration::from_secs(3));
    assert_eq!(holder(1), None, "stale past its promise");
    assert_eq!(holder(3), None, "stale past the reader's");
    assert!((1..=4).all(|k| k == 2 || f.has_lease(&key(k))), "a read breaks nothing");
    assert!(matches!(claim(tier.as_ref(), &key(4), minute), Claim::Taken(_)), "an oversized lease is taken");
    mine.release();
}

pub fn a_lease_held_for_another_thread_is_waited_for(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let minute = Duration::from_secs(60);
    let here = std::thread::current().id();
    let there = std::thread::spawn(|| std::thread::current().id()).join().unwrap();
    let on = |t: &dyn Tier, thread| block_on(claim_on(t, &key(1), minute, thread)).unwrap();
    let Claim::Taken(lease) = on(tier.as_ref(), there) else { panic!("the first claim takes it") };
    for t in [tier.clone(), f.reopen()] {
        match on(t.as_ref(), here) {
            Claim::Held { this_process: true, this_thread, .. } => assert!(!this_thread, "held for another thread"),
            other => panic!("a held lease: {other:?}"),
        }
        assert!(matches!(on(t.as_ref(), there), Claim::Held { this_thread: true, .. }), "its own thread's");
    }
    lease.release();
    for _ in 0..500 {
        match on(tier.as_ref(), here) {
            Claim::Taken(lease) => {
                // Registered for this thread now, not the former holder's.
                assert!(matches!(on(f.reopen().as_ref(), here), Claim::Held { this_thread: true, .. }));
                assert!(matches!(on(f.reopen().as_ref(), there), Claim::Held { this_thread: false, .. }));
                return drop(lease);
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("a released lease was never free");
}

pub fn threads_racing_for_a_lease_find_one_holder_and_it_is_not_theirs(f: &dyn Fixture) {
    const THREADS: usize = 6;
    let minute = Duration::from_secs(60);
    // One cache object per thread, as worker threads have.
    let tiers: Vec<_> = (0..THREADS).map(|_| f.reopen()).collect();
    for round in 0..40u8 {
        let start = std::sync::Barrier::new(THREADS);
        let claims: Vec<Claim> = std::thread::scope(|s| {
            let racers: Vec<_> = tiers
                .iter()
                .map(|tier| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        block_on(claim_on(tier.as_ref(), &key(100 + round), minute, std::thread::current().id()))
                            .unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let taken = claims.iter().filter(|c| matches!(c, Claim::Taken(_))).count();
        assert_eq!(taken, 1, "round {round}: one thread takes the lease");
        for claim in &claims {
            if let Claim::Held { this_thread, .. } = claim {
                assert!(!this_thread, "round {round}: a lease another thread took counted as the claimant's own");
            }
        }
    }
}

pub fn totals_and_entries_see_every_entry(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for n in 1..=3 {
        store(tier.as_ref(), &key(n), 10 * n as usize, 1.0, ENTRY);
    }
    let totals = block_on(tier.totals(&mut go)).unwrap();
    assert_eq!(totals.entries, 3);
    assert!(totals.bytes >= 8 * 60, "{totals:?}");
    let mut rows = block_on(tier.entries(&mut go)).unwrap();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        (1..=3).map(|n| key(n).to_string()).collect::<Vec<_>>()
    );
    assert!(rows.iter().all(|r| r.function == "embed" && r.dtype == "<f8"));
    assert_eq!(rows.iter().map(|r| r.shape.clone()).collect::<Vec<_>>(), vec![vec![10], vec![20], vec![30]]);
}

pub fn prune_removes_the_least_recently_used_then_what_is_past_max_age(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for n in 1..=3 {
        store(tier.as_ref(), &key(n), 10, n as f64, ENTRY);
        // Stores apart in time, however a tier tells it (its clock, or the store's).
        tier.clock().advance(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = block_on(tier.prune(Some(Limits { max_entries: Some(2), ..Limits::default() }), &mut go)).unwrap();
    assert_eq!((report.removed_entries, report.totals.entries), (1, 2), "{report:?}");
    let listed: Vec<String> = block_on(tier.entries(&mut go)).unwrap().into_iter().map(|r| r.key).collect();
    assert!(!listed.contains(&key(1).to_string()), "the least recently used goes: {listed:?}");
    assert_eq!(listed.len(), 2);
    tier.clock().advance(Duration::from_secs(3600));
    let old = Limits { max_age: Some(60_000_000), ..Limits::default() };
    let report = block_on(tier.prune(Some(old), &mut go)).unwrap();
    assert_eq!((report.removed_entries, report.totals.entries), (2, 0), "{report:?}");
}

pub fn a_hit_past_the_tiers_max_age_is_a_miss(f: &dyn Fixture) {
    let tier = f.tier(Limits { max_age: Some(3_600_000_000), ..Limits::default() });
    store(tier.as_ref(), &key(1), 10, 1.0, ENTRY);
    tier.clock().advance(Duration::from_secs(600));
    assert!(load(tier.as_ref(), &key(1)).0.is_some(), "within its max age");
    tier.clock().advance(Duration::from_secs(7200));
    assert!(!has(tier.as_ref(), &key(1)) || load(tier.as_ref(), &key(1)).0.is_none());
    assert!(load(tier.as_ref(), &key(1)).0.is_none(), "unused past its max age");
}

pub fn verify_reports_damaged_data_and_removes_it_unless_asked_not_to(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    // Large enough that a plain load checks only its header: verify reads it all.
    store(tier.as_ref(), &key(1), 200_000, 1.0, ENTRY);
    store(tier.as_ref(), &key(2), 10, 1.0, ENTRY);
    f.damage(&key(1), Damage::FlippedData);
    let dry = block_on(tier.verify(false, &mut go)).unwrap();
    assert!(dry.checked >= 2 && dry.removed == 0, "{dry:?}");
    assert!(!dry.damaged.is_empty() && dry.damaged.iter().all(|(k, _)| *k == key(1).to_string()), "{dry:?}");
    assert!(dry.damaged.iter().all(|(_, why)| why.contains("digest")), "{dry:?}");
    let report = block_on(tier.verify(true, &mut go)).unwrap();
    assert_eq!(report.removed, report.damaged.len() as u64);
    assert!(!has(tier.as_ref(), &key(1)) && has(tier.as_ref(), &key(2)));
    assert!(block_on(tier.verify(true, &mut go)).unwrap().damaged.is_empty());
}

pub fn clear_removes_every_entry(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for n in 1..=3 {
        store(tier.as_ref(), &key(n), 10, 1.0, ENTRY);
    }
    store_moments(tier.as_ref(), &key(4), 10, 1.0);
    let report = block_on(tier.clear(false, &mut go)).unwrap();
    assert!(report.removed >= 4, "{report:?}");
    assert_eq!(block_on(tier.totals(&mut go)).unwrap().entries, 0);
    assert!((1..=4).all(|n| !has(tier.as_ref(), &key(n))));
}

pub fn a_job_asked_to_stop_stops_before_its_next_step(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    for n in 1..=3 {
        store(tier.as_ref(), &key(n), 10, 1.0, ENTRY);
    }
    let limits = Limits { max_entries: Some(0), ..Limits::default() };
    let stopped = block_on(tier.prune(Some(limits), &mut |_, _| ControlFlow::Break(())));
    assert!(matches!(stopped, Err(crate::Error::Stopped)), "{stopped:?}");
    assert!((1..=3).all(|n| has(tier.as_ref(), &key(n))), "stopped before any removal");
    let stopped = block_on(tier.verify(false, &mut |_, _| ControlFlow::Break(())));
    assert!(matches!(stopped, Err(crate::Error::Stopped)), "{stopped:?}");
    // A clear hears of its start before it removes anything.
    let stopped = block_on(tier.clear(false, &mut |_, _| ControlFlow::Break(())));
    assert!(matches!(stopped, Err(crate::Error::Stopped)), "{stopped:?}");
    assert!((1..=3).all(|n| has(tier.as_ref(), &key(n))), "a stopped clear removed entries");
}

pub fn a_function_name_past_the_limit_is_refused(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let name = "f".repeat(crate::record::MAX_FUNCTION_NAME + 1);
    let (header, data) = f8(4, 1.0);
    let entry = NewEntry { function: &name, ..ENTRY };
    let content = Content::npy(&header, &data).unwrap();
    let stored = block_on(tier.store(&key(1), NewArray { content: &content, entry }, &mut Notes::new()));
    match stored {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}"),
        // A tier that fails open says so in a note instead.
        Ok(s) => assert_eq!(s, Stored::Failed),
    }
    assert!(load(tier.as_ref(), &key(1)).0.is_none());
}

pub fn an_entry_over_the_limits_on_its_own_is_not_stored_and_evicts_nothing(f: &dyn Fixture) {
    // Three entries of 8 KB fit in 32 KB; one of 40 KB does not, alone.
    let tier = f.tier(Limits { max_bytes: Some(32_000), ..Limits::default() });
    for n in 1..=3 {
        assert!(store(tier.as_ref(), &key(n), 1000, n as f64, ENTRY).is_published());
    }
    let stored = store(tier.as_ref(), &key(4), 5000, 1.0, ENTRY);
    // A composition keeps it in the store, whose limits are not the cache's (see `Tiered`).
    assert!(matches!(stored, Stored::TooLarge { limit: 32_000, .. } | Stored::Published { evicted: 0 }), "{stored:?}");
    if let Stored::TooLarge { bytes, .. } = stored {
        assert!(bytes > 40_000, "{stored:?}");
    }
    assert!((1..=3).all(|n| load(tier.as_ref(), &key(n)).0.is_some()), "nothing evicted");
    // Over `max_entry_bytes`: stored nowhere, on every tier.
    let tier = f.tier(Limits { max_entry_bytes: Some(10_000), ..Limits::default() });
    let stored = store(tier.as_ref(), &key(5), 1300, 1.0, ENTRY);
    assert!(matches!(stored, Stored::TooLarge { limit: 10_000, bytes } if bytes > 10_400), "{stored:?}");
    assert!(load(tier.as_ref(), &key(5)).0.is_none() && !has(f.reopen().as_ref(), &key(5)));
    assert!((1..=3).all(|n| has(tier.as_ref(), &key(n))), "nothing evicted");
}

pub fn a_computed_call_is_one_miss_however_many_loads_it_made(f: &dyn Fixture) {
    let tier = f.tier(Limits::default());
    let totals = || block_on(tier.totals(&mut go)).unwrap();
    // A call under a lease loads, takes the lease, loads again, computes and stores.
    assert!(load(tier.as_ref(), &key(1)).0.is_none());
    assert!(load(tier.as_ref(), &key(1)).0.is_none());
    store(tier.as_ref(), &key(1), 10, 1.0, ENTRY);
    let after = totals();
    assert_eq!((after.hits, after.misses), (0, 1), "{after:?}");
    assert!(load(tier.as_ref(), &key(1)).0.is_some());
    let after = totals();
    assert_eq!((after.hits, after.misses), (1, 1), "{after:?}");
    // Too large to keep, it was still computed: one miss.
    let small = f.tier(Limits { max_entry_bytes: Some(100), ..Limits::default() });
    assert!(matches!(store(small.as_ref(), &key(2), 100, 1.0, ENTRY), Stored::TooLarge { .. }));
    let after = block_on(small.totals(&mut go)).unwrap();
    assert!(after.misses >= 1, "{after:?}");
}
