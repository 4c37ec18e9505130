//! Whole-file reading and writing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::header::{MAX_DIMS, MAX_HEADER_LEN};
use crate::{decode_header, decode_header_bytes, swap_to_native, AlignedBuf, ByteOrder, Error, Header};

/// An array read from a .npy file, its data in memory of type `B` (by
/// default an [`AlignedBuf`]; [`read_npy_file_into`] takes any).
#[derive(Debug)]
pub struct NpyArray<B = AlignedBuf> {
    /// The file's header with the dtype converted to native byte order.
    pub header: Header,
    /// The raw elements in native byte order, C or Fortran order as
    /// `header.fortran_order` says.
    pub data: B,
    /// The byte order the file stored the data in, before conversion.
    pub stored_order: ByteOrder,
}

/// The first read takes this much: any ordinary header and, for small
/// files, all of the data, so a small hit costs one read system call.
const FIRST_READ: usize = 64 * 1024;

/// Reads a whole .npy file into a 64-byte aligned buffer.
///
/// The data is read straight into the buffer (no intermediate copy for large
/// files) and byte-swapped in place if the file is big-endian. The file
/// length must be exactly preamble + data; this is checked before
/// allocating, so a corrupt shape cannot trigger a huge allocation. Every
/// error names the file.
pub fn read_npy(path: &Path) -> Result<NpyArray, Error> {
    read_npy_into(path, AlignedBuf::zeroed)
}

/// [`read_npy`] into memory the caller provides (see [`read_npy_file_into`]).
pub fn read_npy_into<B: AsMut<[u8]>>(
    path: &Path,
    alloc: impl FnOnce(usize) -> Result<B, Error>,
) -> Result<NpyArray<B>, Error> {
    let mut file = open_for_reading(path).map_err(|e| e.in_file(path))?;
    read_npy_file_into(&mut file, path, alloc)
}

/// Opens `path` for reading. Non-blocking: opening a FIFO for reading would
/// wait for a writer; this way it opens at once and fails the regular-file
/// check.
pub(crate) fn open_for_reading(path: &Path) -> Result<File, Error> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path).map_err(Error::io("open the file"))
}

/// [`read_npy`] of a file the caller opened (for example without following
/// links), positioned at its start; `path` is for error messages.
pub fn read_npy_file(file: &mut File, path: &Path) -> Result<NpyArray, Error> {
    read_npy_file_into(file, path, AlignedBuf::zeroed)
}

/// [`read_npy_file`] into memory the caller provides: `alloc(len)` is
/// called once, after the header and the file length are checked, and must
/// return exactly `len` bytes (their contents do not matter: every byte is
/// overwritten, or the read fails). For example memory a runtime owns, or a
/// buffer recycled from an earlier array.
pub fn read_npy_file_into<B: AsMut<[u8]>>(
    file: &mut File,
    path: &Path,
    alloc: impl FnOnce(usize) -> Result<B, Error>,
) -> Result<NpyArray<B>, Error> {
    FIRST.with(|first| read_with_first(file, &mut first.borrow_mut(), alloc)).map_err(|e| e.in_file(path))
}

thread_local! {
    /// Scratch for the first read, reused so a small read allocates nothing.
    static FIRST: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; FIRST_READ]);
}

