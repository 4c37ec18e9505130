//! Arrays across the boundary: JS memory read in place, and loaded arrays
//! handed to JS as ArrayBuffers.

use std::sync::atomic::{AtomicUsize, Ordering};

use napi::bindgen_prelude::*;

use cache_store::LoadedArray;
use npy_format::{Dtype, Header};

use crate::errors::{Failure, Outcome};
use crate::memory::{self, ArrayMemory};

/// Arrays up to this size are copied into a V8-owned ArrayBuffer: cheaper
/// than an external buffer with a finalizer, and the copy is tiny.
pub(crate) const COPY_BELOW: usize = 64 * 1024;

/// Work on less than this many bytes runs on the calling thread: cheaper
/// than a round trip through the thread pool.
pub(crate) const POOL_FROM: usize = 1 << 20;

/// The largest external ArrayBuffer the runtime accepts (Node < 22 caps it
/// at 4 GiB, the Buffer limit); larger arrays are copied into V8 memory.
/// Set once from `buffer.constants.MAX_LENGTH` by the TS layer.
static MAX_EXTERNAL: AtomicUsize = AtomicUsize::new(1 << 32);

pub(crate) fn max_external() -> usize {
    MAX_EXTERNAL.load(Ordering::Relaxed)
}

/// Tells the binding the runtime's Buffer size limit.
#[napi]
pub fn set_max_external_length(bytes: f64) {
    if bytes.is_finite() && bytes > 0.0 {
        MAX_EXTERNAL.store(bytes.min(usize::MAX as f64) as usize, Ordering::Relaxed);
    }
}

/// How an array's data is laid out: what the `.npy` header says.
#[napi(object)]
pub struct ArrayLayout {
    pub shape: Vec<f64>,
    /// A NumPy descr, e.g. `'<f8'`.
    pub dtype: String,
    pub fortran_order: bool,
}

impl ArrayLayout {
    /// The header, converting exactly: a dimension that is not a whole
    /// number is refused, never rounded.
    pub(crate) fn header(&self) -> Outcome<Header> {
        let dtype = Dtype::parse(&self.dtype).map_err(|e| Failure::invalid(e.to_string()))?;
        let shape = self
            .shape
            .iter()
            .map(|&d| {
                exact_u64(d).ok_or_else(|| {
                    Failure::invalid(format!("shape has a dimension {d} that is not a non-negative integer"))
                })
            })
            .collect::<Outcome<Vec<u64>>>()?;
        Ok(Header { dtype, shape, fortran_order: self.fortran_order })
    }
}

/// `v` as an integer if it is a whole non-negative number; past `u64::MAX`
/// (a limit beyond any count), `u64::MAX`.
pub(crate) fn exact_u64(v: f64) -> Option<u64> {
    // `as` saturates; `fract` of an infinity or NaN is NaN, so they fail here.
    (v >= 0.0 && v.fract() == 0.0).then_some(v as u64)
}

/// The bytes of a JS TypedArray, usable off the main thread. Sound because
/// the TS layer keeps the array referenced until the task's promise settles
/// and V8 never moves an ArrayBuffer's backing store (asking napi for the
/// data pointer moves a small on-heap array off the heap for good).
#[derive(Clone, Copy)]
pub(crate) struct JsBytes {
    ptr: usize,
    len: usize,
}

impl JsBytes {
    pub(crate) fn of(view: &TypedArray) -> JsBytes {
        JsBytes { ptr: view.arraybuffer.as_ptr() as usize, len: view.arraybuffer.len() }
    }

    /// # Safety
    /// The array must still be alive and not detached (see the type's docs).
    pub(crate) unsafe fn get<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
        }
    }
}

/// The ArrayBuffer over a loaded array's memory or memory map (see `memory`).
pub(crate) fn array_buffer<'env, B: Into<ArrayMemory> + AsRef<[u8]>>(
    env: &'env Env,
    array: LoadedArray<B>,
) -> Result<ArrayBuffer<'env>> {
    let max_external = max_external();
    match array {
        LoadedArray::Read(a) => memory::into_arraybuffer(env, a.data.into(), max_external),
        LoadedArray::Mapped(m) if m.data_len() > max_external => ArrayBuffer::copy_from(env, m.data()),
        LoadedArray::Mapped(m) => memory::mapped(env, m),
    }
}

/// `{ buffer, shape, dtype, fortranOrder, mapped }` over the array's memory.
pub(crate) fn array_object<'env, B: Into<ArrayMemory> + AsRef<[u8]>>(
    env: &'env Env,
    array: LoadedArray<B>,
) -> Result<Object<'env>> {
    let header = array.header().clone();
    let mapped = matches!(array, LoadedArray::Mapped(_));
    let buffer = array_buffer(env, array)?;
    let mut obj = Object::new(env)?;
    obj.set("buffer", buffer)?;
    obj.set("shape", header.shape.iter().map(|&d| d as f64).collect::<Vec<f64>>())?;
    obj.set("dtype", header.dtype.descr())?;
    obj.set("fortranOrder", header.fortran_order)?;
    obj.set("mapped", mapped)?;
    Ok(obj)
}
