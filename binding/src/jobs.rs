//! Long jobs (prune, verify, listings, clears) as JS drives them: on the
//! JS thread or the libuv pool, with progress reported to a JS callback,
//! and a `StopFlag` the TS layer sets when the caller's `AbortSignal`
//! aborts. A job checks the flag at each of its progress points and stops
//! there (its error then has code `ERR_NFC_ABORTED`).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::ScopedTask;

use crate::errors::{Failure, Outcome};
use crate::guard::{guarded, run};

/// Set once to stop a long job at its next progress point.
#[napi]
#[derive(Default)]
pub struct StopFlag {
    stopped: Arc<AtomicBool>,
}

#[napi]
impl StopFlag {
    #[napi(constructor)]
    pub fn new() -> Self {
        StopFlag::default()
    }

    #[napi]
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// What a job checks to see whether it should stop.
#[derive(Clone, Default)]
pub(crate) struct Stop(Option<Arc<AtomicBool>>);

impl Stop {
    pub(crate) fn of(flag: Option<&StopFlag>) -> Stop {
        Stop(flag.map(|f| f.stopped.clone()))
    }

    fn step(&self) -> ControlFlow<()> {
        match &self.0 {
            Some(stopped) if stopped.load(Ordering::Relaxed) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// A JS `onProgress(done, total)` to call from the thread pool.
pub type PoolCallback = ThreadsafeFunction<FnArgs<(f64, f64)>, Unknown<'static>, FnArgs<(f64, f64)>, Status, false>;

/// Runs a job on the JS thread with a progress callback that calls
/// `on_progress(done, total)` and stops when `stop` is set; an exception
/// thrown by `on_progress` stops its calls and is rethrown after.
pub(crate) fn with_progress<T, E: Into<Failure>>(
    env: &Env,
    on_progress: Option<Function<FnArgs<(f64, f64)>, ()>>,
    stop: Option<&StopFlag>,
    work: impl FnOnce(&mut cache_store::Progress<'_>) -> std::result::Result<T, E>,
) -> Result<T> {
    let stop = Stop::of(stop);
    let mut failed = None;
    let mut progress = |done: u64, total: u64| {
        if let (Some(f), None) = (&on_progress, &failed) {
            failed = f.call((done as f64, total as f64).into()).err();
        }
        // The callback may have aborted the signal, which sets the flag.
        stop.step()
    };
    let out = run(env, || work(&mut progress).map_err(Into::into))?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A job's progress on the thread pool: each call waits until JS has run
/// the callback, so calls arrive in order and all before the job's promise
/// settles. The TS layer passes a callback that never throws.
#[derive(Clone)]
pub(crate) struct PoolProgress {
    callback: Option<Arc<PoolCallback>>,
    stop: Stop,
}

impl PoolProgress {
    pub(crate) fn new(callback: Option<PoolCallback>, stop: Option<&StopFlag>) -> PoolProgress {
        PoolProgress { callback: callback.map(Arc::new), stop: Stop::of(stop) }
    }

    pub(crate) fn report(&self, done: u64, total: u64) -> ControlFlow<()> {
        if let Some(callback) = &self.callback {
            let (sent, received) = std::sync::mpsc::sync_channel(1);
            let args = FnArgs::from((done as f64, total as f64));
            let status = callback.call_with_return_value(args, ThreadsafeFunctionCallMode::Blocking, move |_, _| {
                let _ = sent.send(());
                Ok(())
            });
            // Not queued (the environment is closing), or dropped unrun: nothing to wait for.
            if status == Status::Ok {
                let _ = received.recv();
            }
        }
        self.stop.step()
    }
}

/// A job for the libuv pool: the maintenance calls' `...Async` forms.
pub struct PoolJob<T> {
    work: Option<Box<dyn FnOnce() -> Outcome<T> + Send>>,
}

impl<T> PoolJob<T> {
    pub(crate) fn new<E: Into<Failure>>(
        work: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
    ) -> AsyncTask<PoolJob<T>>
    where
        T: Send + ToNapiValue + TypeName + 'static,
    {
        AsyncTask::new(PoolJob { work: Some(Box::new(move || work().map_err(Into::into))) })
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> ScopedTask<'_> for PoolJob<T> {
    type Output = Outcome<T>;
    type JsValue = T;

    fn compute(&mut self) -> Result<Outcome<T>> {
        let work = self.work.take().ok_or_else(|| Error::from_reason("a pool job ran twice"))?;
        Ok(guarded(work))
    }

    fn resolve(&mut self, env: &Env, outcome: Outcome<T>) -> Result<T> {
        outcome.map_err(|f| f.into_js(env))
    }
}
