//! Compute-once across hosts, with no lock server: a lease is the object
//! `<key>.lease`, created with `If-None-Match: *` (one creator wins),
//! refreshed and taken over with `If-Match` on its ETag (one taker wins).
//!
//! The holder refreshes it every quarter of `stale_after` from a task of
//! its own, so a synchronous computation holds it too. A lease is stale
//! once the store's own modification time of it is older than `stale_after`
//! plus [`CLOCK_SKEW`] by the taker's clock: one clock compared with the
//! store's, never two hosts' clocks with each other.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// How far a host's clock may be from the store's before a live lease can
/// be taken for a dead one.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// A lease object's body: who holds it, for people and `entries`.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    host: String,
    pid: u32,
    #[serde(rename = "staleAfterMs")]
    stale_after_ms: u64,
}

/// The outcome of trying to take a lease.
#[derive(Debug)]
pub enum RemoteClaim {
    Taken(RemoteLease),
    /// Another process holds it (its `host pid`), or this one does
    /// (`this_process`: a synchronous wait for it would never end).
    Held {
        holder: String,
        this_process: bool,
    },
}

/// The leases this process holds, by object path.
pub(crate) type HeldHere = Arc<Mutex<HashSet<Path>>>;

/// A held lease; releasing or dropping it deletes the lease object.
#[derive(Debug)]
pub struct RemoteLease {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// The lease's current version; `None` once lost to a taker.
    e_tag: Arc<Mutex<Option<String>>>,
    stop: Option<oneshot::Sender<()>>,
    held_here: HeldHere,
}

fn host() -> String {
    let name = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "host".into());
    format!("{}:{name}", cache_store::host_tag())
}

fn body(stale_after: Duration) -> PutPayload {
    let body = Body { host: host(), pid: std::process::id(), stale_after_ms: stale_after.as_millis() as u64 };
    PutPayload::from(Bytes::from(serde_json::to_vec(&body).expect("a lease body serializes")))
}

/// Tries to take the lease at `path` (see the module's docs).
pub(crate) async fn claim(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    stale_after: Duration,
    held_here: &HeldHere,
) -> Result<RemoteClaim, object_store::Error> {
    if held_here.lock().unwrap().contains(path) {
        return Ok(RemoteClaim::Held { holder: format!("{} {}", host(), std::process::id()), this_process: true });
    }
    let taken = |put: object_store::PutResult| {
        held_here.lock().unwrap().insert(path.clone());
        RemoteClaim::Taken(RemoteLease::hold(store, path, put.e_tag, stale_after, held_here))
    };
    // A few rounds: the lease can vanish (released) between our create and our read.
    for _ in 0..4 {
        match store.put_opts(path, body(stale_after), PutOptions::from(PutMode::Create)).await {
            Ok(put) => return Ok(taken(put)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let current = match store.get(path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let meta = current.meta.clone();
        let held = serde_json::from_slice::<Body>(&current.bytes().await?).ok();
        let holder = held.as_ref().map_or_else(|| "an unreadable lease".into(), |b| format!("{} {}", b.host, b.pid));
        // The holder's own staleAfter counts if longer: it refreshes that much less often.
        let theirs = held.map_or(Duration::ZERO, |b| Duration::from_millis(b.stale_after_ms.min(u64::MAX / 2)));
        let age = SystemTime::now().duration_since(SystemTime::from(meta.last_modified)).unwrap_or_default();
        if age <= stale_after.max(theirs) + CLOCK_SKEW {
            return Ok(RemoteClaim::Held { holder, this_process: false });
        }
        // Stale: take it over, unless another taker or the holder's refresh came first.
        let version = UpdateVersion { e_tag: meta.e_tag, version: meta.version };
        match store.put_opts(path, body(stale_after), PutOptions::from(PutMode::Update(version))).await {
            Ok(put) => return Ok(taken(put)),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(RemoteClaim::Held { holder: "a lease that keeps changing hands".into(), this_process: false })
}

impl RemoteLease {
    fn hold(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        e_tag: Option<String>,
        stale_after: Duration,
        held_here: &HeldHere,
    ) -> RemoteLease {
        let e_tag = Arc::new(Mutex::new(e_tag));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let every = (stale_after / 4).max(Duration::from_millis(50));
        let (task_store, task_path, task_tag) = (Arc::clone(store), path.clone(), Arc::clone(&e_tag));
        crate::runtime().spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Some(current) = task_tag.lock().unwrap().clone() else { return };
                let version = UpdateVersion { e_tag: Some(current), version: None };
                let refresh =
                    task_store.put_opts(&task_path, body(stale_after), PutOptions::from(PutMode::Update(version)));
                // Bounded by the interval: one hung request must not outlast the lease.
                let Ok(refreshed) = tokio::time::timeout(every, refresh).await else { continue };
                match refreshed {
                    Ok(put) => *task_tag.lock().unwrap() = put.e_tag,
                    // Taken over (we were too slow): the result is still published create-only.
                    Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                        *task_tag.lock().unwrap() = None;
                        return;
                    }
                    // A passing fault: the next round tries again, well before the lease is stale.
                    Err(_) => {}
                }
            }
        });
        RemoteLease {
            store: Arc::clone(store),
            path: path.clone(),
            e_tag,
            stop: Some(stop),
            held_here: Arc::clone(held_here),
        }
    }

    /// Whether a taker took it over after the holder missed its refreshes.
    pub fn lost(&self) -> bool {
        self.e_tag.lock().unwrap().is_none()
    }

    /// Stops refreshing and deletes the lease (unless it was taken over).
    pub fn release(mut self) {
        self.stop_and_delete();
    }

    fn stop_and_delete(&mut self) {
        let Some(stop) = self.stop.take() else { return };
        let _ = stop.send(());
        self.held_here.lock().unwrap().remove(&self.path);
        let Some(ours) = self.e_tag.lock().unwrap().clone() else { return };
        // In the background: waiters poll for the entry, not the lease, and a
        // lease left behind (the process exits first) only goes stale. Only
        // our own version goes, never a taker's that replaced it.
        let (store, path) = (Arc::clone(&self.store), self.path.clone());
        crate::runtime().spawn(async move {
            if store.head(&path).await.is_ok_and(|m| m.e_tag.as_deref() == Some(ours.as_str())) {
                let _ = store.delete(&path).await;
            }
        });
    }
}

impl Drop for RemoteLease {
    fn drop(&mut self) {
        self.stop_and_delete();
    }
}
