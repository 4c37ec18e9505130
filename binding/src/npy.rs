//! `readNpy` and `writeNpy`: one file, no cache.

use napi::bindgen_prelude::*;

use cache_core::{Filling, LoadedArray};

use crate::arrays::ArrayLayout;
use crate::calls::run;
use crate::memory::JsThreadAlloc;
use crate::values::LoadedValue;

/// Reads a .npy file into a fresh buffer (one copy, from the kernel).
#[napi(catch_unwind)]
pub fn read_npy_file(env: &Env, path: String) -> Result<LoadedValue> {
    let alloc = JsThreadAlloc::new(env);
    let array = run(env, || Ok(npy_format::read_npy_into(path.as_ref(), |len| alloc.alloc(len, Filling::InOrder))?))?;
    Ok(LoadedValue::from(LoadedArray::Read(array)))
}

/// Writes `data` (any TypedArray, its bytes as they are) as a .npy file.
#[napi(catch_unwind)]
pub fn write_npy_file(env: &Env, path: String, data: TypedArray, layout: ArrayLayout) -> Result<()> {
    run(env, || Ok(npy_format::write_npy(path.as_ref(), &layout.header()?, &data.arraybuffer)?))
}
