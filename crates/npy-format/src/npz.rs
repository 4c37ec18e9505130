//! Uncompressed `.npz` archives whose members' array data is 64-byte
//! aligned, so each member can be mapped or read in place.
//!
//! An `.npz` is a zip of `.npy` files, one per array, named `<name>.npy`
//! (`np.savez`). The layout written here is fixed before any data exists
//! ([`NpzLayout::plan`]): a writer can fill members in place (a mapped
//! temporary file, ranged uploads) and add the CRC-32s last. That is why
//! the writer is this crate's own (a general zip writer writes entries one
//! after another); reading goes through the `zip` crate.
//!
//! ```text
//! for each member, in order:
//!   local header  sizes in a zip64 field; a padding field (0xD935, as
//!                 Android's zipalign) puts what follows at a multiple of 64
//!   .npy preamble (np.save's, a multiple of 64 bytes long)
//!   array data    so at a multiple of 64
//! central directory (zip64 sizes and offsets), zip64 end records, end record
//! ```
//!
//! Names are UTF-8 (flag bit 11), times are 1980-01-01 00:00 (the zip
//! epoch): the same members give the same bytes. Every size is in a zip64
//! field, so a member of any size takes the same layout.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{decode_header, decode_header_bytes, swap_to_native, AlignedBuf, Error, Header, NpyArray};

/// What the array data of each member is aligned to, in the archive.
pub const NPZ_ALIGN: u64 = 64;

/// The most members an archive of this crate holds or is read with.
pub const MAX_MEMBERS: usize = 1024;

/// The longest member name, in bytes (without `.npy`).
pub const MAX_MEMBER_NAME: usize = 255;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;
/// 4.5: zip64.
const VERSION: u16 = 45;
/// Bit 11: names are UTF-8.
const FLAGS: u16 = 0x0800;
/// 1980-01-01 in MS-DOS date form; the time is 00:00.
const DOS_DATE: u16 = (1 << 5) | 1;
const ZIP64_FIELD: u16 = 0x0001;
const PAD_FIELD: u16 = 0xD935;
const LOCAL_LEN: u64 = 30;
/// Zip64 field of a local header: id, size, two 8-byte sizes.
const LOCAL_ZIP64_LEN: u64 = 20;
const CENTRAL_LEN: u64 = 46;
/// Zip64 field of a central header: id, size, two sizes and an offset.
const CENTRAL_ZIP64_LEN: u64 = 28;
/// Smallest padding field: id, size and the 2-byte alignment zipalign writes.
const MIN_PAD: u64 = 6;
/// The records after the central directory: zip64 end, its locator, end.
const ENDS_LEN: u64 = 56 + 20 + 22;
/// What a member's name gets in the archive.
const NPY_SUFFIX: &str = ".npy";

/// Where one member lies in an archive planned by [`NpzLayout::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLayout {
    /// The member's name, without `.npy`.
    pub name: String,
    pub header: Header,
    /// Offset of its local header.
    pub local_header: u64,
    /// Offset of its `.npy` preamble (64-aligned).
    pub npy: u64,
    /// Offset of its array data (64-aligned).
    pub data: u64,
    /// Length of its array data.
    pub data_len: u64,
    padding: u64,
    preamble: Vec<u8>,
}

impl MemberLayout {
    fn file_name(&self) -> String {
        format!("{}{NPY_SUFFIX}", self.name)
    }

    /// The `.npy` file's length: preamble and data.
    fn npy_len(&self) -> u64 {
        self.data - self.npy + self.data_len
    }
}

/// The byte layout of an aligned `.npz` of given members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpzLayout {
    members: Vec<MemberLayout>,
    central: u64,
    len: u64,
}

