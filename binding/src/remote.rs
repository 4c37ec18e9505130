//! The `RemoteCache` class: an object-store location
//! (`cache_remote::RemoteCache`) as JS sees it. Requests block the calling
//! thread: the JS thread for the synchronous methods, the libuv pool for
//! the `...Async` ones.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::ScopedTask;

use cache_remote::{RemoteCache as Remote, RemoteClaim, RemoteLease, Settings, Stored, MAX_SINGLE_PUT};
use cache_store::Lookup;
use npy_format::Header;

use crate::arrays::{ArrayLayout, JsBytes};
use crate::cache_dir::{lookup_object, CacheLimits, CacheTotals, EntryArg, IndexedEntry, OwnedEntry};
use crate::errors::{Failure, Outcome};
use crate::guard::{guarded, run};
use crate::jobs::{with_progress, PoolCallback, PoolJob, StopFlag};
use crate::memory;

/// Settings that override the standard environment's (`AWS_*`).
#[napi(object)]
#[derive(Default)]
pub struct RemoteSettings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: Option<bool>,
    pub timeout_ms: Option<f64>,
    pub max_retries: Option<u32>,
    pub retry_timeout_ms: Option<f64>,
    /// Objects larger than this many bytes are uploaded in parts.
    pub multipart_from: Option<f64>,
    /// The size of each ranged GET and upload part.
    pub part_size: Option<f64>,
}

fn ms(v: Option<f64>) -> Option<Duration> {
    v.filter(|v| v.is_finite() && *v > 0.0).map(|v| Duration::from_secs_f64(v / 1000.0))
}

/// A caller's TypedArray as `Bytes`, without a copy. The TS layer keeps the
/// array referenced and unchanged until the call returns or its promise
/// settles, and the call does not return before every clone of the bytes
/// is gone: the HTTP client can go on sending a body after the server has
/// answered (an early 412 or 503), so the store's return is not enough.
struct LentBytes {
    bytes: JsBytes,
    returned: Arc<Returned>,
}

impl AsRef<[u8]> for LentBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the type's docs and `JsBytes`.
        unsafe { self.bytes.get() }
    }
}

impl Drop for LentBytes {
    fn drop(&mut self) {
        *self.returned.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.returned.cv.notify_all();
    }
}

/// Set when the last clone of lent bytes is dropped.
#[derive(Default)]
struct Returned {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Returned {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn lent(data: &TypedArray) -> (Bytes, Arc<Returned>) {
    let returned = Arc::new(Returned::default());
    (Bytes::from_owner(LentBytes { bytes: JsBytes::of(data), returned: returned.clone() }), returned)
}

/// An object-store location used as a cache.
#[napi]
pub struct RemoteCache {
    remote: Arc<Remote>,
}

pub struct RemoteLoadTask {
    remote: Arc<Remote>,
    key: String,
}

impl<'task> ScopedTask<'task> for RemoteLoadTask {
    type Output = Outcome<Lookup>;
    type JsValue = Object<'task>;

    fn compute(&mut self) -> Result<Outcome<Lookup>> {
        Ok(guarded(|| Ok(self.remote.load_into(&self.key, memory::own_lazily)?)))
    }

    fn resolve(&mut self, env: &'task Env, lookup: Outcome<Lookup>) -> Result<Object<'task>> {
        lookup_object(env, lookup.map_err(|f| f.into_js(env))?)
    }
}

pub struct RemoteClaimTask {
    remote: Arc<Remote>,
    key: String,
    stale_after: Duration,
}

impl<'task> ScopedTask<'task> for RemoteClaimTask {
    type Output = Outcome<RemoteClaim>;
    type JsValue = Either<RemoteComputeLease, Object<'task>>;

    fn compute(&mut self) -> Result<Outcome<RemoteClaim>> {
        Ok(guarded(|| Ok(self.remote.claim(&self.key, self.stale_after)?)))
    }

    fn resolve(&mut self, env: &'task Env, claim: Outcome<RemoteClaim>) -> Result<Self::JsValue> {
        claim_value(env, claim.map_err(|f| f.into_js(env))?)
    }
}

fn claim_value(env: &Env, claim: RemoteClaim) -> Result<Either<RemoteComputeLease, Object<'_>>> {
    Ok(match claim {
        RemoteClaim::Taken(lease) => Either::A(RemoteComputeLease { lease: Some(lease) }),
        RemoteClaim::Held { holder, this_process } => {
            let mut obj = Object::new(env)?;
            obj.set("holder", holder)?;
            obj.set("thisProcess", this_process)?;
            Either::B(obj)
        }
    })
}

fn stale_after_of(ms_value: f64) -> Outcome<Duration> {
    ms(Some(ms_value)).ok_or_else(|| Failure::invalid(format!("staleAfter must be a positive number, got {ms_value}")))
}

pub struct RemoteStoreTask {
    remote: Arc<Remote>,
    key: String,
    header: Header,
    data: Bytes,
    returned: Arc<Returned>,
    entry: OwnedEntry,
}

impl ScopedTask<'_> for RemoteStoreTask {
    type Output = Outcome<Stored>;
    type JsValue = bool;

