//! Long jobs (prune, verify, listings, clears) as JS drives them: on the
//! JS thread or the libuv pool, with progress reported to a JS callback,
//! and a `StopFlag` the TS layer sets when the caller's `AbortSignal`
//! aborts. A job checks the flag at each of its progress points and stops
//! there (its error then has code `ERR_NFC_ABORTED`).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_store::Progress;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::ScopedTask;

use crate::errors::{Failure, Outcome};
use crate::guard::{guarded, run};

/// What a job is told: go on, stop (its signal aborted), or stop because
/// the process is exiting (then no JS callback will run again).
const GO: u8 = 0;
const STOP: u8 = 1;
const EXIT: u8 = 2;

/// Set to stop a long job at its next progress point.
#[napi]
#[derive(Default)]
pub struct StopFlag {
    state: Arc<AtomicU8>,
}

#[napi]
impl StopFlag {
    #[napi(constructor)]
    pub fn new() -> Self {
        StopFlag::default()
    }

    /// The caller's signal aborted.
    #[napi]
    pub fn stop(&self) {
        let _ = self.state.compare_exchange(GO, STOP, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The process is exiting: the event loop will not run the job's
    /// callbacks, so the job must neither wait for them nor go on.
    #[napi]
    pub fn exit(&self) {
        self.state.store(EXIT, Ordering::Relaxed);
    }
}

/// What a job checks to see whether it should stop.
#[derive(Clone, Default)]
pub(crate) struct Stop(Option<Arc<AtomicU8>>);

impl Stop {
    pub(crate) fn of(flag: Option<&StopFlag>) -> Stop {
        Stop(flag.map(|f| f.state.clone()))
    }

    fn state(&self) -> u8 {
        self.0.as_ref().map_or(GO, |s| s.load(Ordering::Relaxed))
    }

    fn step(&self) -> ControlFlow<()> {
        if self.state() == GO {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
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
    work: impl FnOnce(&mut Progress<'_>) -> std::result::Result<T, E>,
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

/// A pool job's reports go to JS at most this often (the latest one is
/// sent when the job ends): each is a round trip through the event loop.
const REPORT_EVERY: Duration = Duration::from_millis(25);

/// A job's progress on the thread pool. Each report sent waits until JS
/// has run the callback, so reports arrive in order and all before the
/// job's promise settles; reports in between are skipped, and the latest
/// is sent when the job ends. The TS layer passes a callback that never
/// throws.
struct PoolProgress {
    callback: Option<PoolCallback>,
    stop: Stop,
    sent_at: Option<Instant>,
    unsent: Option<(u64, u64)>,
}

impl PoolProgress {
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        if self.callback.is_some() {
            if self.sent_at.is_some_and(|t| t.elapsed() < REPORT_EVERY) {
                self.unsent = Some((done, total));
            } else {
                self.send(done, total);
            }
        }
        self.stop.step()
    }

    /// Sends the latest report, if it was skipped.
    fn finish(&mut self) {
        if let Some((done, total)) = self.unsent {
            self.send(done, total);
        }
    }

    fn send(&mut self, done: u64, total: u64) {
        let Some(callback) = &self.callback else { return };
        self.unsent = None;
        let (sent, received) = std::sync::mpsc::sync_channel(1);
        let args = FnArgs::from((done as f64, total as f64));
        let status = callback.call_with_return_value(args, ThreadsafeFunctionCallMode::Blocking, move |_, _| {
            let _ = sent.send(());
            Ok(())
        });
        if status == Status::Ok {
            // An exiting process never runs the callback (and napi does not
            // drop it, so the channel stays open): stop waiting then.
            while let Err(RecvTimeoutError::Timeout) = received.recv_timeout(Duration::from_millis(20)) {
                if self.stop.state() == EXIT {
                    break;
                }
            }
        }
        self.sent_at = Some(Instant::now());
    }
}

type Work<T> = Box<dyn for<'p> FnOnce(&mut Progress<'p>) -> Outcome<T> + Send>;

/// A maintenance call's `...Async` form: a job for the libuv pool, with
/// its progress and stop flag. A job stopped before it starts does nothing.
pub struct PoolJob<T> {
    work: Option<Work<T>>,
    progress: PoolProgress,
}

impl<T: Send + ToNapiValue + TypeName + 'static> PoolJob<T> {
    pub(crate) fn new<E: Into<Failure>>(
        on_progress: Option<PoolCallback>,
        stop: Option<&StopFlag>,
        work: impl for<'p> FnOnce(&mut Progress<'p>) -> std::result::Result<T, E> + Send + 'static,
    ) -> AsyncTask<PoolJob<T>> {
        let progress = PoolProgress { callback: on_progress, stop: Stop::of(stop), sent_at: None, unsent: None };
        AsyncTask::new(PoolJob { work: Some(Box::new(move |p| work(p).map_err(Into::into))), progress })
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> ScopedTask<'_> for PoolJob<T> {
    type Output = Outcome<T>;
    type JsValue = T;

    fn compute(&mut self) -> Result<Outcome<T>> {
        let work = self.work.take().ok_or_else(|| Error::from_reason("a pool job ran twice"))?;
        if self.progress.stop.step().is_break() {
            return Ok(Err(Failure::from(cache_store::StoreError::Stopped)));
        }
        let progress = &mut self.progress;
        let outcome = guarded(|| work(&mut |done, total| progress.report(done, total)));
        progress.finish();
        Ok(outcome)
    }

    fn resolve(&mut self, env: &Env, outcome: Outcome<T>) -> Result<T> {
        outcome.map_err(|f| f.into_js(env))
    }
}
