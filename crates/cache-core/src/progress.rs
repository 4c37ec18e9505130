//! Progress of long jobs (prune, verify, listings, clears), and stopping
//! them: the caller's callback is told `(done, total)` after each step and
//! answers whether to go on. A stop ends the job before its next step with
//! [`Error::Stopped`]; what was done stays done.

use std::ops::ControlFlow;

use crate::runtime::blocking;
use crate::Error;

/// A job's progress callback: called with `(done, total)` after each step
/// (`total` is 0 while a listing does not know it yet); `Break` stops the
/// job before its next step. It may block (a binding waits for its
/// caller's thread to take the report), so it runs as blocking work.
pub type Progress<'a> = dyn FnMut(u64, u64) -> ControlFlow<()> + Send + 'a;

/// Reports `done` of `total` steps; `Err(Stopped)` if asked to stop while
/// steps remain (a stop after the last step comes too late to spare
/// anything: the job is done).
pub fn step(progress: &mut Progress<'_>, done: u64, total: u64) -> Result<(), Error> {
    if blocking(|| progress(done, total)).is_break() && done < total {
        return Err(Error::Stopped);
    }
    Ok(())
}

/// Reports `listed` items found so far by a listing, whose total is not
/// known yet: a stop there ends the job, whose work is still ahead.
pub fn listed(progress: &mut Progress<'_>, listed: u64) -> Result<(), Error> {
    if blocking(|| progress(listed, 0)).is_break() {
        return Err(Error::Stopped);
    }
    Ok(())
}

/// A callback that reports nowhere and never stops.
pub fn quiet(_: u64, _: u64) -> ControlFlow<()> {
    ControlFlow::Continue(())
}
