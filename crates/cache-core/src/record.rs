//! An entry's record, `<key>.json`: what the `.npy` header cannot say.
//!
//! The header gives the dtype, shape and order. The record adds the form of
//! the result (a bare typed array or an n-d array), its class, the function
//! that computed it, when it was stored, and BLAKE3 digests of the header
//! and the data, so a load can tell an entry from a damaged or replaced one.
//!
//! ```json
//! {"format":2,"function":"embed","result":"ndarray","class":"Float64Array",
//!  "created":"2026-11-27T15:33:58.123456Z","boot":"<16 hex>","headerDigest":"<64 hex>","dataDigest":"<64 hex>"}
//! ```
//!
//! `boot` (optional: a directory's records have it, an object store's do
//! not) is the boot of the machine that wrote the entry (`host::boot`):
//! entries are not synced, so one of an earlier boot may have lost data in
//! a crash, and its first hit checks all its data.
//!
//! An entry of several arrays (a tuple or a record of them) is an aligned
//! `.npz` archive ([`npy_format::NpzLayout`]); its record has format 3 and
//! gives each member's class by one letter (`classes`, see
//! [`ArrayClass::code`]) instead of `class`, and its form by another
//! (`forms`: `t` a bare typed array, `n` an n-d array). Its `headerDigest`
//! is of every byte of the archive outside its arrays' data (each member's
//! headers, the directory: see [`archive_header_digest`]), its `dataDigest`
//! of all that follows the first member's preamble:
//!
//! ```json
//! {"format":3,"function":"moments","result":"record","classes":"dd","forms":"nt",...}
//! ```
//!
//! Records of another `format` are not entries of this version: older ones
//! read as misses (and are replaced by the next store), newer ones are left
//! to the version that wrote them.

use std::sync::OnceLock;
use std::time::SystemTime;

use npy_format::{ByteOrder, Header, NpzMember};
use serde::{Deserialize, Serialize};

use crate::array_class::ArrayClass;
use crate::Error;

/// The record format of an entry of one array, which this version writes
/// and reads.
pub const FORMAT: u32 = 2;

/// The record format of an entry of several arrays (an archive): the
/// newest this version reads. Versions before it read such records as
/// newer ones; their maintenance of a directory removes them, as records
/// without an `.npy` (see the README's "On-disk format").
pub const ARCHIVE_FORMAT: u32 = 3;

/// The most arrays one entry holds: every member's class is a letter of
/// its record, and a record must fit an object's metadata
/// ([`MAX_ENCODED_RECORD`]) with a function name of
/// [`MAX_FUNCTION_NAME`] bytes.
pub const MAX_ENTRY_MEMBERS: usize = 256;

/// Largest record read: a record is a few hundred bytes, and a file under a
/// record's name in a shared directory is read only this far.
pub const MAX_RECORD_LEN: u64 = 64 * 1024;

/// The longest function name an entry's record holds, in bytes, on every
/// tier.
pub const MAX_FUNCTION_NAME: usize = 512;

/// The longest record written, as JSON: an object store carries it base64
/// encoded in metadata, which S3 caps at 2 KB for all of an object's
/// (a name of control characters, escaped in JSON, would pass the name
/// limit and not this one).
pub const MAX_ENCODED_RECORD: usize = 1536;

/// Data up to this size is checked against its digest on every load: it
/// costs a few microseconds there (a large entry's check would cost as
/// much as reading it).
pub const VERIFY_DATA_UP_TO: usize = 64 * 1024;

/// The form a result had, and is loaded back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultForm {
    /// A bare typed array (stored 1-d, in C order).
    #[serde(rename = "typedarray")]
    TypedArray,
    /// An n-d array: data, shape and dtype.
    #[serde(rename = "ndarray")]
    NdArray,
    /// Several arrays in order, each either form; an archive whose members
    /// are named `arr_0`, `arr_1`... as `np.savez` names positional arrays.
    #[serde(rename = "tuple")]
    Tuple,
    /// Several arrays by name, each either form; an archive of members so named.
    #[serde(rename = "record")]
    Record,
}

