//! Uses of entries on a store, which keeps no access times: a hit on an
//! entry that is getting old writes an empty use mark `uses/<ab>/<key>`
//! (in the background, at most once per period per entry per process), and
//! an entry's last use is the later of its own and its mark's modification
//! times. `maxAge` judges entries by that, on hits and in prunes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use cache_core::{lock, Key, Limits};

/// Uses of an entry younger than this are not recorded: its own time says
/// it is recent, and a mark (a PUT, 12.5 times the price of a GET on S3)
/// would add nothing a prune could tell.
pub const RECORD_USES_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One process records a use of an entry at most this often.
pub const RECORD_USE_EVERY: Duration = Duration::from_secs(3600);

/// What this process recorded lately.
#[derive(Debug, Default)]
pub(crate) struct Uses {
    marked: Mutex<HashMap<Key, Instant>>,
}

/// The periods of recording under `limits`: with a `max_age`, an entry in
/// use is marked well within it, so it never expires while it is used.
fn periods(limits: &Limits) -> (Duration, Duration) {
    let quarter = limits.max_age.map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0) / 4));
    let after = quarter.map_or(RECORD_USES_AFTER, |q| q.min(RECORD_USES_AFTER));
    let every = quarter.map_or(RECORD_USE_EVERY, |q| q.min(RECORD_USE_EVERY));
    (after, every)
}

impl Uses {
    /// Whether a hit on `key`, stored `age` ago, should write a mark now
    /// (and notes that it does).
    pub(crate) fn due(&self, key: &Key, age: Duration, limits: &Limits) -> bool {
        let (after, every) = periods(limits);
        if age <= after {
            return false;
        }
        let mut marked = lock(&self.marked);
        if marked.get(key).is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        if marked.len() > 100_000 {
            marked.retain(|_, at| at.elapsed() < every);
        }
        marked.insert(*key, Instant::now());
        true
    }
}

/// Whether an entry last used at `last_used` has expired under `limits` at `now`.
pub(crate) fn expired(last_used: SystemTime, now: SystemTime, limits: &Limits) -> bool {
    let unused = now.duration_since(last_used).unwrap_or_default();
    limits.max_age.is_some_and(|max| unused.as_micros() > max as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_marked_once_a_period_and_well_within_max_age() {
        let key = Key([1; 32]);
        let uses = Uses::default();
        let day = RECORD_USES_AFTER;
        let none = Limits::default();
        assert!(!uses.due(&key, day / 2, &none), "a young entry needs no mark");
        assert!(uses.due(&key, day * 2, &none));
        assert!(!uses.due(&key, day * 2, &none), "once a period");
        // With a max age of an hour, an entry 20 minutes old is marked.
        let hour = Limits { max_age: Some(3_600_000_000), ..Limits::default() };
        assert!(Uses::default().due(&key, Duration::from_secs(1200), &hour));
        let now = SystemTime::now();
        assert!(expired(now - Duration::from_secs(3601), now, &hour));
        assert!(!expired(now - Duration::from_secs(3599), now, &hour) && !expired(now - day * 9, now, &none));
    }
}
