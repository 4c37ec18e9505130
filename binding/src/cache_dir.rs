//! The `CacheDir` class: a cache directory (`cache_store::CacheDir`) as JS
//! sees it. Arguments arrive checked by the TS layer; here they are only
//! converted, exactly (a count that is not a whole number is refused, not
//! truncated).

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::ScopedTask;

use cache_store::{
    ArrayClass, CacheDir as Store, Claim, Entry, EntryRow, Lease, Limits, LoadedArray, Lookup, NewEntry, PruneReport,
    ResultForm, Verify, Wait,
};
use npy_format::Header;

use crate::arrays::{array_buffer, array_object, exact_u64, max_external, ArrayLayout, JsBytes, POOL_FROM};
use crate::errors::{Failure, Outcome};
use crate::guard::{guarded, run};
use crate::jobs::{with_progress, PoolCallback, PoolJob, StopFlag};
use crate::memory::{self, ArrayMemory};

/// What the caller says of a result it stores.
#[napi(object)]
pub struct EntryArg {
    /// The cached function's name.
    pub function: String,
    #[napi(ts_type = "'typedarray' | 'ndarray'")]
    pub result: String,
    /// The typed-array class the result came in, e.g. `'Float64Array'`.
    pub class: String,
}

/// A `NewEntry` with the strings it borrows.
pub(crate) struct OwnedEntry {
    function: String,
    result: ResultForm,
    class: ArrayClass,
}

impl OwnedEntry {
    pub(crate) fn of(arg: EntryArg) -> Outcome<OwnedEntry> {
        let result = match arg.result.as_str() {
            "typedarray" => ResultForm::TypedArray,
            "ndarray" => ResultForm::NdArray,
            other => return Err(Failure::invalid(format!("result form {other:?} is not 'typedarray' or 'ndarray'"))),
        };
        let class = ArrayClass::from_name(&arg.class)
            .ok_or_else(|| Failure::invalid(format!("{:?} is not a typed-array class", arg.class)))?;
        Ok(OwnedEntry { function: arg.function, result, class })
    }

    pub(crate) fn borrow(&self) -> NewEntry<'_> {
        NewEntry { function: &self.function, result: self.result, class: self.class }
    }
}

/// Limits as JS numbers: bytes, entries, milliseconds; omitted or
/// `Infinity` for none.
#[napi(object)]
pub struct CacheLimits {
    pub max_bytes: Option<f64>,
    pub max_entries: Option<f64>,
    pub max_age: Option<f64>,
}

impl CacheLimits {
    pub(crate) fn into_limits(self) -> Outcome<Limits> {
        let count = |name: &str, v: Option<f64>| -> Outcome<Option<u64>> {
            match v {
                None => Ok(None),
                Some(v) if v == f64::INFINITY => Ok(None),
                Some(v) => exact_u64(v)
                    .map(Some)
                    .ok_or_else(|| Failure::invalid(format!("{name} must be a non-negative whole number, got {v}"))),
            }
        };
        let max_age = match self.max_age {
            None => None,
            Some(ms) if ms == f64::INFINITY => None,
            // The index counts microseconds.
            Some(ms) if ms >= 0.0 => Some((ms * 1000.0).round().min(i64::MAX as f64) as i64),
            Some(ms) => {
                return Err(Failure::invalid(format!("maxAge must be a non-negative number of milliseconds, got {ms}")))
            }
        };
        Ok(Limits {
            max_bytes: count("maxBytes", self.max_bytes)?,
            max_entries: count("maxEntries", self.max_entries)?,
            max_age,
        })
    }
}

#[napi(object)]
pub struct CacheDirOptions {
    /// Hits are memory-mapped where the data can be used in place.
    pub map: Option<bool>,
    pub limits: Option<CacheLimits>,
    /// Every load checks all its data against its digest, not just small data.
    pub verify: Option<bool>,
}