impl ResultForm {
    /// Whether the entry is an archive of several arrays.
    pub fn is_archive(self) -> bool {
        matches!(self, ResultForm::Tuple | ResultForm::Record)
    }
}

/// The class and form (a bare typed array or an n-d array) of one array
/// of an entry of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberForm {
    pub class: ArrayClass,
    /// [`ResultForm::TypedArray`] or [`ResultForm::NdArray`].
    pub form: ResultForm,
}

impl MemberForm {
    fn code(self) -> char {
        if self.form == ResultForm::NdArray {
            'n'
        } else {
            't'
        }
    }
}

/// What the caller says of a result it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// The cached function's name.
    pub function: &'a str,
    pub result: ResultForm,
    /// The class of one array; of an archive's first member.
    pub class: ArrayClass,
    /// An archive's members' classes and forms, in order (empty for one array).
    pub members: &'a [MemberForm],
}

/// A BLAKE3 digest.
pub type Digest = [u8; 32];

/// A validated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub function: String,
    pub result: ResultForm,
    /// The class of one array; of an archive's first member.
    pub class: ArrayClass,
    /// An archive's members' classes and forms, in order (empty for one array).
    pub members: Vec<MemberForm>,
    pub created: SystemTime,
    pub header_digest: Digest,
    pub data_digest: Digest,
    /// The boot the entry was written in (a [`crate::host::boot`] tag's 16
    /// hex digits as bytes: a record stays small), if noted.
    pub boot: Option<[u8; 8]>,
    matched: MatchedHeader,
}

/// The header found to match `header_digest`, so that repeated hits on a
/// remembered record compare headers instead of encoding and hashing one.
/// Not part of the record: records are equal whatever they remember.
#[derive(Debug, Clone, Default)]
struct MatchedHeader(OnceLock<Header>);

impl PartialEq for MatchedHeader {
    fn eq(&self, _: &MatchedHeader) -> bool {
        true
    }
}

impl Eq for MatchedHeader {}

/// Why a record does not describe an entry of this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordProblem {
    /// A record of an older format: the entry is outdated.
    Older(u64),
    /// A record of a newer format, from a later version of the cache.
    Newer(u64),
    /// Anything else: what is wrong with it.
    Invalid(String),
}

impl std::fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordProblem::Older(v) => write!(f, "its record has format {v}, older than this version's {FORMAT}"),
            RecordProblem::Newer(v) => write!(f, "its record has format {v}, newer than this version's {FORMAT}"),
            RecordProblem::Invalid(why) => write!(f, "its record {why}"),
        }
    }
}

/// The record as JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    format: u64,
    function: String,
    result: ResultForm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    classes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forms: Option<String>,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot: Option<String>,
    header_digest: String,
    data_digest: String,
}

/// Just the format, read first: other formats may have other fields.
#[derive(Deserialize)]
struct FormatOnly {
    format: u64,
}

impl EntryRecord {
    /// The record of a result stored with `header` and data of digest
    /// `data_digest` (see [`data_digest`]).
    pub fn new(entry: &NewEntry, header: &Header, data_digest: Digest, created: SystemTime) -> EntryRecord {
        EntryRecord::with_digests(entry, header_digest(header), data_digest, created)
    }

    /// The record of an entry whose bytes before its data have digest
    /// `header_digest` (an `.npy`'s header, an archive's preamble).
    pub fn with_digests(
        entry: &NewEntry,
        header_digest: Digest,
        data_digest: Digest,
        created: SystemTime,
    ) -> EntryRecord {
        EntryRecord {
            function: entry.function.to_owned(),
            result: entry.result,
            class: entry.class,
            members: entry.members.to_vec(),
            created,
            header_digest,
            data_digest,
            boot: None,
            matched: MatchedHeader::default(),
        }
    }