    fn compute(&mut self) -> Result<Outcome<Stored>> {
        let data = std::mem::take(&mut self.data);
        let stored = guarded(|| Ok(self.remote.store(&self.key, &self.header, data, &self.entry.borrow())?));
        self.returned.wait();
        Ok(stored)
    }

    fn resolve(&mut self, env: &Env, outcome: Outcome<Stored>) -> Result<bool> {
        outcome.map(|s| s == Stored::Published).map_err(|f| f.into_js(env))
    }
}

#[napi]
impl RemoteCache {
    /// Opens `location` (`s3://bucket/prefix`, `gs://...`, `az://...`); makes no request.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: &Env, location: String, settings: Option<RemoteSettings>) -> Result<Self> {
        run(env, || {
            let s = settings.unwrap_or_default();
            let settings = Settings {
                endpoint: s.endpoint,
                region: s.region,
                access_key_id: s.access_key_id,
                secret_access_key: s.secret_access_key,
                session_token: s.session_token,
                allow_http: s.allow_http,
                timeout: ms(s.timeout_ms),
                max_retries: s.max_retries.map(|n| n as usize),
                retry_timeout: ms(s.retry_timeout_ms),
            };
            let remote = Remote::open(&location, &settings)?;
            let mut transfer = remote.transfer();
            if let Some(v) = s.multipart_from.filter(|v| *v >= 0.0) {
                // The largest single PUT: S3's and GCS's 5 GiB, Azure's 5000 MiB.
                let cap = if location.starts_with("az://") { 5000 << 20 } else { MAX_SINGLE_PUT };
                transfer.multipart_from = v.min(cap as f64) as u64;
            }
            if let Some(v) = s.part_size.filter(|v| *v >= (1 << 20) as f64) {
                transfer.part_size = v as u64;
            }
            Ok(RemoteCache { remote: Arc::new(remote.with_transfer(transfer)) })
        })
    }

