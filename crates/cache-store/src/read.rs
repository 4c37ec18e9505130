//! Reading an entry: its record, then its array through the hardened
//! opener (mapped where it can be used in place), checked against its own
//! header, the file's length and the record.

use std::fs;
use std::io::{self, BufReader, Seek};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cache_core::record::VERIFY_DATA_UP_TO;
use cache_core::{Entry, EntryRecord, Error, LoadedArray, Lookup, Place};
use npy_format::{AlignedBuf, Header};

use crate::bookkeeping::Bookkeeper;
use crate::files::{EntryFiles, RecordRead};
use crate::fs_kind;
use crate::layout;
use crate::memo::{FileStamp, KEEP_UP_TO};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Data up to `VERIFY_DATA_UP_TO` (a large entry's header is always checked).
    #[default]
    Small,
    /// All data, whatever its size: a large load costs a hash of it too.
    All,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading<'a> {
    /// Map the array where it can be used in place.
    pub(crate) map: bool,
    pub(crate) verify: Verify,
    /// Keep small arrays in memory and serve repeated hits from there.
    pub(crate) keep: bool,
    /// This boot (`host::boot`): a large entry of another checks all its data once.
    pub(crate) boot: Option<&'a str>,
    /// Where checks of earlier boots' entries are marked for other processes.
    pub(crate) books: Option<&'a Bookkeeper>,
}

impl EntryFiles {
    /// Reads the entry of `key` (a checked key): its record, then its
    /// array, checked against its own header, the file length and the
    /// record. The array is mapped where it can be used in place if
    /// `how.map`, else read into memory from `alloc`, or copied from memory
    /// if it is a small one kept from an earlier read of the same file.
    pub(crate) fn read<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        key: &str,
        how: Reading<'_>,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Lookup<B> {
        match self.read_once(key, how, alloc) {
            // A store of this key may have replaced the array between our
            // reads of the record and the array: read both once more.
            Lookup::Damaged(_) => self.read_once(key, how, alloc),
            lookup => lookup,
        }
    }

    fn read_once<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        key: &str,
        how: Reading<'_>,
        alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
    ) -> Lookup<B> {
        let Reading { map, verify, keep, .. } = how;
        let keep = keep && !map;
        let kept = keep.then(|| self.memo().kept(key)).flatten();
        if let Some(hit) = kept.and_then(|k| k.hit(&self.layout.record(key), &self.layout.array(key, false), alloc)) {
            return hit;
        }
        let record = match self.read_record(key) {
            Ok(r) => r,
            Err(RecordRead::Missing | RecordRead::OtherVersion { .. }) => return Lookup::Miss,
            Err(RecordRead::Invalid(e) | RecordRead::Unreadable(e)) => return Lookup::Damaged(e),
        };
        let archive = record.result.is_archive();
        let path = self.layout.array(key, archive);
        let damaged = |reason: String| Lookup::Damaged(Error::Damaged { place: Place::File(path.clone()), reason });
        let (mut file, meta) = match layout::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return damaged(format!("could not open it: {e}")),
        };
        // A file someone else could truncate is read, not mapped: a mapping
        // past a file's end kills the process (SIGBUS).
        let map = map && fs_kind::only_we_write(&meta);
        let (array, preamble) = match read_data(&mut file, &path, archive, map, alloc) {
            Ok(read) => read,
            Err(e) => return damaged(e.root().to_string()),
        };
        let data = array.data();
        let whole = verify == Verify::All || data.len() <= VERIFY_DATA_UP_TO;
        // Entries are not synced: after a crash a file can keep its length
        // and lose its data, so a large entry not known to be of this boot
        // has all its data checked once (this mapped one too, before use).
        let unsettled = !whole && !self.settled(key, &record, &meta, how);
        let checked_data = (whole || unsettled).then_some(data);
        let checked = match &preamble {
            Some(preamble) => cache_core::open_archive(&record, preamble, data, checked_data.is_some()),
            None => record.check(array.header(), array.stored_order(), checked_data).map(|()| vec![]),
        };
        let members = match checked {
            Ok(members) => members,
            Err(reason) => {
                self.memo().remove(key);
                return damaged(reason);
            }
        };
        if unsettled {
            self.boot_checks.fetch_add(1, Ordering::Relaxed);
            let stamp = FileStamp::of(&meta);
            if let (Some(books), Some(boot)) = (how.books, how.boot) {
                books.note_checked(key, boot, stamp.text());
            }
            self.memo().set_checked(key, &record, stamp);
        }
        if let LoadedArray::Read(read) = &array {
            if keep && !archive && data.len() <= KEEP_UP_TO {
                self.memo().keep(key, &record, &meta, read);
            }
        }
        Lookup::Hit(Entry { array, record, members })
    }

    /// Whether a large array's data needs no check: its record says it was
    /// written in this boot, or its file (as `meta` says) was checked whole
    /// in this boot, by this process or, as the index notes, another.
    fn settled(&self, key: &str, record: &Arc<EntryRecord>, meta: &fs::Metadata, how: Reading<'_>) -> bool {
        if record.is_of_boot(how.boot) {
            return true;
        }
        let stamp = FileStamp::of(meta);
        if self.memo().is_checked(key, record, &stamp) {
            return true;
        }
        let (Some(books), Some(boot)) = (how.books, how.boot) else { return false };
        let marked = books.checked_in(key, boot, &stamp.text());
        if marked {
            self.memo().set_checked(key, record, stamp);
        }
        marked
    }

    /// Whether a load of `key` would hit, without reading a large array:
    /// the record and the array's header and length are checked, and a
    /// small array's data too (as a load checks it).
    pub(crate) fn holds(&self, key: &str) -> bool {
        let Ok(record) = self.read_record(key) else { return false };
        let Ok((file, meta)) = layout::open_regular(&self.layout.array(key, record.result.is_archive())) else {
            return false;
        };
        if meta.len() <= (VERIFY_DATA_UP_TO + 64 * 1024) as u64 {
            let how = Reading { map: false, verify: Verify::Small, keep: false, boot: None, books: None };
            return matches!(self.read(key, how, &mut AlignedBuf::zeroed), Lookup::Hit(_));
        }
        check_header(&record, file, &meta).is_ok()
    }
}