    /// What a store of this entry elsewhere says of it.
    pub fn as_new(&self) -> NewEntry<'_> {
        NewEntry { function: &self.function, result: self.result, class: self.class, members: &self.members }
    }

    /// The record noting that its entry was written in `boot` (a tag as
    /// [`crate::host::boot`] makes them; anything else notes no boot).
    pub fn written_in(mut self, boot: Option<&str>) -> EntryRecord {
        self.boot = boot.and_then(boot_bytes);
        self
    }

    /// Whether the entry was written in `boot` (a known boot): only then is
    /// its data known to be as written, whatever crashed since.
    pub fn is_of_boot(&self, boot: Option<&str>) -> bool {
        self.boot.is_some() && self.boot == boot.and_then(boot_bytes)
    }

    /// The record as written, if it fits the limits every tier can carry:
    /// a function name of at most [`MAX_FUNCTION_NAME`] bytes, and a record
    /// of at most [`MAX_ENCODED_RECORD`] bytes as JSON.
    pub fn encode_checked(&self) -> Result<Vec<u8>, Error> {
        let too_long = || Error::NameTooLong { len: self.function.len(), max: MAX_FUNCTION_NAME };
        if self.function.len() > MAX_FUNCTION_NAME {
            return Err(too_long());
        }
        let encoded = self.encode();
        if encoded.len() > MAX_ENCODED_RECORD {
            return Err(too_long());
        }
        Ok(encoded)
    }

    pub fn encode(&self) -> Vec<u8> {
        let archive = self.result.is_archive();
        let wire = Wire {
            format: u64::from(if archive { ARCHIVE_FORMAT } else { FORMAT }),
            function: self.function.clone(),
            result: self.result,
            class: (!archive).then(|| self.class.name().to_owned()),
            classes: archive.then(|| self.members.iter().map(|m| m.class.code()).collect()),
            forms: archive.then(|| self.members.iter().map(|m| m.code()).collect()),
            created: humantime::format_rfc3339_micros(self.created).to_string(),
            boot: self.boot.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()),
            header_digest: hex(&self.header_digest),
            data_digest: hex(&self.data_digest),
        };
        serde_json::to_vec(&wire).expect("a record always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<EntryRecord, RecordProblem> {
        let invalid = |why: String| RecordProblem::Invalid(why);
        let format = serde_json::from_slice::<FormatOnly>(bytes)
            .map_err(|e| invalid(format!("is not JSON with a format number ({e})")))?
            .format;
        if format < u64::from(FORMAT) {
            return Err(RecordProblem::Older(format));
        }
        if format > u64::from(ARCHIVE_FORMAT) {
            return Err(RecordProblem::Newer(format));
        }
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| invalid(format!("is not valid ({e})")))?;
        let archive = format == u64::from(ARCHIVE_FORMAT);
        if wire.result.is_archive() != archive {
            return Err(invalid(format!("has format {format} for a result of form {:?}", wire.result)));
        }
        let (class, members) = match (wire.class.as_deref(), wire.classes.as_deref(), wire.forms.as_deref()) {
            (Some(name), None, None) if !archive => (
                ArrayClass::from_name(name).ok_or_else(|| invalid(format!("names an unknown class {name:?}")))?,
                vec![],
            ),
            (None, Some(classes), Some(forms)) if archive => (members_of(classes, forms))
                .ok_or_else(|| {
                    invalid(format!("has classes {classes:?} and forms {forms:?}: not 1 to 256 letters each"))
                })
                .map(|m| (m[0].class, m))?,
            _ => return Err(invalid("names its classes otherwise than its format says".into())),
        };
        let created = humantime::parse_rfc3339(&wire.created)
            .map_err(|e| invalid(format!("has a creation time {:?} that is not RFC 3339 ({e})", wire.created)))?;
        let boot = match wire.boot.as_deref() {
            None => None,
            Some(tag) => Some(
                boot_bytes(tag)
                    .ok_or_else(|| invalid(format!("has a boot {tag:?} that is not 16 lower-case hex digits")))?,
            ),
        };
        Ok(EntryRecord {
            function: wire.function,
            result: wire.result,
            class,
            members,
            created,
            header_digest: unhex(&wire.header_digest)
                .ok_or_else(|| invalid("has a header digest that is not 64 hex digits".into()))?,
            data_digest: unhex(&wire.data_digest)
                .ok_or_else(|| invalid("has a data digest that is not 64 hex digits".into()))?,
            boot,
            matched: MatchedHeader::default(),
        })
    }

    /// Checks the array read from the entry's `.npy` file against the
    /// record: its header (as read, with the byte order it was stored in)
    /// and, when `data` is given, its data. Says what disagrees.
    pub fn check(&self, header: &Header, stored_order: ByteOrder, data: Option<&[u8]>) -> Result<(), String> {
        // The cache writes native order; a header edited to the other order would have the data swapped.
        if header.dtype.item_size > 1 && stored_order != ByteOrder::NATIVE {
            return Err("its array is stored in the other byte order than the cache writes".to_owned());
        }
        if self.result.is_archive() {
            return Err("its record says several arrays, but it holds one".to_owned());
        }
        if !self.class.holds(&header.dtype) {
            return Err(format!("its record names class {} for dtype {}", self.class.name(), header.dtype.descr()));
        }
        if self.result == ResultForm::TypedArray && (header.shape.len() != 1 || header.fortran_order) {
            return Err("its record says a bare typed array, but the array is not 1-d in C order".to_owned());
        }
        let seen = self.matched.0.get() == Some(header);
        if !seen && header_digest(header) != self.header_digest {
            return Err(format!(
                "its array's header ({}, shape {:?}{}) is not the one stored",
                header.dtype.descr(),
                header.shape,
                if header.fortran_order { ", Fortran order" } else { "" }
            ));
        }
        if !seen {
            let _ = self.matched.0.set(header.clone());
        }
        if let Some(data) = data {
            if data_digest(data) != self.data_digest {
                return Err("its data does not match the digest stored with it".to_owned());
            }
        }
        Ok(())
    }
}

