//! The memory loaded arrays are read into, chosen so that a large load costs
//! less than a plain file read in every phase of a long run:
//!
//! - Fresh memory costs a page fault per page on first write, which is most
//!   of a large read. So the memory of a collected result goes back to a
//!   small pool, and the next load of that size reads into it with no
//!   faults; buffers unused for a few seconds are unmapped.
//! - Node frees external ArrayBuffers only once the event loop turns, so a
//!   synchronous loop of loads that never yields would pile them up. When
//!   that much is waiting, sync loads read straight into an ArrayBuffer V8
//!   owns, which V8 frees as soon as it collects it.
//! - V8 is told of external buffers twice as loudly as Node alone tells
//!   it (see `external`), so it collects large garbage arrays sooner.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::sys;

use cache_core::{Filling, LoadedArray};
use npy_format::{AlignedBuf, MappedNpy, LARGE};

/// Arrays up to this size are copied into a V8-owned ArrayBuffer: cheaper
/// than an external buffer with a finalizer, and the copy is tiny.
const COPY_BELOW: usize = 64 * 1024;

/// The largest external ArrayBuffer the runtime accepts (Node < 22 caps it
/// at 4 GiB, the Buffer limit); larger arrays are copied into V8 memory.
/// Set once from `buffer.constants.MAX_LENGTH` by the TS layer.
static MAX_EXTERNAL: AtomicUsize = AtomicUsize::new(1 << 32);

fn max_external() -> usize {
    MAX_EXTERNAL.load(Ordering::Relaxed)
}

/// Tells the binding the runtime's Buffer size limit.
#[napi]
pub fn set_max_external_length(bytes: f64) {
    if bytes.is_finite() && bytes > 0.0 {
        MAX_EXTERNAL.store(bytes.min(usize::MAX as f64) as usize, Ordering::Relaxed);
    }
}

/// A loaded array's bytes.
pub(crate) enum ArrayMemory {
    /// Rust memory: small arrays are copied into V8, larger ones handed over
    /// as external ArrayBuffers ([`external`]).
    Own(AlignedBuf),
    /// An ArrayBuffer V8 owns, made for this array on the JS thread.
    Js(JsOwned),
}

pub(crate) struct JsOwned {
    value: sys::napi_value,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: V8 memory is made only by a load inline on the JS thread
// (`JsThreadAlloc`), filled there or by the load's own tasks (raw bytes,
// which V8 never moves), and handed to JS on that thread before the call
// returns; only the bytes cross threads, never the handle's use.
unsafe impl Send for ArrayMemory {}

impl AsRef<[u8]> for ArrayMemory {
    fn as_ref(&self) -> &[u8] {
        match self {
            ArrayMemory::Own(b) => b,
            // SAFETY: V8 never moves a backing store, and the ArrayBuffer is
            // alive in the current handle scope (only sync loads make one).
            ArrayMemory::Js(js) => unsafe { slice_of(js.ptr, js.len) },
        }
    }
}

impl AsMut<[u8]> for ArrayMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        match self {
            ArrayMemory::Own(b) => b,
            // SAFETY: as above, and no JS code has seen the buffer yet.
            ArrayMemory::Js(js) => unsafe { std::slice::from_raw_parts_mut(nonnull(js.ptr, js.len), js.len) },
        }
    }
}

unsafe fn slice_of<'a>(ptr: *mut u8, len: usize) -> &'a [u8] {
    unsafe { std::slice::from_raw_parts(nonnull(ptr, len), len) }
}

/// napi gives a null pointer for an empty ArrayBuffer; a slice needs a non-null one.
fn nonnull(ptr: *mut u8, len: usize) -> *mut u8 {
    if len == 0 {
        std::ptr::NonNull::dangling().as_ptr()
    } else {
        ptr
    }
}

/// Bytes handed to JS in external ArrayBuffers and not yet finalized.
static EXTERNAL: AtomicUsize = AtomicUsize::new(0);

/// Once this much external memory awaits finalization, sync loads read into
/// V8's memory instead: a sync loop that never yields holds this much at
/// most in buffers it cannot free.
const EXTERNAL_MAX: usize = 1 << 30;

/// The pool holds at most this much: an eighth of physical memory, at least
/// 512 MiB.
fn pool_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        #[cfg(unix)]
        // SAFETY: sysconf has no preconditions.
        let total = unsafe {
            (libc::sysconf(libc::_SC_PHYS_PAGES) as usize).saturating_mul(libc::sysconf(libc::_SC_PAGESIZE) as usize)
        };
        #[cfg(not(unix))]
        let total = 8usize << 30;
        (total / 8).max(512 << 20)
    })
}

/// At most this many buffers wait in the pool: one per array size a
/// program keeps loading is the common case.
const POOL_BUFFERS: usize = 4;

/// A pooled buffer unused this long is unmapped: a program done with large
/// arrays gets its memory back.
const POOL_IDLE: Duration = Duration::from_secs(5);

