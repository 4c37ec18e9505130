//! Tidying a directory: finding its entries and the leftovers no one will
//! finish (temporary files of processes that are gone, halves of entries,
//! stale leases), describing entries the index lacks, and removing the
//! cache's own files and nothing else.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader};
use std::time::{Duration, SystemTime};

use cache_core::clock::us_since_epoch;
use cache_core::{host, ClearReport, EntryRow, Error, MemberRow};

use crate::files::{EntryFiles, RecordRead};
use crate::layout::{self, CacheFile, Writer};
use crate::lease;

/// Temporary files of another host (whose processes cannot be checked) are
/// leftovers after this long.
const FOREIGN_TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Stale leases are renamed aside and removed at once; a minute covers the gap.
const BROKEN_LEASE_MAX_AGE: Duration = Duration::from_secs(60);

impl EntryFiles {
    /// The index row of an entry found on disk: `None` if its files do not
    /// form an entry of this version. An entry of an older version, or one
    /// whose record was read and is not a record, is removed (counted in
    /// `removed`); one of a newer version, or whose record this process
    /// cannot read (another user's, say), is left alone. Runs under the
    /// index's write lock, where no store renames files into place.
    pub(crate) fn describe(&self, key: &str, removed: &mut u64) -> Option<EntryRow> {
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Invalid(_) | RecordRead::OtherVersion { newer: false }) => {
                if self.unlink(key).is_ok() {
                    *removed += 1;
                }
                return None;
            }
            Err(RecordRead::Missing | RecordRead::OtherVersion { newer: true } | RecordRead::Unreadable(_)) => {
                return None
            }
        };
        let (file, array_stat) = layout::open_regular(&self.layout.array(key, record.result.is_archive())).ok()?;
        let (dtype, shape) = if record.result.is_archive() {
            let members = npy_format::aligned_npz_file_members(&file).ok()?;
            (MemberRow::encode_all(members.iter().map(|m| MemberRow::of(&m.name, &m.header))), vec![])
        } else {
            let (header, _) = npy_format::decode_header(&mut BufReader::new(file)).ok()?;
            (header.dtype.descr(), header.shape)
        };
        let record_stat = fs::symlink_metadata(self.layout.record(key)).ok()?;
        let modified = |m: &fs::Metadata| m.modified().map(us_since_epoch).unwrap_or(0);
        Some(EntryRow {
            key: key.to_owned(),
            function: record.function.clone(),
            dtype,
            shape,
            bytes: array_stat.len() + record_stat.len(),
            created: us_since_epoch(record.created),
            last_used: modified(&record_stat).max(modified(&array_stat)),
        })
    }

    /// Lists the keys of complete entries on disk, and removes leftovers
    /// (counted in `removed`): temporary files of processes that are gone,
    /// halves of entries, and leases past their holder's promise or the
    /// ceiling at `now` (the cache's clock). Run under the index's write
    /// lock only, where no store renames files into place.
    pub(crate) fn scan(&self, now: SystemTime, removed: &mut u64) -> Result<Vec<String>, Error> {
        let names: Vec<String> = self.layout.list()?.into_iter().filter(|l| l.is_file).filter_map(|l| l.name).collect();
        let present: HashSet<&str> = names.iter().map(String::as_str).collect();
        let (mut keys, mut leases) = (Vec::new(), Vec::new());
        let mut remove = |name: &str| {
            if fs::remove_file(self.layout.root().join(name)).is_ok() {
                *removed += 1;
            }
        };
        for name in &names {
            match CacheFile::parse(name) {
                Some(file @ (CacheFile::Temp { .. } | CacheFile::IndexTemp(_)))
                    if self.is_leftover(&file, name, now) =>
                {
                    remove(name)
                }
                Some(CacheFile::Lease(key)) => leases.push(key.to_owned()),
                Some(CacheFile::Record(key))
                    if layout::data_names(key).iter().any(|n| present.contains(n.as_str())) =>
                {
                    keys.push(key.to_owned())
                }
                Some(CacheFile::Record(_)) => remove(name),
                Some(CacheFile::Array(key) | CacheFile::Blocks(key))
                    if !present.contains(layout::record_name(key).as_str()) =>
                {
                    remove(name)
                }
                _ => {}
            }
        }
        *removed += leases.iter().filter(|key| lease::break_if_abandoned(&self.layout, key, now)).count() as u64;
        Ok(keys)
    }

    /// Whether a file of the cache's is not in use by a running process:
    /// entries always are leftovers in this sense; temporary files only
    /// once their writer is gone (one of this host that no longer runs, or
    /// of another host after a day), leases once they are stale at `now`.
    pub(crate) fn is_leftover(&self, file: &CacheFile, name: &str, now: SystemTime) -> bool {
        let path = self.layout.root().join(name);
        let age = || {
            fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default()
        };
        match file {
            CacheFile::Temp { writer, .. } | CacheFile::IndexTemp(writer) => match writer {
                Writer::Process { host, pid } if *host == host::tag() => !host::process_alive(*pid),
                Writer::Breaker => age() > BROKEN_LEASE_MAX_AGE,
                Writer::Process { .. } | Writer::Unknown => age() > FOREIGN_TEMP_MAX_AGE,
            },
            CacheFile::Lease(_) => lease::is_abandoned(&path, now),
            CacheFile::Array(_) | CacheFile::Record(_) | CacheFile::Blocks(_) | CacheFile::Index => true,
        }
    }

    /// Removes the files this cache writes and nothing else: entries (but
    /// those `keep` names), and temporary files and leases of processes no
    /// longer at work (all of them with `remove_dir`); with `index`, the
    /// index files too; then, with `remove_dir`, the directory if it is
    /// empty. Links are removed as links, never followed.
    pub(crate) fn remove_all(
        &self,
        index: bool,
        remove_dir: bool,
        keep: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<ClearReport, Error> {
        let mut report = ClearReport::default();
        // (whether it is a record, path)
        let mut ours = Vec::new();
        for listed in self.layout.list()? {
            let parsed =
                listed.name.as_deref().filter(|_| !listed.is_dir).and_then(|n| Some((n, CacheFile::parse(n)?)));
            match parsed {
                Some((name, CacheFile::Index)) => {
                    if index {
                        ours.push((false, self.layout.root().join(name)))
                    }
                }
                Some((name, file)) => {
                    let gone = remove_dir || self.is_leftover(&file, name, now);
                    if gone && !file.key().is_some_and(keep) {
                        ours.push((matches!(file, CacheFile::Record(_)), self.layout.root().join(name)))
                    }
                }
                None => report.foreign += 1,
            }
        }
        // Records first: a clear interrupted half way leaves arrays without
        // records (misses), never records without their arrays.
        ours.sort_by_key(|(is_record, _)| !is_record);
        *self.memo() = Default::default();
        for (_, path) in ours {
            match fs::remove_file(&path) {
                Ok(()) => report.removed += 1,
                // Another process removed it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path)(e)),
            }
        }
        if remove_dir {
            if report.foreign > 0 {
                return Err(Error::NotEmpty {
                    path: self.layout.root().to_path_buf(),
                    remaining: report.foreign as usize,
                });
            }
            match fs::remove_dir(self.layout.root()) {
                Ok(()) => report.removed_dir = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove cache directory", self.layout.root())(e)),
            }
        }
        Ok(report)
    }
}