impl EntryRecord {
    /// Checks an archive read from the entry's `.npz` against the record:
    /// its `members` (as [`npy_format::aligned_npz_members`] found them,
    /// headers as stored: every byte outside their data is then known, and
    /// checked against the header digest) and, when given, `body` (all that
    /// follows the first member's preamble). Says what disagrees.
    pub fn check_archive(&self, members: &[NpzMember], body: Option<&[u8]>) -> Result<(), String> {
        if !self.result.is_archive() {
            return Err("its record says one array, but it holds several".to_owned());
        }
        if members.len() != self.members.len() {
            return Err(format!("it holds {} arrays where its record names {}", members.len(), self.members.len()));
        }
        for (i, m) in members.iter().enumerate() {
            self.check_member(i, m)?;
        }
        if archive_header_digest(members) != Some(self.header_digest) {
            return Err("its arrays' headers or names are not the ones stored".to_owned());
        }
        if body.is_some_and(|body| data_digest(body) != self.data_digest) {
            return Err("its data does not match the digest stored with it".to_owned());
        }
        Ok(())
    }

    /// Checks member `i` of an archive against the record: stored in native
    /// order, of a dtype its class holds, 1-d in C order if it was a bare
    /// typed array, named `arr_<i>` in a tuple.
    pub fn check_member(&self, i: usize, m: &NpzMember) -> Result<(), String> {
        let Some(MemberForm { class, form }) = self.members.get(i) else {
            return Err(format!("it holds more arrays than the {} its record names", self.members.len()));
        };
        if *form == ResultForm::TypedArray && (m.header.shape.len() != 1 || m.header.fortran_order) {
            return Err(format!(
                "its record says array {:?} is a bare typed array, but it is not 1-d in C order",
                m.name
            ));
        }
        if m.header.dtype.item_size > 1 && m.header.dtype.byte_order != ByteOrder::NATIVE {
            return Err(format!("its array {:?} is stored in the other byte order than the cache writes", m.name));
        }
        let native = m.header.dtype.native();
        if !class.holds(&native) {
            let descr = native.descr();
            return Err(format!("its record names class {} for array {:?} of dtype {descr}", class.name(), m.name));
        }
        if self.result == ResultForm::Tuple && m.name != format!("arr_{i}") {
            return Err(format!("its array {i} is named {:?} in a tuple", m.name));
        }
        Ok(())
    }
}

