//! The caller's memory lent to the HTTP client as `Bytes`, without a copy.
//!
//! A store's body is the caller's result array, which the caller may change
//! or free once the store returns. The client can go on sending a body after
//! the server has answered (an early 412 or 503), holding clones of the
//! `Bytes`, so the store's own return is not enough: [`lend`] returns only
//! once every clone is gone, and if its future is dropped midway, the drop
//! waits for them instead.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use cache_core::lock;

/// Set when the last clone of lent bytes is dropped.
#[derive(Default)]
struct Returned {
    done: Mutex<bool>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

/// The owner inside lent `Bytes`: a pointer into the caller's memory.
struct Loan {
    ptr: *const u8,
    len: usize,
    returned: Arc<Returned>,
}

// SAFETY: the memory is only read, and `lend` keeps it alive and unchanged
// until every clone (and so this owner) is dropped, on whatever thread.
unsafe impl Send for Loan {}
unsafe impl Sync for Loan {}

impl AsRef<[u8]> for Loan {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see the module's docs.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        *lock(&self.returned.done) = true;
        self.returned.cv.notify_all();
        self.returned.notify.notify_one();
    }
}

/// Waits, when dropped before the loan was returned, until it is.
struct Guard {
    returned: Arc<Returned>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut done = lock(&self.returned.done);
        while !*done {
            done = self.returned.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Runs `use_bytes` with `data` as `Bytes` (not copied), and returns once
/// no clone of them is left.
pub(crate) async fn lend<T, F: Future<Output = T>>(data: &[u8], use_bytes: impl FnOnce(Bytes) -> F) -> T {
    let returned = Arc::new(Returned::default());
    let guard = Guard { returned: returned.clone() };
    let bytes = Bytes::from_owner(Loan { ptr: data.as_ptr(), len: data.len(), returned: returned.clone() });
    let out = use_bytes(bytes).await;
    loop {
        let notified = returned.notify.notified();
        if *lock(&returned.done) {
            break;
        }
        notified.await;
    }
    drop(guard);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loan_ends_only_when_every_clone_is_gone() {
        let data = vec![7u8; 16];
        let kept = Arc::new(Mutex::new(None));
        let held = kept.clone();
        let len = cache_core::block_on(lend(&data, |bytes| async move {
            let len = bytes.len();
            // A clone outlives the call, as an HTTP client's may.
            *lock(&held) = Some(bytes.clone());
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                lock(&held).take();
            });
            len
        }));
        assert_eq!(len, 16);
        assert!(lock(&kept).is_none(), "lend returned while a clone was alive");
    }
}