impl NpzLayout {
    /// Plans an archive of `members` (name and header), in their order.
    /// Refuses names NumPy or zip tools would read otherwise (empty, over
    /// [`MAX_MEMBER_NAME`] bytes, with `/`, `\`, control characters, or
    /// `.` / `..`), repeated names, more than [`MAX_MEMBERS`] members, and
    /// headers [`write_npy_to`](crate::write_npy_to) would refuse.
    pub fn plan(members: &[(&str, &Header)]) -> Result<NpzLayout, Error> {
        if members.len() > MAX_MEMBERS {
            return Err(Error::TooManyMembers { count: members.len(), max: MAX_MEMBERS });
        }
        let mut planned: Vec<MemberLayout> = Vec::with_capacity(members.len());
        let mut at = 0u64;
        for &(name, header) in members {
            check_member_name(name)?;
            if planned.iter().any(|m| m.name == name) {
                return Err(Error::DuplicateMember(name.to_owned()));
            }
            crate::file::check_header(header)?;
            let fixed = LOCAL_LEN + (name.len() + NPY_SUFFIX.len()) as u64 + LOCAL_ZIP64_LEN;
            let mut padding = (NPZ_ALIGN - (at + fixed) % NPZ_ALIGN) % NPZ_ALIGN;
            if padding != 0 && padding < MIN_PAD {
                padding += NPZ_ALIGN;
            }
            let npy = at + fixed + padding;
            let preamble = header.encode();
            let data = npy + preamble.len() as u64;
            let data_len = header.data_len()?;
            let end = data.checked_add(data_len).ok_or_else(|| header.overflow())?;
            planned.push(MemberLayout {
                name: name.to_owned(),
                header: header.clone(),
                local_header: at,
                npy,
                data,
                data_len,
                padding,
                preamble,
            });
            at = end;
        }
        let central_len: u64 =
            planned.iter().map(|m| CENTRAL_LEN + m.file_name().len() as u64 + CENTRAL_ZIP64_LEN).sum();
        let len = at + central_len + ENDS_LEN;
        Ok(NpzLayout { members: planned, central: at, len })
    }

    pub fn members(&self) -> &[MemberLayout] {
        &self.members
    }

    /// The archive's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s bytes before its data: local header and `.npy`
    /// preamble, with `crc` (the CRC-32 of preamble and data) in the header.
    pub fn head(&self, i: usize, crc: u32) -> Vec<u8> {
        let m = &self.members[i];
        let name = m.file_name();
        let mut out = Vec::with_capacity((m.data - m.local_header) as usize);
        put32(&mut out, LOCAL_SIG);
        put_entry(&mut out, crc, &name, LOCAL_ZIP64_LEN + m.padding);
        out.extend_from_slice(name.as_bytes());
        put16(&mut out, ZIP64_FIELD);
        put16(&mut out, 16);
        put64(&mut out, m.npy_len());
        put64(&mut out, m.npy_len());
        if m.padding > 0 {
            put16(&mut out, PAD_FIELD);
            put16(&mut out, (m.padding - 4) as u16);
            put16(&mut out, NPZ_ALIGN as u16);
            out.resize(out.len() + (m.padding - MIN_PAD) as usize, 0);
        }
        out.extend_from_slice(&m.preamble);
        out
    }

