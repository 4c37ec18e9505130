//! Long jobs (prune, verify, listings, clears) as JS drives them: inline
//! on the JS thread or on the cache's runtime, with progress reported to a
//! JS callback, and a `StopFlag` the TS layer sets when the caller's
//! `AbortSignal` aborts. A job checks the flag at each of its progress
//! points and stops there (its error then has kind `stopped`).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

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

    pub(crate) fn step(&self) -> ControlFlow<()> {
        if self.state() == GO {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }
}

/// A JS `onProgress(done, total)`.
pub type ProgressFn<'env> = Function<'env, FnArgs<(f64, f64)>, ()>;

/// A JS `onProgress(done, total)` to call from the cache's runtime.
pub type RuntimeCallback = ThreadsafeFunction<FnArgs<(f64, f64)>, Unknown<'static>, FnArgs<(f64, f64)>, Status, false>;

/// A job's progress on the JS thread: calls `on_progress(done, total)` and
/// stops when `stop` is set; an exception thrown by `on_progress` stops
/// its calls and is rethrown after (see [`InlineProgress::finish`]).
pub(crate) struct InlineProgress<'env> {
    callback: Option<ProgressFn<'env>>,
    stop: Stop,
    failed: Option<Error>,
    thread: ThreadId,
}

// SAFETY: a job run inline is polled on the JS thread (`cache_core::block_on`
// there), where its progress is reported; a report from any other thread
// (there is none) would skip the callback, never touch it.
unsafe impl Send for InlineProgress<'_> {}

impl<'env> InlineProgress<'env> {
    pub(crate) fn new(callback: Option<ProgressFn<'env>>, stop: Option<&StopFlag>) -> InlineProgress<'env> {
        InlineProgress { callback, stop: Stop::of(stop), failed: None, thread: std::thread::current().id() }
    }

    pub(crate) fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        if let (Some(f), None, true) = (&self.callback, &self.failed, std::thread::current().id() == self.thread) {
            self.failed = f.call((done as f64, total as f64).into()).err();
        }
        // The callback may have aborted the signal, which sets the flag.
        self.stop.step()
    }

    /// The job's result, unless `on_progress` threw: then its exception.
    pub(crate) fn finish<T>(self, out: Result<T>) -> Result<T> {
        match self.failed {
            Some(e) => Err(e),
            None => out,
        }
    }
}

/// A runtime job's reports go to JS at most this often (the latest one is
/// sent when the job ends): each is a round trip through the event loop.
const REPORT_EVERY: Duration = Duration::from_millis(25);

/// A job's progress on the cache's runtime. Each report sent waits until JS
/// has run the callback (the core reports as blocking work), so reports
/// arrive in order and all before the job's promise settles, and an abort
/// from the callback is seen at that step; reports in between are skipped,
/// and the latest is sent when the job ends. The TS layer passes a callback
/// that never throws.
pub(crate) struct RuntimeProgress {
    callback: Option<RuntimeCallback>,
    stop: Stop,
    sent_at: Option<Instant>,
    unsent: Option<(u64, u64)>,
}

impl RuntimeProgress {
    pub(crate) fn new(callback: Option<RuntimeCallback>, stop: Option<&StopFlag>) -> RuntimeProgress {
        RuntimeProgress { callback, stop: Stop::of(stop), sent_at: None, unsent: None }
    }

    /// Whether the job was stopped before it began (it then does nothing).
    pub(crate) fn stopped(&self) -> bool {
        self.stop.step().is_break()
    }

    pub(crate) fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
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
    pub(crate) fn finish(&mut self) {
        if let Some((done, total)) = self.unsent {
            cache_core::blocking(|| self.send(done, total));
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
