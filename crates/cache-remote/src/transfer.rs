//! Moving an entry's bytes. A hit is one GET of the first part (all of a
//! small entry), then ranged GETs of the rest in parallel, pinned to the
//! version the first one saw (`If-Match`), each copied from the socket's
//! buffers straight into its place in the caller's memory. A store is one
//! create-only PUT of the preamble and the caller's own bytes, not copied;
//! beyond `multipart_from`, a multipart upload of slices of them.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::sync::Arc;

use npy_format::NpyArray;
use object_store::path::Path;
use object_store::{
    Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions,
    PutPayload, PutResult,
};

use cache_core::EntryRecord;

use crate::opening::{open, Opened, Opening, MAX_PREAMBLE};
use crate::record_meta;
use cache_core::blocks as block_digest;

/// How objects are cut into requests.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// The first GET asks for this much: any header, and all of a small entry.
    pub first_part: u64,
    /// The size of each further ranged GET and of each upload part.
    pub part_size: u64,
    /// Requests in flight for one object.
    pub concurrency: usize,
    /// Objects larger than this are uploaded in parts, `concurrency` at a
    /// time (at most 5 GiB, S3's largest single PUT).
    pub multipart_from: u64,
}

/// The most parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// The largest object one PUT publishes at a store of `scheme`: 5 GiB on
/// S3 and GCS, 5000 MiB on Azure (Put Blob).
pub fn max_single_put(scheme: &str) -> u64 {
    if scheme == "az" {
        5000 << 20
    } else {
        5 << 30
    }
}

impl Default for Transfer {
    fn default() -> Transfer {
        Transfer { first_part: 8 << 20, part_size: 16 << 20, concurrency: 8, multipart_from: 64 << 20 }
    }
}

impl Transfer {
    /// The plan for a store of `scheme`. Only S3's multipart completion is
    /// made create-only (see `create_only`): elsewhere one conditional PUT
    /// publishes entries up to the largest it takes.
    pub fn for_scheme(scheme: &str) -> Transfer {
        let multipart_from = if scheme == "s3" { Transfer::default().multipart_from } else { max_single_put(scheme) };
        Transfer { multipart_from, ..Transfer::default() }
    }
}

/// What a GET of an entry's object found.
#[derive(Debug)]
pub(crate) enum Fetched<B> {
    Missing,
    /// An object of another version of the cache: a miss, not replaced.
    OtherVersion,
    /// An object that is not a whole entry; `e_tag` is the version a store may replace.
    Damaged {
        reason: String,
        e_tag: Option<String>,
    },
    Found {
        /// Of an archive, its first member's header over all that follows
        /// its preamble (see `cache_core::Entry`).
        array: NpyArray<B>,
        record: Arc<EntryRecord>,
        members: Vec<npy_format::NpzMember>,
        /// When the store last wrote the object.
        modified: std::time::SystemTime,
    },
}

/// Why a fetch failed: the store (retryable, fail open) or the caller's memory.
#[derive(Debug)]
pub(crate) enum FetchError {
    Store(object_store::Error),
    Memory(npy_format::Error),
}

impl From<object_store::Error> for FetchError {
    fn from(e: object_store::Error) -> FetchError {
        FetchError::Store(e)
    }
}