    /// The central directory and end records, given each member's CRC-32.
    pub fn tail(&self, crcs: &[u32]) -> Vec<u8> {
        assert_eq!(crcs.len(), self.members.len(), "one CRC-32 per member");
        let mut out = Vec::with_capacity((self.len - self.central) as usize);
        for (m, &crc) in self.members.iter().zip(crcs) {
            let name = m.file_name();
            put32(&mut out, CENTRAL_SIG);
            put16(&mut out, VERSION); // made by
            put_entry(&mut out, crc, &name, CENTRAL_ZIP64_LEN);
            put16(&mut out, 0); // comment
            put16(&mut out, 0); // disk
            put16(&mut out, 0); // internal attributes
            put32(&mut out, 0); // external attributes
            put32(&mut out, u32::MAX);
            out.extend_from_slice(name.as_bytes());
            put16(&mut out, ZIP64_FIELD);
            put16(&mut out, 24);
            put64(&mut out, m.npy_len());
            put64(&mut out, m.npy_len());
            put64(&mut out, m.local_header);
        }
        let central_len = out.len() as u64;
        let zip64_end = self.central + central_len;
        let count = self.members.len() as u64;
        put32(&mut out, ZIP64_END_SIG);
        put64(&mut out, 44);
        put16(&mut out, VERSION);
        put16(&mut out, VERSION);
        put32(&mut out, 0);
        put32(&mut out, 0);
        put64(&mut out, count);
        put64(&mut out, count);
        put64(&mut out, central_len);
        put64(&mut out, self.central);
        put32(&mut out, ZIP64_LOCATOR_SIG);
        put32(&mut out, 0);
        put64(&mut out, zip64_end);
        put32(&mut out, 1);
        put32(&mut out, END_SIG);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, count as u16);
        put16(&mut out, count as u16);
        put32(&mut out, u32::MAX);
        put32(&mut out, u32::MAX);
        put16(&mut out, 0);
        out
    }
}

/// Writes an aligned `.npz` of `members` (name, header, data in the byte
/// order the header states) to `writer`, and returns its layout. Each
/// member's data is read once for its CRC-32 and passed to `write_all` as
/// is (no copy). Nothing is written if a member is refused.
pub fn write_npz_to<W: Write>(writer: &mut W, members: &[(&str, &Header, &[u8])]) -> Result<NpzLayout, Error> {
    let (layout, crcs) = prepare(members)?;
    emit(writer, &layout, &crcs, members)?;
    Ok(layout)
}

/// [`write_npz_to`] a file at `path`, created or truncated only once every
/// member is accepted. Not atomic: write to a temporary name and rename if
/// readers may race. Every error names the file.
pub fn write_npz(path: &Path, members: &[(&str, &Header, &[u8])]) -> Result<NpzLayout, Error> {
    let write = || {
        let (layout, crcs) = prepare(members)?;
        let mut file = std::io::BufWriter::new(File::create(path).map_err(Error::io("create the file"))?);
        emit(&mut file, &layout, &crcs, members)?;
        file.flush().map_err(Error::io("write the .npz directory"))?;
        Ok(layout)
    };
    write().map_err(|e: Error| e.in_file(path))
}

/// The layout of `members` (name, header, data) and each one's CRC-32, or
/// why one is refused: what [`NpzLayout::head`] and [`NpzLayout::tail`] need.
pub fn plan_npz(members: &[(&str, &Header, &[u8])]) -> Result<(NpzLayout, Vec<u32>), Error> {
    prepare(members)
}

/// The layout of `members` and each one's CRC-32, or why one is refused.
fn prepare(members: &[(&str, &Header, &[u8])]) -> Result<(NpzLayout, Vec<u32>), Error> {
    let headers: Vec<(&str, &Header)> = members.iter().map(|&(name, header, _)| (name, header)).collect();
    let layout = NpzLayout::plan(&headers)?;
    let mut crcs = Vec::with_capacity(members.len());
    for (m, &(_, _, data)) in layout.members.iter().zip(members) {
        if data.len() as u64 != m.data_len {
            return Err(Error::DataLenMismatch {
                actual: data.len() as u64,
                expected: m.data_len,
                shape: m.header.shape.clone(),
                descr: m.header.dtype.descr(),
            });
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&m.preamble);
        crc.update(data);
        crcs.push(crc.finalize());
    }
    Ok((layout, crcs))
}

fn emit<W: Write>(
    writer: &mut W,
    layout: &NpzLayout,
    crcs: &[u32],
    members: &[(&str, &Header, &[u8])],
) -> Result<(), Error> {
    for (i, &(_, _, data)) in members.iter().enumerate() {
        writer.write_all(&layout.head(i, crcs[i])).map_err(Error::io("write an .npz member's header"))?;
        writer.write_all(data).map_err(Error::io("write an .npz member's data"))?;
    }
    writer.write_all(&layout.tail(crcs)).map_err(Error::io("write the .npz directory"))
}

