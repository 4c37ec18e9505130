//! Whole-file reading/writing, cross-checked against ndarray-npy.

use std::path::{Path, PathBuf};

use ndarray::{Array, Array1, Array2, ArrayD, IxDyn, ShapeBuilder};
use npy_format::{
    read_npy, swap_to_native, write_npy, write_npy_to, AlignedBuf, ByteOrder, Dtype, Error, Header, Kind, ALIGN,
};
use num_complex::{Complex32, Complex64};

const ALL_DESCRS: [&str; 14] =
    ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16"];

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn header(descr: &str, shape: &[u64], fortran_order: bool) -> Header {
    Header { dtype: Dtype::parse(descr).unwrap(), shape: shape.to_vec(), fortran_order }
}

/// Deterministic bytes; bools stay 0/1 like real NumPy data.
fn pattern(dtype: &Dtype, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| match dtype.kind {
            Kind::Bool => (i % 3 == 1) as u8,
            _ => (i.wrapping_mul(31).wrapping_add(7) % 251) as u8,
        })
        .collect()
}

fn write_raw(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn round_trip_every_dtype_order_and_shape() {
    let dir = tmp();
    let shapes: [&[u64]; 8] = [&[], &[0], &[0, 3], &[5], &[2, 3, 4], &[1, 2, 1, 3, 1, 2, 1, 1], &[3, 0, 2], &[1; 32]];
    let mut n = 0;
    for descr in ALL_DESCRS {
        for order in ['<', '>'] {
            let descr = format!("{order}{}", &descr[1..]);
            for shape in shapes {
                for fortran in [false, true] {
                    let h = header(&descr, shape, fortran);
                    let data = pattern(&h.dtype, h.data_len().unwrap() as usize);
                    let path = dir.path().join(format!("{n}.npy"));
                    n += 1;
                    write_npy(&path, &h, &data).unwrap();

                    let file = std::fs::read(&path).unwrap();
                    assert_eq!(file.len() % 64, data.len() % 64);
                    assert_eq!(&file[file.len() - data.len()..], &data[..]);

                    let got = read_npy(&path).unwrap();
                    assert_eq!(got.header.shape, shape);
                    assert_eq!(got.header.fortran_order, fortran);
                    assert_eq!(got.header.dtype, h.dtype.native(), "{descr}");
                    assert!(!got.header.dtype.needs_swap());
                    let mut expected = data.clone();
                    swap_to_native(&h.dtype, &mut expected);
                    assert_eq!(got.data.as_slice(), &expected[..], "{descr} {shape:?}");
                    assert_eq!(got.data.as_ptr() as usize % ALIGN, 0);
                }
            }
        }
    }
}

#[test]
fn big_endian_files_from_numpy_read_as_native_values() {
    let dir = tmp();
    // np.save of np.arange(6, dtype='>i4').reshape(2, 3)
    let i4: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05";
    let got = read_npy(&write_raw(dir.path(), "i4.npy", i4)).unwrap();
    assert_eq!(got.header, header("<i4", &[2, 3], false));
    assert_eq!(got.stored_order, ByteOrder::Big, "the order the file had is kept");
    let values: Vec<i32> = got.data.chunks_exact(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect();
    assert_eq!(values, [0, 1, 2, 3, 4, 5]);

    // np.save of np.array([1.5, -2.25], dtype='>c8'): each f32 half is swapped.
    let c8: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>c8', 'fortran_order': False, 'shape': (2,), }                                                            \n?\xc0\x00\x00\x00\x00\x00\x00\xc0\x10\x00\x00\x00\x00\x00\x00";
    let got = read_npy(&write_raw(dir.path(), "c8.npy", c8)).unwrap();
    assert_eq!(got.header.dtype.descr(), "<c8");
    let values: Vec<f32> = got.data.chunks_exact(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect();
    assert_eq!(values, [1.5, 0.0, -2.25, 0.0]);

    // Written by us from typed values.
    let vals = [1.0f64, -0.5, 1e300];
    let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let path = dir.path().join("f8.npy");
    write_npy(&path, &header(">f8", &[3], false), &be).unwrap();
    let got = read_npy(&path).unwrap();
    assert_eq!(got.header.dtype.byte_order, ByteOrder::Little);
    let back: Vec<f64> = got.data.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().unwrap())).collect();
    assert_eq!(back, vals);

    let vals = [0x0102u16, 0xfffe];
    let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    write_npy(&path, &header(">u2", &[2], false), &be).unwrap();
    let got = read_npy(&path).unwrap();
    let back: Vec<u16> = got.data.chunks_exact(2).map(|c| u16::from_ne_bytes(c.try_into().unwrap())).collect();
    assert_eq!(back, vals);

    let vals = [Complex64::new(1.25, -3.0), Complex64::new(f64::MAX, 0.1)];
    let be: Vec<u8> = vals.iter().flat_map(|v| [v.re.to_be_bytes(), v.im.to_be_bytes()].concat()).collect();
    write_npy(&path, &header(">c16", &[2], false), &be).unwrap();
    let got = read_npy(&path).unwrap();
    let back: Vec<f64> = got.data.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().unwrap())).collect();
    assert_eq!(back, [1.25, -3.0, f64::MAX, 0.1]);
}