pub(crate) async fn fetch<B: AsMut<[u8]> + AsRef<[u8]>>(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    t: &Transfer,
    alloc: impl FnOnce(usize) -> Result<B, npy_format::Error>,
) -> Result<Fetched<B>, FetchError> {
    let first = match store
        .get_opts(path, GetOptions { range: Some(GetRange::Bounded(0..t.first_part)), ..Default::default() })
        .await
    {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
        // An empty object has no range to read (416): it is damaged, not an outage.
        Err(e) => match store.head(path).await {
            Ok(meta) if meta.size == 0 => {
                return Ok(Fetched::Damaged { reason: "it is an empty object".into(), e_tag: meta.e_tag });
            }
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            _ => return Err(e.into()),
        },
    };
    let (size, e_tag) = (first.meta.size, first.meta.e_tag.clone());
    let modified = std::time::SystemTime::from(first.meta.last_modified);
    let damaged = |reason: String| Ok(Fetched::Damaged { reason, e_tag: e_tag.clone() });
    let first_range = first.range.clone();
    if first_range.start != 0 {
        return damaged(format!("the store answered the first range with {first_range:?}"));
    }
    let attributes = first.attributes.clone();
    let mut stream = first.into_stream();
    // As much of the first part as it takes to decode the header (usually its first chunk).
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut complete = false;
    let opened = loop {
        match open(&attributes, &contiguous_start(&chunks, MAX_PREAMBLE), size, complete) {
            Opening::Entry(opened) => break opened,
            Opening::OtherVersion => return Ok(Fetched::OtherVersion),
            Opening::Damaged(reason) => return damaged(reason),
            Opening::NeedMore => {}
        }
        match stream.try_next().await? {
            Some(chunk) => chunks.push(chunk),
            None => complete = true,
        }
    };
    let (preamble, data_len) = (opened.preamble, opened.data_len);
    if first_range.end > size || first_range.end < preamble.min(size) {
        return damaged(format!("the store answered the first range with {first_range:?} of {size} bytes"));
    }
    let len =
        usize::try_from(data_len).map_err(|_| FetchError::Memory(npy_format::Error::AllocFailed { len: data_len }))?;
    let mut data = alloc(len).map_err(FetchError::Memory)?;
    if data.as_mut().len() != len {
        return Err(FetchError::Memory(npy_format::Error::AllocFailed { len: data_len }));
    }
    // Every write goes through disjoint slices of this pointer: the rest of
    // the object in ranges, each on a task of its own (so their copies and
    // page faults run on several threads), the first part here.
    let base = data.as_mut().as_mut_ptr() as usize;
    let mut ranges = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(t.concurrency.max(1)));
    // Ranges in data offsets. With block digests, they end on block
    // boundaries, and a range that is a whole block hashes it as it lands.
    let block = t.part_size.max(1);
    let by_blocks = block_digest::usable(block) && data_len > block;
    let first_data_end = first_range.end.max(preamble) - preamble;
    let mut start = first_data_end;
    while start < data_len {
        let end = if by_blocks { (start / block + 1) * block } else { start + block }.min(data_len);
        let whole_block = (by_blocks && start % block == 0).then_some(start);
        let dest = Lent { ptr: base + start as usize, len: (end - start) as usize };
        let (store, path, if_match, permits) = (Arc::clone(store), path.clone(), e_tag.clone(), Arc::clone(&permits));
        let object_range = preamble + start..preamble + end;
        ranges.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let filled = fill_range(store.as_ref(), &path, object_range, if_match, dest).await?;
            // SAFETY: this task's own part, filled and no longer written.
            let cv = whole_block
                .filter(|_| filled)
                .map(|at| (at / block, block_digest::block_cv(at, unsafe { dest.slice() })));
            Ok::<_, object_store::Error>((filled, cv))
        });
        start = end;
    }
    let first_dest = Lent { ptr: base, len: (first_range.end.max(preamble) - preamble) as usize };
    let first_part = fill_first(&mut stream, chunks, preamble, first_range.end, first_dest).await;
    // No task may outlive this call: they write into `data`.
    if first_part.is_err() {
        ranges.abort_all();
    }
    let mut whole = true;
    let mut failed = None;
    let mut cvs = vec![None; if by_blocks { data_len.div_ceil(block) as usize } else { 0 }];
    while let Some(joined) = ranges.join_next().await {
        match joined {
            Ok(Ok((filled, cv))) => {
                whole &= filled;
                if let Some((i, cv)) = cv {
                    cvs[i as usize] = Some(cv);
                }
            }
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) if e.is_cancelled() => {}
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    whole &= first_part?;
    match failed {
        None => {}
        // Removed (prune, invalidate) or replaced (a damaged entry's repair)
        // while we read: no entry to return, and no outage.
        Some(object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }) => {
            return Ok(Fetched::Missing)
        }
        Some(e) => return Err(e.into()),
    }
    if !whole {
        return damaged("the store sent a range of the wrong length".into());
    }
    // Every byte is checked: the network and the store are outside what the cache can trust.
    let digest = if by_blocks {
        // The blocks the first part began: hashed now, the rest as they landed.
        let all = data.as_ref();
        let cvs: Vec<_> = (cvs.iter().enumerate())
            .map(|(i, cv)| {
                let at = i as u64 * block;
                cv.unwrap_or_else(|| block_digest::block_cv(at, &all[at as usize..(at + block).min(data_len) as usize]))
            })
            .collect();
        block_digest::root(data_len, block, &cvs)
    } else {
        cache_core::data_digest(data.as_ref())
    };
    if let Err(why) = opened.check(None) {
        return damaged(why);
    }
    if digest != opened.record.data_digest {
        return damaged("its data does not match the digest stored with it".into());
    }
    let members = match &opened.archive {
        Some(preamble) => match cache_core::open_archive(&opened.record, preamble, data.as_ref(), false) {
            Ok(members) => members,
            Err(why) => return damaged(why),
        },
        None => vec![],
    };
    let Opened { record, header, stored_order, .. } = *opened;
    let record = Arc::new(record);
    Ok(Fetched::Found { array: NpyArray { header, data, stored_order }, record, modified, members })
}