/// A member of an `.npz` found by [`read_npz_members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpzMember {
    /// Its name, without `.npy`.
    pub name: String,
    pub header: Header,
    /// Offset of its `.npy` preamble in the archive.
    pub npy: u64,
    /// Offset of its array data in the archive.
    pub data: u64,
    pub data_len: u64,
    /// The CRC-32 the archive states for its `.npy` bytes.
    pub crc: u32,
}

/// Lists the members of the `.npz` in `file` with where each one's array
/// data lies, reading only headers. Only uncompressed `.npy` members can be
/// read in place: a compressed one (`np.savez_compressed`), a member that
/// is not an `.npy` file, or one whose data runs past its own end is an
/// error naming it. `file`'s position is left anywhere.
pub fn read_npz_members(file: &mut File) -> Result<Vec<NpzMember>, Error> {
    let mut archive = zip::ZipArchive::new(&mut *file).map_err(archive_error)?;
    if archive.len() > MAX_MEMBERS {
        return Err(Error::TooManyMembers { count: archive.len(), max: MAX_MEMBERS });
    }
    let mut found = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(archive_error)?;
        let file_name = entry.name().to_owned();
        let Some(name) = file_name.strip_suffix(".npy") else {
            return Err(Error::BadMember { name: file_name, reason: "it is not an .npy file".into() });
        };
        if entry.compression() != zip::CompressionMethod::Stored {
            let reason = format!("it is compressed ({}); only uncompressed members are read", entry.compression());
            return Err(Error::BadMember { name: name.to_owned(), reason });
        }
        let Some(start) = entry.data_start() else {
            return Err(Error::BadArchive(format!("the start of member {name:?} is not known")));
        };
        let (len, crc) = (entry.size(), entry.crc32());
        if entry.compressed_size() != len {
            let reason = "its stored and unpacked sizes differ".to_owned();
            return Err(Error::BadMember { name: name.to_owned(), reason });
        }
        found.push((name.to_owned(), start, len, crc));
    }
    drop(archive);
    let mut members = Vec::with_capacity(found.len());
    for (name, start, len, crc) in found {
        let bad = |e: Error| Error::BadMember { name: name.clone(), reason: e.to_string() };
        file.seek(SeekFrom::Start(start)).map_err(Error::io("seek to an .npz member"))?;
        let (header, preamble) = decode_header(&mut (&mut *file).take(len)).map_err(bad)?;
        let data_len = header.data_len().map_err(bad)?;
        if preamble.checked_add(data_len) != Some(len) {
            let e = Error::data_len_mismatch(&header, len.saturating_sub(preamble), data_len);
            return Err(bad(e));
        }
        members.push(NpzMember { name, header, npy: start, data: start + preamble, data_len, crc });
    }
    Ok(members)
}

/// The longest stretch of an archive before its first member's data: a
/// local header with the longest name, its zip64 and padding fields, and
/// the longest `.npy` preamble.
pub const MAX_NPZ_PREAMBLE: usize = (LOCAL_LEN + LOCAL_ZIP64_LEN + NPZ_ALIGN + MIN_PAD) as usize
    + MAX_MEMBER_NAME
    + NPY_SUFFIX.len()
    + crate::MAX_HEADER_LEN as usize
    + 16;

/// Where the first member's data begins in an archive whose first bytes
/// are `start`: the length of its preamble (first local header and `.npy`
/// preamble). [`Error::TruncatedHeader`] if `start` ends before that is
/// known.
pub fn npz_preamble_len(start: &[u8]) -> Result<u64, Error> {
    Ok(local_member(start, 0)?.data)
}

/// The member whose local header begins `bytes`, which lie at `offset` in
/// an archive, as its local header and `.npy` header say (its header as
/// stored; offsets in the archive). [`Error::TruncatedHeader`] if `bytes`
/// end before its data. Nothing else of the archive is checked.
pub fn npz_member_at(bytes: &[u8], offset: u64) -> Result<NpzMember, Error> {
    local_member(bytes, offset)
}

