//! Compute-once across hosts, with no lock server (see `cache_core::lease`
//! for the rules every tier keeps): a lease is the object `<key>.lease`,
//! holding its holder's lease line, created with `If-None-Match: *` (one
//! creator wins), refreshed and taken over with `If-Match` on its ETag (one
//! taker wins).
//!
//! A lease's age is the store's own modification time of it against the
//! claimant's clock: one clock compared with the store's, never two hosts'
//! clocks with each other, with [`CLOCK_SKEW`] allowed between them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::lease::{self, MAX_LEASE_LEN};
use cache_core::{lock, Claim, Clock, Holder, Lease, LeaseHandle, Refreshed};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// How far a host's clock may be from the store's before a live lease can
/// be taken for a dead one.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

fn body(stale_after: Duration) -> PutPayload {
    PutPayload::from(Bytes::from(Holder::this_process(stale_after).line()))
}

/// What is at a lease's name: its holder (None for what is not a lease
/// line), age and version.
struct Seen {
    holder: Option<Holder>,
    age: Duration,
    version: UpdateVersion,
    /// More than a lease's length: something no holder wrote or refreshes,
    /// broken at once (as a directory breaks what is not a lease file).
    oversized: bool,
}

impl Seen {
    fn is_stale(&self, stale_after: Duration) -> bool {
        self.oversized || lease::is_stale(self.holder.as_ref(), self.age, stale_after, CLOCK_SKEW)
    }
}

/// Reads the lease at `path`: one ranged GET of at most one byte past a
/// lease's length, whatever size the object is.
async fn read(store: &dyn ObjectStore, path: &Path, clock: &Clock) -> Result<Option<Seen>, object_store::Error> {
    let options = GetOptions { range: Some(GetRange::Bounded(0..MAX_LEASE_LEN + 1)), ..Default::default() };
    let got = match store.get_opts(path, options).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        // An empty object has no range to read (416): not a lease, and old or new by its own time.
        Err(e) => match store.head(path).await {
            Ok(meta) if meta.size == 0 => {
                let age = clock.now().duration_since(SystemTime::from(meta.last_modified)).unwrap_or_default();
                let version = UpdateVersion { e_tag: meta.e_tag, version: meta.version };
                return Ok(Some(Seen { holder: None, age, version, oversized: false }));
            }
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            _ => return Err(e),
        },
    };
    let meta = got.meta.clone();
    let bytes = got.bytes().await?;
    let oversized = meta.size > MAX_LEASE_LEN || meta.size != bytes.len() as u64;
    let holder = (!oversized).then(|| Holder::parse(&bytes)).flatten();
    // A time in the future (this host's clock behind the store's) counts as fresh.
    let age = clock.now().duration_since(SystemTime::from(meta.last_modified)).unwrap_or_default();
    let version = UpdateVersion { e_tag: meta.e_tag, version: meta.version };
    Ok(Some(Seen { holder, age, version, oversized }))
}

