//! JS arrays coming in: their memory read in place (never copied) and
//! their layout as a `.npy` header. (Loaded arrays going out: `memory`.)

use napi::bindgen_prelude::*;

use npy_format::{Dtype, Header};

use crate::errors::{Failure, Outcome};

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

    pub(crate) fn len(self) -> usize {
        self.len
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
