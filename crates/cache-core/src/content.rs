//! What a store writes: the bytes of an entry's file, an `.npy` of one
//! array or an aligned `.npz` of several, as a preamble (what the record's
//! `headerDigest` covers) and a body (what its `dataDigest` covers) made of
//! the caller's memory and a few small headers between, never copied.

use std::borrow::Cow;

use npy_format::{ByteOrder, Header, NpzLayout, NpzMember};

use crate::blocks::{has_blocks, BlockDigests, BlockHasher};
use crate::books::MemberRow;
use crate::record::{data_digest, Digest, EntryRecord, NewEntry, MAX_ENTRY_MEMBERS};
use crate::Error;

/// An entry's file to write, checked: made only by its constructors.
#[derive(Debug)]
pub struct Content<'a>(Kind<'a>);

#[derive(Debug)]
enum Kind<'a> {
    /// One array: its header and data.
    Npy { header: &'a Header, data: &'a [u8] },
    /// Several: an archive of named members.
    Npz(NewArchive<'a>),
}

use Kind::{Npy, Npz};

/// An archive to write, planned: its layout, each member's CRC-32 and data.
#[derive(Debug)]
pub struct NewArchive<'a> {
    layout: NpzLayout,
    crcs: Vec<u32>,
    data: Vec<&'a [u8]>,
}

impl<'a> NewArchive<'a> {
    /// Plans an archive of `members` (name, header, data), in order: 1 to
    /// [`MAX_ENTRY_MEMBERS`] of them, named and sized as
    /// [`npy_format::NpzLayout::plan`] accepts.
    pub fn new(members: &[(&str, &Header, &'a [u8])]) -> Result<NewArchive<'a>, npy_format::Error> {
        if members.is_empty() || members.len() > MAX_ENTRY_MEMBERS {
            return Err(npy_format::Error::TooManyMembers { count: members.len(), max: MAX_ENTRY_MEMBERS });
        }
        let (layout, crcs) = npy_format::plan_npz(members)?;
        Ok(NewArchive { layout, crcs, data: members.iter().map(|m| m.2).collect() })
    }

    pub fn layout(&self) -> &NpzLayout {
        &self.layout
    }
}

impl<'a> Content<'a> {
    /// One array's `.npy`: refused if `write_npy_to` would refuse it.
    pub fn npy(header: &'a Header, data: &'a [u8]) -> Result<Content<'a>, npy_format::Error> {
        npy_format::check_npy(header, data)?;
        Ok(Content(Npy { header, data }))
    }

    /// Several arrays' `.npz`.
    pub fn npz(archive: NewArchive<'a>) -> Content<'a> {
        Content(Npz(archive))
    }

    /// Whether it is an archive of several arrays.
    pub fn is_archive(&self) -> bool {
        matches!(self.0, Npz(_))
    }

    /// The content of a loaded entry, to store again elsewhere (the same
    /// bytes: an archive's layout is fixed by its members).
    pub fn of_loaded(header: &'a Header, data: &'a [u8], members: &[NpzMember]) -> Content<'a> {
        if members.is_empty() {
            return Content(Npy { header, data });
        }
        let planned: Vec<(&str, &Header)> = members.iter().map(|m| (m.name.as_str(), &m.header)).collect();
        let layout = NpzLayout::plan(&planned).expect("a loaded archive was planned so");
        let data = (0..members.len()).map(|i| &data[member_range(members, i)]).collect();
        Content(Npz(NewArchive { layout, crcs: members.iter().map(|m| m.crc).collect(), data }))
    }

    /// The file's extension: `npy` or `npz`.
    pub fn extension(&self) -> &'static str {
        match &self.0 {
            Npy { .. } => "npy",
            Npz(_) => "npz",
        }
    }

    /// The bytes before the (first) array's data.
    pub fn preamble(&self) -> Cow<'_, [u8]> {
        match &self.0 {
            Npy { header, .. } => Cow::Owned(header.encode()),
            Npz(a) => Cow::Owned(a.layout.head(0, a.crcs[0])),
        }
    }

