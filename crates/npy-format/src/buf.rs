//! A 64-byte aligned heap buffer that can be handed out as a raw pointer.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fmt;
use std::ptr::NonNull;

use crate::Error;

/// Alignment of every [`AlignedBuf`]: enough for any element type and SIMD,
/// and matching the 64-byte alignment NumPy gives the data in the file.
pub const ALIGN: usize = 64;

/// From this size on, buffers are anonymous mappings (page-aligned, so also
/// [`ALIGN`]-aligned) rather than heap allocations.
pub const LARGE: usize = 2 << 20;

#[repr(C, align(64))]
struct Align64([u8; ALIGN]);

/// Zero-initialized heap memory aligned to [`ALIGN`] bytes.
///
/// The pointer can leave Rust with [`into_raw_parts`](Self::into_raw_parts)
/// (e.g. as the backing store of a JS external `ArrayBuffer`) and must come
/// back through [`from_raw_parts`](Self::from_raw_parts) to be freed.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf uniquely owns its allocation, like Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zero bytes. `len == 0` allocates nothing.
    ///
    /// Buffers of [`LARGE`] bytes or more are fresh anonymous mappings, on
    /// Linux faulted in whole by one `MADV_POPULATE_WRITE` (a quarter less
    /// than a fault per page as a read fills them). They are not advised
    /// for transparent huge pages: where the kernel compacts memory for
    /// those on first touch (`defrag` set to `madvise`, the default), that
    /// first touch can take ten times as long as plain pages, for seconds
    /// at a time.
    ///
    /// Returns [`Error::AllocFailed`] instead of aborting when the memory
    /// cannot be had.
    pub fn zeroed(len: usize) -> Result<AlignedBuf, Error> {
        AlignedBuf::zeroed_with(len, true)
    }

    /// [`zeroed`](Self::zeroed), but a large buffer's pages are left to
    /// fault in as they are first written: for writers that fill it from
    /// several threads at once, so the faults are taken in parallel too.
    pub fn zeroed_lazily(len: usize) -> Result<AlignedBuf, Error> {
        AlignedBuf::zeroed_with(len, false)
    }

    fn zeroed_with(len: usize, populate: bool) -> Result<AlignedBuf, Error> {
        if len == 0 {
            return Ok(AlignedBuf { ptr: dangling(), len: 0 });
        }
        let failed = || Error::AllocFailed { len: len as u64 };
        #[cfg(unix)]
        if len >= LARGE {
            return large::map(len, populate).map(|ptr| AlignedBuf { ptr, len }).ok_or_else(failed);
        }
        #[cfg(not(unix))]
        let _ = populate;
        let layout = Layout::from_size_align(len, ALIGN).map_err(|_| failed())?;
        // SAFETY: layout has non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(failed)?;
        Ok(AlignedBuf { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the buffer; aligned to [`ALIGN`] even when empty.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid, initialized (zeroed) and aligned for len bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives unique access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Gives up ownership: the caller must eventually pass both values to
    /// [`from_raw_parts`](Self::from_raw_parts) and drop the result, or the
    /// memory leaks. For `len == 0` the pointer is a non-null dangling
    /// placeholder that owns nothing.
    pub fn into_raw_parts(self) -> (*mut u8, usize) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.ptr.as_ptr(), this.len)
    }

    /// Takes back ownership of memory from [`into_raw_parts`](Self::into_raw_parts).
    ///
    /// # Safety
    /// `ptr` and `len` must be exactly a pair returned by `into_raw_parts`,
    /// and that pair must not be reclaimed more than once or used afterwards
    /// by anyone else.
    pub unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> AlignedBuf {
        AlignedBuf {
            // Dangling for len == 0 in case the caller passes null.
            ptr: if len == 0 {
                dangling()
            } else {
                // SAFETY: the caller guarantees ptr came from into_raw_parts.
                unsafe { NonNull::new_unchecked(ptr) }
            },
            len,
        }
    }
}

fn dangling() -> NonNull<u8> {
    NonNull::<Align64>::dangling().cast()
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.len >= LARGE {
            // SAFETY: buffers this large were mapped by `large::map` with this length.
            unsafe { large::unmap(self.ptr, self.len) };
            return;
        }
        if self.len != 0 {
            // SAFETY: allocated in `zeroed` with exactly this layout (which
            // was valid then, so it is now).
            unsafe { dealloc(self.ptr.as_ptr(), Layout::from_size_align_unchecked(self.len, ALIGN)) }
        }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for AlignedBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf").field("len", &self.len).finish()
    }
}

#[cfg(unix)]
mod large {
    use std::ptr::NonNull;

    pub(super) fn map(len: usize, populate: bool) -> Option<NonNull<u8>> {
        // SAFETY: a private anonymous mapping aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        #[cfg(target_os = "linux")]
        if populate {
            // SAFETY: advice on our own mapping; where the kernel lacks it (before
            // 5.14), the pages fault in as they are written instead.
            unsafe {
                libc::madvise(ptr, len, libc::MADV_POPULATE_WRITE);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = populate;
        NonNull::new(ptr.cast())
    }

    /// # Safety
    /// `ptr`/`len` must be a live mapping made by `map`.
    pub(super) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller guarantees this is our mapping.
        unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    }
}
