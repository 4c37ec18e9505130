//! Compute-once leases, the same on every tier: one process at a time
//! computes a key while the others wait for its entry.
//!
//! A lease is one short line naming its holder, in a file (a directory) or
//! an object (an object store):
//!
//! ```text
//! <host tag> <pid> <staleAfter ms> <host name>
//! ```
//!
//! The holder refreshes the lease's time every quarter of its `staleAfter`
//! ([`Lease::hold`]'s heartbeat, on the runtime, so a synchronous
//! computation on the caller's thread holds it too). A lease is stale, and
//! is broken by the next claimant, when its holder was on this host and
//! its process is gone, or when it went unrefreshed for the holder's own
//! `staleAfter` (at most [`MAX_STALE_AFTER`]) plus the tier's clock skew.
//! A lease whose holder is this process says so ([`Claim::Held`]'s
//! `this_process`), whichever cache object took it; taken through
//! [`claim_on`], it also says whether its holder is the caller's own thread
//! (`this_thread`): only a synchronous wait for that one would never end.
//!
//! A waiter does not claim again on every poll: it reads the lease
//! ([`Tier::lease_holder`], a read that never writes) and claims only once
//! the lease is gone or stale.
//!
//! [`Tier::lease_holder`]: crate::Tier::lease_holder

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::{host, lock, Error, Key, Tier};

/// The default of `computeOnce.staleAfter`.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// The shortest `staleAfter`: the holder refreshes its lease every quarter
/// of it, and not more often than every 50 ms.
pub const MIN_STALE_AFTER: Duration = Duration::from_millis(200);

/// The longest `staleAfter` a lease is taken to promise, whatever it
/// declares: past it, a lease is broken.
pub const MAX_STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A lease is one short line; what is under a lease's name is read only this far.
pub const MAX_LEASE_LEN: u64 = 256;

/// Who holds a lease, as its line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's host tag (see [`host::tag`]).
    pub tag: String,
    pub pid: u32,
    /// The `staleAfter` the holder promised to refresh within.
    pub stale_after: Option<Duration>,
    /// The host's name, for people reading the lease.
    pub host_name: String,
}

impl Holder {
    /// This process, promising to refresh within `stale_after`.
    pub fn this_process(stale_after: Duration) -> Holder {
        Holder {
            tag: host::tag().to_owned(),
            pid: std::process::id(),
            stale_after: Some(stale_after),
            host_name: host::name(),
        }
    }

    pub fn is_this_process(&self) -> bool {
        self.tag == host::tag() && self.pid == std::process::id()
    }

    /// Whether the holder ran on this host and its process is gone.
    pub fn died_here(&self) -> bool {
        self.tag == host::tag() && !host::process_alive(self.pid)
    }

    /// The lease line: `<tag> <pid> <staleAfter ms> <host name>\n`.
    pub fn line(&self) -> String {
        let ms = self.stale_after.map_or(0, |d| d.as_millis());
        format!("{} {} {ms} {}\n", self.tag, self.pid, self.host_name)
    }

    /// The holder a lease line names; None for what is not a lease line
    /// (too long, not text, or without a host tag and a pid).
    pub fn parse(line: &[u8]) -> Option<Holder> {
        if line.len() as u64 > MAX_LEASE_LEN {
            return None;
        }
        let text = std::str::from_utf8(line).ok()?;
        let mut fields = text.split_ascii_whitespace();
        let tag = fields.next().filter(|t| host::is_tag(t))?.to_owned();
        let pid = fields.next()?.parse().ok()?;
        let stale_after = fields.next().and_then(|ms| ms.parse::<u64>().ok()).map(Duration::from_millis);
        let host_name = fields.next().unwrap_or("").to_owned();
        Some(Holder { tag, pid, stale_after, host_name })
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.tag, self.pid)
    }
}

/// Whether a lease `age` old is stale: see the module's docs. `holder` is
/// None for something under a lease's name that is not a lease line
/// (judged by the claimant's own `stale_after`); `skew` is how far the
/// tier's clocks may disagree.
pub fn is_stale(holder: Option<&Holder>, age: Duration, own: Duration, skew: Duration) -> bool {
    if holder.is_some_and(Holder::died_here) {
        return true;
    }
    let promised = holder.and_then(|h| h.stale_after).filter(|d| !d.is_zero()).unwrap_or(own);
    age >= promised.min(MAX_STALE_AFTER) + skew
}

/// The outcome of trying to take a lease.
#[derive(Debug)]
pub enum Claim {
    Taken(Lease),
    /// A live holder has it: another process, or this one
    /// (`this_process`: a synchronous wait for it would never end).
    Held {
        holder: Holder,
        this_process: bool,
        /// The holder is, or may be, the caller's own thread: a lease of
        /// this process not known to [`claim_on`]'s register counts as one.
        this_thread: bool,
    },
    /// No lease can be taken here now (links refused, the store down):
    /// the caller computes without one.
    Unavailable(Error),
}

/// What refreshing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    Renewed,
    /// A claimant took it over (its holder missed its refreshes).
    Lost,
    /// A passing fault: the next round tries again, well before the lease is stale.
    Failed,
}

/// A tier's hold on one lease.
#[async_trait]
pub trait LeaseHandle: Send + Sync + fmt::Debug {
    /// Renews the lease's time.
    async fn refresh(&self) -> Refreshed;
    /// Gives the lease up, if it is still this holder's (never a taker's).
    fn release(&self);
}

