//! The napi binding: converts JS values to and from the pure-Rust crates and
//! nothing more. Argument checking that users see happens in the TS layer;
//! what reaches here is checked again so a bad call is an Error, never UB.

use napi::bindgen_prelude::*;
use napi::ScopedTask;
use std::sync::atomic::{AtomicUsize, Ordering};
use napi_derive::napi;

use cache_key::{Key, Splice};
use cache_store::{CacheDir as Store, Claim, EntryRow, Lease, Limits, LoadedArray, Lookup, PruneReport, Wait};
use npy_format::{Dtype, Header};

/// Arrays up to this size are copied into a V8-owned ArrayBuffer: cheaper
/// than an external buffer with a finalizer, and the copy is tiny.
const COPY_BELOW: usize = 64 * 1024;

/// The largest external ArrayBuffer the runtime accepts (Node < 22 caps it
/// at 4 GiB, the Buffer limit); larger arrays are copied into V8 memory.
/// Set once from `buffer.constants.MAX_LENGTH` by the TS layer.
static MAX_EXTERNAL: AtomicUsize = AtomicUsize::new(1 << 32);

/// Tells the binding the runtime's Buffer size limit.
#[napi]
pub fn set_max_external_length(bytes: f64) {
    if bytes.is_finite() && bytes > 0.0 {
        MAX_EXTERNAL.store(bytes.min(usize::MAX as f64) as usize, Ordering::Relaxed);
    }
}

fn failure(e: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

/// Runs work on a libuv thread, turning a panic into an Error: napi-rs
/// catches panics only on the JS thread (`catch_unwind` on exports), and one
/// unwinding out of a pool thread would abort the process.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(failure(format!("panic in the native core: {what}")))
    })
}

/// A bad key is the caller's mistake; anything else is a failure.
fn store_error(e: cache_store::StoreError) -> Error {
    match e {
        cache_store::StoreError::BadKey(_) => invalid(e.to_string()),
        e => failure(e),
    }
}

fn invalid(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

fn header(shape: Vec<i64>, dtype: &str, fortran_order: bool) -> Result<Header> {
    let dtype = Dtype::parse(dtype).map_err(|e| invalid(e.to_string()))?;
    let shape = shape
        .into_iter()
        .map(|d| u64::try_from(d).map_err(|_| invalid(format!("shape has a negative dimension {d}"))))
        .collect::<Result<Vec<u64>>>()?;
    Ok(Header { dtype, shape, fortran_order })
}

/// The bytes of a JS TypedArray, usable off the main thread. Sound because
/// the TS layer keeps the array referenced until the task's promise settles
/// and V8 never moves an ArrayBuffer's backing store (asking napi for the
/// data pointer moves a small on-heap array off the heap for good).
#[derive(Clone, Copy)]
struct JsBytes {
    ptr: usize,
    len: usize,
}

impl JsBytes {
    fn of(view: &TypedArray) -> JsBytes {
        JsBytes { ptr: view.arraybuffer.as_ptr() as usize, len: view.arraybuffer.len() }
    }

    /// # Safety
    /// The array must still be alive and not detached (see the type's docs).
    unsafe fn get<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
        }
    }
}

/// `{ buffer, shape, dtype, fortranOrder, mapped }` over the array's memory:
/// small arrays are copied into V8; large ones hand their buffer or memory
/// map to the ArrayBuffer, which frees it when collected.
fn array_object<'env>(env: &'env Env, array: LoadedArray) -> Result<Object<'env>> {
    let header = array.header().clone();
    let mapped = matches!(array, LoadedArray::Mapped(_));
    let max_external = MAX_EXTERNAL.load(Ordering::Relaxed);
    let buffer = match array {
        LoadedArray::Read(a) if a.data.len() < COPY_BELOW || a.data.len() > max_external => {
            ArrayBuffer::copy_from(env, a.data.as_slice())?
        }
        LoadedArray::Mapped(m) if m.data_len() > max_external => ArrayBuffer::copy_from(env, m.data())?,
        LoadedArray::Read(a) => {
            let (ptr, len) = (a.data.as_ptr() as *mut u8, a.data.len());
            // SAFETY: the buffer moves into the finalizer hint; its heap memory does not move with it.
            unsafe { ArrayBuffer::from_external(env, ptr, len, a.data, |_, data| drop(data))? }
        }
        LoadedArray::Mapped(mut m) => {
            let (ptr, len) = (m.data_ptr(), m.data_len());
            // SAFETY: as above: the mapping lives in the hint until V8 frees the ArrayBuffer.
            unsafe { ArrayBuffer::from_external(env, ptr, len, m, |_, map| drop(map))? }
        }
    };
    let mut obj = Object::new(env)?;
    obj.set("buffer", buffer)?;
    obj.set("shape", header.shape.iter().map(|&d| d as f64).collect::<Vec<f64>>())?;
    obj.set("dtype", header.dtype.descr())?;
    obj.set("fortranOrder", header.fortran_order)?;
    obj.set("mapped", mapped)?;
    Ok(obj)
}

