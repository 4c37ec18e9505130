//! An entry opened for reads of its parts (see `cache_core::opened`): its
//! record, its data file's first bytes and its block digests, read here;
//! then each read is a positioned read of the open file, so a store that
//! replaces the entry meanwhile (by rename) changes nothing it reads.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cache_core::blocks::{has_blocks, BlockDigests};
use cache_core::{blocking, Error, Found, Place};

use crate::files::{EntryFiles, RecordRead};
use crate::layout;

/// An entry's open data file.
#[derive(Debug)]
struct FileRanges {
    file: fs::File,
    path: PathBuf,
}

#[async_trait]
impl cache_core::RangeSource for FileRanges {
    async fn read_at(&self, offset: u64, dests: &mut [&mut [u8]]) -> Result<(), Error> {
        blocking(|| {
            let mut at = offset;
            for dest in dests.iter_mut() {
                npy_format::read_exact_at(&self.file, dest, at).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => Error::Damaged {
                        place: self.place(),
                        reason: format!("it was cut short since it was opened (at byte {at})"),
                    },
                    _ => Error::io("read", &self.path)(e),
                })?;
                at += dest.len() as u64;
            }
            Ok(())
        })
    }

    fn place(&self) -> Place {
        Place::File(self.path.clone())
    }
}

/// A file's first bytes, up to 64 KiB: any header the cache writes. The
/// longest header allowed takes a second read.
fn first_bytes(file: &fs::File, len: u64, archive: bool) -> io::Result<Vec<u8>> {
    let read = |n: u64| {
        let mut start = vec![0; n.min(len) as usize];
        npy_format::read_exact_at(file, &mut start, 0).map(|()| start)
    };
    let start = read(cache_core::opened::FIRST_READ)?;
    let truncated = if archive {
        matches!(npy_format::npz_member_at(&start, 0), Err(npy_format::Error::TruncatedHeader))
    } else {
        matches!(npy_format::decode_header_bytes(&start), Err(npy_format::Error::TruncatedHeader))
    };
    if truncated && (start.len() as u64) < len {
        return read(npy_format::MAX_NPZ_PREAMBLE as u64);
    }
    Ok(start)
}

impl EntryFiles {
    /// What opening the entry of `key` (a checked key) needs; None on a
    /// miss, Err for files that are not a whole entry.
    pub(crate) fn find(&self, key: &str) -> Option<Result<Found, Error>> {
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Missing | RecordRead::OtherVersion { .. }) => return None,
            Err(RecordRead::Invalid(e) | RecordRead::Unreadable(e)) => return Some(Err(e)),
        };
        let path = self.layout.array(key, record.result.is_archive());
        let (file, meta) = match layout::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(Error::io("open", &path)(e))),
        };
        let start = match first_bytes(&file, meta.len(), record.result.is_archive()) {
            Ok(start) => start,
            Err(e) => return Some(Err(Error::io("read", &path)(e))),
        };
        // The body's length is known once the header is decoded: the cap
        // here is the longest the file's length allows.
        let blocks = has_blocks(meta.len())
            .then(|| layout::read_capped(&self.layout.blocks(key), BlockDigests::encoded_len(meta.len())).ok())
            .flatten()
            .map(|(bytes, _)| bytes);
        Some(Ok(Found {
            record: Arc::clone(&record),
            start,
            file_len: meta.len(),
            blocks,
            source: Box::new(FileRanges { file, path }),
        }))
    }
}