/// The members of an archive written by [`write_npz_to`] (or
/// [`NpzLayout`]), held as `preamble` (its bytes up to the first member's
/// data, as [`npz_preamble_len`] measures) and `body` (the rest). The
/// archive must be exactly as this crate writes the members it holds,
/// byte for byte outside their data, with at least one member: then
/// NumPy and zip tools read each member where this says it is. Headers
/// are as stored (not made native). Data and CRC-32s are not read.
pub fn aligned_npz_members(preamble: &[u8], body: &[u8]) -> Result<Vec<NpzMember>, Error> {
    let split = preamble.len() as u64;
    let total = split + body.len() as u64;
    let members = aligned_members(total, |from, len| {
        let (bytes, at) = if from < split { (preamble, from) } else { (body, from - split) };
        let at = at as usize;
        Ok(bytes.get(at..at + len.min(bytes.len().saturating_sub(at))).unwrap_or(&[]).to_vec())
    })?;
    if members[0].data != split {
        return Err(Error::BadArchive(format!("its first member's data begins at {}, not {split}", members[0].data)));
    }
    Ok(members)
}

/// [`aligned_npz_members`] of the archive in `file`, reading only its
/// headers and directory, with positioned reads.
pub fn aligned_npz_file_members(file: &File) -> Result<Vec<NpzMember>, Error> {
    let total = crate::file::regular_file_len(file)?;
    aligned_members(total, |from, len| {
        let mut buf = vec![0; len.min(total.saturating_sub(from) as usize)];
        read_at(file, &mut buf, from)?;
        Ok(buf)
    })
}

/// The members of an archive of `total` bytes, with `read(from, len)`
/// giving up to `len` of its bytes from `from` (fewer only at its end).
fn aligned_members(
    total: u64,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>, Error>,
) -> Result<Vec<NpzMember>, Error> {
    let bad = |why: String| Error::BadArchive(why);
    let mut members: Vec<NpzMember> = Vec::new();
    let mut at = 0u64;
    while at < total {
        let mut bytes = read(at, 4096)?;
        if !members.is_empty() && !bytes.starts_with(&LOCAL_SIG.to_le_bytes()) {
            break;
        }
        if members.len() == MAX_MEMBERS {
            return Err(Error::TooManyMembers { count: members.len() + 1, max: MAX_MEMBERS });
        }
        let mut found = local_member(&bytes, at);
        if matches!(found, Err(Error::TruncatedHeader)) && bytes.len() == 4096 {
            bytes = read(at, MAX_NPZ_PREAMBLE)?;
            found = local_member(&bytes, at);
        }
        let member = found.map_err(|e| match e {
            Error::TruncatedHeader => bad(format!("a member at offset {at} is cut short")),
            e => e,
        })?;
        at = member.data.checked_add(member.data_len).ok_or_else(|| member.header.overflow())?;
        members.push(member);
    }
    if members.is_empty() {
        return Err(bad("it holds no member".into()));
    }
    let planned: Vec<(&str, &Header)> = members.iter().map(|m| (m.name.as_str(), &m.header)).collect();
    let layout = NpzLayout::plan(&planned)?;
    if layout.len() != total {
        return Err(bad(format!("it is {total} bytes long where its members make {}", layout.len())));
    }
    for (i, (m, planned)) in members.iter().zip(layout.members()).enumerate() {
        let len = (planned.data - planned.local_header) as usize;
        if read(planned.local_header, len)? != layout.head(i, m.crc) {
            return Err(bad(format!("member {:?}'s headers are not as this library writes them", m.name)));
        }
    }
    let crcs: Vec<u32> = members.iter().map(|m| m.crc).collect();
    if read(layout.central, (total - layout.central) as usize)? != layout.tail(&crcs) {
        return Err(bad("its central directory is not as this library writes it".into()));
    }
    Ok(members)
}

