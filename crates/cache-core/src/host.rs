//! This host and its processes, as the names of temporary files and leases
//! record them: whose a file is, and whether its writer still runs.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// This host as file names and leases carry it: 16 hex digits of BLAKE3
/// over the full host name, the boot id and the pid namespace. Two hosts
/// whose names differ only in characters a file name cannot hold, or only
/// after many characters (the pods of one deployment), are two hosts; two
/// containers with one name but their own pid namespaces are two hosts too,
/// so neither takes the other's live processes for dead ones.
pub fn tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| tag_of(name().as_bytes(), &boot_id(), &pid_namespace()))
}

/// Hex digits in a host tag.
pub const TAG_LEN: usize = 16;

/// Whether `s` is a host tag as [`tag`] makes them: 16 lower-case hex digits.
pub fn is_tag(s: &str) -> bool {
    s.len() == TAG_LEN && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The tag of a host of this name, boot and pid namespace.
pub(crate) fn tag_of(name: &[u8], boot: &[u8], pid_namespace: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("numpy-func-cache 2026-11 host tag v1");
    for part in [name, boot, pid_namespace] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex()[..TAG_LEN].to_owned()
}

/// This host's name, for people reading a lease.
pub fn name() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    // Printable and one word: it ends a lease's line.
    name.chars().map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// Stands in for the kernel's boot id in [`boot`], for tests only: a test
/// stores under one value and loads under another, as after a reboot.
pub const TEST_BOOT_VAR: &str = "NFC_TEST_BOOT";

/// This boot of this machine as records note it: 16 hex digits of BLAKE3
/// over Linux's boot id (or [`TEST_BOOT_VAR`], read here only). None where
/// the system names no boot: every record then counts as of an unknown boot.
pub fn boot() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        let id = std::env::var_os(TEST_BOOT_VAR).map_or_else(boot_id, |v| v.into_encoded_bytes());
        (!id.is_empty()).then(|| boot_tag_of(&id))
    })
    .as_deref()
}

fn boot_tag_of(id: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("numpy-func-cache 2026-12 boot tag v1");
    hasher.update(id);
    hasher.finalize().to_hex()[..TAG_LEN].to_owned()
}

/// Linux's id of this boot: a pid is only the same process within one boot.
fn boot_id() -> Vec<u8> {
    #[cfg(target_os = "linux")]
    if let Ok(id) = std::fs::read("/proc/sys/kernel/random/boot_id") {
        return id;
    }
    Vec::new()
}

/// The pid namespace of this process (`pid:[4026531836]` on Linux): pids
/// of another namespace are not this one's.
fn pid_namespace() -> Vec<u8> {
    #[cfg(target_os = "linux")]
    if let Ok(ns) = std::fs::read_link("/proc/self/ns/pid") {
        return ns.into_os_string().into_encoded_bytes();
    }
    Vec::new()
}

/// Whether process `pid` exists on this host (unknown counts as alive).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_INVALID_PARAMETER, WAIT_TIMEOUT};
        use windows_sys::Win32::System::Threading::{OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE};
        // SAFETY: plain calls on a handle this function opens and closes.
        unsafe {
            let handle = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
            if handle.is_null() {
                // No such process; any other refusal (access) means it exists.
                return GetLastError() != ERROR_INVALID_PARAMETER;
            }
            // Signalled once it has exited (an exit code could be anything).
            let running = WaitForSingleObject(handle, 0) == WAIT_TIMEOUT;
            CloseHandle(handle);
            running
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

/// 64 bits that differ between calls and processes, for unique names.
pub fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per process; the counter makes each call differ.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_alive_and_one_that_exited_is_not() {
        assert!(process_alive(std::process::id()));
        // A child that exited and was waited for: its pid names no process.
        // (A system program, not this test binary: under qemu-user only
        // host binaries can be started.)
        #[cfg(unix)]
        let mut child = std::process::Command::new("true").spawn().unwrap();
        #[cfg(windows)]
        let mut child = std::process::Command::new("cmd").args(["/C", "exit"]).spawn().unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        // Windows keeps an exited process while a handle to it is open.
        drop(child);
        assert!(!process_alive(pid));
    }

    #[test]
    fn hosts_whose_names_differ_anywhere_or_whose_pid_namespaces_differ_have_different_tags() {
        let pod = |suffix: &str| format!("embedding-service-worker-6b7c9d8f4-{suffix}");
        let (boot, ns) = (b"boot".as_slice(), b"pid:[1]".as_slice());
        assert_ne!(tag_of(pod("x7k2p").as_bytes(), boot, ns), tag_of(pod("q9m4z").as_bytes(), boot, ns));
        assert_ne!(tag_of(b"node.1", boot, ns), tag_of(b"node1", boot, ns));
        assert_ne!(tag_of(b"node1", boot, b"pid:[1]"), tag_of(b"node1", boot, b"pid:[2]"));
        assert_ne!(tag_of(b"node1", b"boot-a", ns), tag_of(b"node1", b"boot-b", ns));
        // Parts are length-framed: moving a byte between them changes the tag.
        assert_ne!(tag_of(b"ab", b"c", ns), tag_of(b"a", b"bc", ns));
        assert_eq!(tag_of(b"node1", boot, ns), tag_of(b"node1", boot, ns));
        assert!(tag().len() == 16 && tag().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn a_boot_is_a_tag_and_boots_differ() {
        assert!(is_tag(&boot_tag_of(b"a")) && boot_tag_of(b"a") != boot_tag_of(b"b"));
        #[cfg(target_os = "linux")]
        assert!(boot().is_some_and(is_tag));
    }
}