#[test]
fn version_2_and_3_files_read() {
    let dir = tmp();
    // np.lib.format.write_array(f, np.array([1., 2., 3.]), version=(2, 0)) and (3, 0).
    let v2: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x08@";
    let v3: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x08@";
    for (name, bytes) in [("v2.npy", v2), ("v3.npy", v3)] {
        let got = read_npy(&write_raw(dir.path(), name, bytes)).unwrap();
        let values: Vec<f64> = got.data.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, [1.0, 2.0, 3.0]);
    }
}

#[test]
fn ndarray_npy_writes_we_read() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);

    let a = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 * 10.0 + j as f64 - 0.5);
    ndarray_npy::write_npy(p("f8.npy"), &a).unwrap();
    let got = read_npy(&p("f8.npy")).unwrap();
    assert_eq!(got.header, header("<f8", &[3, 4], false));
    let vals: Vec<f64> = got.data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, a.iter().copied().collect::<Vec<_>>());

    let a = Array1::from(vec![-7i32, 0, i32::MAX, i32::MIN]);
    ndarray_npy::write_npy(p("i4.npy"), &a).unwrap();
    let got = read_npy(&p("i4.npy")).unwrap();
    assert_eq!(got.header, header("<i4", &[4], false));
    let vals: Vec<i32> = got.data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, a.to_vec());

    let a = Array::from_shape_vec((2, 2, 2), vec![true, false, false, true, true, true, false, false]).unwrap();
    ndarray_npy::write_npy(p("b1.npy"), &a).unwrap();
    let got = read_npy(&p("b1.npy")).unwrap();
    assert_eq!(got.header, header("|b1", &[2, 2, 2], false));
    assert_eq!(got.data.as_slice(), &[1, 0, 0, 1, 1, 1, 0, 0]);

    let a = Array1::from(vec![Complex32::new(1.0, -2.0), Complex32::new(0.5, 4.0)]);
    ndarray_npy::write_npy(p("c8.npy"), &a).unwrap();
    let got = read_npy(&p("c8.npy")).unwrap();
    assert_eq!(got.header, header("<c8", &[2], false));
    let vals: Vec<f32> = got.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, [1.0, -2.0, 0.5, 4.0]);

    // A transposed (column-major) array is written with fortran_order True.
    let a = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as u16);
    ndarray_npy::write_npy(p("u2f.npy"), &a.t()).unwrap();
    let got = read_npy(&p("u2f.npy")).unwrap();
    assert_eq!(got.header, header("<u2", &[3, 2], true));
    let vals: Vec<u16> = got.data.chunks_exact(2).map(|c| u16::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn we_write_ndarray_npy_reads() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);

    let vals = [1.5f64, -2.0, 3.25, 0.0, 1e-300, -1e300];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&p("f8.npy"), &header("<f8", &[2, 3], false), &bytes).unwrap();
    let a: Array2<f64> = ndarray_npy::read_npy(p("f8.npy")).unwrap();
    assert_eq!(a, Array2::from_shape_vec((2, 3), vals.to_vec()).unwrap());

    // Big-endian on disk; ndarray-npy converts.
    let vals = [i64::MIN, -1, 0, i64::MAX];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    write_npy(&p("i8.npy"), &header(">i8", &[4], false), &bytes).unwrap();
    let a: Array1<i64> = ndarray_npy::read_npy(p("i8.npy")).unwrap();
    assert_eq!(a.to_vec(), vals);

    write_npy(&p("u1.npy"), &header("|u1", &[], false), &[200]).unwrap();
    let a: ArrayD<u8> = ndarray_npy::read_npy(p("u1.npy")).unwrap();
    assert_eq!(a.shape(), &[] as &[usize]);
    assert_eq!(a[IxDyn(&[])], 200);

    let vals = [Complex64::new(1.0, 2.0), Complex64::new(-3.0, 0.25)];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| [v.re.to_le_bytes(), v.im.to_le_bytes()].concat()).collect();
    write_npy(&p("c16.npy"), &header("<c16", &[2], false), &bytes).unwrap();
    let a: Array1<Complex64> = ndarray_npy::read_npy(p("c16.npy")).unwrap();
    assert_eq!(a.to_vec(), vals);

    // Fortran order: element (i, j) of a 2x3 array is at j * 2 + i.
    let stored = [0.0f32, 10.0, 1.0, 11.0, 2.0, 12.0];
    let bytes: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&p("f4f.npy"), &header("<f4", &[2, 3], true), &bytes).unwrap();
    let a: Array2<f32> = ndarray_npy::read_npy(p("f4f.npy")).unwrap();
    let want = Array2::from_shape_vec((2, 3).f(), stored.to_vec()).unwrap();
    assert_eq!(a, want);
    assert_eq!(a[[1, 2]], 12.0);

    write_npy(&p("b1.npy"), &header("|b1", &[0, 3], false), &[]).unwrap();
    let a: Array2<bool> = ndarray_npy::read_npy(p("b1.npy")).unwrap();
    assert_eq!(a.shape(), &[0, 3]);
}

