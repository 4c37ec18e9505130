//! `readNpy` and `writeNpy`: one file, no cache.

use napi::bindgen_prelude::*;

use cache_store::LoadedArray;

use crate::arrays::{array_object, ArrayLayout};
use crate::errors::Failure;

/// Reads a .npy file into a fresh buffer (one copy, from the kernel).
#[napi(
    catch_unwind,
    ts_return_type = "{ buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean }"
)]
pub fn read_npy_file<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
    let array = npy_format::read_npy(path.as_ref()).map_err(|e| Failure::from(e).into_js(env))?;
    array_object(env, LoadedArray::Read(array))
}

/// Writes `data` (any TypedArray, its bytes as they are) as a .npy file.
#[napi(catch_unwind)]
pub fn write_npy_file(env: &Env, path: String, data: TypedArray, layout: ArrayLayout) -> Result<()> {
    let header = layout.header().map_err(|f| f.into_js(env))?;
    npy_format::write_npy(path.as_ref(), &header, &data.arraybuffer).map_err(|e| Failure::from(e).into_js(env))
}
