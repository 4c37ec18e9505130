//! Judging an entry's object without keeping its array: the checks a load
//! makes, for `has` (one ranged GET: the header, and the data of a small
//! entry), and all of them, for `verify` (the object streamed through the
//! hasher, so memory stays small whatever its size).

use std::time::SystemTime;

use bytes::BytesMut;
use cache_core::blocks::{BlockDigests, BlockHasher};
use cache_core::record::VERIFY_DATA_UP_TO;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::opening::{open, Opening, MAX_PREAMBLE};

/// What the checks found.
#[derive(Debug)]
pub(crate) enum Checked {
    /// No such object, or one of another version of the cache.
    NotAnEntry,
    Damaged(String),
    Whole {
        /// When the store last wrote the object.
        modified: SystemTime,
    },
}

/// The checks a load makes without reading a large entry's data: the
/// record, the header and the object's length, and a small entry's data
/// against its digest.
pub(crate) async fn probe(store: &dyn ObjectStore, path: &Path) -> Result<Checked, object_store::Error> {
    let read = (MAX_PREAMBLE + VERIFY_DATA_UP_TO) as u64;
    let options = GetOptions { range: Some(GetRange::Bounded(0..read)), ..Default::default() };
    let got = match get(store, path, options).await? {
        Got::Object(got) => got,
        Got::Judged(checked) => return Ok(checked),
    };
    let (meta, attributes) = (got.meta.clone(), got.attributes.clone());
    let bytes = got.bytes().await?;
    let complete = bytes.len() as u64 == meta.size;
    let opened = match open(&attributes, &bytes, meta.size, complete) {
        Opening::Entry(opened) => opened,
        Opening::OtherVersion => return Ok(Checked::NotAnEntry),
        Opening::Damaged(reason) => return Ok(Checked::Damaged(reason)),
        Opening::NeedMore => return Ok(Checked::Damaged("its header is cut short".into())),
    };
    let small = opened.data_len <= VERIFY_DATA_UP_TO as u64;
    let data = small.then(|| bytes.get(opened.preamble as usize..)).flatten();
    if small && data.is_none_or(|d| d.len() as u64 != opened.data_len) {
        return Ok(Checked::Damaged("the store sent a range of the wrong length".into()));
    }
    Ok(match opened.check(data) {
        Ok(_) => Checked::Whole { modified: meta.last_modified.into() },
        Err(reason) => Checked::Damaged(reason),
    })
}

/// Every check a load makes, the data against its digest included,
/// streaming the object through the hasher; a whole entry's block digests
/// (of more than one block) beside it.
pub(crate) async fn check_whole(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<(Checked, Option<BlockDigests>), object_store::Error> {
    let got = match get(store, path, GetOptions::default()).await? {
        Got::Object(got) => got,
        Got::Judged(checked) => return Ok((checked, None)),
    };
    let (meta, attributes) = (got.meta.clone(), got.attributes.clone());
    let mut stream = got.into_stream();
    let mut start = BytesMut::new();
    let mut complete = false;
    let opened = loop {
        match open(&attributes, &start, meta.size, complete) {
            Opening::Entry(opened) => break opened,
            Opening::OtherVersion => return Ok((Checked::NotAnEntry, None)),
            Opening::Damaged(reason) => return Ok((Checked::Damaged(reason), None)),
            Opening::NeedMore => {}
        }
        match stream.try_next().await? {
            Some(chunk) => start.extend_from_slice(&chunk),
            None => complete = true,
        }
    };
    if let Err(reason) = opened.check(None) {
        return Ok((Checked::Damaged(reason), None));
    }
    let mut hasher = BlockHasher::new(opened.data_len);
    let mut seen = start.len().saturating_sub(opened.preamble as usize) as u64;
    hasher.update(&start[(opened.preamble as usize).min(start.len())..]);
    while let Some(chunk) = stream.try_next().await? {
        seen += chunk.len() as u64;
        // Hashing is work enough to keep off the runtime's request threads.
        cache_core::blocking(|| hasher.update(&chunk));
    }
    if seen != opened.data_len {
        let reason = format!("the store sent {seen} bytes of data where {} were stored", opened.data_len);
        return Ok((Checked::Damaged(reason), None));
    }
    match hasher.finish() {
        Some((digest, blocks)) if digest == opened.record.data_digest => {
            Ok((Checked::Whole { modified: meta.last_modified.into() }, blocks))
        }
        _ => Ok((Checked::Damaged("its data does not match the digest stored with it".into()), None)),
    }
}

pub(crate) enum Got {
    Object(object_store::GetResult),
    Judged(Checked),
}

/// A GET that tells a missing object, and an empty one (which has no
/// range to read: 416), from an outage.
pub(crate) async fn get(store: &dyn ObjectStore, path: &Path, options: GetOptions) -> Result<Got, object_store::Error> {
    match store.get_opts(path, options).await {
        Ok(got) => Ok(Got::Object(got)),
        Err(object_store::Error::NotFound { .. }) => Ok(Got::Judged(Checked::NotAnEntry)),
        Err(e) => match store.head(path).await {
            Ok(meta) if meta.size == 0 => Ok(Got::Judged(Checked::Damaged("it is an empty object".into()))),
            Err(object_store::Error::NotFound { .. }) => Ok(Got::Judged(Checked::NotAnEntry)),
            _ => Err(e),
        },
    }
}
