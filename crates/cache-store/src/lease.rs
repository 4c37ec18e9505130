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

use crate::{dev_ino, host_tag, io_err, random_u64, StoreError};

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
    Held { holder: String, this_process: bool },
}

/// Device and inode (None where the platform has none: then any two files
/// count as the same, and a lease is released without the check).
type FileId = Option<(u64, u64)>;

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

/// Whether process `pid` exists on this host (unknown counts as alive).
pub(crate) fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Tries to take the lease at `path` (`.<key>.lock` in `dir`).
pub(crate) fn claim(dir: &Path, key: &str, stale_after: Duration) -> Result<Claim, StoreError> {
    let path = dir.join(format!(".{key}.lock"));
    // Two rounds: a stale lease broken in the first is taken in the second.
    for _ in 0..2 {
        let unique = dir.join(format!(".{key}.lock.{}-{}-{:016x}.tmp", host_tag(), std::process::id(), random_u64()));
        let mut file =
            File::options().write(true).create_new(true).open(&unique).map_err(io_err("create lease file", &unique))?;
        let taken = (|| {
            // The holder's staleAfter goes in too: it is the holder that promises to refresh within it.
            writeln!(file, "{} {} {}", host_tag(), std::process::id(), stale_after.as_millis())
                .map_err(io_err("write lease file", &unique))?;
            match fs::hard_link(&unique, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let m = fs::metadata(&unique).map_err(io_err("inspect lease file", &unique))?;
                    Ok(link_count(&m) == 2)
                }
                Err(e) => Err(io_err("take lease", &path)(e)),
            }
        })();
        let _ = fs::remove_file(&unique);
        if taken? {
            let id = dev_ino(&file.metadata().map_err(io_err("inspect lease", &path))?);
            let heartbeat = start_heartbeat(file, stale_after / 4);
            return Ok(Claim::Taken(Lease { path, id, heartbeat: Some(heartbeat) }));
        }
        match holder_if_live(&path, stale_after)? {
            Some(holder) => {
                let this_process = holder == format!("{} {}", host_tag(), std::process::id());
                return Ok(Claim::Held { holder, this_process });
            }
            None => continue,
        }
    }
    Ok(Claim::Held { holder: "another process".to_owned(), this_process: false })
}

/// Who holds the lease at `path` (`host pid`), and whether it is stale:
/// its holder was on this host and is gone, or it went unrefreshed for the
/// staleAfter its holder wrote into it (`stale_after` if it wrote none).
/// None if there is no lease there.
fn inspect(path: &Path, stale_after: Duration) -> Option<(fs::Metadata, String, bool)> {
    let (meta, text) = (fs::metadata(path).ok()?, fs::read_to_string(path).ok()?);
    let mut fields = text.split_whitespace();
    let (host, pid, declared) = (fields.next(), fields.next(), fields.next());
    let holder = format!("{} {}", host.unwrap_or("?"), pid.unwrap_or("?"));
    let pid = pid.and_then(|p| p.parse::<u32>().ok());
    let dead_here = host == Some(host_tag().as_str()) && pid.is_some_and(|p| !process_alive(p));
    let stale_after = declared.and_then(|d| d.parse::<u64>().ok()).map_or(stale_after, Duration::from_millis);
    // A time in the future (another host's clock ahead) counts as fresh.
    let age = meta.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default();
    let stale = dead_here || age >= stale_after;
    Some((meta, holder, stale))
}

/// Whether the lease file at `path` is a leftover: a clear removes those
/// and leaves the leases of computations still running.
pub(crate) fn is_abandoned(path: &Path) -> bool {
    inspect(path, DEFAULT_STALE_AFTER).is_none_or(|(_, _, stale)| stale)
}

/// The default of `computeOnce.staleAfter`.
pub(crate) const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// The holder of the lease at `path` if it is live; breaks it and returns
/// None if it is stale or gone.
fn holder_if_live(path: &Path, stale_after: Duration) -> Result<Option<String>, StoreError> {
    let Some((meta, holder, stale)) = inspect(path, stale_after) else {
        // Released in between: try again.
        return Ok(None);
    };
    if !stale {
        return Ok(Some(holder));
    }
    // Rename it away first: of several processes breaking it at once, one
    // rename succeeds. If what was renamed is not the lease judged stale
    // (it was replaced in between), it is a live lease: put it back.
    let broken = path.with_extension(format!("lock.broken-{:016x}.tmp", random_u64()));
    if fs::rename(path, &broken).is_err() {
        return Ok(None);
    }
    let moved = fs::metadata(&broken).map(|m| dev_ino(&m)).ok();
    if moved != Some(dev_ino(&meta)) {
        let _ = fs::hard_link(&broken, path);
    }
    let _ = fs::remove_file(&broken);
    Ok(None)
}

fn start_heartbeat(file: File, every: Duration) -> (Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let every = every.max(Duration::from_millis(50));
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
            if fs::metadata(&self.path).map(|m| dev_ino(&m)).ok() == Some(self.id) {
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
