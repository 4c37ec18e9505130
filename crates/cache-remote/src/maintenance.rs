//! Listing, statistics, pruning and clearing: the only operations that
//! LIST (1,000 objects per request), never on a hit's or a miss's path.
//!
//! S3 keeps no access times, so a hit on an entry older than a day records
//! a use with an empty PUT of `uses/<ab>/<key>` (at most once an hour per
//! entry per process), and an entry's last use is the later of its own and
//! its mark's modification times: least recently used to within a day. Removal is by batch DELETE (1,000 objects per request).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};

use cache_index::Limits;

use crate::names::Named;
use crate::{block_on, record_meta, RemoteCache, RemoteError};
use cache_store::Progress;

/// An entry as a listing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteEntry {
    pub key: String,
    /// The object's size: the `.npy` header and the data.
    pub bytes: u64,
    pub created: SystemTime,
    pub last_used: SystemTime,
    /// From the entry's first bytes, when details were asked for.
    pub function: Option<String>,
    pub dtype: Option<String>,
    pub shape: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteTotals {
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemotePruneReport {
    pub removed_entries: u64,
    pub removed_bytes: u64,
    /// Use marks without an entry, and leases stale for over a day.
    pub removed_leftovers: u64,
    pub totals: RemoteTotals,
}

/// Everything the cache wrote under the prefix, by key.
#[derive(Default)]
struct Listing {
    entries: HashMap<String, RemoteEntry>,
    marks: HashMap<String, SystemTime>,
    leases: Vec<(Path, SystemTime)>,
    /// Every object of the cache's, for `clear`.
    ours: Vec<Path>,
}

/// Prefixes listed at once: S3 serves a page of 1,000 objects in about
/// 100 ms, so one listing of 10 million entries in turn would take half an hour.
const LIST_CONCURRENCY: usize = 16;

/// Leases older than this are a killed holder's leftovers.
const LEASE_LEFTOVER_AFTER: Duration = Duration::from_secs(24 * 3600);

impl RemoteCache {
    /// Lists the cache's 512 fan-out prefixes (entries and leases, use
    /// marks), `LIST_CONCURRENCY` at a time, calling `progress(objects
    /// listed, 0)` after each page, which may stop it. Objects elsewhere
    /// under the prefix are not the cache's and are not listed.
    fn list(&self, progress: &mut Progress<'_>) -> Result<Listing, RemoteError> {
        let mut listing = Listing::default();
        let prefixes: Vec<Path> = self.names.fan_out_prefixes().collect();
        let store = &self.store;
        let mut stream = futures_util::stream::iter(prefixes)
            .map(|p| store.list(Some(&p)).chunks(1000))
            .flatten_unordered(LIST_CONCURRENCY);
        // Pages are awaited one by one, and `progress` runs outside the
        // runtime: it may call back into the cache.
        while let Some(page) = block_on(stream.next()) {
            for meta in page {
                let meta = meta.map_err(self.err("list the cache"))?;
                let modified = SystemTime::from(meta.last_modified);
                match self.names.name_of(&meta.location) {
                    Named::Entry(key) => {
                        listing.entries.insert(
                            key.clone(),
                            RemoteEntry {
                                key,
                                bytes: meta.size,
                                created: modified,
                                last_used: modified,
                                function: None,
                                dtype: None,
                                shape: None,
                            },
                        );
                    }
                    Named::Use(key) => {
                        listing.marks.insert(key, modified);
                    }
                    Named::Lease(_) => listing.leases.push((meta.location.clone(), modified)),
                    Named::Foreign => continue,
                }
                listing.ours.push(meta.location);
            }
            if progress(listing.ours.len() as u64, 0).is_break() {
                return Err(RemoteError::Stopped);
            }
        }
        for (key, used) in &listing.marks {
            if let Some(e) = listing.entries.get_mut(key) {
                e.last_used = e.last_used.max(*used);
            }
        }
        Ok(listing)
    }

    /// Entries and bytes (one LIST per 1,000 objects).
    pub fn totals(&self, progress: &mut Progress<'_>) -> Result<RemoteTotals, RemoteError> {
        Ok(totals_of(self.list(progress)?.entries.values()))
    }

    /// Every entry, most recently used first; with `details`, each entry's
    /// function, dtype and shape from a GET of its first 4 KiB.
    pub fn entries(&self, details: bool, progress: &mut Progress<'_>) -> Result<Vec<RemoteEntry>, RemoteError> {
        let mut entries: Vec<RemoteEntry> = self.list(progress)?.entries.into_values().collect();
        entries.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.key.cmp(&b.key)));
        if details {
            let total = entries.len() as u64;
            let mut done = 0;
            // An empty object has no first bytes to read (416): listed as it is.
            let mut fetches =
                futures_util::stream::iter(entries.iter_mut().filter(|e| e.bytes > 0).map(|e| self.describe(e)))
                    .buffer_unordered(32);
            while let Some(r) = block_on(fetches.next()) {
                r?;
                done += 1;
                if progress(done, total).is_break() && done < total {
                    return Err(RemoteError::Stopped);
                }
            }
        }
        Ok(entries)
    }

    async fn describe(&self, entry: &mut RemoteEntry) -> Result<(), RemoteError> {
        let options = GetOptions { range: Some(GetRange::Bounded(0..4096)), ..Default::default() };
        let got = match self.store.get_opts(&self.names.entry(&entry.key), options).await {
            Ok(g) => g,
            // Removed since the listing: described as listed.
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(self.err("read an entry's header")(e)),
        };
        let record = record_meta::record_of(&got.attributes).ok();
        let head = got.bytes().await.map_err(self.err("read an entry's header"))?;
        if let Some(r) = record {
            entry.function = Some(r.function.clone());
            entry.created = r.created;
        }
        if let Ok((header, _)) = npy_format::decode_header_bytes(&head) {
            entry.dtype = Some(header.dtype.native().descr());
            entry.shape = Some(header.shape);
        }
        Ok(())
    }

    /// Removes entries unused for longer than `limits.max_age` (µs), then
    /// the least recently used until `max_bytes` and `max_entries` hold;
    /// also use marks without an entry and leases stale for a day.
    pub fn prune(&self, limits: &Limits, progress: &mut Progress<'_>) -> Result<RemotePruneReport, RemoteError> {
        let listing = self.list(progress)?;
        let now = SystemTime::now();
        let mut entries: Vec<&crate::RemoteEntry> = listing.entries.values().collect();
        // Least recently used first.
        entries.sort_by(|a, b| a.last_used.cmp(&b.last_used).then_with(|| a.key.cmp(&b.key)));
        let mut totals = totals_of(listing.entries.values());
        let mut doomed: Vec<Path> = Vec::new();
        let mut report = RemotePruneReport::default();
        for e in entries {
            let unused_us = now.duration_since(e.last_used).unwrap_or_default().as_micros() as i64;
            let expired = limits.max_age.is_some_and(|max| unused_us > max);
            let too_big = limits.max_bytes.is_some_and(|max| totals.bytes > max);
            let too_many = limits.max_entries.is_some_and(|max| totals.entries > max);
            if !(expired || too_big || too_many) {
                continue;
            }
            doomed.push(self.names.entry(&e.key));
            if listing.marks.contains_key(&e.key) {
                doomed.push(self.names.use_mark(&e.key));
            }
            totals.entries -= 1;
            totals.bytes -= e.bytes;
            report.removed_entries += 1;
            report.removed_bytes += e.bytes;
        }
        for key in listing.marks.keys().filter(|k| !listing.entries.contains_key(*k)) {
            doomed.push(self.names.use_mark(key));
            report.removed_leftovers += 1;
        }
        for (path, modified) in &listing.leases {
            if now.duration_since(*modified).unwrap_or_default() > LEASE_LEFTOVER_AFTER {
                doomed.push(path.clone());
                report.removed_leftovers += 1;
            }
        }
        self.delete_all(doomed, progress)?;
        report.totals = totals;
        Ok(report)
    }

    /// Removes every object the cache wrote under the prefix (entries, use
    /// marks, leases); objects it did not write are left. Returns how many.
    pub fn clear(&self, progress: &mut Progress<'_>) -> Result<u64, RemoteError> {
        let ours = self.list(progress)?.ours;
        let n = ours.len() as u64;
        self.delete_all(ours, progress)?;
        Ok(n)
    }

    fn delete_all(&self, paths: Vec<Path>, progress: &mut Progress<'_>) -> Result<(), RemoteError> {
        let total = paths.len() as u64;
        let mut done = 0;
        let locations = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(r) = block_on(deleted.next()) {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("remove entries")(e)),
            }
            done += 1;
            // Deletes already sent (S3: up to 20 requests of 1,000) finish all the same.
            if (done % 1000 == 0 || done == total) && progress(done, total).is_break() && done < total {
                return Err(RemoteError::Stopped);
            }
        }
        Ok(())
    }
}

fn totals_of<'a>(entries: impl Iterator<Item = &'a RemoteEntry>) -> RemoteTotals {
    entries.fold(RemoteTotals::default(), |t, e| RemoteTotals { entries: t.entries + 1, bytes: t.bytes + e.bytes })
}
