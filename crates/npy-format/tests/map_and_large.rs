//! Memory-mapped reads, buffers past the large-allocation threshold, and
//! headers longer than the first read.

use std::fs::File;

use npy_format::{
    map_npy_file, read_npy, read_npy_file, read_npy_file_into, read_npy_into, write_npy, AlignedBuf, Dtype, Header,
    ALIGN, LARGE,
};

fn f8(shape: &[u64]) -> Header {
    Header { dtype: Dtype::parse("<f8").unwrap(), shape: shape.to_vec(), fortran_order: false }
}

fn ramp(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f64 * 0.5).to_le_bytes()).collect()
}

#[test]
fn large_buffers_are_zeroed_aligned_and_writable() {
    for len in [LARGE - 1, LARGE, LARGE * 3 + 17] {
        let mut b = AlignedBuf::zeroed(len).unwrap();
        assert_eq!(b.as_ptr() as usize % ALIGN, 0);
        assert!(b.iter().all(|&x| x == 0));
        b.as_mut_slice()[len - 1] = 7;
        assert_eq!(b[len - 1], 7);
    }
}

#[test]
fn a_file_larger_than_the_first_read_and_the_large_threshold_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let n = LARGE / 8 * 3 + 5;
    let data = ramp(n);
    write_npy(&path, &f8(&[n as u64]), &data).unwrap();
    let got = read_npy(&path).unwrap();
    assert_eq!(got.header, f8(&[n as u64]));
    assert!(got.data.as_slice() == &data[..]);
    // Through an opened file, as the cache reads it.
    let mut file = File::open(&path).unwrap();
    assert!(read_npy_file(&mut file, &path).unwrap().data.as_slice() == &data[..]);
}

#[test]
fn a_header_longer_than_the_first_read_is_still_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many-dims.npy");
    // 30,000 dimensions of 1: a header of about 90 KB, in a file another
    // writer made (ours refuses more than the 64 dimensions NumPy reads).
    let shape = vec![1u64; 30_000];
    std::fs::write(&path, [f8(&shape).encode(), ramp(1)].concat()).unwrap();
    let got = read_npy(&path).unwrap();
    assert_eq!(got.header.shape.len(), 30_000);
    assert_eq!(got.data.as_slice(), &ramp(1)[..]);
}

#[test]
fn a_mapped_file_gives_its_data_in_place_and_outlives_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    let data = ramp(1000);
    write_npy(&path, &f8(&[10, 100]), &data).unwrap();
    let file = File::open(&path).unwrap();
    let mut mapped = map_npy_file(&file, &path).unwrap().expect("mappable");
    assert_eq!(mapped.header, f8(&[10, 100]));
    assert_eq!(mapped.data(), &data[..]);
    assert_eq!(mapped.data_ptr() as usize % ALIGN, 0);
    // Replacing and unlinking the file does not change the mapping. (Windows
    // may refuse both while the file is mapped; the mapping holds either way.)
    drop(file);
    write_npy(&dir.path().join("n.npy"), &f8(&[1]), &ramp(1)).unwrap();
    let replaced = std::fs::rename(dir.path().join("n.npy"), &path);
    let removed = std::fs::remove_file(&path);
    for result in [replaced, removed] {
        match result {
            Err(e) if cfg!(windows) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
            r => r.unwrap(),
        }
    }
    assert_eq!(mapped.data(), &data[..]);
    // Writes are private to the mapping.
    unsafe { *mapped.data_ptr() = 0xff };
    assert_eq!(mapped.data()[0], 0xff);
}

#[test]
fn files_that_cannot_be_used_in_place_are_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let big_endian = dir.path().join("be.npy");
    let be = Header { dtype: Dtype::parse(">f8").unwrap(), shape: vec![2], fortran_order: false };
    write_npy(&big_endian, &be, &[0u8; 16]).unwrap();
    let empty = dir.path().join("empty.npy");
    write_npy(&empty, &f8(&[0]), &[]).unwrap();
    for path in [big_endian, empty] {
        let file = File::open(&path).unwrap();
        assert!(map_npy_file(&file, &path).unwrap().is_none(), "{}", path.display());
    }
}

#[test]
fn a_truncated_file_is_an_error_naming_it_when_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npy");
    write_npy(&path, &f8(&[100]), &ramp(100)).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    File::options().write(true).open(&path).unwrap().set_len(len - 8).unwrap();
    let file = File::open(&path).unwrap();
    let err = map_npy_file(&file, &path).unwrap_err().to_string();
    assert!(err.contains("t.npy"), "{err}");
}

#[test]
fn reads_into_memory_the_caller_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("into.npy");
    let data: Vec<u8> = (0..3 * LARGE).map(|i| (i % 251) as u8).collect();
    write_npy(
        &path,
        &Header { dtype: Dtype::parse("|u1").unwrap(), shape: vec![data.len() as u64], fortran_order: false },
        &data,
    )
    .unwrap();

    // Old contents (as in a recycled buffer) are overwritten, every byte.
    let mut asked = Vec::new();
    let got = read_npy_into(&path, |len| {
        asked.push(len);
        Ok(vec![0xAAu8; len])
    })
    .unwrap();
    assert_eq!(asked, [data.len()]);
    assert!(got.data == data);

    // Memory of the wrong length is refused, not partly filled.
    let err = read_npy_into(&path, |len| Ok(vec![0u8; len - 1])).unwrap_err();
    assert!(matches!(err.root(), npy_format::Error::AllocFailed { .. }), "{err}");
    // The caller's failure to provide memory is the read's error.
    let err =
        read_npy_into(&path, |len| Err::<Vec<u8>, _>(npy_format::Error::AllocFailed { len: len as u64 })).unwrap_err();
    assert!(err.to_string().contains("into.npy"), "{err}");

    // A file whose length does not match its header never asks for memory.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, bytes).unwrap();
    let mut file = File::open(&path).unwrap();
    let err =
        read_npy_file_into(&mut file, &path, |_| -> Result<Vec<u8>, _> { panic!("asked for memory") }).unwrap_err();
    assert!(matches!(err.root(), npy_format::Error::TruncatedData { .. }), "{err}");
}