/// Large buffers of collected results with when they came back, oldest
/// first. They stay written (faulted in): that is what makes reuse fast.
static POOL: Mutex<Vec<(AlignedBuf, Instant)>> = Mutex::new(Vec::new());

/// Whether the thread that unmaps idle buffers is running.
static TRIMMING: AtomicBool = AtomicBool::new(false);

fn pool() -> MutexGuard<'static, Vec<(AlignedBuf, Instant)>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

impl From<AlignedBuf> for ArrayMemory {
    fn from(buf: AlignedBuf) -> ArrayMemory {
        ArrayMemory::Own(buf)
    }
}

/// A pooled buffer of exactly `len` bytes, if there is one.
fn pooled(len: usize) -> Option<AlignedBuf> {
    if len < LARGE {
        return None;
    }
    let mut pool = pool();
    let i = pool.iter().position(|(b, _)| b.len() == len)?;
    Some(pool.remove(i).0)
}

/// Memory for `len` bytes that Rust owns: a pooled buffer of that length if
/// there is one, else a fresh one, readied for how it is filled. Any thread.
pub(crate) fn own(len: usize, filling: Filling) -> std::result::Result<ArrayMemory, npy_format::Error> {
    pooled(len).map_or_else(|| cache_core::zeroed(len, filling), Ok).map(ArrayMemory::Own)
}

/// Keeps a large buffer for reuse, within the pool's bounds; frees the rest.
pub(crate) fn give_back(buf: AlignedBuf) {
    if buf.len() < LARGE || buf.len() > pool_budget() {
        return;
    }
    let mut pool = pool();
    pool.push((buf, Instant::now()));
    let mut held: usize = pool.iter().map(|(b, _)| b.len()).sum();
    while pool.len() > POOL_BUFFERS || held > pool_budget() {
        held -= pool.remove(0).0.len();
    }
    drop(pool);
    if !TRIMMING.swap(true, Ordering::AcqRel) {
        let spawned = std::thread::Builder::new().name("nfc-pool-trim".into()).spawn(trim_idle);
        if spawned.is_err() {
            TRIMMING.store(false, Ordering::Release);
        }
    }
}

/// Unmaps pooled buffers once idle; ends when the pool is empty.
fn trim_idle() {
    loop {
        std::thread::sleep(POOL_IDLE / 5);
        let mut pool = pool();
        pool.retain(|(_, since)| since.elapsed() < POOL_IDLE);
        if pool.is_empty() {
            // Under the lock: a give_back after this sees `false` and starts a new thread.
            TRIMMING.store(false, Ordering::Release);
            return;
        }
    }
}

/// Memory for a load inline on the JS thread: `own` memory while little
/// external memory awaits finalization, else a V8 ArrayBuffer. Small
/// arrays go straight into V8 memory (no copy after the read), and so do
/// arrays too large for an external buffer. On another thread, `own`.
pub(crate) struct JsThreadAlloc<'env> {
    env: &'env Env,
    thread: ThreadId,
}

// SAFETY: it calls napi only on the thread it was made on (see `alloc`).
unsafe impl Send for JsThreadAlloc<'_> {}
unsafe impl Sync for JsThreadAlloc<'_> {}

impl<'env> JsThreadAlloc<'env> {
    pub(crate) fn new(env: &'env Env) -> JsThreadAlloc<'env> {
        JsThreadAlloc { env, thread: std::thread::current().id() }
    }

    pub(crate) fn alloc(&self, len: usize, filling: Filling) -> std::result::Result<ArrayMemory, npy_format::Error> {
        if std::thread::current().id() != self.thread {
            return own(len, filling);
        }
        let piled_up = EXTERNAL.load(Ordering::Relaxed).saturating_add(len) > EXTERNAL_MAX;
        if len < COPY_BELOW || len > max_external() || piled_up {
            js_owned(self.env, len, filling).map(ArrayMemory::Js)
        } else {
            own(len, filling)
        }
    }
}

fn js_owned(env: &Env, len: usize, filling: Filling) -> std::result::Result<JsOwned, npy_format::Error> {
    let mut value = std::ptr::null_mut();
    let mut data = std::ptr::null_mut();
    // SAFETY: plain napi call on the JS thread with valid out-pointers.
    let status = unsafe { sys::napi_create_arraybuffer(env.raw(), len, &mut data, &mut value) };
    if status != sys::Status::napi_ok {
        // V8 throws a RangeError on allocation failure; ours says more.
        let mut pending = false;
        // SAFETY: as above.
        unsafe {
            sys::napi_is_exception_pending(env.raw(), &mut pending);
            if pending {
                let mut ignored = std::ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env.raw(), &mut ignored);
            }
        }
        return Err(npy_format::Error::AllocFailed { len: len as u64 });
    }
    let ptr = data.cast::<u8>();
    // Parallel writers take the faults in parallel instead.
    #[cfg(target_os = "linux")]
    if filling == Filling::InOrder {
        prefault(ptr, len);
    }
    Ok(JsOwned { value, ptr, len })
}