/// `{ status: 'hit', array, class, result }`, `{ status: 'miss' }` or
/// `{ status: 'damaged', error }`.
pub(crate) fn lookup_object<'env, B: Into<ArrayMemory> + AsRef<[u8]>>(
    env: &'env Env,
    lookup: Lookup<B>,
) -> Result<Object<'env>> {
    let mut obj = Object::new(env)?;
    match lookup {
        Lookup::Hit(entry) => {
            obj.set("status", "hit")?;
            obj.set("class", entry.record.class.name())?;
            obj.set("result", if entry.record.result == ResultForm::TypedArray { "typedarray" } else { "ndarray" })?;
            obj.set("array", array_object(env, entry.array)?)?;
        }
        Lookup::Miss => obj.set("status", "miss")?,
        Lookup::Damaged(e) => {
            obj.set("status", "damaged")?;
            obj.set("error", Failure::from(e).to_object(env)?)?;
        }
    }
    Ok(obj)
}

/// Writes what `load_lean`'s caller needs of a hit into `meta`: the indexes
/// of its class (in `classTable`) and dtype (in `dtypeTable`), whether it
/// was stored as an ndarray, is in Fortran order, is memory-mapped, then
/// its number of dimensions and the dimensions.
fn describe_hit<B: AsRef<[u8]>>(entry: &Entry<B>, meta: &mut [f64]) -> Outcome<()> {
    let header = entry.array.header();
    let class = ArrayClass::ALL.iter().position(|&c| c == entry.record.class);
    let dtype = npy_format::Dtype::supported().position(|d| d == header.dtype);
    let (Some(class), Some(dtype)) = (class, dtype) else {
        return Err(Failure::invalid(format!("{} is not in the dtype table", header.dtype.descr())));
    };
    let fixed = [
        class as f64,
        dtype as f64,
        f64::from(u8::from(entry.record.result == ResultForm::NdArray)),
        f64::from(u8::from(header.fortran_order)),
        f64::from(u8::from(matches!(entry.array, LoadedArray::Mapped(_)))),
        header.shape.len() as f64,
    ];
    let Some(out) = meta.get_mut(..fixed.len() + header.shape.len()) else {
        return Err(Failure::invalid(format!("meta holds {} numbers, too few for this array", meta.len())));
    };
    out[..fixed.len()].copy_from_slice(&fixed);
    for (slot, &d) in out[fixed.len()..].iter_mut().zip(&header.shape) {
        *slot = d as f64;
    }
    Ok(())
}

/// A cache directory: entries stored atomically, loaded with validation.
#[napi]
pub struct CacheDir {
    store: Store,
    map: bool,
}

pub struct LoadTask {
    store: Store,
    key: String,
    map: bool,
}

impl<'task> ScopedTask<'task> for LoadTask {
    type Output = Outcome<Lookup>;
    type JsValue = Object<'task>;

    fn compute(&mut self) -> Result<Outcome<Lookup>> {
        Ok(guarded(|| self.store.load_into(&self.key, self.map, &mut memory::own).map_err(Failure::from)))
    }

    fn resolve(&mut self, env: &'task Env, lookup: Outcome<Lookup>) -> Result<Object<'task>> {
        lookup_object(env, lookup.map_err(|f| f.into_js(env))?)
    }
}

pub struct StoreTask {
    store: Store,
    key: String,
    header: Header,
    data: JsBytes,
    entry: OwnedEntry,
}

impl ScopedTask<'_> for StoreTask {
    type Output = Outcome<()>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Outcome<()>> {
        // SAFETY: the TS layer keeps the result array referenced until the promise settles.
        let data = unsafe { self.data.get() };
        Ok(guarded(|| self.store.store(&self.key, &self.header, data, &self.entry.borrow()).map_err(Failure::from)))
    }

    fn resolve(&mut self, env: &Env, outcome: Outcome<()>) -> Result<()> {
        outcome.map_err(|f| f.into_js(env))
    }
}