/// `known`: the caller has this entry's metadata from an earlier load, so
/// it is sent again (as `meta`) only if it was read from disk this time;
/// otherwise `meta` is null.
fn lookup_object<'env>(env: &'env Env, lookup: Lookup, known: bool) -> Result<Object<'env>> {
    let mut obj = Object::new(env)?;
    match lookup {
        Lookup::Hit(entry) => {
            obj.set("status", "hit")?;
            if known && !entry.meta_read {
                obj.set("meta", Null)?;
            } else {
                obj.set("meta", String::from_utf8_lossy(&entry.meta).into_owned())?;
            }
            obj.set("array", array_object(env, entry.array)?)?;
        }
        Lookup::Miss => obj.set("status", "miss")?,
        Lookup::Damaged(e) => {
            obj.set("status", "damaged")?;
            obj.set("reason", e.to_string())?;
        }
    }
    Ok(obj)
}

/// Reads a .npy file into a fresh buffer (one copy, from the kernel).
#[napi(catch_unwind, ts_return_type = "{ buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean }")]
pub fn read_npy_file<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
    let array = npy_format::read_npy(path.as_ref()).map_err(failure)?;
    array_object(env, LoadedArray::Read(array))
}

/// Writes `data` (any TypedArray, its bytes as they are) as a .npy file.
#[napi(catch_unwind)]
pub fn write_npy_file(path: String, data: TypedArray, shape: Vec<i64>, dtype: String, fortran_order: bool) -> Result<()> {
    let header = header(shape, &dtype, fortran_order)?;
    npy_format::write_npy(path.as_ref(), &header, &data.arraybuffer).map_err(failure)
}

fn splices(buffers: &[TypedArray], offsets: &[u32]) -> Result<Vec<(usize, JsBytes)>> {
    if buffers.len() != offsets.len() {
        return Err(invalid(format!("{} buffers but {} offsets", buffers.len(), offsets.len())));
    }
    Ok(offsets.iter().zip(buffers).map(|(&o, b)| (o as usize, JsBytes::of(b))).collect())
}

fn hash(structure: &[u8], splices: &[(usize, JsBytes)]) -> Result<String> {
    // SAFETY: the arrays are alive for the duration of the call (sync) or task (async).
    let splices: Vec<Splice> = splices.iter().map(|&(offset, b)| Splice { offset, bytes: unsafe { b.get() } }).collect();
    Key::from_parts(structure, &splices).map(|k| k.to_hex()).map_err(|e| invalid(e.to_string()))
}

/// BLAKE3 key of `structure` with `buffers[i]` spliced in at `offsets[i]`,
/// read in place from the JS memory.
#[napi(catch_unwind)]
pub fn hash_key(structure: &[u8], buffers: Vec<TypedArray>, offsets: Vec<u32>) -> Result<String> {
    hash(structure, &splices(&buffers, &offsets)?)
}

pub struct HashTask {
    structure: Vec<u8>,
    splices: Vec<(usize, JsBytes)>,
}

impl ScopedTask<'_> for HashTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> Result<String> {
        guarded(|| hash(&self.structure, &self.splices))
    }

    fn resolve(&mut self, _env: &Env, key: String) -> Result<String> {
        Ok(key)
    }
}

/// `hashKey` on the libuv thread pool. The caller keeps `buffers`
/// referenced and unchanged until the promise settles.
#[napi(catch_unwind, ts_return_type = "Promise<string>")]
pub fn hash_key_async(structure: &[u8], buffers: Vec<TypedArray>, offsets: Vec<u32>) -> Result<AsyncTask<HashTask>> {
    Ok(AsyncTask::new(HashTask { structure: structure.to_vec(), splices: splices(&buffers, &offsets)? }))
}

/// Whether a file of this name shows that its directory is a cache (the
/// index or an entry's file), for tools that must not open a foreign one.
#[napi]
pub fn marks_a_cache(name: String) -> bool {
    cache_store::marks_a_cache(&name)
}

