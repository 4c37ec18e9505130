//! The strict reader of the cache's aligned `.npz` archives on arbitrary
//! bytes: `npz_preamble_len`, `aligned_npz_members` (from memory) and
//! `aligned_npz_file_members` (from a file).
//!
//! Properties:
//! - none panics;
//! - the two readers accept the same archives and find the same members;
//! - an accepted archive's members lie inside it, each one's data after the
//!   last one's, and the layout of those members, with the data found and
//!   the CRC-32s the archive states (which the reader does not check: the
//!   cache checks data against its BLAKE3 digest), is exactly the input:
//!   what is accepted is what the writer writes.
#![no_main]

use std::fs::File;
use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use npy_format::{aligned_npz_file_members, aligned_npz_members, npz_preamble_len, Header, NpzLayout};

static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    let shm = PathBuf::from("/dev/shm");
    let dir = if shm.is_dir() { shm } else { std::env::temp_dir() };
    dir.join(format!("npz-fuzz-{}.npz", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    let from_memory = npz_preamble_len(data).and_then(|at| {
        let at = usize::try_from(at).map_err(|_| npy_format::Error::TruncatedHeader)?;
        if at > data.len() {
            return Err(npy_format::Error::TruncatedHeader);
        }
        aligned_npz_members(&data[..at], &data[at..])
    });
    let path: &PathBuf = &PATH;
    std::fs::write(path, data).expect("write the fuzz input file");
    let from_file = aligned_npz_file_members(&File::open(path).expect("open the fuzz input file"));
    match (&from_memory, &from_file) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the readers found different members"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("the readers disagree: {a:?} vs {b:?}"),
    }
    let Ok(members) = from_memory else { return };
    let mut end = 0;
    for m in &members {
        assert!(m.data >= end && m.data + m.data_len <= data.len() as u64, "member {:?} out of place", m.name);
        end = m.data + m.data_len;
    }
    let planned: Vec<(&str, &Header)> = members.iter().map(|m| (m.name.as_str(), &m.header)).collect();
    let layout = NpzLayout::plan(&planned).expect("accepted members are planned");
    let mut written = Vec::new();
    for (i, m) in members.iter().enumerate() {
        written.extend_from_slice(&layout.head(i, m.crc));
        written.extend_from_slice(&data[m.data as usize..(m.data + m.data_len) as usize]);
    }
    written.extend_from_slice(&layout.tail(&members.iter().map(|m| m.crc).collect::<Vec<_>>()));
    assert!(written == data, "the layout does not give back the archive accepted");
});
