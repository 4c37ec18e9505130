//! Moving an entry's bytes. A hit is one GET of the first part (all of a
//! small entry), then ranged GETs of the rest in parallel, pinned to the
//! version the first one saw (`If-Match`), each copied from the socket's
//! buffers straight into its place in the caller's memory. A store is one
//! create-only PUT of the preamble and the caller's own bytes, not copied;
//! beyond `multipart_from`, a multipart upload of slices of them.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use npy_format::{decode_header_bytes, Header, NpyArray};
use object_store::path::Path;
use object_store::{
    Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions,
    PutPayload, PutResult,
};

use cache_store::EntryRecord;

use crate::record_meta;

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

/// S3's largest single PUT, and most parts of one upload.
pub const MAX_SINGLE_PUT: u64 = 5 << 30;
const MAX_PARTS: u64 = 10_000;

impl Default for Transfer {
    fn default() -> Transfer {
        Transfer { first_part: 8 << 20, part_size: 16 << 20, concurrency: 8, multipart_from: 64 << 20 }
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
        array: NpyArray<B>,
        record: EntryRecord,
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
    store: &dyn ObjectStore,
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
    let record = match record_meta::record_of(&first.attributes) {
        Ok(r) => r,
        Err(cache_store::RecordProblem::Invalid(why)) => return damaged(format!("its record {why}")),
        Err(_) => return Ok(Fetched::OtherVersion),
    };
    let first_range = first.range.clone();
    let chunks: Vec<Bytes> = first.into_stream().try_collect().await?;
    let got: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    if first_range.start != 0 || got != first_range.end {
        return damaged(format!("the store sent {got} bytes of a range it gave as {first_range:?}"));
    }
    let head = contiguous_start(&chunks, 64 * 1024);
    let (mut header, preamble) = match decode_header_bytes(&head) {
        Ok(h) => h,
        Err(npy_format::Error::TruncatedHeader) if (head.len() as u64) < got => {
            match decode_header_bytes(&contiguous_start(&chunks, usize::MAX)) {
                Ok(h) => h,
                Err(e) => return damaged(format!("its .npy header is not valid: {e}")),
            }
        }
        Err(e) => return damaged(format!("its .npy header is not valid: {e}")),
    };
    let data_len = match header.data_len() {
        Ok(n) if preamble.checked_add(n) == Some(size) => n,
        Ok(n) => {
            return damaged(format!(
                "it holds {} bytes of data where its header needs {n}",
                size.saturating_sub(preamble)
            ))
        }
        Err(e) => return damaged(e.to_string()),
    };
    let len =
        usize::try_from(data_len).map_err(|_| FetchError::Memory(npy_format::Error::AllocFailed { len: data_len }))?;
    let mut data = alloc(len).map_err(FetchError::Memory)?;
    let dest = data.as_mut();
    // The first part's data, then the rest in ranges of the same version.
    let mut at = 0u64;
    for chunk in &chunks {
        let end = at + chunk.len() as u64;
        if end > preamble {
            let skip = preamble.saturating_sub(at) as usize;
            let to = (at.max(preamble) - preamble) as usize;
            dest[to..to + chunk.len() - skip].copy_from_slice(&chunk[skip..]);
        }
        at = end;
    }
    drop(chunks);
    if got < size {
        let rest_from = (got - preamble) as usize;
        let if_match = e_tag.clone();
        let parts = dest[rest_from..].chunks_mut(t.part_size as usize).enumerate().map(|(i, slice)| {
            let start = got + i as u64 * t.part_size;
            let range = start..start + slice.len() as u64;
            let options = GetOptions {
                range: Some(GetRange::Bounded(range.clone())),
                if_match: if_match.clone(),
                ..Default::default()
            };
            async move {
                let mut stream = store.get_opts(path, options).await?.into_stream();
                let mut filled = 0;
                while let Some(chunk) = stream.try_next().await? {
                    let end = filled + chunk.len();
                    if end > slice.len() {
                        return Ok::<bool, object_store::Error>(false);
                    }
                    slice[filled..end].copy_from_slice(&chunk);
                    filled = end;
                }
                Ok(filled == slice.len())
            }
        });
        let whole: Vec<bool> =
            match futures_util::stream::iter(parts).buffer_unordered(t.concurrency.max(1)).try_collect().await {
                Ok(w) => w,
                // Removed (prune, invalidate) or replaced (a damaged entry's
                // repair) while we read: no entry to return, and no outage.
                Err(object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }) => {
                    return Ok(Fetched::Missing)
                }
                Err(e) => return Err(e.into()),
            };
        if whole.contains(&false) {
            return damaged("the store sent a range of the wrong length".into());
        }
    }
    let stored_order = header.dtype.byte_order;
    header.dtype = header.dtype.native();
    // Every byte is checked: the network and the store are outside what the cache can trust.
    if let Err(why) = record.check(&header, stored_order, Some(data.as_ref())) {
        return damaged(why);
    }
    Ok(Fetched::Found { array: NpyArray { header, data, stored_order }, record, modified })
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

/// Writes an entry's object with `mode`. `data` is the caller's memory,
/// sent without a copy.
pub(crate) async fn publish(
    store: &dyn ObjectStore,
    path: &Path,
    t: &Transfer,
    header: &Header,
    data: Bytes,
    record: &EntryRecord,
    mode: PutMode,
) -> Result<PutResult, object_store::Error> {
    let preamble = Bytes::from(header.encode());
    let attributes = record_meta::attributes_of(record);
    if (preamble.len() + data.len()) as u64 <= t.multipart_from {
        let payload = PutPayload::from_iter([preamble, data]);
        return store.put_opts(path, payload, PutOptions { mode, attributes, ..Default::default() }).await;
    }
    let replacing = match mode {
        PutMode::Update(v) => v.e_tag,
        _ => None,
    };
    publish_in_parts(store, path, t, preamble, data, attributes, replacing).await
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
    preamble: Bytes,
    data: Bytes,
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
    let total = (preamble.len() + data.len()) as u64;
    let part = t.part_size.max(5 << 20).max(total.div_ceil(MAX_PARTS)) as usize;
    // Part boundaries in the object: the preamble rides with the first.
    let first_data = part.saturating_sub(preamble.len()).min(data.len());
    let mut payloads = vec![PutPayload::from_iter([preamble, data.slice(..first_data)])];
    let mut at = first_data;
    while at < data.len() {
        let end = (at + part).min(data.len());
        payloads.push(PutPayload::from(data.slice(at..end)));
        at = end;
    }
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