/// Panics on purpose, on the JS thread or (with `onPool`) on the libuv
/// pool, so tests can prove a panic in the core reaches JS as an Error
/// instead of aborting the process. Not part of the public API.
#[napi(catch_unwind, ts_return_type = "Promise<void> | void")]
pub fn panic_for_tests(on_pool: bool) -> Option<AsyncTask<PanicTask>> {
    if on_pool {
        Some(AsyncTask::new(PanicTask))
    } else {
        panic!("a deliberate panic in the native core")
    }
}

pub struct PanicTask;

impl ScopedTask<'_> for PanicTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        guarded(|| panic!("a deliberate panic on the thread pool"))
    }

    fn resolve(&mut self, _env: &Env, _: ()) -> Result<()> {
        Ok(())
    }
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
    known: bool,
}

impl<'task> ScopedTask<'task> for LoadTask {
    type Output = Lookup;
    type JsValue = Object<'task>;

    fn compute(&mut self) -> Result<Lookup> {
        guarded(|| self.store.load(&self.key, self.map).map_err(|e| invalid(e.to_string())))
    }

    fn resolve(&mut self, env: &'task Env, lookup: Lookup) -> Result<Object<'task>> {
        lookup_object(env, lookup, self.known)
    }
}

pub struct StoreTask {
    store: Store,
    key: String,
    header: Header,
    data: JsBytes,
    meta: String,
    function: String,
}

impl ScopedTask<'_> for StoreTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        // SAFETY: the TS layer keeps the result array referenced until the promise settles.
        let data = unsafe { self.data.get() };
        guarded(|| self.store.store(&self.key, &self.header, data, self.meta.as_bytes(), &self.function).map_err(failure))
    }

    fn resolve(&mut self, _env: &Env, _: ()) -> Result<()> {
        Ok(())
    }
}


#[napi]
impl CacheDir {
    /// Errors if the path exists and is not a directory; creates nothing.
    /// With `map`, hits are memory-mapped where the data can be used in place.
    #[napi(constructor, catch_unwind)]
    pub fn new(path: String, map: Option<bool>, limits: Option<CacheLimits>) -> Result<Self> {
        let limits = limits.map(CacheLimits::into_limits).transpose()?.unwrap_or_default();
        Ok(CacheDir { store: Store::open(path).map_err(failure)?.with_limits(limits), map: map.unwrap_or(false) })
    }

