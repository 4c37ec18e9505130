//! Listing, statistics, pruning, verifying and clearing: the only
//! operations that LIST (1,000 objects per request), never on a hit's or a
//! miss's path. Removal is by batch DELETE (1,000 objects per request).
//!
//! An entry's last use is the later of its own and its use mark's
//! modification times (see `uses`): least recently used to within a day.

use std::collections::HashMap;
use std::time::SystemTime;

use cache_core::clock::us_since_epoch;
use cache_core::progress::{self, Progress};
use cache_core::{ClearReport, EntryRow, Error, Key, Limits, PruneReport, Totals, VerifyReport};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};

use crate::check::{self, Checked};
use crate::names::Named;
use crate::{lease, listing, record_meta, uses, RemoteCache};

/// An entry as a listing sees it.
#[derive(Debug, Clone)]
struct Listed {
    key: Key,
    /// Its object: `.npy`, or `.npz` of several arrays.
    path: Path,
    /// The object's size: the `.npy` header and the data.
    bytes: u64,
    modified: SystemTime,
    last_used: SystemTime,
}

/// Everything the cache wrote under the prefix, by key.
#[derive(Default)]
struct Listing {
    entries: HashMap<Path, Listed>,
    marks: HashMap<Key, SystemTime>,
    /// Keys with block digests.
    blocks: std::collections::HashSet<Key>,
    leases: Vec<(Path, SystemTime)>,
    /// Every object of the cache's, for `clear`.
    ours: Vec<Path>,
    /// Objects under the fan-out prefixes that are not the cache's, skipped.
    foreign: u64,
}

impl Listing {
    /// Entries, least recently used first.
    fn least_recent_first(&self) -> Vec<&Listed> {
        let mut entries: Vec<&Listed> = self.entries.values().collect();
        entries.sort_by(|a, b| a.last_used.cmp(&b.last_used).then_with(|| a.key.cmp(&b.key)));
        entries
    }

    /// The objects that go with the entry of `key`: its use mark and
    /// block digests, those listed.
    fn companions(&self, names: &crate::names::Names, key: &Key) -> Vec<Path> {
        let mut out = Vec::new();
        if self.marks.contains_key(key) {
            out.push(names.use_mark(key));
        }
        if self.blocks.contains(key) {
            out.push(names.blocks(key));
        }
        out
    }

    fn totals(&self) -> (u64, u64) {
        (self.entries.len() as u64, self.entries.values().map(|e| e.bytes).sum())
    }
}

/// Prefixes listed at once: S3 serves a page of 1,000 objects in about
/// 100 ms, so one listing of 10 million entries in turn would take half an hour.
const LIST_CONCURRENCY: usize = 16;

/// Entries read at once for their details, checked at once by a verify.
const READ_CONCURRENCY: usize = 32;

