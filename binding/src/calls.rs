//! How a method's work runs: every operation is a future of the core
//! (`cache_core::Tier`), run inline on the JS thread by a synchronous method
//! ([`inline`]) or on the cache's runtime by its `...Async` twin
//! ([`spawn`]), whose promise settles on the JS thread. A panic in the core
//! becomes an error either way (one unwinding out of a runtime thread would
//! otherwise be lost, or abort the process).

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use napi::bindgen_prelude::*;

use crate::errors::{ErrorKind, Failure, Outcome};

/// Work on less than this many bytes of a JS array runs on the JS thread
/// when it needs no request (a load decided on disk, a directory's store,
/// a key's hash): a hop to another thread and back costs more than it.
pub(crate) const INLINE_BELOW: usize = 1 << 20;

fn panicked(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Failure::new(ErrorKind::Panic, format!("panic in the native core: {what}"))
}

/// Runs work, turning a panic into a failure.
pub(crate) fn guarded<T>(work: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|p| Err(panicked(p)))
}

/// Runs work of the core on the JS thread: its failure, or its panic,
/// becomes a thrown JS error.
pub(crate) fn run<T>(env: &Env, work: impl FnOnce() -> Outcome<T>) -> Result<T> {
    guarded(work).map_err(|f| f.into_js(env))
}

/// Runs `op` to completion here, on the JS thread: a synchronous method.
pub(crate) fn inline<T, E: Into<Failure>>(env: &Env, op: impl Future<Output = std::result::Result<T, E>>) -> Result<T> {
    run(env, || cache_core::block_on(op).map_err(Into::into))
}

/// Runs `op` on the cache's runtime, and returns the promise that settles
/// with `to_js` of its output, made on the JS thread.
pub(crate) fn spawn<'env, T, E, J>(
    env: &'env Env,
    op: impl Future<Output = std::result::Result<T, E>> + Send + 'static,
    to_js: impl FnOnce(&Env, T) -> Result<J> + Send + 'static,
) -> Result<PromiseRaw<'env, J>>
where
    T: Send + 'static,
    E: Into<Failure> + 'static,
    J: ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred::<J, _>()?;
    cache_core::runtime().spawn(async move {
        let out = match AssertUnwindSafe(op).catch_unwind().await {
            Ok(out) => out.map_err(Into::into),
            Err(payload) => Err(panicked(payload)),
        };
        deferred.resolve(move |env: Env| match out {
            Ok(value) => to_js(&env, value),
            Err(failure) => Err(failure.into_js(&env)),
        });
    });
    Ok(PromiseRaw::new(env.raw(), promise.raw()))
}

/// Panics on purpose, on the JS thread or (with `onRuntime`) on the
/// cache's runtime, so tests can prove a panic in the core reaches JS as
/// an Error instead of aborting the process. Not part of the public API.
#[napi(catch_unwind)]
pub fn panic_for_tests<'env>(env: &'env Env, on_runtime: bool) -> Result<Either<PromiseRaw<'env, ()>, ()>> {
    if on_runtime {
        let op = async {
            let panics = true;
            if panics {
                panic!("a deliberate panic on the runtime");
            }
            Ok::<(), Failure>(())
        };
        return Ok(Either::A(spawn(env, op, |_, ()| Ok(()))?));
    }
    run(env, || panic!("a deliberate panic in the native core"))
}