    #[napi(catch_unwind, ts_return_type = "{ status: 'hit'; meta: string | null; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; reason: string }")]
    /// With `known`, `meta` is null when the metadata file is unchanged since
    /// this object last read it.
    pub fn load<'env>(&self, env: &'env Env, key: String, known: bool) -> Result<Object<'env>> {
        let lookup = self.store.load(&key, self.map).map_err(|e| invalid(e.to_string()))?;
        lookup_object(env, lookup, known)
    }

    /// `load` on the libuv thread pool.
    #[napi(catch_unwind, ts_return_type = "Promise<{ status: 'hit'; meta: string | null; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean } } | { status: 'miss' } | { status: 'damaged'; reason: string }>")]
    pub fn load_async(&self, key: String, known: bool) -> AsyncTask<LoadTask> {
        AsyncTask::new(LoadTask { store: self.store.clone(), key, map: self.map, known })
    }

    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn store(&self, key: String, data: TypedArray, shape: Vec<i64>, dtype: String, fortran_order: bool, meta: String, function_name: String) -> Result<()> {
        let header = header(shape, &dtype, fortran_order)?;
        self.store.store(&key, &header, &data.arraybuffer, meta.as_bytes(), &function_name).map_err(failure)
    }

    /// `store` on the libuv thread pool. The caller keeps `data` referenced
    /// and unchanged until the promise settles.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    #[allow(clippy::too_many_arguments)]
    pub fn store_async(&self, key: String, data: TypedArray, shape: Vec<i64>, dtype: String, fortran_order: bool, meta: String, function_name: String) -> Result<AsyncTask<StoreTask>> {
        let header = header(shape, &dtype, fortran_order)?;
        Ok(AsyncTask::new(StoreTask { store: self.store.clone(), key, header, data: JsBytes::of(&data), meta, function: function_name }))
    }

    /// Removes what the cache wrote; returns how many files.
    #[napi(catch_unwind)]
    pub fn clear(&self, remove_dir: bool) -> Result<u32> {
        let report = self.store.clear(remove_dir).map_err(failure)?;
        Ok(report.removed_files as u32)
    }

    /// Turns the recording of hits as uses off or on: for the benchmark
    /// that measures what recording costs. Not part of the public API.
    #[napi(catch_unwind)]
    pub fn set_recording(&self, on: bool) {
        self.store.set_recording(on)
    }

    /// Writes uses and hit/miss counts held in memory to the index, waiting
    /// for another process's transaction at most `waitMs` (0: not at all;
    /// omitted: as long as any write).
    #[napi(catch_unwind)]
    pub fn flush(&self, wait_ms: Option<f64>) -> Result<()> {
        let wait = match wait_ms {
            None => Wait::AsNeeded,
            Some(ms) if ms > 0.0 => Wait::AtMost(std::time::Duration::from_millis(ms.min(1e9) as u64)),
            Some(_) => Wait::Never,
        };
        self.store.flush(wait).map_err(failure)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> Result<CacheTotals> {
        let t = self.store.stats().map_err(failure)?;
        Ok(CacheTotals { entries: t.entries as f64, bytes: t.bytes as f64, hits: t.hits as f64, misses: t.misses as f64 })
    }

    /// Every entry the index knows, most recently used first.
    #[napi(catch_unwind)]
    pub fn entries(&self) -> Result<Vec<IndexedEntry>> {
        Ok(self.store.entries().map_err(failure)?.into_iter().map(IndexedEntry::from).collect())
    }

    /// Reconciles the index with the files and removes entries until
    /// `limits` hold (the cache's own limits when omitted).
    #[napi(catch_unwind)]
    pub fn prune(&self, limits: Option<CacheLimits>, on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>) -> Result<PruneSummary> {
        let limits = match limits {
            Some(l) => l.into_limits()?,
            None => self.store.limits(),
        };
        let mut failed = None;
        let mut progress = |done: u64, total: u64| {
            if let (Some(f), None) = (&on_progress, &failed) {
                failed = f.call((done as f64, total as f64).into()).err();
            }
        };
        let report = self.store.prune(&limits, &mut progress).map_err(failure)?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(PruneSummary::from(report))
    }

    /// Removes the entry of `key`; says whether there was one.
    #[napi(catch_unwind)]
    pub fn remove(&self, key: String) -> Result<bool> {
        self.store.remove(&key).map_err(store_error)
    }

    /// Whether a load of `key` would hit, without loading or counting it.
    #[napi(catch_unwind)]
    pub fn contains(&self, key: String) -> Result<bool> {
        self.store.contains(&key).map_err(store_error)
    }

    /// Takes the compute-once lease of `key`, or says who holds it: its
    /// `host pid`, and whether that is this process.
    #[napi(catch_unwind, ts_return_type = "ComputeLease | { holder: string; thisProcess: boolean }")]
    pub fn claim(&self, key: String, stale_after_ms: f64) -> Result<Either<ComputeLease, LeaseHolder>> {
        let stale_after = std::time::Duration::from_millis(stale_after_ms.max(1.0) as u64);
        Ok(match self.store.claim(&key, stale_after).map_err(store_error)? {
            Claim::Taken(lease) => Either::A(ComputeLease { lease: Some(lease) }),
            Claim::Held { holder, this_process } => Either::B(LeaseHolder { holder, this_process }),
        })
    }
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

/// Limits as JS numbers (bytes, entries, milliseconds).
#[napi(object)]
pub struct CacheLimits {
    pub max_bytes: Option<f64>,
    pub max_entries: Option<f64>,
    pub max_age: Option<f64>,
}

impl CacheLimits {
    fn into_limits(self) -> Result<Limits> {
        let count = |name: &str, v: Option<f64>| -> Result<Option<u64>> {
            match v {
                None => Ok(None),
                Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v as u64)),
                Some(v) if v == f64::INFINITY => Ok(None),
                Some(v) => Err(invalid(format!("{name} must be a non-negative number, got {v}"))),
            }
        };
        Ok(Limits {
            max_bytes: count("maxBytes", self.max_bytes)?,
            max_entries: count("maxEntries", self.max_entries)?,
            // The index counts microseconds.
            max_age: count("maxAge", self.max_age)?.map(|ms| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
        })
    }
}

#[napi(object)]
pub struct CacheTotals {
    pub entries: f64,
    pub bytes: f64,
    pub hits: f64,
    pub misses: f64,
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
        let shape = r.shape.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|d| d.parse::<f64>().ok()).collect();
        IndexedEntry {
            key: r.key,
            function: r.function,
            dtype: r.dtype,
            shape,
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