#[test]
fn read_rejects_wrong_file_lengths_and_names_the_file() {
    let dir = tmp();
    let h = header("<f8", &[2, 3], false);
    let mut good = h.encode();
    good.extend_from_slice(&[0u8; 48]);

    let path = write_raw(dir.path(), "short.npy", &good[..good.len() - 1]);
    let err = read_npy(&path).unwrap_err();
    assert!(matches!(err.root(), Error::TruncatedData { actual: 47, expected: 48, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: data section is 47 bytes but shape (2, 3) of '<f8' needs 48 bytes; the file is truncated",
            path.display()
        )
    );

    let mut long = good.clone();
    long.extend_from_slice(b"xyz");
    let path = write_raw(dir.path(), "long.npy", &long);
    let err = read_npy(&path).unwrap_err();
    assert!(matches!(err.root(), Error::TrailingBytes { actual: 51, expected: 48, .. }));
    assert!(err.to_string().contains("3 trailing bytes"), "{err}");

    // 10^15 float64s: refused by the size check, nothing is allocated.
    let mut huge = header("<f8", &[1_000_000_000_000_000], false).encode();
    huge.extend_from_slice(&[0; 16]);
    let err = read_npy(&write_raw(dir.path(), "huge.npy", &huge)).unwrap_err();
    assert!(
        err.to_string()
            .contains("data section is 16 bytes but shape (1000000000000000,) of '<f8' needs 8000000000000000 bytes"),
        "{err}"
    );

    let path = write_raw(dir.path(), "zip.npy", b"PK\x03\x04 not numpy");
    let err = read_npy(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: bad magic: not a .npy file (it does not start with \\x93NUMPY)", path.display())
    );
    assert!(matches!(err.root(), Error::BadMagic));

    let path = write_raw(dir.path(), "empty.npy", b"");
    assert!(matches!(read_npy(&path).unwrap_err().root(), Error::TruncatedHeader));

    let path = write_raw(dir.path(), "obj.npy", &{
        let mut b = b"\x93NUMPY\x01\x00\x40\x00".to_vec();
        b.extend_from_slice(format!("{:<63}\n", "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }").as_bytes());
        b
    });
    let msg = read_npy(&path).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}: unsupported dtype '|O': object arrays are not supported", path.display())),
        "{msg}"
    );

    let path = write_raw(dir.path(), "bighdr.npy", b"\x93NUMPY\x02\x00\x00\x00\x00\x40{");
    assert!(matches!(read_npy(&path).unwrap_err().root(), Error::HeaderTooLarge { .. }));

    let missing = dir.path().join("missing.npy");
    let err = read_npy(&missing).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{}: could not open the file:", missing.display())), "{err}");
    match err.root() {
        Error::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn write_validates_before_writing() {
    let dir = tmp();
    let path = dir.path().join("x.npy");
    let err = write_npy(&path, &header("<f8", &[2, 3], false), &[0u8; 40]).unwrap_err();
    assert!(matches!(err.root(), Error::DataLenMismatch { actual: 40, expected: 48, .. }));
    assert!(err.to_string().contains("data buffer is 40 bytes but shape (2, 3) of '<f8' needs 48 bytes"), "{err}");
    assert!(!path.exists(), "a rejected write must not create the file");

    let bad = Header {
        dtype: Dtype { kind: Kind::Float, item_size: 16, byte_order: ByteOrder::Little },
        shape: vec![1],
        fortran_order: false,
    };
    let mut sink = Vec::new();
    let err = write_npy_to(&mut sink, &bad, &[0; 16]).unwrap_err();
    assert!(err.to_string().contains("unsupported dtype '<f16'"), "{err}");
    assert!(sink.is_empty());

    let overflow = header("<f8", &[u64::MAX, 2], false);
    assert!(matches!(write_npy_to(&mut sink, &overflow, &[]), Err(Error::SizeOverflow { .. })));

    // A shape NumPy could not load is refused (and so its header never grows past what we read back).
    let too_many_dims = header("|u1", &vec![1; 400_000], false);
    assert!(matches!(
        write_npy_to(&mut sink, &too_many_dims, &[0]),
        Err(Error::TooManyDims { dims: 400_000, max: 64 })
    ));
    assert!(sink.is_empty());

    // The most dimensions NumPy reads are written and read back.
    let many_dims = header("<i2", &[1; 64], false);
    write_npy(&path, &many_dims, &[7, 0]).unwrap();
    let got = read_npy(&path).unwrap();
    assert_eq!(got.header, many_dims);
    assert_eq!(got.data.as_slice(), &[7, 0]);

    // Overwrites (truncates) an existing longer file.
    write_npy(&path, &header("|u1", &[1], false), &[9]).unwrap();
    assert_eq!(read_npy(&path).unwrap().data.as_slice(), &[9]);
}

#[test]
fn write_to_produces_preamble_then_data() {
    let h = header("<u2", &[2], false);
    let mut out = Vec::new();
    write_npy_to(&mut out, &h, &[1, 0, 2, 0]).unwrap();
    let pre = h.encode();
    assert_eq!(&out[..pre.len()], &pre[..]);
    assert_eq!(&out[pre.len()..], &[1, 0, 2, 0]);
}

#[test]
fn aligned_buf() {
    for len in [0usize, 1, 7, 63, 64, 65, 4096, 1 << 20] {
        let mut b = AlignedBuf::zeroed(len).unwrap();
        assert_eq!(b.len(), len);
        assert_eq!(b.is_empty(), len == 0);
        assert_eq!(b.as_ptr() as usize % 64, 0, "len {len}");
        assert!(b.as_slice().iter().all(|&x| x == 0));
        if len > 0 {
            b.as_mut_slice()[len - 1] = 5;
        }
        let (ptr, raw_len) = b.into_raw_parts();
        assert_eq!(raw_len, len);
        assert!(!ptr.is_null());
        assert_eq!(ptr as usize % 64, 0);
        // SAFETY: the pair came from into_raw_parts just above.
        let back = unsafe { AlignedBuf::from_raw_parts(ptr, raw_len) };
        if len > 0 {
            assert_eq!(back.as_slice()[len - 1], 5);
        }
    }
    // Impossible sizes fail cleanly instead of aborting.
    assert!(matches!(AlignedBuf::zeroed(usize::MAX), Err(Error::AllocFailed { .. })));
    let err = AlignedBuf::zeroed(1 << 62).unwrap_err();
    assert!(err.to_string().contains("could not allocate 4611686018427387904 bytes"), "{err}");

    fn assert_send<T: Send>() {}
    assert_send::<AlignedBuf>();
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_at_once_not_waited_on() {
    let dir = tmp();
    let fifo = dir.path().join("pipe.npy");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(read_npy(&fifo).map(|_| ()).map_err(|e| e.to_string())));
    // Blocking would wait for a writer that never comes; a minute is far beyond an open.
    let outcome = result.recv_timeout(std::time::Duration::from_secs(60)).expect("read_npy blocked on a FIFO");
    assert!(outcome.is_err(), "a FIFO read as an array");
}

#[test]
fn arrays_of_more_dimensions_than_numpy_reads_are_not_written() {
    let dir = tmp();
    let path = dir.path().join("deep.npy");
    let deep = |dims: usize| Header {
        dtype: npy_format::Dtype::parse("<f8").unwrap(),
        shape: vec![1; dims],
        fortran_order: false,
    };
    write_npy(&path, &deep(npy_format::MAX_DIMS), &[0u8; 8]).unwrap();
    let err = write_npy(&path, &deep(npy_format::MAX_DIMS + 1), &[0u8; 8]).unwrap_err();
    assert!(matches!(err.root(), npy_format::Error::TooManyDims { dims: 65, max: 64 }), "{err}");
}
