//! This host and its processes, as the names of temporary files and leases
//! record them: whose a file is, and whether its writer still runs.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// This host's name as file names carry it: the characters a name may
/// hold, at most 32 of them.
pub(crate) fn tag() -> String {
    let host = gethostname::gethostname();
    let host: String =
        host.to_string_lossy().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
    if host.is_empty() {
        "host".to_owned()
    } else {
        host
    }
}

/// Whether process `pid` exists on this host (unknown counts as alive).
pub(crate) fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// 64 bits that differ between calls and processes, for unique names.
pub(crate) fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per process; the counter makes each call differ.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// A file's device and inode, where the platform has them.
pub(crate) fn dev_ino(m: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}
