//! Compute-once leases: one process at a time computes a given key while
//! the others wait for its entry.
//!
//! A lease is the file `.<key>.lock`. It is taken by writing a uniquely
//! named file and hard-linking it to the lease name: `link` is atomic on
//! every filesystem including NFS, where `O_EXCL` was not always honoured
//! and `flock` is emulated. If the reply to `link` is lost (NFS retries),
//! the unique file's link count of 2 still tells the winner.
//!
//! The holder's thread refreshes the lease's modification time while it
//! computes, even if the JS thread is busy in a synchronous function. A
//! lease whose holder died is broken: at once if the holder was on this
//! host and its process is gone, else once it has not been refreshed for
//! `stale_after`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::host::{self, dev_ino};
use crate::layout::{self, Layout, Part};
use crate::StoreError;

/// The default of `computeOnce.staleAfter`.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// The shortest `staleAfter`: the holder refreshes its lease every quarter
/// of it, and not more often than every 50 ms.
pub const MIN_STALE_AFTER: Duration = Duration::from_millis(200);

/// A lease file is one short line; one under a lease's name is read only this far.
const MAX_LEASE_LEN: u64 = 256;

/// A held lease; dropping it releases it.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    id: FileId,
    heartbeat: Option<(Sender<()>, JoinHandle<()>)>,
}

/// The outcome of trying to take a lease.
#[derive(Debug)]
pub enum Claim {
    Taken(Lease),
    /// Another live process holds it, or another thread of this one
    /// (`this_process`); `holder` is its `host pid`.
    Held {
        holder: String,
        this_process: bool,
    },
}

/// Device and inode (None where the platform has none: then any two files
/// count as the same, and a lease is released without the check).
type FileId = Option<(u64, u64)>;

/// `<tag> <pid>`: how a lease names its holder.
fn this_process() -> String {
    format!("{} {}", host::tag(), std::process::id())
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

/// Tries to take the lease of `key` in `layout`'s directory.
pub(crate) fn claim(layout: &Layout, key: &str, stale_after: Duration) -> Result<Claim, StoreError> {
    let path = layout.lease(key);
    // Two rounds: a stale lease broken in the first is taken in the second.
    for _ in 0..2 {
        let unique = layout.temp(key, Part::Lease);
        let mut file = layout::create_new(&unique)?;
        let taken = (|| {
            // The holder's staleAfter goes in too: it is the holder that promises
            // to refresh within it. The host's name last, for people reading it.
            writeln!(file, "{} {} {}", this_process(), stale_after.as_millis(), host::name())
                .map_err(StoreError::io("write lease file", &unique))?;
            match fs::hard_link(&unique, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let m = file.metadata().map_err(StoreError::io("inspect lease file", &unique))?;
                    Ok(link_count(&m) == 2)
                }
                Err(e) => Err(StoreError::io("take lease", &path)(e)),
            }
        })();
        let _ = fs::remove_file(&unique);
        if taken? {
            let id = dev_ino(&file.metadata().map_err(StoreError::io("inspect lease", &path))?);
            let heartbeat = start_heartbeat(file, stale_after / 4);
            return Ok(Claim::Taken(Lease { path, id, heartbeat: Some(heartbeat) }));
        }
        match holder_if_live(layout, key, stale_after)? {
            Some(holder) => {
                let this_process = holder == this_process();
                return Ok(Claim::Held { holder, this_process });
            }
            None => continue,
        }
    }
    Ok(Claim::Held { holder: "another process".to_owned(), this_process: false })
}

/// What is under a lease's name.
enum Seen {
    Nothing,
    /// Not a lease (a link, a FIFO, a directory...): something planted,
    /// which no holder refreshes; broken like a stale lease.
    NotALease(fs::Metadata),
    Lease {
        meta: fs::Metadata,
        holder: String,
        stale: bool,
    },
}

/// Who holds the lease at `path` (`tag pid`), and whether it is stale: its
/// holder was on this host (same name, boot and pid namespace) and is gone,
/// or it went unrefreshed for the staleAfter its holder wrote into it
/// (`stale_after` if it wrote none). Read without following links or
/// blocking, and only so far.
fn inspect(path: &Path, stale_after: Duration) -> Seen {
    let (bytes, meta) = match layout::read_capped(path, MAX_LEASE_LEN) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Seen::Nothing,
        Err(_) => {
            return match fs::symlink_metadata(path) {
                Ok(m) => Seen::NotALease(m),
                Err(_) => Seen::Nothing,
            }
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut fields = text.split_whitespace();
    let (tag, pid, declared) = (fields.next(), fields.next(), fields.next());
    let holder = format!("{} {}", tag.unwrap_or("?"), pid.unwrap_or("?"));
    let pid = pid.and_then(|p| p.parse::<u32>().ok());
    let dead_here = tag == Some(host::tag()) && pid.is_some_and(|p| !host::process_alive(p));
    let stale_after = declared.and_then(|d| d.parse::<u64>().ok()).map_or(stale_after, Duration::from_millis);
    // A time in the future (another host's clock ahead) counts as fresh.
    let age = meta.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default();
    let stale = dead_here || age >= stale_after;
    Seen::Lease { meta, holder, stale }
}

/// Whether the lease file at `path` is a leftover: a clear removes those
/// and leaves the leases of computations still running.
pub(crate) fn is_abandoned(path: &Path) -> bool {
    !matches!(inspect(path, DEFAULT_STALE_AFTER), Seen::Lease { stale: false, .. })
}

/// The holder of the lease at `path` if it is live; breaks it and returns
/// None if it is stale, not a lease, or gone.
fn holder_if_live(layout: &Layout, key: &str, stale_after: Duration) -> Result<Option<String>, StoreError> {
    let path = &layout.lease(key);
    let judged = match inspect(path, stale_after) {
        // Released in between: try again.
        Seen::Nothing => return Ok(None),
        Seen::Lease { stale: false, holder, .. } => return Ok(Some(holder)),
        Seen::Lease { meta, .. } | Seen::NotALease(meta) => meta,
    };
    // Rename it away first: of several processes breaking it at once, one
    // rename succeeds. If what was renamed is not what was judged (it was
    // replaced in between), it is a live lease: put it back.
    let broken = layout.broken_lease(key);
    if fs::rename(path, &broken).is_err() {
        return Ok(None);
    }
    let moved = fs::symlink_metadata(&broken).map(|m| dev_ino(&m)).ok();
    if moved != Some(dev_ino(&judged)) {
        let _ = fs::hard_link(&broken, path);
    }
    let _ = fs::remove_file(&broken);
    Ok(None)
}

fn start_heartbeat(file: File, every: Duration) -> (Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let every = every.max(MIN_STALE_AFTER / 4);
    let thread = std::thread::spawn(move || loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                let _ = file.set_modified(SystemTime::now());
            }
            _ => return,
        }
    });
    (stop, thread)
}

impl Lease {
    /// Releases the lease (also done on drop).
    pub fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        if let Some((stop, thread)) = self.heartbeat.take() {
            let _ = stop.send(());
            let _ = thread.join();
            // Remove it only if it is still ours (it may have been broken as stale).
            if fs::symlink_metadata(&self.path).map(|m| dev_ino(&m)).ok() == Some(self.id) {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release_now();
    }
}
