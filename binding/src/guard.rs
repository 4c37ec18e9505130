//! Panics in the core reach JS as errors, on the JS thread and on the pool.

use napi::bindgen_prelude::*;
use napi::ScopedTask;

use crate::errors::{Code, Failure, Outcome};

/// Runs work, turning a panic into a failure: napi-rs catches panics only
/// on the JS thread (`catch_unwind` on exports), and one unwinding out of a
/// pool thread would abort the process.
pub(crate) fn guarded<T>(work: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Failure::new(Code::Panic, format!("panic in the native core: {what}")))
    })
}

/// Runs work of the core on the JS thread: its failure, or its panic,
/// becomes a thrown JS error with its code.
pub(crate) fn run<T>(env: &Env, work: impl FnOnce() -> Outcome<T>) -> Result<T> {
    guarded(work).map_err(|f| f.into_js(env))
}

/// Panics on purpose, on the JS thread or (with `onPool`) on the libuv
/// pool, so tests can prove a panic in the core reaches JS as an Error
/// instead of aborting the process. Not part of the public API.
#[napi(catch_unwind, ts_return_type = "Promise<void> | void")]
pub fn panic_for_tests(env: &Env, on_pool: bool) -> Result<Option<AsyncTask<PanicTask>>> {
    if on_pool {
        Ok(Some(AsyncTask::new(PanicTask)))
    } else {
        run(env, || panic!("a deliberate panic in the native core"))
    }
}

pub struct PanicTask;

impl ScopedTask<'_> for PanicTask {
    type Output = Outcome<()>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Outcome<()>> {
        Ok(guarded(|| panic!("a deliberate panic on the thread pool")))
    }

    fn resolve(&mut self, env: &Env, outcome: Outcome<()>) -> Result<()> {
        outcome.map_err(|f| f.into_js(env))
    }
}
