//! Compute-once leases in a directory (see `cache_core::lease` for the
//! rules every tier keeps): the lease is the file `.<key>.lock`, holding
//! the holder's lease line.
//!
//! It is taken by writing a uniquely named file and hard-linking it to the
//! lease name: `link` is atomic on every filesystem including NFS, where
//! `O_EXCL` was not always honoured and `flock` is emulated. If the reply
//! to `link` is lost (NFS retries), the unique file's link count of 2
//! still tells the winner. The heartbeat refreshes the file's modification
//! time.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cache_core::lease::{self, MAX_LEASE_LEN};
use cache_core::{Claim, Clock, Error, Holder, Lease, LeaseHandle, Refreshed};

use crate::layout::{self, dev_ino, Layout, Part};

/// A directory's lease as its holder has it: the open file, whose times it
/// refreshes, and its identity, so a release removes only its own.
#[derive(Debug)]
struct HeldFile {
    path: PathBuf,
    file: File,
    /// Device and inode (None where the platform has none: then a release
    /// removes the lease without the check).
    id: Option<(u64, u64)>,
}

#[async_trait]
impl LeaseHandle for HeldFile {
    async fn refresh(&self) -> Refreshed {
        // One metadata write: too small to hand to another thread.
        match self.file.set_modified(SystemTime::now()) {
            Ok(()) if self.is_ours() => Refreshed::Renewed,
            Ok(()) => Refreshed::Lost,
            Err(_) => Refreshed::Failed,
        }
    }

    fn release(&self) {
        if self.is_ours() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl HeldFile {
    /// Whether the lease's name still holds this file (it may have been broken as stale).
    fn is_ours(&self) -> bool {
        fs::symlink_metadata(&self.path).map(|m| dev_ino(&m)).ok() == Some(self.id)
    }
}

fn link_count(m: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        m.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        1
    }
}

/// Tries to take the lease of `key` in `layout`'s directory. A failure to
/// write or link (a filesystem without hard links) is no lease here.
/// A lease's age is by `clock` (tests move it forward).
pub(crate) fn claim(layout: &Layout, key: &str, stale_after: Duration, clock: &Clock) -> Claim {
    match try_claim(layout, key, stale_after, clock.now()) {
        Ok(claim) => claim,
        Err(e) => Claim::Unavailable(e),
    }
}

fn try_claim(layout: &Layout, key: &str, stale_after: Duration, now: SystemTime) -> Result<Claim, Error> {
    let path = layout.lease(key);
    // Two rounds: a stale lease broken in the first is taken in the second.
    for _ in 0..2 {
        let unique = layout.temp(key, Part::Lease);
        let mut file = layout::create_new(&unique)?;
        let taken = (|| {
            // The holder's staleAfter goes in too: it is the holder that promises to refresh within it.
            file.write_all(Holder::this_process(stale_after).line().as_bytes())
                .map_err(Error::io("write lease file", &unique))?;
            match fs::hard_link(&unique, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let m = file.metadata().map_err(Error::io("inspect lease file", &unique))?;
                    Ok(link_count(&m) == 2)
                }
                Err(e) => Err(Error::io("take lease", &path)(e)),
            }
        })();
        let _ = fs::remove_file(&unique);
        if taken? {
            let id = dev_ino(&file.metadata().map_err(Error::io("inspect lease", &path))?);
            return Ok(Claim::Taken(Lease::hold(Arc::new(HeldFile { path, file, id }), stale_after)));
        }
        match holder_if_live(layout, key, stale_after, now) {
            Some(holder) => {
                let this_process = holder.is_this_process();
                return Ok(Claim::Held { holder, this_process, this_thread: this_process });
            }
            None => continue,
        }
    }
    Ok(Claim::Held { holder: unknown_holder(), this_process: false, this_thread: false })
}

/// A holder no line names (a lease that kept changing hands).
fn unknown_holder() -> Holder {
    Holder { tag: "another".into(), pid: 0, stale_after: None, host_name: String::new() }
}

