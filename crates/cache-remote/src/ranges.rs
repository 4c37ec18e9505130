//! An entry object opened for reads of its parts (see
//! `cache_core::opened`): one ranged GET of its first bytes (its record
//! comes with them, as metadata), one GET of its block digests; then each
//! read is one ranged GET of the blocks it touches, pinned to the version
//! opened (`If-Match`).

use std::sync::Arc;

use async_trait::async_trait;
use cache_core::blocks::{has_blocks, BlockDigests};
use cache_core::opened::FIRST_READ;
use cache_core::{Error, Found, Key, Place};
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use crate::check::{self, Got};
use crate::opening::{open, Opening, MAX_PREAMBLE};
use crate::RemoteCache;

/// An entry object, read by range.
#[derive(Debug)]
struct ObjectRanges {
    store: Arc<dyn ObjectStore>,
    path: Path,
    url: String,
    location: String,
    e_tag: Option<String>,
}

#[async_trait]
impl cache_core::RangeSource for ObjectRanges {
    async fn read_at(&self, offset: u64, dests: &mut [&mut [u8]]) -> Result<(), Error> {
        let len: u64 = dests.iter().map(|d| d.len() as u64).sum();
        if len == 0 {
            return Ok(());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            if_match: self.e_tag.clone(),
            ..Default::default()
        };
        let changed =
            || Error::Damaged { place: self.place(), reason: "it was removed or replaced since it was opened".into() };
        let got = match self.store.get_opts(&self.path, options).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }) => {
                return Err(changed())
            }
            Err(e) => return Err(crate::error::of(&self.location, "read part of an entry", e)),
        };
        let mut stream = got.into_stream();
        let (mut piece, mut at) = (0, 0);
        let mut filled = 0u64;
        while let Some(chunk) =
            stream.try_next().await.map_err(|e| crate::error::of(&self.location, "read part of an entry", e))?
        {
            let mut chunk = &chunk[..];
            filled += chunk.len() as u64;
            if filled > len {
                break;
            }
            while !chunk.is_empty() {
                let dest = &mut dests[piece];
                let n = (dest.len() - at).min(chunk.len());
                dest[at..at + n].copy_from_slice(&chunk[..n]);
                (at, chunk) = (at + n, &chunk[n..]);
                if at == dest.len() {
                    (piece, at) = (piece + 1, 0);
                }
            }
        }
        if filled != len {
            return Err(Error::Damaged {
                place: self.place(),
                reason: format!("the store answered bytes {offset}..{} with {filled} bytes", offset + len),
            });
        }
        Ok(())
    }

    fn place(&self) -> Place {
        Place::Object(self.url.clone())
    }
}

impl RemoteCache {
    /// What opening the entry of `key` in the form `archive` (`.npz`, else
    /// `.npy`) needs: its record and first bytes, and its block digests if
    /// it has them. Err for an object that is not a whole entry.
    pub(crate) async fn find(&self, key: &Key, archive: bool) -> Result<Option<Result<Found, Error>>, Error> {
        let path = self.names.entry(key, archive);
        // Headers are a few hundred bytes: the longest one allowed takes a second GET.
        let mut want = FIRST_READ;
        let (meta, start, opening) = loop {
            let range = Some(GetRange::Bounded(0..want));
            let got = match self.store.get_opts(&path, GetOptions { range, ..Default::default() }).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.err("open an entry")(e)),
            };
            let (meta, attributes) = (got.meta.clone(), got.attributes.clone());
            let start = got.bytes().await.map_err(self.err("open an entry"))?.to_vec();
            let complete = start.len() as u64 == meta.size;
            match open(&attributes, &start, meta.size, complete || want >= MAX_PREAMBLE as u64) {
                Opening::NeedMore if want < MAX_PREAMBLE as u64 => want = MAX_PREAMBLE as u64,
                opening => break (meta, start, opening),
            }
        };
        let (size, e_tag) = (meta.size, meta.e_tag.clone());
        let modified = std::time::SystemTime::from(meta.last_modified);
        let opened = match opening {
            Opening::Entry(opened) => opened,
            Opening::Damaged(reason) => {
                if let Some(tag) = e_tag {
                    cache_core::lock(&self.damaged).insert(*key, (path.clone(), tag));
                }
                return Ok(Some(Err(Error::Damaged { place: Place::Object(self.url_of(&path)), reason })));
            }
            Opening::OtherVersion | Opening::NeedMore => return Ok(None),
        };
        if self.expired(key, modified).await {
            return Ok(None);
        }
        let body_len = size - opened.preamble;
        let blocks = if has_blocks(body_len) { self.stored_blocks(key, body_len).await? } else { None };
        let source = ObjectRanges {
            store: Arc::clone(&self.store),
            url: self.url_of(&path),
            path,
            location: self.location.clone(),
            e_tag,
        };
        self.note_use(key, modified);
        Ok(Some(Ok(Found { record: Arc::new(opened.record), start, file_len: size, blocks, source: Box::new(source) })))
    }

    /// Puts `blocks` (a whole entry's, made by a verify) in place of those
    /// stored for `key` when they differ, or are missing; removes stored
    /// ones an entry of one block does not have.
    pub(crate) async fn restore_blocks(&self, key: &Key, blocks: Option<BlockDigests>) -> Result<(), Error> {
        let path = self.names.blocks(key);
        let stored = match &blocks {
            Some(b) => self.stored_blocks(key, b.body_len()).await?,
            None => self.store.head(&path).await.ok().map(|_| Vec::new()),
        };
        let done = match (blocks.map(|b| b.encode()), stored) {
            (Some(b), stored) if stored.as_ref() != Some(&b) => {
                self.store.put(&path, PutPayload::from(b)).await.map(drop)
            }
            (None, Some(_)) => self.store.delete(&path).await,
            _ => Ok(()),
        };
        done.map_err(self.err("write block digests"))
    }

    /// The block digests stored for `key`, if any, of at most the length
    /// those of `body_len` bytes take (checked when they are used).
    async fn stored_blocks(&self, key: &Key, body_len: u64) -> Result<Option<Vec<u8>>, Error> {
        let cap = BlockDigests::encoded_len(body_len);
        let options = GetOptions { range: Some(GetRange::Bounded(0..cap + 1)), ..Default::default() };
        match check::get(self.store.as_ref(), &self.names.blocks(key), options).await {
            Ok(Got::Object(got)) => Ok(Some(got.bytes().await.map_err(self.err("read block digests"))?.to_vec())),
            // Missing or empty: none, which reads make.
            Ok(Got::Judged(_)) => Ok(None),
            Err(e) => Err(self.err("read block digests")(e)),
        }
    }
}
