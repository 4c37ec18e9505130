//! The cache's clock: the time of stores and uses, and of expiry.
//!
//! It is the system clock, shifted by an offset that is zero except in
//! tests, which move it forward instead of sleeping: a test of expiry must
//! not depend on how fast a busy machine runs it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock shared by a tier's clones (its threads and tasks).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Moves this clock (and its clones') forward by `by`.
    pub fn advance(&self, by: Duration) {
        let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Microseconds since the Unix epoch: uses a millisecond apart must
    /// still order.
    pub fn now_us(&self) -> i64 {
        us_since_epoch(SystemTime::now()).saturating_add(self.offset_us.load(Ordering::Relaxed))
    }

    /// The time now, as a `SystemTime`.
    pub fn now(&self) -> SystemTime {
        time_of_us(self.now_us())
    }
}

/// A time as microseconds since the Unix epoch (0 before it).
pub fn us_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)).unwrap_or(0)
}

pub fn time_of_us(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_and_its_clones_run_ahead_by_the_same_amount() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = Clock::system().now_us();
        clock.advance(Duration::from_secs(3600));
        // The system clock read on either side of the clone, so time lost between the reads cannot matter.
        let system_before = Clock::system().now_us();
        let shifted = clone.now_us();
        let system_after = Clock::system().now_us();
        assert!(shifted - system_after <= 3_600_000_000, "{}", shifted - system_after);
        assert!(shifted - system_before >= 3_600_000_000, "{}", shifted - system_before);
        assert!(clock.now_us() > before);
    }
}
