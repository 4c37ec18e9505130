//! What kind of ground a cache directory is on: a network filesystem,
//! where processes on different hosts share it (no shared memory between
//! them, so no SQLite WAL; a file unlinked by one host can vanish under
//! another's mapping), and whether other users may write in it.

use std::path::Path;

/// True for NFS, SMB/CIFS, FUSE-mounted (sshfs and the like) and cluster
/// filesystems. False when unknown.
pub fn is_network_fs(path: &Path) -> bool {
    imp::is_network_fs(path)
}

/// The group and other write bits of `path`'s mode (0 where it has none,
/// cannot be read, or modes are not unix ones). Where a directory has any,
/// users other than its owner may create and replace files in it: a file
/// there can be truncated under a process by someone it does not trust, so
/// it must not be mapped (a truncated mapping kills with SIGBUS), and the
/// index must not keep its shared memory in one (SQLite WAL's `-shm`).
pub(crate) fn others_write_bits(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o022)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0
    }
}

/// Whether only this process's user can change the file: it owns it and no
/// one else may write it. Such a file can be mapped safely.
pub(crate) fn only_we_write(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid cannot fail.
        meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o022 == 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    // statfs(2) f_type magic numbers (linux/magic.h and the filesystems' own headers).
    const NETWORK_MAGICS: &[i64] = &[
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x6573_5546, // FUSE
        0x5346_414F, // AFS
        0x00C3_6400, // Ceph
        0x0BD0_0BD0, // Lustre
        0x4750_4653, // GPFS
        0x0102_1997, // 9p
    ];

    pub(super) fn is_network_fs(path: &Path) -> bool {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a zeroed out-struct of the right type.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return false;
        }
        #[allow(clippy::unnecessary_cast)]
        let magic = st.f_type as i64 & 0xFFFF_FFFF;
        NETWORK_MAGICS.contains(&magic)
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub(super) fn is_network_fs(path: &Path) -> bool {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as on Linux.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return false;
        }
        let name = unsafe { CStr::from_ptr(st.f_fstypename.as_ptr()) }.to_string_lossy();
        matches!(&*name, "nfs" | "smbfs" | "afpfs" | "webdav" | "macfuse" | "osxfuse")
    }
}

#[cfg(windows)]
mod imp {
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Storage::FileSystem::{GetDriveTypeW, GetVolumePathNameW};

    const DRIVE_REMOTE: u32 = 4;

    /// A share (`\\server\share`) or a drive letter mapped to one.
    pub(super) fn is_network_fs(path: &Path) -> bool {
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
        // A root is at most the path and a separator, or for a relative path a
        // drive, which MAX_PATH (260) covers.
        let mut root = vec![0u16; wide.len().max(261) + 1];
        // SAFETY: a NUL-terminated path and an out-buffer of the length given.
        if unsafe { GetVolumePathNameW(wide.as_ptr(), root.as_mut_ptr(), root.len() as u32) } == 0 {
            return false;
        }
        // SAFETY: GetVolumePathNameW wrote a NUL-terminated root.
        unsafe { GetDriveTypeW(root.as_ptr()) == DRIVE_REMOTE }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", windows)))]
mod imp {
    pub(super) fn is_network_fs(_path: &std::path::Path) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_temporary_directory_is_not_network_ground() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_network_fs(dir.path()));
        assert!(!is_network_fs(&dir.path().join("missing")));
    }
}