#[napi]
impl CacheDir {
    /// Errors if the path exists and is not a directory; creates nothing.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: &Env, path: String, options: Option<CacheDirOptions>) -> Result<Self> {
        let (map, limits, verify) = options.map_or((None, None, None), |o| (o.map, o.limits, o.verify));
        let verify = if verify == Some(true) { Verify::All } else { Verify::Small };
        run(env, || {
            let limits = limits.map(CacheLimits::into_limits).transpose()?.unwrap_or_default();
            Ok(CacheDir {
                store: Store::open(path)?.with_limits(limits).with_verify(verify),
                map: map.unwrap_or(false),
            })
        })
    }

    #[napi(
        catch_unwind,
        ts_return_type = "{ status: 'hit'; class: string; result: 'typedarray' | 'ndarray'; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; error: Error & { code: string } }"
    )]
    pub fn load<'env>(&self, env: &'env Env, key: String) -> Result<Object<'env>> {
        let mut alloc = memory::on_js_thread(env, max_external());
        let lookup = run(env, || Ok(self.store.load_into(&key, self.map, &mut alloc)?))?;
        lookup_object(env, lookup)
    }

    /// `load` building no objects, for the sync wrapper's hits: a hit
    /// returns the ArrayBuffer and describes it in `meta` (`describe_hit`);
    /// a miss returns undefined, a damaged entry its error.
    #[napi(catch_unwind, ts_return_type = "ArrayBuffer | undefined | (Error & { code: string })")]
    pub fn load_lean<'env>(
        &self,
        env: &'env Env,
        key: String,
        mut meta: Float64ArraySlice<'env>,
    ) -> Result<Either3<ArrayBuffer<'env>, (), Object<'env>>> {
        let mut alloc = memory::on_js_thread(env, max_external());
        let lookup = run(env, || Ok(self.store.load_into(&key, self.map, &mut alloc)?))?;
        match lookup {
            Lookup::Hit(entry) => {
                // SAFETY: the caller's array, which no JS code runs on during this call.
                run(env, || describe_hit(&entry, unsafe { meta.as_mut() }))?;
                Ok(Either3::A(array_buffer(env, entry.array)?))
            }
            Lookup::Miss => Ok(Either3::B(())),
            Lookup::Damaged(e) => Ok(Either3::C(Failure::from(e).to_object(env)?)),
        }
    }

    /// `load`, on the libuv thread pool when the entry is large (else here).
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ status: 'hit'; class: string; result: 'typedarray' | 'ndarray'; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; error: Error & { code: string } }> | { status: 'hit'; class: string; result: 'typedarray' | 'ndarray'; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; error: Error & { code: string } }"
    )]
    pub fn load_async<'env>(&self, env: &'env Env, key: String) -> Result<Either<Object<'env>, AsyncTask<LoadTask>>> {
        if self.store.array_len(&key).is_some_and(|len| len < POOL_FROM as u64) {
            return self.load(env, key).map(Either::A);
        }
        Ok(Either::B(AsyncTask::new(LoadTask { store: self.store.clone(), key, map: self.map })))
    }

    #[napi(catch_unwind)]
    pub fn store(&self, env: &Env, key: String, data: TypedArray, layout: ArrayLayout, entry: EntryArg) -> Result<()> {
        run(env, || {
            let entry = OwnedEntry::of(entry)?;
            Ok(self.store.store(&key, &layout.header()?, &data.arraybuffer, &entry.borrow())?)
        })
    }

    /// `store`, on the libuv thread pool when the data is large (else
    /// here). The caller keeps `data` referenced and unchanged until the
    /// promise settles.
    #[napi(catch_unwind, ts_return_type = "Promise<void> | void")]
    pub fn store_async(
        &self,
        env: &Env,
        key: String,
        data: TypedArray,
        layout: ArrayLayout,
        entry: EntryArg,
    ) -> Result<Option<AsyncTask<StoreTask>>> {
        if data.arraybuffer.len() < POOL_FROM {
            return self.store(env, key, data, layout, entry).map(|()| None);
        }
        let task = run(env, || {
            Ok(StoreTask {
                store: self.store.clone(),
                key,
                header: layout.header()?,
                data: JsBytes::of(&data),
                entry: OwnedEntry::of(entry)?,
            })
        })?;
        Ok(Some(AsyncTask::new(task)))
    }

    /// Removes what the cache wrote; returns how many files.
    #[napi(catch_unwind)]
    pub fn clear(&self, env: &Env, remove_dir: bool) -> Result<u32> {
        run(env, || Ok(self.store.clear(remove_dir)?.removed_files as u32))
    }

    /// `clear` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn clear_async(&self, remove_dir: bool, stop: Option<&StopFlag>) -> AsyncTask<PoolJob<u32>> {
        let store = self.store.clone();
        PoolJob::new(None, stop, move |_| store.clear(remove_dir).map(|r| r.removed_files as u32))
    }

    /// Turns the recording of hits as uses off or on: for the benchmark
    /// that measures what recording costs. Not part of the public API.
    #[napi(catch_unwind)]
    pub fn set_recording(&self, on: bool) {
        self.store.set_recording(on)
    }

    /// Moves this cache's clock forward: tests of expiry use it instead of
    /// sleeping. Not part of the public API.
    #[napi(catch_unwind)]
    pub fn advance_clock(&self, ms: f64) {
        if ms.is_finite() && ms > 0.0 {
            self.store.clock().advance(Duration::from_secs_f64(ms / 1000.0));
        }
    }

    /// Writes uses and hit/miss counts held in memory to the index, waiting
    /// for another process's transaction at most `waitMs` (0: not at all;
    /// omitted: as long as any write).
    #[napi(catch_unwind)]
    pub fn flush(&self, env: &Env, wait_ms: Option<f64>) -> Result<()> {
        let wait = match wait_ms {
            None => Wait::AsNeeded,
            Some(ms) if ms > 0.0 => Wait::AtMost(Duration::from_secs_f64(ms.min(1e9) / 1000.0)),
            Some(_) => Wait::Never,
        };
        run(env, || Ok(self.store.flush(wait)?))
    }

    /// Writes pending uses and closes the index (its handles); a later call reopens it.
    #[napi(catch_unwind)]
    pub fn close(&self, env: &Env) -> Result<()> {
        run(env, || Ok(self.store.close()?))
    }

    #[napi(catch_unwind)]
    pub fn stats(&self, env: &Env) -> Result<CacheTotals> {
        run(env, || Ok(self.store.stats().map(CacheTotals::from)?))
    }

    /// `stats` on the libuv pool (it may wait for another process's write).
    #[napi(catch_unwind, ts_return_type = "Promise<CacheTotals>")]
    pub fn stats_async(&self, stop: Option<&StopFlag>) -> AsyncTask<PoolJob<CacheTotals>> {
        let store = self.store.clone();
        PoolJob::new(None, stop, move |_| store.stats().map(CacheTotals::from))
    }

    /// Every entry the index knows, most recently used first.
    #[napi(catch_unwind)]
    pub fn entries(&self, env: &Env) -> Result<Vec<IndexedEntry>> {
        run(env, || Ok(self.store.entries().map(indexed_entries)?))
    }

    /// `entries` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<IndexedEntry>>")]
    pub fn entries_async(&self, stop: Option<&StopFlag>) -> AsyncTask<PoolJob<Vec<IndexedEntry>>> {
        let store = self.store.clone();
        PoolJob::new(None, stop, move |_| store.entries().map(indexed_entries))
    }

    /// Reconciles the index with the files and removes entries until
    /// `limits` hold (the cache's own limits when omitted); stops at a
    /// batch of removals once `stop` is set.
    #[napi(catch_unwind)]
    pub fn prune(
        &self,
        env: &Env,
        limits: Option<CacheLimits>,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<PruneSummary> {
        let limits = run(env, || self.limits_or_own(limits))?;
        let report = with_progress(env, on_progress, stop, |progress| self.store.prune(&limits, progress))?;
        Ok(PruneSummary::from(report))
    }

    /// `prune` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<PruneSummary>")]
    pub fn prune_async(
        &self,
        env: &Env,
        limits: Option<CacheLimits>,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<AsyncTask<PoolJob<PruneSummary>>> {
        let limits = run(env, || self.limits_or_own(limits))?;
        let store = self.store.clone();
        Ok(PoolJob::new(on_progress, stop, move |p| store.prune(&limits, p).map(PruneSummary::from)))
    }

    /// Checks every entry completely (data included); with `remove`,
    /// removes the damaged ones; stops at an entry once `stop` is set.
    #[napi(catch_unwind)]
    pub fn verify(
        &self,
        env: &Env,
        remove: bool,
        on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<VerifySummary> {
        with_progress(env, on_progress, stop, |progress| self.store.verify(remove, progress)).map(VerifySummary::from)
    }

    /// `verify` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<VerifySummary>")]
    pub fn verify_async(
        &self,
        remove: bool,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
    ) -> AsyncTask<PoolJob<VerifySummary>> {
        let store = self.store.clone();
        PoolJob::new(on_progress, stop, move |p| store.verify(remove, p).map(VerifySummary::from))
    }

    fn limits_or_own(&self, limits: Option<CacheLimits>) -> Outcome<Limits> {
        limits.map_or_else(|| Ok(self.store.limits()), CacheLimits::into_limits)
    }

    /// Removes the entry of `key`; says whether there was one.
    #[napi(catch_unwind)]
    pub fn remove(&self, env: &Env, key: String) -> Result<bool> {
        run(env, || Ok(self.store.remove(&key)?))
    }

    /// Whether a load of `key` would find an entry, without loading or counting it.
    #[napi(catch_unwind)]
    pub fn contains(&self, env: &Env, key: String) -> Result<bool> {
        run(env, || Ok(self.store.contains(&key)?))
    }

    /// Takes the compute-once lease of `key`, or says who holds it: its
    /// `host pid`, and whether that is this process.
    #[napi(catch_unwind, ts_return_type = "ComputeLease | LeaseHolder")]
    pub fn claim(&self, env: &Env, key: String, stale_after_ms: f64) -> Result<Either<ComputeLease, LeaseHolder>> {
        let claim = run(env, || {
            if !(stale_after_ms.is_finite() && stale_after_ms > 0.0) {
                return Err(Failure::invalid(format!(
                    "staleAfter must be a positive number of milliseconds, got {stale_after_ms}"
                )));
            }
            Ok(self.store.claim(&key, Duration::from_secs_f64(stale_after_ms / 1000.0))?)
        })?;
        Ok(match claim {
            Claim::Taken(lease) => Either::A(ComputeLease { lease: Some(lease) }),
            Claim::Held { holder, this_process } => Either::B(LeaseHolder { holder, this_process }),
        })
    }
}

#[napi(object)]
pub struct VerifySummary {
    pub checked: f64,
    pub damaged: Vec<DamagedEntry>,
    pub removed: f64,
}

impl From<cache_store::VerifyReport> for VerifySummary {
    fn from(report: cache_store::VerifyReport) -> VerifySummary {
        VerifySummary {
            checked: report.checked as f64,
            damaged: report.damaged.into_iter().map(|(key, reason)| DamagedEntry { key, reason }).collect(),
            removed: report.removed as f64,
        }
    }
}

#[napi(object)]
pub struct DamagedEntry {
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

#[napi(object)]
pub struct LeaseHolder {
    pub holder: String,
    pub this_process: bool,
}

/// A held compute-once lease; `release` gives it up (also done when collected).
#[napi]
pub struct ComputeLease {
    lease: Option<Lease>,
}

#[napi]
impl ComputeLease {
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

#[napi(object)]
pub struct CacheTotals {
    pub entries: f64,
    pub bytes: f64,
    pub hits: f64,
    pub misses: f64,
}

impl From<cache_store::Totals> for CacheTotals {
    fn from(t: cache_store::Totals) -> CacheTotals {
        CacheTotals { entries: t.entries as f64, bytes: t.bytes as f64, hits: t.hits as f64, misses: t.misses as f64 }
    }
}

fn indexed_entries(rows: Vec<EntryRow>) -> Vec<IndexedEntry> {
    rows.into_iter().map(IndexedEntry::from).collect()
}

/// An index row; times in milliseconds since the epoch (fractional).
#[napi(object)]
pub struct IndexedEntry {
    pub key: String,
    pub function: String,
    pub dtype: String,
    pub shape: Vec<f64>,
    pub bytes: f64,
    pub created: f64,
    pub last_used: f64,
}

impl From<EntryRow> for IndexedEntry {
    fn from(r: EntryRow) -> IndexedEntry {
        IndexedEntry {
            key: r.key,
            function: r.function,
            dtype: r.dtype,
            shape: r.shape.iter().map(|&d| d as f64).collect(),
            bytes: r.bytes as f64,
            created: r.created as f64 / 1000.0,
            last_used: r.last_used as f64 / 1000.0,
        }
    }
}

#[napi(object)]
pub struct PruneSummary {
    pub removed_entries: f64,
    pub removed_bytes: f64,
    pub adopted: f64,
    pub dropped: f64,
    pub removed_leftovers: f64,
    pub entries: f64,
    pub bytes: f64,
}

impl From<PruneReport> for PruneSummary {
    fn from(r: PruneReport) -> PruneSummary {
        PruneSummary {
            removed_entries: r.removed_entries as f64,
            removed_bytes: r.removed_bytes as f64,
            adopted: r.adopted as f64,
            dropped: r.dropped as f64,
            removed_leftovers: r.removed_leftovers as f64,
            entries: r.totals.entries as f64,
            bytes: r.totals.bytes as f64,
        }
    }
}