/// A part of the caller's buffer, written by one task. Sound because parts
/// are disjoint and `fetch` joins every task before it returns the buffer.
#[derive(Clone, Copy)]
struct Lent {
    ptr: usize,
    len: usize,
}

impl Lent {
    /// # Safety
    /// See the type's docs: one writer per part, within the buffer's life.
    unsafe fn slice<'a>(self) -> &'a mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.len) }
    }
}

/// Copies the first part's data (what follows the preamble) into `dest`:
/// the chunks already read, then the rest of the stream. Says whether the
/// part was exactly `end` bytes long.
async fn fill_first(
    stream: &mut futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    read: Vec<Bytes>,
    preamble: u64,
    end: u64,
    dest: Lent,
) -> Result<bool, object_store::Error> {
    // SAFETY: the first part's slice, written only here.
    let dest = unsafe { dest.slice() };
    let mut at = 0u64;
    let mut copy = |chunk: &[u8]| {
        let chunk_end = at + chunk.len() as u64;
        if chunk_end > end {
            return false;
        }
        if chunk_end > preamble {
            let skip = preamble.saturating_sub(at) as usize;
            let to = (at.max(preamble) - preamble) as usize;
            dest[to..to + chunk.len() - skip].copy_from_slice(&chunk[skip..]);
        }
        at = chunk_end;
        true
    };
    for chunk in &read {
        if !copy(chunk) {
            return Ok(false);
        }
    }
    drop(read);
    while let Some(chunk) = stream.try_next().await? {
        if !copy(&chunk) {
            return Ok(false);
        }
    }
    Ok(at == end)
}

/// GETs `range` of the version `if_match` into `dest`; says whether it
/// came exactly `dest.len` bytes long.
async fn fill_range(
    store: &dyn ObjectStore,
    path: &Path,
    range: std::ops::Range<u64>,
    if_match: Option<String>,
    dest: Lent,
) -> Result<bool, object_store::Error> {
    let options = GetOptions { range: Some(GetRange::Bounded(range)), if_match, ..Default::default() };
    let mut stream = store.get_opts(path, options).await?.into_stream();
    // SAFETY: this task's own part of the buffer (see `Lent`).
    let dest = unsafe { dest.slice() };
    let mut filled = 0;
    while let Some(chunk) = stream.try_next().await? {
        let end = filled + chunk.len();
        if end > dest.len() {
            return Ok(false);
        }
        dest[filled..end].copy_from_slice(&chunk);
        filled = end;
    }
    Ok(filled == dest.len())
}

/// The first bytes of `chunks`, at most `max`, in one piece.
fn contiguous_start(chunks: &[Bytes], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        if out.len() >= max {
            break;
        }
        out.extend_from_slice(&c[..c.len().min(max - out.len())]);
    }
    out
}