/// The member whose local header starts `bytes`, which lie at `offset` in
/// the archive.
fn local_member(bytes: &[u8], offset: u64) -> Result<NpzMember, Error> {
    let field = |at: usize, len: usize| bytes.get(at..at + len).ok_or(Error::TruncatedHeader);
    let le16 = |at| field(at, 2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])));
    if field(0, 4)? != LOCAL_SIG.to_le_bytes() {
        return Err(Error::BadArchive(format!("no member's local header at offset {offset}")));
    }
    let crc = field(14, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
    let (name_len, extra_len) = (le16(26)? as usize, le16(28)? as usize);
    let file_name = field(LOCAL_LEN as usize, name_len)?;
    let name = std::str::from_utf8(file_name)
        .ok()
        .and_then(|n| n.strip_suffix(NPY_SUFFIX))
        .ok_or_else(|| Error::BadArchive(format!("the member at offset {offset} is not named <name>.npy")))?;
    let npy = LOCAL_LEN as usize + name_len + extra_len;
    let npy_bytes = bytes.get(npy..).ok_or(Error::TruncatedHeader)?;
    let (header, preamble) = decode_header_bytes(
        &npy_bytes[..npy_bytes.len().min(crate::MAX_HEADER_LEN as usize + 16)],
    )
    .map_err(|e| match e {
        Error::TruncatedHeader => Error::TruncatedHeader,
        e => Error::BadMember { name: name.to_owned(), reason: e.to_string() },
    })?;
    let data_len = header.data_len()?;
    let npy = offset + npy as u64;
    Ok(NpzMember { name: name.to_owned(), header, npy, data: npy + preamble, data_len, crc })
}

/// Reads every member of the `.npz` at `path` into memory `alloc(len)`
/// gives (called once per member, after the archive's directory and the
/// member's header are checked), in the archive's order. Each member's
/// `.npy` bytes are checked against its CRC-32, and big-endian data is
/// converted to native order, as [`read_npy`](crate::read_npy) does. Every
/// error names the file, and a damaged member is named too.
pub fn read_npz_into<B: AsMut<[u8]>>(
    path: &Path,
    mut alloc: impl FnMut(usize) -> Result<B, Error>,
) -> Result<Vec<(String, NpyArray<B>)>, Error> {
    let mut read = || {
        let mut file = crate::file::open_for_reading(path)?;
        crate::file::regular_file_len(&file)?;
        let members = read_npz_members(&mut file)?;
        let mut arrays = Vec::with_capacity(members.len());
        for m in members {
            let array = read_member(&file, &m, &mut alloc)?;
            arrays.push((m.name, array));
        }
        Ok(arrays)
    };
    read().map_err(|e: Error| e.in_file(path))
}

/// Reads an archive as [`write_npz_to`] writes them from `file`: its
/// preamble (up to its first member's data) into a vector of its own, and
/// all the rest into memory `alloc(len)` gives, in one read. Checks only
/// that the preamble is one: see [`aligned_npz_members`] for the rest.
/// Every error names the file, at `path`.
pub fn read_aligned_npz_into<B: AsMut<[u8]>>(
    file: &File,
    path: &Path,
    alloc: impl FnOnce(usize) -> Result<B, Error>,
) -> Result<(Vec<u8>, B), Error> {
    read_aligned(file, alloc).map_err(|e| e.in_file(path))
}