impl RemoteCache {
    /// Lists the cache's 512 fan-out prefixes (entries and leases, use
    /// marks), `LIST_CONCURRENCY` at a time, reporting objects listed after
    /// each page. Objects elsewhere under the prefix are not the cache's
    /// and are not listed; those under the fan-out prefixes that are not
    /// (other names, or names that are not paths) are skipped and counted.
    async fn list(&self, progress: &mut Progress<'_>) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        let prefixes: Vec<Path> = self.names.fan_out_prefixes().collect();
        let (store, paged) = (&self.store, self.paged.as_ref());
        let mut pages = futures_util::stream::iter(prefixes)
            .map(|p| listing::pages(store, paged, &p))
            .flatten_unordered(LIST_CONCURRENCY);
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("list the cache"))?;
            listing.foreign += page.skipped;
            for meta in page.objects {
                let modified = SystemTime::from(meta.last_modified);
                match self.names.name_of(&meta.location) {
                    Named::Entry(key) => {
                        let (bytes, path) = (meta.size, meta.location.clone());
                        // By object: a key may have both forms (`.npy`, `.npz`), each an entry to list and remove.
                        listing
                            .entries
                            .insert(path.clone(), Listed { key, path, bytes, modified, last_used: modified });
                    }
                    Named::Use(key) => {
                        listing.marks.insert(key, modified);
                    }
                    Named::Blocks(key) => {
                        listing.blocks.insert(key);
                    }
                    Named::Lease(_) => listing.leases.push((meta.location.clone(), modified)),
                    Named::Foreign => {
                        listing.foreign += 1;
                        continue;
                    }
                }
                listing.ours.push(meta.location);
            }
            progress::listed(progress, listing.ours.len() as u64)?;
        }
        for (key, used) in &listing.marks {
            for e in listing.entries.values_mut().filter(|e| e.key == *key) {
                e.last_used = e.last_used.max(*used);
            }
        }
        Ok(listing)
    }

    /// Entries and bytes from a listing (one LIST per 1,000 objects); hits
    /// and misses of this process.
    pub async fn totals(&self, progress: &mut Progress<'_>) -> Result<Totals, Error> {
        let listing = self.list(progress).await?;
        let (entries, bytes) = listing.totals();
        let (hits, misses) = self.counts();
        Ok(Totals { entries, bytes, hits, misses, foreign: listing.foreign })
    }

    /// Every entry, most recently used first, with its function, dtype and
    /// shape from a GET of its first 4 KiB.
    pub async fn entries(&self, progress: &mut Progress<'_>) -> Result<Vec<EntryRow>, Error> {
        let listing = self.list(progress).await?;
        let listed = listing.least_recent_first();
        let mut rows: Vec<EntryRow> = listed.iter().rev().map(|e| row_of(e)).collect();
        // An empty object has no first bytes to read (416): listed as it is.
        let objects: Vec<(usize, Path, u64)> = (listed.iter().rev().enumerate())
            .filter(|(_, e)| e.bytes > 0)
            .map(|(i, e)| (i, e.path.clone(), e.bytes))
            .collect();
        let total = objects.len() as u64;
        let mut reads = futures_util::stream::iter(objects)
            .map(move |(i, path, size)| async move { (i, self.describe(path, size).await) })
            .buffer_unordered(READ_CONCURRENCY);
        let mut done = 0;
        while let Some((i, read)) = reads.next().await {
            read?.fill(&mut rows[i]);
            done += 1;
            progress::step(progress, done, total)?;
        }
        Ok(rows)
    }

    /// What an entry's object (of `size` bytes) says of it in its record
    /// and first bytes; of an archive, in each member's first bytes too.
    async fn describe(&self, path: Path, size: u64) -> Result<Described, Error> {
        let Some((record, head)) = self.head_of(&path, 0).await? else { return Ok(Described::default()) };
        let record = record_meta::record_of(&record).ok();
        if !record.as_ref().is_some_and(|r| r.result.is_archive()) {
            let header = npy_format::decode_header_bytes(&head).ok().map(|(h, _)| h);
            return Ok(Described { record, header, members: None });
        }
        // One ranged GET per member, each from where the last one's data ends.
        let (mut members, mut at, mut head) = (Vec::new(), 0, head);
        while let Ok(m) = npy_format::npz_member_at(&head, at) {
            members.push(cache_core::MemberRow::of(&m.name, &m.header));
            // Past the end (a damaged object) there is no range to read.
            match m.data.checked_add(m.data_len) {
                Some(end) if end < size && members.len() < cache_core::record::MAX_ENTRY_MEMBERS => at = end,
                _ => break,
            }
            match self.head_of(&path, at).await? {
                Some((_, next)) => head = next,
                None => break,
            }
        }
        Ok(Described { record, header: None, members: Some(members) })
    }

    /// The metadata and first 4 KiB from `at` of the object at `path`; None
    /// if it is gone (removed since the listing).
    async fn head_of(&self, path: &Path, at: u64) -> Result<Option<(object_store::Attributes, bytes::Bytes)>, Error> {
        let options = GetOptions { range: Some(GetRange::Bounded(at..at + 4096)), ..Default::default() };
        let got = match self.store.get_opts(path, options).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err("read an entry's header")(e)),
        };
        let attributes = got.attributes.clone();
        let head = got.bytes().await.map_err(self.err("read an entry's header"))?;
        Ok(Some((attributes, head)))
    }

    /// The function named in the record of the object at `path` (a GET of
    /// no content: its metadata); None if it has none this version reads.
    async fn function_of(&self, path: &Path) -> Result<Option<String>, Error> {
        let options = GetOptions { head: true, ..Default::default() };
        match self.store.get_opts(path, options).await {
            Ok(got) => Ok(record_meta::record_of(&got.attributes).ok().map(|r| r.function)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("read an entry's record")(e)),
        }
    }

    /// Removes every entry whose record names `function`; returns their keys.
    pub async fn remove_function(&self, function: &str, progress: &mut Progress<'_>) -> Result<Vec<Key>, Error> {
        let listing = self.list(progress).await?;
        let objects: Vec<(Key, Path)> = listing.entries.values().map(|e| (e.key, e.path.clone())).collect();
        let total = objects.len() as u64;
        let (mut doomed, mut removed) = (Vec::new(), Vec::new());
        let mut reads = futures_util::stream::iter(objects)
            .map(move |(key, path)| async move { (key, self.function_of(&path).await, path) })
            .buffer_unordered(READ_CONCURRENCY);
        let mut done = 0;
        while let Some((key, named, path)) = reads.next().await {
            if named?.as_deref() == Some(function) {
                removed.push(key);
                doomed.push(path);
                doomed.extend(listing.companions(&self.names, &key));
            }
            done += 1;
            progress::step(progress, done, total)?;
        }
        drop(reads);
        self.delete_all(doomed, &mut progress::quiet).await?;
        // A key of both forms is one key removed.
        removed.sort();
        removed.dedup();
        Ok(removed)
    }

    /// Removes entries unused for longer than `max_age`, then the least
    /// recently used until `max_bytes` and `max_entries` hold (the cache's
    /// own limits when None); also use marks without an entry and leases
    /// older than any lease's promise.
    pub async fn prune(&self, limits: Option<Limits>, progress: &mut Progress<'_>) -> Result<PruneReport, Error> {
        let limits = limits.unwrap_or(self.limits);
        let listing = self.list(progress).await?;
        let now = self.clock.now();
        let (mut entries, mut bytes) = listing.totals();
        let mut doomed: Vec<Path> = Vec::new();
        let mut report = PruneReport::default();
        for e in listing.least_recent_first() {
            let expired = uses::expired(e.last_used, now, &limits);
            let too_big = limits.max_bytes.is_some_and(|max| bytes > max);
            let too_many = limits.max_entries.is_some_and(|max| entries > max);
            if !(expired || too_big || too_many) {
                continue;
            }
            doomed.push(e.path.clone());
            doomed.extend(listing.companions(&self.names, &e.key));
            entries -= 1;
            bytes -= e.bytes;
            report.removed_entries += 1;
            report.removed_bytes += e.bytes;
        }
        let keys: std::collections::HashSet<Key> = listing.entries.values().map(|e| e.key).collect();
        for key in listing.marks.keys().filter(|k| !keys.contains(*k)) {
            doomed.push(self.names.use_mark(key));
            report.removed_leftovers += 1;
        }
        // Block digests are written after their entry and deleted after it: alone, they are left over.
        for key in listing.blocks.iter().filter(|k| !keys.contains(*k)) {
            doomed.push(self.names.blocks(key));
            report.removed_leftovers += 1;
        }
        for (path, modified) in &listing.leases {
            if lease::is_leftover(now.duration_since(*modified).unwrap_or_default()) {
                doomed.push(path.clone());
                report.removed_leftovers += 1;
            }
        }
        self.delete_all(doomed, progress).await?;
        let (hits, misses) = self.counts();
        report.totals = Totals { entries, bytes, hits, misses, foreign: listing.foreign };
        Ok(report)
    }

    /// Checks every entry completely, streaming each object through the
    /// hasher (`READ_CONCURRENCY` at a time); with `remove`, removes the
    /// damaged ones.
    pub async fn verify(&self, remove: bool, progress: &mut Progress<'_>) -> Result<VerifyReport, Error> {
        let listing = self.list(progress).await?;
        let mut objects: Vec<(Key, Path)> = listing.entries.values().map(|e| (e.key, e.path.clone())).collect();
        objects.sort();
        let total = objects.len() as u64;
        let mut report = VerifyReport::default();
        progress::step(progress, 0, total)?;
        let store: &dyn ObjectStore = self.store.as_ref();
        let mut checks = futures_util::stream::iter(objects)
            .map(move |(key, path)| async move { (key, check::check_whole(store, &path).await) })
            .buffer_unordered(READ_CONCURRENCY);
        let mut done = 0;
        while let Some((key, checked)) = checks.next().await {
            match checked.map_err(self.err("verify an entry"))? {
                (Checked::Whole { .. }, blocks) => {
                    report.checked += 1;
                    if remove {
                        // Best effort: reads check block digests before they use them.
                        let _ = self.restore_blocks(&key, blocks).await;
                    }
                }
                (Checked::Damaged(reason), _) => {
                    report.checked += 1;
                    if remove && self.remove(&key).await.is_ok() {
                        report.removed += 1;
                    }
                    report.damaged.push((key.to_string(), reason));
                }
                (Checked::NotAnEntry, _) => {}
            }
            done += 1;
            progress::step(progress, done, total)?;
        }
        drop(checks);
        report.damaged.sort();
        Ok(report)
    }

    /// Removes every object the cache wrote under the prefix (entries, use
    /// marks, leases); objects it did not write are left.
    pub async fn clear(&self, progress: &mut Progress<'_>) -> Result<ClearReport, Error> {
        let Listing { ours, foreign, .. } = self.list(progress).await?;
        let removed = ours.len() as u64;
        self.delete_all(ours, progress).await?;
        Ok(ClearReport { removed, removed_dir: false, foreign })
    }

    async fn delete_all(&self, paths: Vec<Path>, progress: &mut Progress<'_>) -> Result<(), Error> {
        let total = paths.len() as u64;
        let mut done = 0;
        let locations = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("remove entries")(e)),
            }
            done += 1;
            // Deletes already sent (S3: up to 20 requests of 1,000) finish all the same.
            if done % 1000 == 0 || done == total {
                progress::step(progress, done, total)?;
            }
        }
        Ok(())
    }
}

/// What an entry's object says of it, where it could be read.
#[derive(Default)]
struct Described {
    record: Option<cache_core::EntryRecord>,
    header: Option<npy_format::Header>,
    /// An archive's members, as far as they could be read.
    members: Option<Vec<cache_core::MemberRow>>,
}

impl Described {
    fn fill(self, row: &mut EntryRow) {
        if let Some(r) = self.record {
            row.function = r.function;
            row.created = us_since_epoch(r.created);
        }
        if let Some(header) = self.header {
            row.dtype = header.dtype.native().descr();
            row.shape = header.shape;
        }
        if let Some(members) = self.members {
            row.dtype = cache_core::MemberRow::encode_all(members);
        }
    }
}

fn row_of(e: &Listed) -> EntryRow {
    EntryRow {
        key: e.key.to_string(),
        function: String::new(),
        dtype: String::new(),
        shape: Vec::new(),
        bytes: e.bytes,
        created: us_since_epoch(e.modified),
        last_used: us_since_epoch(e.last_used),
    }
}