    /// The rest of the file, in order: the data of an `.npy`; an archive's
    /// first member's data, then each further member's headers and data,
    /// then its directory.
    pub fn body(&self) -> Vec<Cow<'a, [u8]>> {
        match &self.0 {
            Npy { data, .. } => vec![Cow::Borrowed(*data)],
            Npz(a) => {
                let mut out = Vec::with_capacity(2 * a.data.len() + 1);
                for (i, data) in a.data.iter().enumerate() {
                    if i > 0 {
                        out.push(Cow::Owned(a.layout.head(i, a.crcs[i])));
                    }
                    out.push(Cow::Borrowed(*data));
                }
                out.push(Cow::Owned(a.layout.tail(&a.crcs)));
                out
            }
        }
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        match &self.0 {
            Npy { header, data } => (header.encode().len() + data.len()) as u64,
            Npz(a) => a.layout.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of the body, as the record states it, and its block
    /// digests when it has them (see [`crate::blocks`]).
    pub fn body_digests(&self) -> (Digest, Option<BlockDigests>) {
        let body = self.body();
        let len = body.iter().map(|p| p.len() as u64).sum();
        if !has_blocks(len) && body.len() == 1 {
            return (data_digest(&body[0]), None);
        }
        let mut hasher = BlockHasher::new(len);
        for part in &body {
            hasher.update(part);
        }
        hasher.finish().expect("fed its whole length")
    }

    /// The record of this content stored as `entry`, its body of digest
    /// `body_digest`; refused if `entry` does not describe it (one array
    /// or several, each one's class and form).
    pub fn record(
        &self,
        entry: &NewEntry,
        body_digest: Digest,
        created: std::time::SystemTime,
    ) -> Result<EntryRecord, Error> {
        let invalid =
            |why: String| Error::InvalidArgument { message: format!("the record does not describe the result: {why}") };
        match &self.0 {
            Npy { header, .. } => {
                let record = EntryRecord::new(entry, header, body_digest, created);
                if !entry.members.is_empty() {
                    return Err(invalid("it names arrays of several for one".into()));
                }
                record.check(header, ByteOrder::NATIVE, None).map_err(invalid)?;
                Ok(record)
            }
            Npz(a) => {
                let digest = crate::record::layout_digest(&a.layout, &a.crcs);
                let record = EntryRecord::with_digests(entry, digest, body_digest, created);
                let members: Vec<NpzMember> = (a.layout.members().iter().zip(&a.crcs))
                    .map(|(m, &crc)| NpzMember {
                        name: m.name.clone(),
                        header: m.header.clone(),
                        npy: m.npy,
                        data: m.data,
                        data_len: m.data_len,
                        crc,
                    })
                    .collect();
                record.check_archive(&members, None).map_err(invalid)?;
                Ok(record)
            }
        }
    }

    /// What a listing shows of it: the dtype and shape of one array, or its
    /// members ([`MemberRow::encode_all`]) and no shape.
    pub fn described(&self) -> (String, Vec<u64>) {
        match &self.0 {
            Npy { header, .. } => (header.dtype.descr(), header.shape.clone()),
            Npz(a) => {
                (MemberRow::encode_all(a.layout.members().iter().map(|m| MemberRow::of(&m.name, &m.header))), vec![])
            }
        }
    }

    /// Bytes of the arrays' data, all members together.
    pub fn data_len(&self) -> u64 {
        match &self.0 {
            Npy { data, .. } => data.len() as u64,
            Npz(a) => a.data.iter().map(|d| d.len() as u64).sum(),
        }
    }
}

/// Where member `i` of an archive's `members` lies in its loaded body (all
/// that follows the first member's preamble), in bytes.
pub fn member_range(members: &[NpzMember], i: usize) -> std::ops::Range<usize> {
    let start = (members[i].data - members[0].data) as usize;
    start..start + members[i].data_len as usize
}

/// The members an archive's `preamble` and `body` hold, checked against
/// `record` (with the body's digest too when `check_body`): what a tier
/// does with an entry of several arrays before it is a hit.
pub fn open_archive(
    record: &EntryRecord,
    preamble: &[u8],
    body: &[u8],
    check_body: bool,
) -> Result<Vec<NpzMember>, String> {
    let members =
        npy_format::aligned_npz_members(preamble, body).map_err(|e| format!("its archive is not valid: {e}"))?;
    record.check_archive(&members, check_body.then_some(body))?;
    // Checked to be in native order: say so.
    Ok(members.into_iter().map(|m| NpzMember { header: native(&m), ..m }).collect())
}

fn native(member: &NpzMember) -> Header {
    debug_assert!(member.header.dtype.item_size <= 1 || member.header.dtype.byte_order == ByteOrder::NATIVE);
    Header { dtype: member.header.dtype.native(), ..member.header.clone() }
}