/// Tries to take the lease at `path`.
pub(crate) async fn claim(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    stale_after: Duration,
    clock: &Clock,
) -> Result<Claim, object_store::Error> {
    let taken = |put: object_store::PutResult| {
        let state = std::sync::Mutex::new(Held::At(put.e_tag));
        let held = HeldObject { store: store.clone(), path: path.clone(), stale_after, state };
        Claim::Taken(Lease::hold(Arc::new(held), stale_after))
    };
    // A few rounds: the lease can vanish (released) between our create and our read.
    for _ in 0..4 {
        match store.put_opts(path, body(stale_after), PutOptions::from(PutMode::Create)).await {
            Ok(put) => return Ok(taken(put)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let Some(seen) = read(store.as_ref(), path, clock).await? else { continue };
        if !seen.is_stale(stale_after) {
            let holder = seen.holder.unwrap_or_else(unreadable);
            let this_process = holder.is_this_process();
            return Ok(Claim::Held { holder, this_process, this_thread: this_process });
        }
        // Stale: take it over, unless another taker or the holder's refresh came first.
        match store.put_opts(path, body(stale_after), PutOptions::from(PutMode::Update(seen.version))).await {
            Ok(put) => return Ok(taken(put)),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Claim::Held { holder: unreadable(), this_process: false, this_thread: false })
}

/// The live holder of the lease at `path`, judged as a claim judges it:
/// one ranged GET of at most a lease's length, never a write. (Not a GET
/// conditional on the ETag: a refresh writes the same line, and on S3 the
/// same ETag, so only the modification time tells it.)
pub(crate) async fn live_holder(
    store: &dyn ObjectStore,
    path: &Path,
    stale_after: Duration,
    clock: &Clock,
) -> Result<Option<Holder>, object_store::Error> {
    let Some(seen) = read(store, path, clock).await? else { return Ok(None) };
    Ok((!seen.is_stale(stale_after)).then(|| seen.holder.unwrap_or_else(unreadable)))
}

/// The holder of what is not a lease line, or of a lease that keeps changing hands.
fn unreadable() -> Holder {
    Holder { tag: "unknown".into(), pid: 0, stale_after: None, host_name: String::new() }
}

/// Whether a lease object `age` old, as a listing sees it, is a leftover
/// of a killed holder: older than any lease's promise can be.
pub(crate) fn is_leftover(age: Duration) -> bool {
    age > lease::MAX_STALE_AFTER + CLOCK_SKEW
}

/// The object store's lease as its holder has it: its current version,
/// refreshed with `If-Match`.
#[derive(Debug)]
struct HeldObject {
    store: Arc<dyn ObjectStore>,
    path: Path,
    stale_after: Duration,
    state: std::sync::Mutex<Held>,
}

#[derive(Debug)]
enum Held {
    /// Held, at this version (the ETag the store gave the last write).
    At(Option<String>),
    /// Taken over by a claimant: the holder missed its refreshes.
    Lost,
    Released,
}

impl HeldObject {
    /// Deletes the lease in the background if it is still at version `ours`:
    /// waiters find the entry before they read the lease, and one left behind
    /// (the process exits first) only goes stale. Never a taker's version.
    fn delete_if_at(&self, ours: Option<String>) {
        let Some(ours) = ours else { return };
        let (store, path) = (self.store.clone(), self.path.clone());
        cache_core::runtime().spawn(async move {
            if store.head(&path).await.is_ok_and(|m| m.e_tag.as_deref() == Some(ours.as_str())) {
                let _ = store.delete(&path).await;
            }
        });
    }
}

#[async_trait]
impl LeaseHandle for HeldObject {
    async fn refresh(&self) -> Refreshed {
        let current = match &*lock(&self.state) {
            Held::At(e_tag) => e_tag.clone(),
            Held::Lost => return Refreshed::Lost,
            Held::Released => return Refreshed::Renewed,
        };
        let version = UpdateVersion { e_tag: current, version: None };
        let put = self.store.put_opts(&self.path, body(self.stale_after), PutOptions::from(PutMode::Update(version)));
        let refreshed = put.await;
        let mut state = lock(&self.state);
        match (refreshed, &*state) {
            // Released while this refresh was in flight: its new version goes too.
            (Ok(put), Held::Released) => {
                drop(state);
                self.delete_if_at(put.e_tag);
                Refreshed::Renewed
            }
            (Ok(put), _) => {
                *state = Held::At(put.e_tag);
                Refreshed::Renewed
            }
            // Taken over (we were too slow): the result is still published create-only.
            (Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }), _) => {
                *state = Held::Lost;
                Refreshed::Lost
            }
            (Err(_), _) => Refreshed::Failed,
        }
    }

    fn release(&self) {
        let previous = std::mem::replace(&mut *lock(&self.state), Held::Released);
        if let Held::At(ours) = previous {
            self.delete_if_at(ours);
        }
    }
}