/// An entry's data file read into memory from `alloc`, or mapped if `map`
/// and it can be used in place; an archive's preamble beside it.
fn read_data<B: AsRef<[u8]> + AsMut<[u8]>>(
    file: &mut fs::File,
    path: &std::path::Path,
    archive: bool,
    map: bool,
    alloc: &mut impl FnMut(usize) -> Result<B, npy_format::Error>,
) -> Result<(LoadedArray<B>, Option<Vec<u8>>), npy_format::Error> {
    if !archive {
        let mapped = if map { npy_format::map_npy_file(file, path)? } else { None };
        let array = match mapped {
            Some(m) => LoadedArray::Mapped(m),
            None => LoadedArray::Read(npy_format::read_npy_file_into(file, path, &mut *alloc)?),
        };
        return Ok((array, None));
    }
    if let Some((mapped, _)) = if map { npy_format::map_npz_file(file, path)? } else { None } {
        let preamble = mapped.preamble().to_vec();
        return Ok((LoadedArray::Mapped(mapped), Some(preamble)));
    }
    let (preamble, body) = npy_format::read_aligned_npz_into(file, path, &mut *alloc)?;
    // Headers are checked against the record (native order): the body as read is the array data.
    let first = npy_format::npz_member_at(&preamble, 0)?.header;
    let header = Header { dtype: first.dtype.native(), ..first };
    let array = npy_format::NpyArray { header, data: body, stored_order: npy_format::ByteOrder::NATIVE };
    Ok((LoadedArray::Read(array), Some(preamble)))
}

/// Checks an opened data file against its record without reading its
/// data: the header (against the record's digest, class and form), an
/// archive's every header and directory, and the file's length. Returns
/// the file positioned at the data (an archive's first member's).
pub(crate) fn check_header(record: &EntryRecord, file: fs::File, meta: &fs::Metadata) -> Result<fs::File, String> {
    if record.result.is_archive() {
        let members =
            npy_format::aligned_npz_file_members(&file).map_err(|e| format!("its archive is not valid: {e}"))?;
        record.check_archive(&members, None)?;
        let mut file = file;
        file.seek(io::SeekFrom::Start(members[0].data)).map_err(|e| format!("could not read its data: {e}"))?;
        return Ok(file);
    }
    let mut reader = BufReader::new(file);
    let (stored, offset) = npy_format::decode_header(&mut reader).map_err(|e| e.to_string())?;
    if stored.data_len().ok().and_then(|len| offset.checked_add(len)) != Some(meta.len()) {
        return Err("its file is not the length its header says".to_owned());
    }
    let header = Header { dtype: stored.dtype.native(), ..stored.clone() };
    record.check(&header, stored.dtype.byte_order, None)?;
    let mut file = reader.into_inner();
    file.seek(io::SeekFrom::Start(offset)).map_err(|e| format!("could not read its data: {e}"))?;
    Ok(file)
}
