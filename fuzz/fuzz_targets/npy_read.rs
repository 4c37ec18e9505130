//! `read_npy` and `map_npy_file` on arbitrary file contents.
//!
//! Properties:
//! - neither panics;
//! - no allocation larger than the file: the data buffer is at most the file
//!   length, and (tracked by a counting allocator) no single heap allocation
//!   exceeds what the file size and the header cap allow;
//! - a read array's `header.data_len()` equals its data length, and the data
//!   is 64-byte aligned and equals the file's data section in native order;
//! - both readers accept the same files (except that mapping an empty file
//!   declines with `Ok(None)`), and when both give data it is equal;
//! - when the header decodes, the same file with its header dict padded with
//!   spaces past the 64 KiB first read (format 2.0/3.0) reads the same: this
//!   drives the reader's second path, which re-decodes the header from the
//!   file and reads all data after it.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use npy_format::{decode_header_bytes, map_npy_file, read_npy, ByteOrder, Kind, MAX_HEADER_LEN};

/// The system allocator, remembering the largest single request.
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// One file per process, rewritten for each input; in /dev/shm when there is one.
static PATH: LazyLock<PathBuf> = LazyLock::new(|| temp_path("read"));
static PADDED_PATH: LazyLock<PathBuf> = LazyLock::new(|| temp_path("padded"));

fn temp_path(what: &str) -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let dir = if shm.is_dir() { shm } else { std::env::temp_dir() };
    dir.join(format!("npy-fuzz-{what}-{}.npy", std::process::id()))
}

/// `data` with the header dict followed by enough spaces that the preamble
/// is longer than the reader's 64 KiB first read; None if `data`'s header
/// does not decode.
fn padded(data: &[u8]) -> Option<Vec<u8>> {
    let (_, offset) = decode_header_bytes(data).ok()?;
    let (major, dict_start) = match data[6] {
        1 => (2u8, 10usize), // 1.0 and 2.0 are both latin-1
        m => (m, 12),
    };
    let dict = &data[dict_start..offset as usize];
    // Vary the total so the data offset is not always the same.
    let spaces = 64 * 1024 + 64 + data.len() % 67;
    let header_len = (dict.len() + spaces) as u32;
    let mut out = Vec::with_capacity(12 + header_len as usize + data.len());
    out.extend_from_slice(&data[..6]);
    out.extend_from_slice(&[major, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict);
    out.resize(out.len() + spaces, b' ');
    out.extend_from_slice(&data[offset as usize..]);
    Some(out)
}

/// The bytes of `raw` converted to native order the slow, obvious way.
fn to_native(raw: &[u8], kind: Kind, item_size: usize, order: ByteOrder) -> Vec<u8> {
    let native = if cfg!(target_endian = "big") { ByteOrder::Big } else { ByteOrder::Little };
    let unit = if kind == Kind::Complex { item_size / 2 } else { item_size };
    let mut out = raw.to_vec();
    if unit > 1 && order != ByteOrder::NotApplicable && order != native {
        for chunk in out.chunks_mut(unit) {
            if chunk.len() == unit {
                chunk.reverse();
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let path: &PathBuf = &PATH;
    std::fs::write(path, data).expect("write the fuzz input file");
    let file_len = data.len() as u64;

    LARGEST.store(0, Ordering::Relaxed);
    let read = read_npy(path);
    let largest = LARGEST.load(Ordering::Relaxed) as u64;
    // The header dict (capped at MAX_HEADER_LEN) and the 64 KiB first-read
    // scratch may exceed a tiny file; anything else must scale with the file
    // (the shape list is 8 bytes per dim of at least 2 header bytes, doubled
    // by Vec growth).
    let bound = (MAX_HEADER_LEN + 64 * 1024).max(8 * file_len + 4096);
    assert!(largest <= bound, "a {largest}-byte allocation for a {file_len}-byte file");

    let file = File::open(path).expect("open the fuzz input file");
    let mapped = map_npy_file(&file, path);

    match &read {
        Ok(array) => {
            let len = array.data.len() as u64;
            assert!(len <= file_len, "{len}-byte data from a {file_len}-byte file");
            assert_eq!(array.header.data_len().unwrap(), len, "data_len != data length");
            assert_eq!(array.data.as_ptr() as usize % npy_format::ALIGN, 0);
            assert!(!array.header.dtype.needs_swap(), "read data not in native order");
            // Cross-check against the header decoder and the raw bytes.
            let (header, offset) = decode_header_bytes(data).expect("read accepted a bad header");
            assert_eq!(offset + len, file_len, "file is not exactly preamble + data");
            assert_eq!(header.shape, array.header.shape);
            assert_eq!(header.fortran_order, array.header.fortran_order);
            assert_eq!(header.dtype.native(), array.header.dtype);
            let raw = &data[offset as usize..];
            let d = header.dtype;
            assert!(
                array.data.as_slice() == to_native(raw, d.kind, d.item_size, d.byte_order).as_slice(),
                "read data differs from the file's data section"
            );
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.root();
        }
    }

    match (&read, &mapped) {
        (Ok(array), Ok(Some(map))) => {
            assert_eq!(map.header.data_len().unwrap(), map.data_len() as u64);
            assert_eq!(map.data().len(), map.data_len());
            assert_eq!(map.header, array.header, "mapped and read headers differ");
            assert!(map.data() == array.data.as_slice(), "mapped data differs from read data");
        }
        (Ok(_), Ok(None)) => {}
        (Err(_), Err(e)) => {
            let _ = e.to_string();
        }
        (Err(_), Ok(None)) if file_len == 0 => {}
        (Ok(_), Err(e)) => panic!("read_npy accepted the file but map_npy_file failed: {e}"),
        (Err(e), Ok(_)) => panic!("map_npy_file accepted the file but read_npy failed: {e}"),
    }

    if let Some(bigger) = padded(data) {
        let path: &PathBuf = &PADDED_PATH;
        std::fs::write(path, &bigger).expect("write the padded input file");
        let again = read_npy(path);
        match (&read, &again) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.header, b.header, "padding the header changed it");
                assert!(a.data.as_slice() == b.data.as_slice(), "padding the header changed the data");
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.root().to_string(), b.root().to_string(), "padding the header changed the error")
            }
            (a, b) => panic!("padding the header changed the outcome: {a:?} vs {b:?}"),
        }
    }
});
