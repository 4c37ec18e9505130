//! Call keys: the TS layer encodes a call's structure; the bytes of its
//! large arguments are read here in place and hashed with it.

use napi::bindgen_prelude::*;
use napi::ScopedTask;

use cache_key::{Key, Splice};

use crate::arrays::JsBytes;
use crate::calls::{guarded, run, INLINE_BELOW};
use crate::errors::{Failure, Outcome};

fn splices(buffers: &[TypedArray], offsets: &[u32]) -> Outcome<Vec<(usize, JsBytes)>> {
    if buffers.len() != offsets.len() {
        return Err(Failure::invalid(format!("{} buffers but {} offsets", buffers.len(), offsets.len())));
    }
    Ok(offsets.iter().zip(buffers).map(|(&o, b)| (o as usize, JsBytes::of(b))).collect())
}

fn hash(structure: &[u8], splices: &[(usize, JsBytes)]) -> Outcome<String> {
    // SAFETY: the arrays are alive for the duration of the call (sync) or task (async).
    let splices: Vec<Splice> =
        splices.iter().map(|&(offset, b)| Splice { offset, bytes: unsafe { b.get() } }).collect();
    Key::from_parts(structure, &splices).map(|k| k.to_hex()).map_err(|e| Failure::invalid(e.to_string()))
}

/// BLAKE3 key of `structure` with `buffers[i]` spliced in at `offsets[i]`,
/// read in place from the JS memory.
#[napi(catch_unwind)]
pub fn hash_key(env: &Env, structure: &[u8], buffers: Vec<TypedArray>, offsets: Vec<u32>) -> Result<String> {
    run(env, || hash(structure, &splices(&buffers, &offsets)?))
}

pub struct HashTask {
    structure: Vec<u8>,
    splices: Vec<(usize, JsBytes)>,
}

impl ScopedTask<'_> for HashTask {
    type Output = Outcome<String>;
    type JsValue = String;

    fn compute(&mut self) -> Result<Outcome<String>> {
        Ok(guarded(|| hash(&self.structure, &self.splices)))
    }

    fn resolve(&mut self, env: &Env, key: Outcome<String>) -> Result<String> {
        key.map_err(|f| f.into_js(env))
    }
}

/// `hashKey`, on the libuv thread pool when the spliced buffers are large
/// (else here, and the key comes back at once). The caller keeps `buffers`
/// referenced and unchanged until the promise settles.
#[napi(catch_unwind, ts_return_type = "Promise<string> | string")]
pub fn hash_key_async(
    env: &Env,
    structure: &[u8],
    buffers: Vec<TypedArray>,
    offsets: Vec<u32>,
) -> Result<Either<String, AsyncTask<HashTask>>> {
    let splices = run(env, || splices(&buffers, &offsets))?;
    let spliced: usize = buffers.iter().map(|b| b.arraybuffer.len()).sum();
    if spliced < INLINE_BELOW {
        return run(env, || hash(structure, &splices)).map(Either::A);
    }
    Ok(Either::B(AsyncTask::new(HashTask { structure: structure.to_vec(), splices })))
}
