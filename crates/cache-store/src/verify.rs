//! Verifying an entry completely: its data against its digest, read in
//! pieces, so memory stays small whatever the entry's size.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Seek, Write};

use cache_core::blocks::{BlockDigests, BlockHasher};
use cache_core::Error;

use crate::files::{EntryFiles, RecordRead};
use crate::layout::{self, CacheFile, Part};
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
    /// the entry's size. With `restore`, block digests found missing or
    /// wrong beside a whole entry are written again.
    pub(crate) fn check_whole(&self, key: &str, restore: bool) -> Checked {
        let stamp = self.record_stamp(key);
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
        let mut file = match check_header(&record, file, &meta) {
            Ok(file) => file,
            Err(reason) => return Checked::Damaged(reason),
        };
        let unreadable = |e: io::Error| Checked::Damaged(format!("could not read {}: {e}", path.display()));
        let body_len = match file.stream_position() {
            Ok(at) => meta.len().saturating_sub(at),
            Err(e) => return unreadable(e),
        };
        let mut hasher = BlockHasher::new(body_len);
        let mut piece = vec![0; 1 << 20];
        loop {
            match file.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => hasher.update(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return unreadable(e),
            }
        }
        match hasher.finish() {
            Some((digest, blocks)) if digest == record.data_digest => {
                // Not over an entry a store put in place meanwhile.
                if restore && self.record_stamp(key) == stamp {
                    self.restore_blocks(key, blocks);
                }
                Checked::Whole
            }
            _ => Checked::Damaged("its data does not match the digest stored with it".to_owned()),
        }
    }

    /// Puts `blocks`, a whole entry's, in place of the block digests beside
    /// it when they differ or are missing; removes ones it does not have.
    /// Best effort: reads check block digests before they use them.
    fn restore_blocks(&self, key: &str, blocks: Option<BlockDigests>) {
        let path = self.layout.blocks(key);
        let Some(blocks) = blocks else {
            let _ = fs::remove_file(&path);
            return;
        };
        let want = blocks.encode();
        let have = layout::read_capped(&path, want.len() as u64).ok().map(|(bytes, _)| bytes);
        if have.as_deref() == Some(&want[..]) {
            return;
        }
        let temp = self.layout.temp(key, Part::Blocks);
        let written = layout::create_new(&temp).and_then(|mut f| f.write_all(&want).map_err(Error::io("write", &temp)));
        if written.is_err() || fs::rename(&temp, &path).is_err() {
            let _ = fs::remove_file(&temp);
        }
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
