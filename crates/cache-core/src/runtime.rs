//! Where the tiers' work runs. Every operation of the [`Tier`](crate::Tier)
//! contract is a future: an object store's awaits its requests on the
//! runtime's threads instead of holding a thread of the caller's, and a
//! directory's does its file work where it is polled ([`blocking`]).
//! A synchronous caller runs an operation inline with [`block_on`].

use std::future::Future;
use std::sync::OnceLock;

/// The runtime every tier's tasks run on: requests, ranged reads, lease
/// heartbeats, and the bindings' asynchronous calls.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
            // Directory work blocks in place (see `blocking`): bound how many
            // threads may read and write files at once.
            .max_blocking_threads(64)
            .thread_name("numpy-func-cache")
            .enable_all()
            .build()
            .expect("the cache's runtime starts")
    })
}

/// Runs `f` to completion on the calling thread: the synchronous form of
/// any operation. Works from any thread, inside another `block_on` too (a
/// progress callback that calls back into the cache).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| runtime().block_on(f))
}

/// Runs blocking work (file I/O, SQLite, hashing) from async code: on a
/// runtime thread, it hands that thread's other tasks to another thread
/// first, so requests in flight keep moving; elsewhere (a synchronous
/// caller's thread) it just runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_nests_and_blocking_work_runs_from_tasks() {
        let inner = block_on(async { block_on(async { 1 }) + blocking(|| 1) });
        assert_eq!(inner, 2);
        let spawned = block_on(runtime().spawn(async { blocking(|| 3) })).unwrap();
        assert_eq!(spawned, 3);
    }
}
