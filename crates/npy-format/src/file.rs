//! Whole-file reading and writing.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::header::MAX_HEADER_LEN;
use crate::{decode_header, swap_to_native, AlignedBuf, Error, Header};

/// An array read from a .npy file.
#[derive(Debug)]
pub struct NpyArray {
    /// The file's header with the dtype converted to native byte order.
    pub header: Header,
    /// The raw elements in native byte order, C or Fortran order as
    /// `header.fortran_order` says.
    pub data: AlignedBuf,
}

/// Reads a whole .npy file into a 64-byte aligned buffer.
///
/// The data is read straight into the buffer (no intermediate copy) and
/// byte-swapped in place if the file is big-endian. The file length must be
/// exactly preamble + data; this is checked before allocating, so a corrupt
/// shape cannot trigger a huge allocation. Every error names the file.
pub fn read_npy(path: &Path) -> Result<NpyArray, Error> {
    read_npy_inner(path).map_err(|e| e.in_file(path))
}

fn read_npy_inner(path: &Path) -> Result<NpyArray, Error> {
    let mut file = File::open(path).map_err(Error::io("open the file"))?;
    let file_len = file
        .metadata()
        .map_err(Error::io("read the file's metadata"))?
        .len();
    // Unbuffered on purpose: a BufReader would pull data bytes into its own
    // buffer and force a second copy.
    let (mut header, offset) = decode_header(&mut file)?;
    let expected = header.data_len()?;
    let actual = file_len.saturating_sub(offset);
    let mismatch = |actual: u64| {
        let (shape, descr) = (header.shape.clone(), header.dtype.descr());
        if actual < expected {
            Error::TruncatedData {
                actual,
                expected,
                shape,
                descr,
            }
        } else {
            Error::TrailingBytes {
                actual,
                expected,
                shape,
                descr,
            }
        }
    };
    if actual != expected {
        return Err(mismatch(actual));
    }
    let len = usize::try_from(expected).map_err(|_| Error::AllocFailed { len: expected })?;
    let mut data = AlignedBuf::zeroed(len)?;
    let got = read_full(&mut file, data.as_mut_slice())?;
    if got < len {
        // The file shrank after we looked at its size.
        return Err(mismatch(got as u64));
    }
    // ... or grew: one extra byte tells.
    if read_full(&mut file, &mut [0u8; 1])? != 0 {
        return Err(mismatch(expected + 1));
    }
    swap_to_native(&header.dtype, data.as_mut_slice());
    header.dtype = header.dtype.native();
    Ok(NpyArray { header, data })
}

/// `read_exact` that reports how much it got instead of failing on EOF.
fn read_full(file: &mut File, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read the data section")(e)),
        }
    }
    Ok(got)
}

/// Writes `header` and `data` to `path`, creating or truncating it.
///
/// Not atomic: write to a temporary name and rename if readers may race.
/// Every error names the file.
pub fn write_npy(path: &Path, header: &Header, data: &[u8]) -> Result<(), Error> {
    let write = || {
        // Validate before touching the file so a bad call leaves no debris.
        check(header, data)?;
        let mut file = File::create(path).map_err(Error::io("create the file"))?;
        write_npy_to(&mut file, header, data)
    };
    write().map_err(|e| e.in_file(path))
}

/// Writes a .npy preamble and `data` to `writer`.
///
/// `data` must be exactly `header.data_len()` bytes, already in the byte
/// order `header.dtype` states. It is passed to `write_all` as is (no copy).
pub fn write_npy_to<W: Write>(writer: &mut W, header: &Header, data: &[u8]) -> Result<(), Error> {
    check(header, data)?;
    let preamble = header.encode();
    writer
        .write_all(&preamble)
        .map_err(Error::io("write the .npy header"))?;
    writer
        .write_all(data)
        .map_err(Error::io("write the array data"))?;
    Ok(())
}

fn check(header: &Header, data: &[u8]) -> Result<(), Error> {
    header.dtype.validate()?;
    let expected = header.data_len()?;
    if data.len() as u64 != expected {
        return Err(Error::DataLenMismatch {
            actual: data.len() as u64,
            expected,
            shape: header.shape.clone(),
            descr: header.dtype.descr(),
        });
    }
    // Never write a file our own reader would refuse. Only a shape with tens
    // of thousands of dims gets here.
    let header_len = header.encode_len() as u64;
    if header_len > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge {
            len: header_len,
            max: MAX_HEADER_LEN,
        });
    }
    Ok(())
}