    #[napi(
        catch_unwind,
        ts_return_type = "{ status: 'hit'; class: string; result: 'typedarray' | 'ndarray'; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; error: Error & { code: string } }"
    )]
    pub fn load<'env>(&self, env: &'env Env, key: String) -> Result<Object<'env>> {
        let lookup = run(env, || Ok(self.remote.load_into(&key, memory::own_lazily)?))?;
        lookup_object(env, lookup)
    }

    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ status: 'hit'; class: string; result: 'typedarray' | 'ndarray'; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; error: Error & { code: string } }>"
    )]
    pub fn load_async(&self, key: String) -> AsyncTask<RemoteLoadTask> {
        AsyncTask::new(RemoteLoadTask { remote: self.remote.clone(), key })
    }

    /// Publishes the entry; true if this call published it, false if
    /// another writer's entry was there first.
    #[napi(catch_unwind)]
    pub fn store(
        &self,
        env: &Env,
        key: String,
        data: TypedArray,
        layout: ArrayLayout,
        entry: EntryArg,
    ) -> Result<bool> {
        run(env, || {
            let entry = OwnedEntry::of(entry)?;
            let header = layout.header()?;
            let (bytes, returned) = lent(&data);
            let stored = self.remote.store(&key, &header, bytes, &entry.borrow());
            returned.wait();
            Ok(stored? == Stored::Published)
        })
    }

    /// `store` on the libuv pool. The caller keeps `data` referenced and
    /// unchanged until the promise settles.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn store_async(
        &self,
        env: &Env,
        key: String,
        data: TypedArray,
        layout: ArrayLayout,
        entry: EntryArg,
    ) -> Result<AsyncTask<RemoteStoreTask>> {
        let task = run(env, || {
            let (header, entry) = (layout.header()?, OwnedEntry::of(entry)?);
            let (data, returned) = lent(&data);
            Ok(RemoteStoreTask { remote: self.remote.clone(), key, header, data, returned, entry })
        })?;
        Ok(AsyncTask::new(task))
    }

    #[napi(catch_unwind)]
    pub fn contains(&self, env: &Env, key: String) -> Result<bool> {
        run(env, || Ok(self.remote.contains(&key)?))
    }

    #[napi(catch_unwind)]
    pub fn remove(&self, env: &Env, key: String) -> Result<bool> {
        run(env, || Ok(self.remote.remove(&key)?))
    }

    /// Takes the compute-once lease of `key`, or says who holds it.
    #[napi(catch_unwind, ts_return_type = "RemoteComputeLease | { holder: string; thisProcess: boolean }")]
    pub fn claim<'env>(
        &self,
        env: &'env Env,
        key: String,
        stale_after_ms: f64,
    ) -> Result<Either<RemoteComputeLease, Object<'env>>> {
        let claim = run(env, || Ok(self.remote.claim(&key, stale_after_of(stale_after_ms)?)?))?;
        claim_value(env, claim)
    }

    /// `claim` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<RemoteComputeLease | { holder: string; thisProcess: boolean }>")]
    pub fn claim_async(&self, env: &Env, key: String, stale_after_ms: f64) -> Result<AsyncTask<RemoteClaimTask>> {
        let stale_after = run(env, || stale_after_of(stale_after_ms))?;
        Ok(AsyncTask::new(RemoteClaimTask { remote: self.remote.clone(), key, stale_after }))
    }

    /// Entries and bytes from a listing; hits and misses of this process.
    #[napi(catch_unwind)]
    pub fn stats(
        &self,
        env: &Env,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<CacheTotals> {
        let remote = &self.remote;
        with_progress(env, on_progress, stop, |p| remote.totals(p).map(|t| totals_with_counts(remote, t)))
    }

    /// `stats` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<CacheTotals>")]
    pub fn stats_async(
        &self,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> AsyncTask<PoolJob<CacheTotals>> {
        let remote = self.remote.clone();
        PoolJob::new(on_progress, stop, move |p| remote.totals(p).map(|t| totals_with_counts(&remote, t)))
    }

    /// Every entry, most recently used first, with its function, dtype and shape.
    #[napi(catch_unwind)]
    pub fn entries(
        &self,
        env: &Env,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<Vec<IndexedEntry>> {
        with_progress(env, on_progress, stop, |p| self.remote.entries(true, p).map(indexed_entries))
    }

    /// `entries` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<IndexedEntry>>")]
    pub fn entries_async(
        &self,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> AsyncTask<PoolJob<Vec<IndexedEntry>>> {
        let remote = self.remote.clone();
        PoolJob::new(on_progress, stop, move |p| remote.entries(true, p).map(indexed_entries))
    }

    #[napi(catch_unwind)]
    pub fn prune(
        &self,
        env: &Env,
        limits: CacheLimits,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<RemotePruneSummary> {
        let limits = run(env, || limits.into_limits())?;
        with_progress(env, on_progress, stop, |p| self.remote.prune(&limits, p)).map(RemotePruneSummary::from)
    }

    /// `prune` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<RemotePruneSummary>")]
    pub fn prune_async(
        &self,
        env: &Env,
        limits: CacheLimits,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<AsyncTask<PoolJob<RemotePruneSummary>>> {
        let limits = run(env, || limits.into_limits())?;
        let remote = self.remote.clone();
        Ok(PoolJob::new(on_progress, stop, move |p| remote.prune(&limits, p).map(RemotePruneSummary::from)))
    }

    /// Removes every object the cache wrote; returns how many.
    #[napi(catch_unwind)]
    pub fn clear(
        &self,
        env: &Env,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<f64> {
        with_progress(env, on_progress, stop, |p| self.remote.clear(p)).map(|n| n as f64)
    }

    /// `clear` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn clear_async(
        &self,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> AsyncTask<PoolJob<f64>> {
        let remote = self.remote.clone();
        PoolJob::new(on_progress, stop, move |p| remote.clear(p).map(|n| n as f64))
    }
}

fn totals_with_counts(remote: &Remote, totals: cache_remote::RemoteTotals) -> CacheTotals {
    let (hits, misses) = remote.counts();
    CacheTotals { entries: totals.entries as f64, bytes: totals.bytes as f64, hits: hits as f64, misses: misses as f64 }
}

fn indexed_entries(entries: Vec<cache_remote::RemoteEntry>) -> Vec<IndexedEntry> {
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
    entries
        .into_iter()
        .map(|e| IndexedEntry {
            key: e.key,
            function: e.function.unwrap_or_default(),
            dtype: e.dtype.unwrap_or_default(),
            shape: e.shape.unwrap_or_default().into_iter().map(|d| d as f64).collect(),
            bytes: e.bytes as f64,
            created: ms(e.created),
            last_used: ms(e.last_used),
        })
        .collect()
}

#[napi(object)]
pub struct RemotePruneSummary {
    pub removed_entries: f64,
    pub removed_bytes: f64,
    pub removed_leftovers: f64,
    pub entries: f64,
    pub bytes: f64,
}

impl From<cache_remote::RemotePruneReport> for RemotePruneSummary {
    fn from(r: cache_remote::RemotePruneReport) -> RemotePruneSummary {
        RemotePruneSummary {
            removed_entries: r.removed_entries as f64,
            removed_bytes: r.removed_bytes as f64,
            removed_leftovers: r.removed_leftovers as f64,
            entries: r.totals.entries as f64,
            bytes: r.totals.bytes as f64,
        }
    }
}

/// A held compute-once lease in the object store; `release` gives it up.
#[napi]
pub struct RemoteComputeLease {
    lease: Option<RemoteLease>,
}

#[napi]
impl RemoteComputeLease {
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}