/// What is under a lease's name.
enum Seen {
    Nothing,
    /// Not a regular file (a link, a FIFO, a directory...): something
    /// planted, which no holder refreshes; broken like a stale lease.
    NotAFile(fs::Metadata),
    Lease {
        meta: fs::Metadata,
        holder: Option<Holder>,
        stale: bool,
    },
}

/// What the lease at `path` is, and whether it is stale at `now`. Read
/// without following links or blocking, and only so far.
fn inspect(path: &Path, stale_after: Duration, now: SystemTime) -> Seen {
    let (bytes, meta) = match layout::read_capped(path, MAX_LEASE_LEN) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Seen::Nothing,
        Err(_) => {
            return match fs::symlink_metadata(path) {
                Ok(m) => Seen::NotAFile(m),
                Err(_) => Seen::Nothing,
            }
        }
    };
    let holder = Holder::parse(&bytes);
    // A time in the future (another host's clock ahead) counts as fresh.
    let age = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let stale = lease::is_stale(holder.as_ref(), age, stale_after, Duration::ZERO);
    Seen::Lease { meta, holder, stale }
}

/// Whether the lease file at `path` is a leftover at `now` (stale, or not
/// a lease): a clear removes those and leaves the leases of computations
/// still running.
pub(crate) fn is_abandoned(path: &Path, now: SystemTime) -> bool {
    !matches!(inspect(path, lease::DEFAULT_STALE_AFTER, now), Seen::Lease { stale: false, .. })
}

/// Breaks the lease of `key` if it is a leftover at `now` (see
/// [`is_abandoned`]), as a claimant would; says whether it did.
pub(crate) fn break_if_abandoned(layout: &Layout, key: &str, now: SystemTime) -> bool {
    match inspect(&layout.lease(key), lease::DEFAULT_STALE_AFTER, now) {
        Seen::Nothing | Seen::Lease { stale: false, .. } => false,
        Seen::Lease { meta, .. } | Seen::NotAFile(meta) => break_judged(layout, key, &meta),
    }
}

/// The live holder of the lease of `key` at `now`, read only: what a waiter polls.
pub(crate) fn live_holder(layout: &Layout, key: &str, stale_after: Duration, now: SystemTime) -> Option<Holder> {
    match inspect(&layout.lease(key), stale_after, now) {
        Seen::Lease { stale: false, holder, .. } => Some(holder.unwrap_or_else(unknown_holder)),
        _ => None,
    }
}

/// The holder of the lease of `key` if it is live; breaks it and returns
/// None if it is stale, not a lease, or gone.
fn holder_if_live(layout: &Layout, key: &str, stale_after: Duration, now: SystemTime) -> Option<Holder> {
    let judged = match inspect(&layout.lease(key), stale_after, now) {
        // Released in between: try again.
        Seen::Nothing => return None,
        Seen::Lease { stale: false, holder, .. } => return Some(holder.unwrap_or_else(unknown_holder)),
        Seen::Lease { meta, .. } | Seen::NotAFile(meta) => meta,
    };
    break_judged(layout, key, &judged);
    None
}

/// Breaks the lease of `key`, judged stale as `judged`; says whether it did.
fn break_judged(layout: &Layout, key: &str, judged: &fs::Metadata) -> bool {
    // Rename it away first: of several processes breaking it at once, one
    // rename succeeds. If what was renamed is not what was judged (it was
    // replaced in between), it is a live lease: put it back.
    let (path, broken) = (layout.lease(key), layout.broken_lease(key));
    if fs::rename(&path, &broken).is_err() {
        return false;
    }
    let moved = fs::symlink_metadata(&broken).map(|m| dev_ino(&m)).ok();
    let ours = moved == Some(dev_ino(judged));
    if !ours {
        let _ = fs::hard_link(&broken, &path);
    }
    let _ = fs::remove_file(&broken);
    ours
}