fn read_aligned<B: AsMut<[u8]>>(
    file: &File,
    alloc: impl FnOnce(usize) -> Result<B, Error>,
) -> Result<(Vec<u8>, B), Error> {
    let total = crate::file::regular_file_len(file)?;
    let mut preamble_len = None;
    for want in [4096, MAX_NPZ_PREAMBLE] {
        let mut start = vec![0; want.min(total as usize)];
        read_at(file, &mut start, 0)?;
        match npz_preamble_len(&start) {
            Err(Error::TruncatedHeader) if start.len() == 4096 => continue,
            Err(Error::TruncatedHeader) => {
                return Err(Error::BadArchive("its first member's header is cut short".into()))
            }
            found => preamble_len = Some(found?),
        }
        break;
    }
    let preamble_len = preamble_len.expect("the loop finds it or returns");
    let mut preamble = vec![0; preamble_len as usize];
    read_at(file, &mut preamble, 0)?;
    let body_len = total - preamble_len;
    let len = usize::try_from(body_len).map_err(|_| Error::AllocFailed { len: body_len })?;
    let mut body = alloc(len)?;
    if body.as_mut().len() != len {
        return Err(Error::AllocFailed { len: body_len });
    }
    read_at(file, body.as_mut(), preamble_len)?;
    Ok((preamble, body))
}

/// [`read_npz_into`] into 64-byte aligned buffers.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>, Error> {
    read_npz_into(path, AlignedBuf::zeroed)
}

/// One member's data, read in place and checked against its CRC-32.
fn read_member<B: AsMut<[u8]>>(
    file: &File,
    m: &NpzMember,
    alloc: &mut impl FnMut(usize) -> Result<B, Error>,
) -> Result<NpyArray<B>, Error> {
    let damaged = |reason: String| Error::BadMember { name: m.name.clone(), reason };
    let len = usize::try_from(m.data_len).map_err(|_| Error::AllocFailed { len: m.data_len })?;
    // The preamble as stored (another writer may pad it otherwise), for the CRC.
    let mut preamble = vec![0u8; (m.data - m.npy) as usize];
    read_at(file, &mut preamble, m.npy)?;
    let mut data = alloc(len)?;
    if data.as_mut().len() != len {
        return Err(Error::AllocFailed { len: m.data_len });
    }
    read_at(file, data.as_mut(), m.data)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&preamble);
    crc.update(data.as_mut());
    if crc.finalize() != m.crc {
        return Err(damaged("its bytes do not match its CRC-32: the archive is damaged".into()));
    }
    let mut header = m.header.clone();
    swap_to_native(&header.dtype, data.as_mut());
    let stored_order = header.dtype.byte_order;
    header.dtype = header.dtype.native();
    Ok(NpyArray { header, data, stored_order })
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), Error> {
    read_exact_at(file, buf, offset).map_err(Error::io("read an .npz member"))
}

/// Fills `buf` with `file`'s bytes at `offset`, without moving its cursor
/// (a positioned read: threads share the file).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    #[cfg(windows)]
    (|| {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    })()
}

fn archive_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(source) => Error::Io { action: "read the .npz archive", source },
        other => Error::BadArchive(other.to_string()),
    }
}

/// Refuses a member name [`NpzLayout::plan`] refuses, saying why
/// ([`Error::BadMember`]).
pub fn check_member_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_MEMBER_NAME {
        "it is longer than 255 bytes"
    } else if name.contains(['/', '\\']) {
        "it has a path separator ('/' or '\\'), which zip tools would unpack as a directory"
    } else if name.chars().any(char::is_control) {
        "it has a control character"
    } else if name == "." || name == ".." {
        "it names a directory"
    } else {
        return Ok(());
    };
    Err(Error::BadMember { name: name.to_owned(), reason: reason.to_owned() })
}

/// The fields a local and a central header share, from the version needed
/// to the extra field's length: stored, UTF-8, the zip epoch, sizes in the
/// zip64 field.
fn put_entry(out: &mut Vec<u8>, crc: u32, name: &str, extra_len: u64) {
    put16(out, VERSION);
    put16(out, FLAGS);
    put16(out, 0); // stored
    put16(out, 0); // 00:00
    put16(out, DOS_DATE);
    put32(out, crc);
    put32(out, u32::MAX);
    put32(out, u32::MAX);
    put16(out, name.len() as u16);
    put16(out, extra_len as u16);
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