/// The digest of every byte of an archive of `members` outside their data:
/// each member's local header and `.npy` preamble (its CRC-32 included),
/// then the directory, as [`npy_format::NpzLayout`] lays them out. None if
/// they cannot be laid out.
pub fn archive_header_digest(members: &[NpzMember]) -> Option<Digest> {
    let planned: Vec<(&str, &Header)> = members.iter().map(|m| (m.name.as_str(), &m.header)).collect();
    let layout = npy_format::NpzLayout::plan(&planned).ok()?;
    Some(layout_digest(&layout, &members.iter().map(|m| m.crc).collect::<Vec<_>>()))
}

/// [`archive_header_digest`] of an archive laid out as `layout`, its
/// members of CRC-32s `crcs`.
pub fn layout_digest(layout: &npy_format::NpzLayout, crcs: &[u32]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    for (i, &crc) in crcs.iter().enumerate() {
        hasher.update(&layout.head(i, crc));
    }
    hasher.update(&layout.tail(crcs));
    *hasher.finalize().as_bytes()
}

/// The digest of the header as the cache writes it (native byte order).
pub fn header_digest(header: &Header) -> Digest {
    *blake3::hash(&header.encode()).as_bytes()
}

/// The digest of an array's data, on all cores when it is large.
pub fn data_digest(data: &[u8]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    // Below this, handing the work to other threads costs more than it saves.
    const PARALLEL_FROM: usize = 1 << 20;
    if data.len() >= PARALLEL_FROM {
        hasher.update_rayon(data);
    } else {
        hasher.update(data);
    }
    *hasher.finalize().as_bytes()
}

/// An archive's members' classes and forms from their letters, if they
/// are 1 to [`MAX_ENTRY_MEMBERS`] known letters, as many of each.
fn members_of(classes: &str, forms: &str) -> Option<Vec<MemberForm>> {
    let form = |c| match c {
        't' => Some(ResultForm::TypedArray),
        'n' => Some(ResultForm::NdArray),
        _ => None,
    };
    let count = classes.chars().count();
    if count != forms.chars().count() || !(1..=MAX_ENTRY_MEMBERS).contains(&count) {
        return None;
    }
    (classes.chars().zip(forms.chars()))
        .map(|(c, f)| Some(MemberForm { class: ArrayClass::from_code(c)?, form: form(f)? }))
        .collect()
}

