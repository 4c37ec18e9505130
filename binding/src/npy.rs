//! `readNpy` and `writeNpy`: one file, no cache.

use napi::bindgen_prelude::*;

use cache_store::LoadedArray;

use crate::arrays::{array_object, max_external, ArrayLayout};
use crate::guard::run;
use crate::memory;

/// Reads a .npy file into a fresh buffer (one copy, from the kernel).
#[napi(
    catch_unwind,
    ts_return_type = "{ buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean; mapped: boolean }"
)]
pub fn read_npy_file<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
    let alloc = memory::on_js_thread(env, max_external());
    let array = run(env, || Ok(npy_format::read_npy_into(path.as_ref(), alloc)?))?;
    array_object(env, LoadedArray::Read(array))
}

/// Writes `data` (any TypedArray, its bytes as they are) as a .npy file.
#[napi(catch_unwind)]
pub fn write_npy_file(env: &Env, path: String, data: TypedArray, layout: ArrayLayout) -> Result<()> {
    run(env, || Ok(npy_format::write_npy(path.as_ref(), &layout.header()?, &data.arraybuffer)?))
}