/// Faults in the whole pages of a large fresh buffer in one call, as
/// `AlignedBuf` does for its own.
#[cfg(target_os = "linux")]
fn prefault(ptr: *mut u8, len: usize) {
    if len < LARGE {
        return;
    }
    let page = 4096;
    let start = (ptr as usize).next_multiple_of(page);
    let end = (ptr as usize + len) & !(page - 1);
    // SAFETY: advice on whole pages inside memory we were just given; it
    // changes no contents (they are zero-filled fresh pages either way).
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE) };
}

/// The ArrayBuffer over a loaded array's memory or memory map.
pub(crate) fn array_buffer(env: &Env, array: LoadedArray<ArrayMemory>) -> Result<ArrayBuffer<'_>> {
    let max_external = max_external();
    match array {
        LoadedArray::Read(a) => into_arraybuffer(env, a.data, max_external),
        LoadedArray::Mapped(m) if m.data_len() > max_external => ArrayBuffer::copy_from(env, m.data()),
        LoadedArray::Mapped(m) => mapped(env, m),
    }
}

/// The ArrayBuffer of memory read for JS (see `into_arraybuffer`).
pub(crate) fn buffer_of(env: &Env, memory: ArrayMemory) -> Result<ArrayBuffer<'_>> {
    into_arraybuffer(env, memory, max_external())
}

/// The ArrayBuffer holding `memory`: V8's own as it is, Rust memory copied
/// (small, or too large for an external buffer) or handed over.
fn into_arraybuffer(env: &Env, memory: ArrayMemory, max_external: usize) -> Result<ArrayBuffer<'_>> {
    match memory {
        // SAFETY: a napi_value of an ArrayBuffer made in this handle scope.
        ArrayMemory::Js(js) => unsafe { ArrayBuffer::from_napi_value(env.raw(), js.value) },
        ArrayMemory::Own(buf) if buf.len() < COPY_BELOW || buf.len() > max_external => {
            let copy = ArrayBuffer::copy_from(env, &buf);
            give_back(buf);
            copy
        }
        ArrayMemory::Own(buf) => external(env, buf),
    }
}

/// An external ArrayBuffer over `buf`, whose memory returns to the pool
/// when V8 collects it.
fn external(env: &Env, buf: AlignedBuf) -> Result<ArrayBuffer<'_>> {
    let (ptr, len) = (buf.as_ptr() as *mut u8, buf.len());
    // Counted once the buffer is JS's, uncounted once it is finalized, and
    // never the other way round: a runtime without external buffers
    // finalizes inside `from_external`, and a failure there may or may not
    // have finalized. V8 refuses (aborts on) a report that takes back more
    // than was reported.
    let state = Rc::new(Cell::new(Lent::Pending));
    let seen = state.clone();
    // SAFETY: the buffer moves into the finalizer hint; its memory does not move with it.
    let made = unsafe {
        ArrayBuffer::from_external(env, ptr, len, buf, move |env, buf| {
            if seen.replace(Lent::Finalized) == Lent::Counted {
                EXTERNAL.fetch_sub(buf.len(), Ordering::Relaxed);
                let _ = env.adjust_external_memory(-(buf.len() as i64));
            }
            give_back(buf);
        })
    }?;
    if state.get() == Lent::Pending {
        state.set(Lent::Counted);
        EXTERNAL.fetch_add(len, Ordering::Relaxed);
        // Node reports the buffer's size to V8 too; reported twice, V8
        // collects sooner: a sync loop of 100 loads of 64 MiB peaked 1.1 GiB
        // above its start with this, and 12 GiB without.
        let _ = env.adjust_external_memory(len as i64);
    }
    Ok(made)
}

/// Where an external buffer's accounting stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lent {
    Pending,
    Counted,
    Finalized,
}

/// An external ArrayBuffer over a memory map, unmapped when V8 collects it.
fn mapped(env: &Env, mut map: MappedNpy) -> Result<ArrayBuffer<'_>> {
    let (ptr, len) = (map.data_ptr(), map.data_len());
    // SAFETY: the mapping moves into the finalizer hint and lives there until V8 frees the ArrayBuffer.
    unsafe { ArrayBuffer::from_external(env, ptr, len, map, |_, map| drop(map)) }
}

/// What the memory of loaded arrays holds now: for tests of the pool. Not
/// part of the public API.
#[napi(object)]
pub struct MemoryStats {
    /// Buffers of collected results kept for reuse, and their bytes.
    pub pooled_buffers: u32,
    pub pooled_bytes: f64,
    /// Bytes in external ArrayBuffers not yet finalized.
    pub external_bytes: f64,
    /// Memory maps of entries alive (held by ArrayBuffers not yet finalized).
    pub live_maps: u32,
}

#[napi]
pub fn memory_stats() -> MemoryStats {
    let pool = pool();
    MemoryStats {
        pooled_buffers: pool.len() as u32,
        pooled_bytes: pool.iter().map(|(b, _)| b.len()).sum::<usize>() as f64,
        external_bytes: EXTERNAL.load(Ordering::Relaxed) as f64,
        live_maps: npy_format::live_maps() as u32,
    }
}