/// A held lease: refreshed every quarter of its `staleAfter` until it is
/// released (also done on drop).
#[derive(Debug)]
pub struct Lease {
    handle: Arc<dyn LeaseHandle>,
    stop: Option<oneshot::Sender<()>>,
    lost: Arc<AtomicBool>,
    /// Its place in the register of this process's leases, if it has one.
    registered: Option<Registered>,
}

impl Lease {
    /// Holds `handle`'s lease, refreshing it from a task of the runtime.
    pub fn hold(handle: Arc<dyn LeaseHandle>, stale_after: Duration) -> Lease {
        let every = (stale_after / 4).max(MIN_STALE_AFTER / 4);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let (task_handle, task_lost) = (handle.clone(), lost.clone());
        crate::runtime().spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(every) => {}
                }
                // Bounded by the interval: one hung request must not outlast the lease.
                if let Ok(Refreshed::Lost) = tokio::time::timeout(every, task_handle.refresh()).await {
                    task_lost.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
        Lease { handle, stop: Some(stop), lost, registered: None }
    }

    /// Whether a claimant took it over after its refreshes were missed.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops refreshing and gives the lease up.
    pub fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.handle.release();
        }
        self.registered.take();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release_now();
    }
}

/// A held lease's place in [`REGISTER`]: `(location, key)`.
type Place = (String, Key);

/// The leases this process holds through [`claim_on`], with the thread
/// each was claimed for and a token telling its registration apart.
static REGISTER: Mutex<Option<HashMap<Place, (ThreadId, u64)>>> = Mutex::new(None);

/// The places a claim of this process is being made for, each with its turn.
static CLAIMING: Mutex<Option<HashMap<Place, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);

/// Removes its lease from [`REGISTER`] when dropped, if still its own.
#[derive(Debug)]
struct Registered {
    place: Place,
    token: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut register = lock(&REGISTER);
        let map = register.get_or_insert_with(HashMap::new);
        if map.get(&self.place).is_some_and(|&(_, token)| token == self.token) {
            map.remove(&self.place);
        }
    }
}

/// Takes the lease of `key` on `tier` for `thread` (a JS thread: the one
/// that waits, synchronously or not), or says who holds it. A lease of this
/// process held for another thread, in this cache object or another, is
/// `this_thread: false`: that thread computes while this one waits, as
/// between processes.
pub async fn claim_on<B: crate::Buffer>(
    tier: &dyn Tier<B>,
    key: &Key,
    stale_after: Duration,
    thread: ThreadId,
) -> crate::Result<Claim> {
    static TOKENS: AtomicU64 = AtomicU64::new(0);
    let place = (tier.location().to_owned(), *key);
    // One claim of a place at a time in this process: a lease is in the
    // register before another thread can find it held, which would
    // otherwise count as its own thread's and compute beside it.
    let turn = lock(&CLAIMING).get_or_insert_with(HashMap::new).entry(place.clone()).or_default().clone();
    let claimed = {
        let _turn = turn.lock().await;
        match tier.claim(key, stale_after).await {
            Ok(Claim::Taken(mut lease)) => {
                let token = TOKENS.fetch_add(1, Ordering::Relaxed);
                lock(&REGISTER).get_or_insert_with(HashMap::new).insert(place.clone(), (thread, token));
                lease.registered = Some(Registered { place: place.clone(), token });
                Ok(Claim::Taken(lease))
            }
            Ok(Claim::Held { holder, this_process: true, .. }) => {
                let held_for = lock(&REGISTER).as_ref().and_then(|m| m.get(&place).map(|&(t, _)| t));
                Ok(Claim::Held { holder, this_process: true, this_thread: held_for.is_none_or(|t| t == thread) })
            }
            other => other,
        }
    };
    let mut claiming = lock(&CLAIMING);
    // Turns are cloned only under this lock: two references (the map's and
    // this one) mean no other claim waits for this place.
    if Arc::strong_count(&turn) == 2 {
        if let Some(m) = claiming.as_mut() {
            m.remove(&place);
        }
    }
    claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_line_round_trips_and_what_is_not_one_is_told() {
        let me = Holder::this_process(Duration::from_millis(1500));
        assert!(me.line().ends_with('\n'));
        assert_eq!(Holder::parse(me.line().as_bytes()), Some(me.clone()));
        assert!(me.is_this_process() && !me.died_here());
        for bad in [&b""[..], b"tag", b"tag notapid 5 h", &[0xff, b' ', b'1'], &[b'a'; 300]] {
            assert_eq!(Holder::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn staleness_follows_the_holders_promise_capped_and_the_skew() {
        let s = Duration::from_secs;
        let other = |ms: u64| Holder {
            tag: "0000000000000000".into(),
            pid: 1,
            stale_after: Some(Duration::from_millis(ms)),
            host_name: "h".into(),
        };
        let own = s(60);
        assert!(!is_stale(Some(&other(5000)), s(4), own, s(0)));
        assert!(is_stale(Some(&other(5000)), s(5), own, s(0)));
        assert!(!is_stale(Some(&other(5000)), s(6), own, s(2)), "the skew is allowed for");
        // What is not a lease line is judged by the claimant's own staleAfter.
        assert!(!is_stale(None, s(59), own, s(0)) && is_stale(None, s(60), own, s(0)));
        // An unbounded promise is capped.
        assert!(is_stale(Some(&other(u64::MAX / 2)), MAX_STALE_AFTER, own, s(0)));
        // This process lives: its lease is not dead here.
        assert!(!is_stale(Some(&Holder::this_process(s(1))), Duration::ZERO, own, s(0)));
    }
}