/// Writes an entry's object, `parts` in order, with `mode`. The parts are
/// the caller's memory, sent without a copy.
pub(crate) async fn publish(
    store: &dyn ObjectStore,
    path: &Path,
    t: &Transfer,
    parts: Vec<Bytes>,
    record: &EntryRecord,
    mode: PutMode,
) -> Result<PutResult, object_store::Error> {
    let attributes = record_meta::attributes_of(record);
    if parts.iter().map(|p| p.len() as u64).sum::<u64>() <= t.multipart_from {
        let payload = PutPayload::from_iter(parts);
        return store.put_opts(path, payload, PutOptions { mode, attributes, ..Default::default() }).await;
    }
    let replacing = match mode {
        PutMode::Update(v) => v.e_tag,
        _ => None,
    };
    publish_in_parts(store, path, t, parts, attributes, replacing).await
}

/// A multipart upload, skipped if the object is there already. On S3 its
/// completion is create-only (see `create_only`): of two concurrent
/// uploads of one key, the first to complete wins. Elsewhere (GCS, Azure)
/// the later completion replaces the earlier, whole object by whole
/// object, and readers, pinned to one version, never mix them.
async fn publish_in_parts(
    store: &dyn ObjectStore,
    path: &Path,
    t: &Transfer,
    parts: Vec<Bytes>,
    attributes: Attributes,
    replacing: Option<String>,
) -> Result<PutResult, object_store::Error> {
    match store.head(path).await {
        // A damaged version to replace: completions are create-only, so it
        // goes first. Should another writer publish in between, theirs stands.
        Ok(meta) if replacing.is_some() && meta.e_tag == replacing => store.delete(path).await?,
        Ok(_) => {
            return Err(object_store::Error::AlreadyExists { path: path.to_string(), source: "already stored".into() })
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut upload = store.put_multipart_opts(path, PutMultipartOptions { attributes, ..Default::default() }).await?;
    // Parts of at least 5 MiB (S3's least but for the last), and at most 10,000 of them.
    let total = parts.iter().map(|p| p.len() as u64).sum::<u64>();
    let part = t.part_size.max(5 << 20).max(total.div_ceil(MAX_PARTS)) as usize;
    let payloads = cut(&parts, part);
    let sent: Result<Vec<()>, _> = futures_util::stream::iter(payloads)
        .map(|p| upload.put_part(p))
        .buffer_unordered(t.concurrency.max(1))
        .try_collect()
        .await;
    match sent {
        Ok(_) => match upload.complete().await {
            Err(object_store::Error::Precondition { path, source }) => {
                Err(object_store::Error::AlreadyExists { path, source })
            }
            done => done,
        },
        Err(e) => {
            // Parts of an aborted upload are never visible; abort frees them now.
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

/// Upload parts of `len` bytes each (the last one shorter) cut from the
/// object's `pieces` in order: a part may take several pieces, or slices
/// of one, never a copy.
fn cut(pieces: &[Bytes], len: usize) -> Vec<PutPayload> {
    let mut parts = Vec::new();
    let mut part: Vec<Bytes> = Vec::new();
    let mut filled = 0;
    for piece in pieces {
        let mut at = 0;
        while at < piece.len() {
            let take = (len - filled).min(piece.len() - at);
            part.push(piece.slice(at..at + take));
            (at, filled) = (at + take, filled + take);
            if filled == len {
                parts.push(PutPayload::from_iter(std::mem::take(&mut part)));
                filled = 0;
            }
        }
    }
    if filled > 0 || parts.is_empty() {
        parts.push(PutPayload::from_iter(part));
    }
    parts
}

#[cfg(test)]
mod cut_tests {
    use super::*;

    #[test]
    fn parts_are_cut_across_pieces_in_order_at_the_part_length() {
        let pieces: Vec<Bytes> =
            [3usize, 10, 0, 4].iter().enumerate().map(|(i, &n)| Bytes::from(vec![i as u8; n])).collect();
        let parts = cut(&pieces, 5);
        let lens: Vec<usize> = parts.iter().map(|p| p.content_length()).collect();
        assert_eq!(lens, [5, 5, 5, 2]);
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().flat_map(|b| b.to_vec())).collect();
        let whole: Vec<u8> = pieces.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(joined, whole);
    }
}
