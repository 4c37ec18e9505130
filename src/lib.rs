//! The napi binding: converts JS values to and from the pure-Rust crates and
//! nothing more. Argument checking that users see happens in the TS layer;
//! what reaches here is checked again so a bad call is an Error, never UB.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use cache_key::{Key, Splice};
use cache_store::{CacheDir as Store, Lookup};
use npy_format::{AlignedBuf, Dtype, Header, NpyArray};

fn failure(e: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
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

/// `{ buffer, shape, dtype, fortranOrder }` over the array's own memory:
/// the ArrayBuffer takes ownership of the buffer the file was read into.
fn array_object<'env>(env: &'env Env, array: NpyArray) -> Result<Object<'env>> {
    let NpyArray { header, data } = array;
    let buffer = if data.len() == 0 {
        ArrayBuffer::copy_from(env, [])?
    } else {
        let (ptr, len) = data.into_raw_parts();
        // SAFETY: ptr/len came from into_raw_parts and are freed exactly once, by the finalizer.
        unsafe {
            ArrayBuffer::from_external(env, ptr, len, (ptr as usize, len), |_, (ptr, len)| {
                drop(AlignedBuf::from_raw_parts(ptr as *mut u8, len));
            })?
        }
    };
    let mut obj = Object::new(env)?;
    obj.set("buffer", buffer)?;
    obj.set("shape", header.shape.iter().map(|&d| d as f64).collect::<Vec<f64>>())?;
    obj.set("dtype", header.dtype.descr())?;
    obj.set("fortranOrder", header.fortran_order)?;
    Ok(obj)
}

/// Reads a .npy file into a fresh buffer (one copy, from the kernel).
#[napi(catch_unwind, ts_return_type = "{ buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean }")]
pub fn read_npy_file<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
    let array = npy_format::read_npy(path.as_ref()).map_err(failure)?;
    array_object(env, array)
}

/// Writes `data` (any TypedArray, its bytes as they are) as a .npy file.
#[napi(catch_unwind)]
pub fn write_npy_file(path: String, data: TypedArray, shape: Vec<i64>, dtype: String, fortran_order: bool) -> Result<()> {
    let header = header(shape, &dtype, fortran_order)?;
    npy_format::write_npy(path.as_ref(), &header, &data.arraybuffer).map_err(|e| failure(format!("{path}: {e}")))
}

/// BLAKE3 key of `structure` with `buffers[i]` spliced in at `offsets[i]`,
/// read in place from the JS memory.
#[napi(catch_unwind)]
pub fn hash_key(structure: &[u8], buffers: Vec<TypedArray>, offsets: Vec<u32>) -> Result<String> {
    if buffers.len() != offsets.len() {
        return Err(invalid(format!("{} buffers but {} offsets", buffers.len(), offsets.len())));
    }
    let splices: Vec<Splice> = buffers
        .iter()
        .zip(&offsets)
        .map(|(b, &offset)| Splice {
            offset: offset as usize,
            bytes: &b.arraybuffer,
        })
        .collect();
    Key::from_parts(structure, &splices).map(|k| k.to_hex()).map_err(|e| invalid(e.to_string()))
}

/// A cache directory: entries stored atomically, loaded with validation.
#[napi]
pub struct CacheDir {
    store: Store,
}

#[napi]
impl CacheDir {
    /// Errors if the path exists and is not a directory; creates nothing.
    #[napi(constructor, catch_unwind)]
    pub fn new(path: String) -> Result<Self> {
        Ok(CacheDir { store: Store::open(path).map_err(failure)? })
    }

    /// `{ status: 'hit', meta, array }`, `{ status: 'miss' }` or
    /// `{ status: 'damaged', reason }`.
    #[napi(catch_unwind, ts_return_type = "{ status: 'hit'; meta: string; array: { buffer: ArrayBuffer; shape: number[]; dtype: string; fortranOrder: boolean } } | { status: 'miss' } | { status: 'damaged'; reason: string }")]
    pub fn load<'env>(&self, env: &'env Env, key: String) -> Result<Object<'env>> {
        let mut obj = Object::new(env)?;
        match self.store.load(&key).map_err(|e| invalid(e.to_string()))? {
            Lookup::Hit(entry) => {
                obj.set("status", "hit")?;
                obj.set("meta", String::from_utf8_lossy(&entry.meta).into_owned())?;
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

    #[napi(catch_unwind)]
    pub fn store(&self, key: String, data: TypedArray, shape: Vec<i64>, dtype: String, fortran_order: bool, meta: String) -> Result<()> {
        let header = header(shape, &dtype, fortran_order)?;
        self.store.store(&key, &header, &data.arraybuffer, meta.as_bytes()).map_err(failure)
    }

    /// Removes what the cache wrote; returns how many files.
    #[napi(catch_unwind)]
    pub fn clear(&self, remove_dir: bool) -> Result<u32> {
        let report = self.store.clear(remove_dir).map_err(failure)?;
        Ok(report.removed_files as u32)
    }
}