/// A boot tag's bytes, if `tag` is one (16 lower-case hex digits).
fn boot_bytes(tag: &str) -> Option<[u8; 8]> {
    if !crate::host::is_tag(tag) {
        return None;
    }
    let mut out = [0; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&tag[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(d: &Digest) -> String {
    blake3::Hash::from_bytes(*d).to_hex().to_string()
}

fn unhex(s: &str) -> Option<Digest> {
    // Lower case only, as written: one spelling per digest.
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    blake3::Hash::from_hex(s).ok().map(|h| *h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use npy_format::Dtype;

    fn header(descr: &str, shape: &[u64]) -> Header {
        Header { dtype: Dtype::parse(descr).unwrap(), shape: shape.to_vec(), fortran_order: false }
    }

    fn record(result: ResultForm, class: ArrayClass, h: &Header, data: &[u8]) -> EntryRecord {
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_764_255_238_123_456);
        EntryRecord::new(&NewEntry { function: "f\"g\n", result, class, members: &[] }, h, data_digest(data), created)
    }

    /// Asserts that `text` decodes as an invalid record.
    fn assert_invalid(text: &str) {
        assert!(matches!(EntryRecord::decode(text.as_bytes()), Err(RecordProblem::Invalid(_))), "{text}");
    }

    #[test]
    fn a_record_round_trips_through_its_json() {
        let h = header("<f8", &[2, 3]);
        let r = record(ResultForm::NdArray, ArrayClass::Float64Array, &h, &[0; 48]);
        let text = String::from_utf8(r.encode()).unwrap();
        assert!(text.starts_with("{\"format\":2,"), "{text}");
        assert!(text.contains("\"created\":\"2025-11-27T14:53:58.123456Z\""), "{text}");
        assert_eq!(EntryRecord::decode(text.as_bytes()).unwrap(), r);
        assert_eq!(r.check(&h, ByteOrder::NATIVE, Some(&[0; 48])), Ok(()));
        // Without a boot the field is left out (an object store's records, older ones).
        assert!(!text.contains("boot"), "{text}");
        assert!(!r.is_of_boot(None) && !r.is_of_boot(Some("0123456789abcdef")));
        let booted = r.written_in(Some("0123456789abcdef"));
        let text = String::from_utf8(booted.encode()).unwrap();
        assert!(text.contains("\"boot\":\"0123456789abcdef\""), "{text}");
        let decoded = EntryRecord::decode(text.as_bytes()).unwrap();
        assert_eq!(decoded, booted);
        assert!(decoded.is_of_boot(Some("0123456789abcdef")) && !decoded.is_of_boot(Some("fedcba9876543210")));
    }

    #[test]
    fn names_past_the_limit_or_records_past_it_escaped_are_refused() {
        let h = header("<f8", &[1]);
        let named = |name: &str| {
            EntryRecord::new(
                &NewEntry {
                    function: name,
                    result: ResultForm::TypedArray,
                    class: ArrayClass::Float64Array,
                    members: &[],
                },
                &h,
                [0; 32],
                SystemTime::UNIX_EPOCH,
            )
        };
        assert!(named(&"f".repeat(MAX_FUNCTION_NAME)).encode_checked().is_ok());
        assert!(matches!(named(&"f".repeat(MAX_FUNCTION_NAME + 1)).encode_checked(), Err(Error::NameTooLong { .. })));
        // 300 bytes, 1,800 once escaped as \u0001.
        assert!(matches!(named(&"\u{1}".repeat(300)).encode_checked(), Err(Error::NameTooLong { .. })));
    }

    #[test]
    fn records_of_other_formats_and_broken_ones_are_told_apart() {
        assert_eq!(EntryRecord::decode(br#"{"format":1,"dtype":"<f8"}"#), Err(RecordProblem::Older(1)));
        assert_eq!(EntryRecord::decode(br#"{"format":4}"#), Err(RecordProblem::Newer(4)));
        for bad in [&b"not json"[..], b"{}", b"", br#"{"format":2}"#, br#"{"format":"2"}"#] {
            assert!(
                matches!(EntryRecord::decode(bad), Err(RecordProblem::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let h = header("<f8", &[1]);
        let good =
            String::from_utf8(record(ResultForm::TypedArray, ArrayClass::Float64Array, &h, &[0; 8]).encode()).unwrap();
        for (from, to) in [
            ("Float64Array", "Float99Array"),
            ("typedarray", "list"),
            ("2025-", "Nov "),
            ("\"headerDigest\":\"", "\"headerDigest\":\"A"),
            ("\"headerDigest\"", "\"boot\":\"0123\",\"headerDigest\""),
        ] {
            assert_invalid(&good.replacen(from, to, 1));
        }
    }

    #[test]
    fn an_archives_record_names_a_class_and_form_per_member_and_other_spellings_are_refused() {
        let members = [
            MemberForm { class: ArrayClass::Float64Array, form: ResultForm::NdArray },
            MemberForm { class: ArrayClass::Buffer, form: ResultForm::TypedArray },
        ];
        let entry = NewEntry { function: "f", result: ResultForm::Tuple, class: members[0].class, members: &members };
        let r = EntryRecord::with_digests(&entry, [1; 32], [2; 32], SystemTime::UNIX_EPOCH);
        let text = String::from_utf8(r.encode()).unwrap();
        assert!(text.starts_with("{\"format\":3,") && text.contains("\"classes\":\"dX\",\"forms\":\"nt\""), "{text}");
        assert!(!text.contains("\"class\""), "{text}");
        assert_eq!(EntryRecord::decode(text.as_bytes()).unwrap(), r);
        for (from, to) in [
            ("\"classes\":\"dX\"", "\"classes\":\"dZ\""),
            ("\"classes\":\"dX\"", "\"classes\":\"\""),
            ("\"classes\":\"dX\"", "\"class\":\"Buffer\""),
            ("\"forms\":\"nt\"", "\"forms\":\"n\""),
            ("\"forms\":\"nt\"", "\"forms\":\"nx\""),
            ("\"format\":3", "\"format\":2"),
            ("\"tuple\"", "\"ndarray\""),
        ] {
            assert_invalid(&text.replacen(from, to, 1));
        }
        let (many, many_forms) = ("d".repeat(MAX_ENTRY_MEMBERS + 1), "n".repeat(MAX_ENTRY_MEMBERS + 1));
        let edited =
            text.replacen("\"dX\"", &format!("\"{many}\""), 1).replacen("\"nt\"", &format!("\"{many_forms}\""), 1);
        assert_invalid(&edited);
        // The most members, with the longest name, fit an object's metadata.
        let all = [MemberForm { class: ArrayClass::Float64Array, form: ResultForm::NdArray }; MAX_ENTRY_MEMBERS];
        let name = "f".repeat(MAX_FUNCTION_NAME);
        let widest = NewEntry { function: &name, result: ResultForm::Record, class: all[0].class, members: &all };
        let booted = EntryRecord::with_digests(&widest, [1; 32], [2; 32], SystemTime::UNIX_EPOCH)
            .written_in(Some("0123456789abcdef"));
        assert!(booted.encode_checked().is_ok());
    }

    #[test]
    fn an_array_that_disagrees_with_its_record_is_named() {
        let h = header("<f8", &[4]);
        let data = [1u8; 32];
        let r = record(ResultForm::TypedArray, ArrayClass::Float64Array, &h, &data);
        let fails = |h: &Header, order: ByteOrder, data: &[u8]| r.check(h, order, Some(data)).unwrap_err();
        assert!(fails(&h, ByteOrder::Big, &data).contains("byte order"));
        assert!(fails(&header("<i8", &[4]), ByteOrder::NATIVE, &data).contains("class Float64Array for dtype <i8"));
        assert!(fails(&header("<f8", &[2, 2]), ByteOrder::NATIVE, &data).contains("not 1-d"));
        assert!(fails(&header("<f8", &[5]), ByteOrder::NATIVE, &[1; 40]).contains("header"));
        assert!(fails(&h, ByteOrder::NATIVE, &[2; 32]).contains("digest"));
        // Unchecked data passes: large entries are checked by their header.
        assert_eq!(r.check(&h, ByteOrder::NATIVE, None), Ok(()));
        let nd = record(ResultForm::NdArray, ArrayClass::Float64Array, &header("<f8", &[2, 2]), &data);
        assert!(nd
            .check(&Header { fortran_order: true, ..header("<f8", &[2, 2]) }, ByteOrder::NATIVE, None)
            .unwrap_err()
            .contains("header"));
    }
}
