//! What an entry object's metadata and first bytes say of it, judged the
//! same way by a load, a `has` and a verify: its record, its `.npy` header
//! (an archive's first member's), and whether the object is as long as the
//! header needs.

use cache_core::{EntryRecord, RecordProblem};
use npy_format::{decode_header_bytes, ByteOrder, Header};
use object_store::Attributes;

use crate::record_meta;

/// The first bytes of an object that hold any header (a header is at most
/// this long, and its preamble 16 bytes more; an archive's first member's
/// local header adds at most a name and two fields).
pub(crate) const MAX_PREAMBLE: usize = npy_format::MAX_NPZ_PREAMBLE;

/// An entry object opened: its record and header, where its data begins
/// and how long it is.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) record: EntryRecord,
    /// The header in native order; the data was stored in `stored_order`.
    pub(crate) header: Header,
    pub(crate) stored_order: ByteOrder,
    pub(crate) preamble: u64,
    /// An archive's preamble, as stored (the record's header digest is of it).
    pub(crate) archive: Option<Vec<u8>>,
    pub(crate) data_len: u64,
}

impl Opened {
    /// Checks the header, and `data` when given, against the record; of an
    /// archive, its preamble, and given `data` (all the rest), its members
    /// too, which it returns.
    pub(crate) fn check(&self, data: Option<&[u8]>) -> Result<Vec<npy_format::NpzMember>, String> {
        match (&self.archive, data) {
            (Some(preamble), Some(body)) => cache_core::open_archive(&self.record, preamble, body, true),
            (Some(preamble), None) => {
                // Without the body only the first member is known: the
                // headers of the others, and the directory, are checked
                // with the body, by a load.
                let first = npy_format::npz_member_at(preamble, 0).map_err(|e| e.to_string())?;
                self.record.check_member(0, &first)?;
                Ok(vec![])
            }
            (None, data) => self.record.check(&self.header, self.stored_order, data).map(|()| vec![]),
        }
    }
}

/// What the start of an object says.
#[derive(Debug)]
pub(crate) enum Opening {
    /// More bytes are needed to decode the header.
    NeedMore,
    /// An object of another version of the cache: a miss, not replaced.
    OtherVersion,
    /// Not a whole entry: why.
    Damaged(String),
    Entry(Box<Opened>),
}

/// Judges an object of `size` bytes by its `attributes` and its first
/// bytes `start` (all there are when `complete`).
pub(crate) fn open(attributes: &Attributes, start: &[u8], size: u64, complete: bool) -> Opening {
    let record = match record_meta::record_of(attributes) {
        Ok(r) => r,
        Err(RecordProblem::Invalid(why)) => return Opening::Damaged(format!("its record {why}")),
        Err(_) => return Opening::OtherVersion,
    };
    let archive = record.result.is_archive();
    let start = &start[..start.len().min(MAX_PREAMBLE)];
    let decoded = if archive {
        npy_format::npz_member_at(start, 0).map(|first| (first.header, first.data))
    } else {
        decode_header_bytes(start)
    };
    let what = if archive { "its first array's header" } else { "its .npy header" };
    let (stored, preamble) = match decoded {
        Ok(h) => h,
        Err(npy_format::Error::TruncatedHeader) if complete || start.len() >= MAX_PREAMBLE => {
            return Opening::Damaged(format!("{what} is cut short"))
        }
        Err(npy_format::Error::TruncatedHeader) => return Opening::NeedMore,
        Err(e) => return Opening::Damaged(format!("{what} is not valid: {e}")),
    };
    let data_len = match stored.data_len() {
        // An archive's data runs to its end: its members are found in it.
        Ok(n) if archive && preamble.checked_add(n).is_some_and(|end| end <= size) => size - preamble,
        Ok(n) if preamble.checked_add(n) == Some(size) => n,
        Ok(n) => {
            let held = size.saturating_sub(preamble);
            return Opening::Damaged(format!("it holds {held} bytes of data where its header needs {n}"));
        }
        Err(e) => return Opening::Damaged(e.to_string()),
    };
    let stored_order = stored.dtype.byte_order;
    let header = Header { dtype: stored.dtype.native(), ..stored };
    let archive = archive.then(|| start[..preamble as usize].to_vec());
    Opening::Entry(Box::new(Opened { record, header, stored_order, preamble, archive, data_len }))
}
