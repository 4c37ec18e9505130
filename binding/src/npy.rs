//! `readNpy` and `writeNpy`: one file, no cache.

use napi::bindgen_prelude::*;

use cache_core::{Filling, LoadedArray};

use crate::arrays::ArrayLayout;
use crate::calls::run;
use crate::errors::{Failure, Outcome};
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

/// A member of an `.npz`: its name and its array.
#[napi(object, object_from_js = false)]
pub struct NpzMemberValue {
    pub name: String,
    pub array: LoadedValue,
}

/// Reads every member of an `.npz` into a fresh buffer of its own.
#[napi(catch_unwind)]
pub fn read_npz_file(env: &Env, path: String) -> Result<Vec<NpzMemberValue>> {
    let alloc = JsThreadAlloc::new(env);
    let arrays = run(env, || Ok(npy_format::read_npz_into(path.as_ref(), |len| alloc.alloc(len, Filling::InOrder))?))?;
    let value = |(name, array)| NpzMemberValue { name, array: LoadedValue::from(LoadedArray::Read(array)) };
    Ok(arrays.into_iter().map(value).collect())
}

/// Writes an aligned uncompressed `.npz` of members given in order: their
/// names, their bytes as they are, and those bytes' layouts.
#[napi(catch_unwind)]
pub fn write_npz_file(
    env: &Env,
    path: String,
    names: Vec<String>,
    data: Vec<TypedArray>,
    layouts: Vec<ArrayLayout>,
) -> Result<()> {
    run(env, || {
        if names.len() != data.len() || names.len() != layouts.len() {
            return Err(Failure::invalid("one name, array and layout per member"));
        }
        let headers = layouts.iter().map(ArrayLayout::header).collect::<Outcome<Vec<_>>>()?;
        let members: Vec<(&str, &npy_format::Header, &[u8])> =
            names.iter().zip(&headers).zip(&data).map(|((n, h), d)| (n.as_str(), h, &d.arraybuffer[..])).collect();
        npy_format::write_npz(path.as_ref(), &members).map_err(|e| match e.root() {
            // Names and counts the archive refuses are the caller's arguments.
            cause @ (npy_format::Error::BadMember { .. }
            | npy_format::Error::DuplicateMember(_)
            | npy_format::Error::TooManyMembers { .. }) => Failure::invalid(format!("writeNpz: {cause}")),
            _ => Failure::from(e),
        })?;
        Ok(())
    })
}
