//! Verifying an entry completely: its data against its digest, read in
//! pieces, so memory stays small whatever the entry's size.

use std::collections::HashSet;
use std::io::{self, BufReader};

use cache_core::Error;

use crate::files::{EntryFiles, RecordRead};
use crate::layout::{self, CacheFile};
use crate::read::check_header;

#[derive(Debug)]
pub(crate) enum Checked {
    Whole,
    Damaged(String),
    /// Gone, or not an entry of this version: nothing to say of it.
    NotAnEntry,
}

impl EntryFiles {
    /// Checks the entry of `key` completely, the data against its digest
    /// included, reading the file in pieces: memory stays small whatever
    /// the entry's size.
    pub(crate) fn check_whole(&self, key: &str) -> Checked {
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Missing | RecordRead::OtherVersion { .. }) => return Checked::NotAnEntry,
            Err(RecordRead::Invalid(e) | RecordRead::Unreadable(e)) => return Checked::Damaged(e.to_string()),
        };
        let path = self.layout.array(key, record.result.is_archive());
        let (file, meta) = match layout::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Checked::NotAnEntry,
            Err(e) => return Checked::Damaged(format!("could not open {}: {e}", path.display())),
        };
        let mut reader = match check_header(&record, file, &meta) {
            Ok(file) => BufReader::with_capacity(1 << 20, file),
            Err(reason) => return Checked::Damaged(reason),
        };
        let mut hasher = blake3::Hasher::new();
        if let Err(e) = hasher.update_reader(&mut reader) {
            return Checked::Damaged(format!("could not read {}: {e}", path.display()));
        }
        if *hasher.finalize().as_bytes() != record.data_digest {
            return Checked::Damaged("its data does not match the digest stored with it".to_owned());
        }
        Checked::Whole
    }

    /// The keys of the entries on disk with both files (regular files).
    pub(crate) fn keys_on_disk(&self) -> Result<Vec<String>, Error> {
        let names: HashSet<String> =
            self.layout.list()?.into_iter().filter(|l| l.is_file).filter_map(|l| l.name).collect();
        let mut keys: Vec<String> = names
            .iter()
            .filter_map(|n| match CacheFile::parse(n) {
                Some(CacheFile::Record(key)) if layout::data_names(key).iter().any(|n| names.contains(n)) => {
                    Some(key.to_owned())
                }
                _ => None,
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}