fn read_with_first<B: AsMut<[u8]>>(
    file: &mut File,
    first: &mut [u8],
    alloc: impl FnOnce(usize) -> Result<B, Error>,
) -> Result<NpyArray<B>, Error> {
    // The first read comes before any stat: a read shorter than the buffer
    // is the whole file, so a small hit is open, read, close. A directory
    // fails the read; a FIFO (the cache opens entries non-blocking) reads
    // empty and fails as a truncated header.
    let mut got = read_once(file, first)?;
    let (file_len, mut seen_eof) = if got < first.len() {
        (got as u64, true)
    } else {
        let len = regular_file_len(file)?;
        got += read_full(file, &mut first[got..])?;
        (len, got < first.len())
    };
    let first = &first[..got];
    let (mut header, offset, already) = match decode_header_bytes(first) {
        Ok((header, offset)) => (header, offset, first.get(offset as usize..).unwrap_or(&[])),
        // A header longer than the first read: decode it from the start.
        Err(Error::TruncatedHeader) if !seen_eof => {
            file.seek(SeekFrom::Start(0)).map_err(Error::io("seek in the file"))?;
            let (header, offset) = decode_header(file)?;
            seen_eof = false;
            (header, offset, &[][..])
        }
        Err(e) => return Err(e),
    };
    let expected = header.data_len()?;
    let actual = file_len.saturating_sub(offset);
    let mismatch = |actual: u64| Error::data_len_mismatch(&header, actual, expected);
    if actual != expected {
        return Err(mismatch(actual));
    }
    let len = usize::try_from(expected).map_err(|_| Error::AllocFailed { len: expected })?;
    if already.len() > len {
        // The file grew after we looked at its size.
        return Err(mismatch(already.len() as u64));
    }
    let mut data = alloc(len)?;
    let bytes = data.as_mut();
    if bytes.len() != len {
        return Err(Error::AllocFailed { len: expected });
    }
    bytes[..already.len()].copy_from_slice(already);
    let rest = &mut bytes[already.len()..];
    let got = read_full(file, rest)?;
    if got < rest.len() {
        // The file shrank after we looked at its size.
        return Err(mismatch((already.len() + got) as u64));
    }
    // ... or grew: one extra byte tells.
    if !seen_eof && read_full(file, &mut [0u8; 1])? != 0 {
        return Err(mismatch(expected + 1));
    }
    swap_to_native(&header.dtype, data.as_mut());
    let stored_order = header.dtype.byte_order;
    header.dtype = header.dtype.native();
    Ok(NpyArray { header, data, stored_order })
}

/// The length of `file`, which must be a regular file: a directory, FIFO or
/// device under a .npy name is an error, not something to read or wait on.
pub(crate) fn regular_file_len(file: &File) -> Result<u64, Error> {
    let meta = file.metadata().map_err(Error::io("read the file's metadata"))?;
    if !meta.file_type().is_file() {
        return Err(Error::io("read the file")(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")));
    }
    Ok(meta.len())
}

/// One `read` call, retried only if interrupted.
fn read_once(file: &mut File, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match file.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read the file")(e)),
        }
    }
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
    writer.write_all(&preamble).map_err(Error::io("write the .npy header"))?;
    writer.write_all(data).map_err(Error::io("write the array data"))?;
    Ok(())
}

/// Refuses what [`write_npy_to`] would: a header it must not write, or
/// data not of the length the header says.
pub fn check_npy(header: &Header, data: &[u8]) -> Result<(), Error> {
    check(header, data)
}

fn check(header: &Header, data: &[u8]) -> Result<(), Error> {
    check_header(header)?;
    let expected = header.data_len()?;
    if data.len() as u64 != expected {
        return Err(Error::DataLenMismatch {
            actual: data.len() as u64,
            expected,
            shape: header.shape.clone(),
            descr: header.dtype.descr(),
        });
    }
    Ok(())
}

/// Refuses a header a writer must not write: a dtype this crate does not
/// handle, more dimensions than NumPy reads, or one our reader would refuse.
pub fn check_header(header: &Header) -> Result<(), Error> {
    header.dtype.validate()?;
    if header.shape.len() > MAX_DIMS {
        return Err(Error::TooManyDims { dims: header.shape.len(), max: MAX_DIMS });
    }
    header.data_len()?;
    // Only a shape with tens of thousands of dims gets here.
    let header_len = header.encode_len() as u64;
    if header_len > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge { len: header_len, max: MAX_HEADER_LEN });
    }
    Ok(())
}
