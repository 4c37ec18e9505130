//! The caller's memory lent to the HTTP client as `Bytes`, without a copy.
//!
//! A store's body is the caller's result array, which the caller may change
//! or free once the store returns. The client can go on sending a body after
//! the server has answered (an early 412 or 503), holding clones of the
//! `Bytes`, so the store's own return is not enough: [`lend_all`] returns only
//! once every clone is gone, and if its future is dropped midway, the drop
//! waits for them instead.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use cache_core::lock;

/// Set when the last clone of every part of a loan is dropped.
#[derive(Default)]
struct Returned {
    /// Parts still out, each with clones.
    out: Mutex<usize>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

/// The owner inside lent `Bytes`: a pointer into the caller's memory.
struct Loan {
    ptr: *const u8,
    len: usize,
    returned: Arc<Returned>,
}

// SAFETY: the memory is only read, and `lend_all` keeps it alive and unchanged
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
        let mut out = lock(&self.returned.out);
        *out -= 1;
        if *out == 0 {
            self.returned.cv.notify_all();
            self.returned.notify.notify_one();
        }
    }
}

/// Waits, when dropped before the loan was returned, until it is.
struct Guard {
    returned: Arc<Returned>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut out = lock(&self.returned.out);
        while *out > 0 {
            out = self.returned.cv.wait(out).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Runs `use_bytes` with each of `parts` as `Bytes` (not copied), and
/// returns once no clone of any is left.
pub(crate) async fn lend_all<T, F: Future<Output = T>>(parts: &[&[u8]], use_bytes: impl FnOnce(Vec<Bytes>) -> F) -> T {
    let returned = Arc::new(Returned { out: Mutex::new(parts.len()), ..Returned::default() });
    let guard = Guard { returned: returned.clone() };
    let bytes = (parts.iter())
        .map(|p| Bytes::from_owner(Loan { ptr: p.as_ptr(), len: p.len(), returned: returned.clone() }))
        .collect();
    let out = use_bytes(bytes).await;
    loop {
        let notified = returned.notify.notified();
        if *lock(&returned.out) == 0 {
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
    fn a_loan_ends_only_when_every_clone_of_every_part_is_gone() {
        let data = [7u8; 16];
        let kept = Arc::new(Mutex::new(Vec::new()));
        let held = kept.clone();
        let len = cache_core::block_on(lend_all(&[&data[..4], &data[4..]], |parts| async move {
            let len = parts.iter().map(|p| p.len()).sum::<usize>();
            // Clones outlive the call, as an HTTP client's may: the second goes later.
            *lock(&held) = parts.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                lock(&held).remove(0);
                std::thread::sleep(std::time::Duration::from_millis(30));
                lock(&held).clear();
            });
            len
        }));
        assert_eq!(len, 16);
        assert!(lock(&kept).is_empty(), "lend_all returned while a clone was alive");
    }
}
