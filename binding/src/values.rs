//! What the `Cache` class takes and gives, as JS sees it: napi objects and
//! string enums, whose TS types napi generates from these, converted to
//! and from the core's exactly (a count that is not a whole number is
//! refused, never truncated).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::*;

use cache_core::clock::time_of_us;
use cache_core::{ArrayClass, Limits, LoadedArray, MemberForm, NewEntry, Note as CoreNote, NoteKind as CoreNoteKind};

use crate::arrays::exact_u64;
use crate::errors::{Failure, Outcome};
use crate::memory::{self, ArrayMemory};

/// The form a result had, and is loaded back in.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultForm {
    /// A bare typed array.
    TypedArray,
    /// An n-d array: `{ data, shape, dtype }`.
    NdArray,
    /// Several arrays in order: `[a, b]`.
    Tuple,
    /// Several arrays by name: `{ mean, cov }`.
    Record,
}

impl From<ResultForm> for cache_core::ResultForm {
    fn from(form: ResultForm) -> cache_core::ResultForm {
        match form {
            ResultForm::TypedArray => cache_core::ResultForm::TypedArray,
            ResultForm::NdArray => cache_core::ResultForm::NdArray,
            ResultForm::Tuple => cache_core::ResultForm::Tuple,
            ResultForm::Record => cache_core::ResultForm::Record,
        }
    }
}

impl From<cache_core::ResultForm> for ResultForm {
    fn from(form: cache_core::ResultForm) -> ResultForm {
        match form {
            cache_core::ResultForm::TypedArray => ResultForm::TypedArray,
            cache_core::ResultForm::NdArray => ResultForm::NdArray,
            cache_core::ResultForm::Tuple => ResultForm::Tuple,
            cache_core::ResultForm::Record => ResultForm::Record,
        }
    }
}

/// What the caller says of a result it stores.
#[napi(object)]
pub struct EntryArg {
    /// The cached function's name.
    pub function: String,
    pub result: ResultForm,
    /// The typed-array class the result came in, e.g. `'Float64Array'`;
    /// of several arrays, the first one's.
    pub class: String,
    /// Of several arrays, each one's class and form, in order.
    pub members: Option<Vec<MemberArg>>,
}

/// The class and form of one array of a result of several.
#[napi(object)]
pub struct MemberArg {
    pub class: String,
    /// `'typedarray'` or `'ndarray'`.
    pub result: ResultForm,
}

/// An [`EntryArg`] checked, with the name it borrows.
pub(crate) struct OwnedEntry {
    function: String,
    result: ResultForm,
    class: ArrayClass,
    members: Vec<MemberForm>,
}

impl OwnedEntry {
    pub(crate) fn of(arg: EntryArg) -> Outcome<OwnedEntry> {
        let class_of = |name: &str| {
            ArrayClass::from_name(name).ok_or_else(|| Failure::invalid(format!("{name:?} is not a typed-array class")))
        };
        let class = class_of(&arg.class)?;
        let member = |m: &MemberArg| -> Outcome<MemberForm> {
            match m.result {
                ResultForm::TypedArray | ResultForm::NdArray => {
                    Ok(MemberForm { class: class_of(&m.class)?, form: m.result.into() })
                }
                form => Err(Failure::invalid(format!("an array of several cannot be of form {form:?}"))),
            }
        };
        let members = arg.members.unwrap_or_default().iter().map(member).collect::<Outcome<_>>()?;
        Ok(OwnedEntry { function: arg.function, result: arg.result, class, members })
    }

    pub(crate) fn borrow(&self) -> NewEntry<'_> {
        NewEntry { function: &self.function, result: self.result.into(), class: self.class, members: &self.members }
    }
}

/// Limits as JS numbers: bytes, entries, milliseconds; omitted or
/// `Infinity` for none.
#[napi(object)]
pub struct LimitsArg {
    pub max_bytes: Option<f64>,
    pub max_entries: Option<f64>,
    pub max_age: Option<f64>,
    /// The largest entry stored (the cache's limits only).
    pub max_entry_bytes: Option<f64>,
}

impl LimitsArg {
    pub(crate) fn into_limits(self) -> Outcome<Limits> {
        let count = |name: &str, v: Option<f64>| -> Outcome<Option<u64>> {
            match v {
                None => Ok(None),
                Some(v) if v == f64::INFINITY => Ok(None),
                Some(v) => exact_u64(v)
                    .map(Some)
                    .ok_or_else(|| Failure::invalid(format!("{name} must be a non-negative whole number, got {v}"))),
            }
        };
        let max_age = match self.max_age {
            None => None,
            Some(ms) if ms == f64::INFINITY => None,
            // The core counts microseconds.
            Some(ms) if ms >= 0.0 => Some((ms * 1000.0).round().min(i64::MAX as f64) as i64),
            Some(ms) => {
                return Err(Failure::invalid(format!("maxAge must be a non-negative number of milliseconds, got {ms}")))
            }
        };
        Ok(Limits {
            max_bytes: count("maxBytes", self.max_bytes)?,
            max_entries: count("maxEntries", self.max_entries)?,
            max_age,
            max_entry_bytes: count("maxEntryBytes", self.max_entry_bytes)?,
        })
    }
}

/// Settings of an object-store location that override the standard
/// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`).
#[napi(object)]
#[derive(Default)]
pub struct RemoteOptions {
    /// e.g. `'http://127.0.0.1:7070'` for an S3-compatible server; for `az://`, the account's URL (`'http://127.0.0.1:10000/devstoreaccount1'`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow a plain-HTTP endpoint (default: `AWS_ALLOW_HTTP`, else false).
    pub allow_http: Option<bool>,
    /// One request's time limit, in milliseconds (default 60000).
    pub request_timeout: Option<f64>,
    /// Retries of a failed request (connection errors, timeouts, 5xx, throttling), with exponential backoff (default 5).
    pub max_retries: Option<f64>,
    /// No retry starts later than this many milliseconds after the first attempt (default 30000).
    pub retry_timeout: Option<f64>,
    /// Objects larger than this many bytes are uploaded in parts, 8 at a time (default 64 MiB on S3; at most 5 GiB, its largest single PUT; on GCS and Azure one PUT up to 5 GiB and 5000 MiB).
    pub multipart_from: Option<f64>,
    /// Bytes per ranged GET and per upload part (default 16 MiB, at least 1 MiB).
    pub part_size: Option<f64>,
}

impl RemoteOptions {
    pub(crate) fn into_settings(self) -> Outcome<cache_remote::Settings> {
        let ms = |name: &str, v: Option<f64>| -> Outcome<Option<Duration>> {
            v.map(|ms| {
                Duration::try_from_secs_f64(ms / 1000.0)
                    .map_err(|_| Failure::invalid(format!("remote.{name} must be a non-negative number, got {ms}")))
            })
            .transpose()
        };
        let whole = |name: &str, v: Option<f64>| -> Outcome<Option<u64>> {
            v.map(|n| {
                exact_u64(n).ok_or_else(|| Failure::invalid(format!("remote.{name} must be a whole number, got {n}")))
            })
            .transpose()
        };
        Ok(cache_remote::Settings {
            endpoint: self.endpoint,
            region: self.region,
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            session_token: self.session_token,
            allow_http: self.allow_http,
            timeout: ms("requestTimeout", self.request_timeout)?.filter(|d| !d.is_zero()),
            max_retries: whole("maxRetries", self.max_retries)?.map(|n| n.min(usize::MAX as u64) as usize),
            retry_timeout: ms("retryTimeout", self.retry_timeout)?.filter(|d| !d.is_zero()),
            multipart_from: whole("multipartFrom", self.multipart_from.map(f64::floor))?,
            part_size: whole("partSize", self.part_size.map(f64::floor))?,
        })
    }
}

/// How to open a cache location.
#[napi(object)]
#[derive(Default)]
pub struct CacheOptions {
    /// Hits are memory-mapped where the data can be used in place.
    pub mmap: Option<bool>,
    /// Every load checks all its data against its digest.
    pub verify: Option<bool>,
    pub limits: Option<LimitsArg>,
    /// For an object-store location: a local directory in front of it.
    pub local_dir: Option<String>,
    /// For an object-store location: settings over the environment's.
    pub remote: Option<RemoteOptions>,
}

impl CacheOptions {
    pub(crate) fn into_options(self) -> Outcome<cache_tiered::Options> {
        Ok(cache_tiered::Options {
            map: self.mmap.unwrap_or(false),
            verify: self.verify.unwrap_or(false),
            limits: self.limits.map(LimitsArg::into_limits).transpose()?.unwrap_or_default(),
            local_dir: self.local_dir.map(Into::into),
            store: self.remote.map(RemoteOptions::into_settings).transpose()?,
        })
    }
}

/// What happened beside an operation's result.
#[napi(string_enum = "camelCase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// An entry failed its checks: a miss, replaced by the next store.
    Damaged,
    /// The tier could not be reached (after its retries); the call went on without it.
    Unavailable,
    /// A result could not be stored there; the call returned it all the same.
    StoreFailed,
}

/// Something an operation noticed and got past.
#[napi(object, object_from_js = false)]
pub struct Note {
    pub kind: NoteKind,
    /// Which tier: its location, or "the local tier of <location>".
    pub tier: String,
    pub failure: Failure,
}

pub(crate) fn notes_of(notes: Vec<CoreNote>) -> Vec<Note> {
    notes
        .into_iter()
        .map(|n| Note {
            kind: match n.kind {
                CoreNoteKind::Damaged => NoteKind::Damaged,
                CoreNoteKind::Unavailable => NoteKind::Unavailable,
                CoreNoteKind::StoreFailed => NoteKind::StoreFailed,
            },
            tier: n.tier,
            failure: n.error.into(),
        })
        .collect()
}

/// A loaded array's memory, as the ArrayBuffer it becomes in JS.
pub struct ArrayBufferOf(pub(crate) LoadedArray<ArrayMemory>);

impl TypeName for ArrayBufferOf {
    fn type_name() -> &'static str {
        "ArrayBuffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for ArrayBufferOf {
    unsafe fn to_napi_value(env: napi::sys::napi_env, value: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(env);
        let buffer = memory::array_buffer(&env, value.0)?;
        // SAFETY: a value made in this call's scope.
        unsafe { ArrayBuffer::to_napi_value(env.raw(), buffer) }
    }
}

/// An array as a load or `readNpy` gives it: its memory and its header.
#[napi(object, object_from_js = false)]
pub struct LoadedValue {
    #[napi(ts_type = "ArrayBuffer")]
    pub buffer: ArrayBufferOf,
    pub shape: Vec<f64>,
    /// NumPy's descr in native order, e.g. `'<f8'`.
    pub dtype: String,
    pub fortran_order: bool,
    /// Over a memory map of its file, not memory of its own.
    pub mapped: bool,
}

impl From<LoadedArray<ArrayMemory>> for LoadedValue {
    fn from(array: LoadedArray<ArrayMemory>) -> LoadedValue {
        let header = array.header();
        LoadedValue {
            shape: header.shape.iter().map(|&d| d as f64).collect(),
            dtype: header.dtype.descr(),
            fortran_order: header.fortran_order,
            mapped: matches!(array, LoadedArray::Mapped(_)),
            buffer: ArrayBufferOf(array),
        }
    }
}

/// A hit: the array, and the class and form it is loaded back as.
#[napi(object, object_from_js = false)]
pub struct Hit {
    /// One array; of several, their memory (each member's `offset` says
    /// where its data lies in `array.buffer`).
    pub array: LoadedValue,
    pub class: String,
    pub result: ResultForm,
    /// Of several arrays, each one, in order.
    pub members: Option<Vec<MemberValue>>,
}

/// One array of a hit of several.
#[napi(object, object_from_js = false)]
pub struct MemberValue {
    pub name: String,
    pub class: String,
    /// `'typedarray'` or `'ndarray'`.
    pub result: ResultForm,
    /// Where its data begins in the hit's buffer, in bytes (64-aligned).
    pub offset: f64,
    pub shape: Vec<f64>,
    pub dtype: String,
    pub fortran_order: bool,
}

impl MemberValue {
    fn of(entry: &cache_core::Entry<ArrayMemory>) -> Option<Vec<MemberValue>> {
        if entry.members.is_empty() {
            return None;
        }
        let value = |(i, (m, form)): (usize, (&npy_format::NpzMember, &MemberForm))| MemberValue {
            name: m.name.clone(),
            class: form.class.name().to_owned(),
            result: form.form.into(),
            offset: cache_core::content::member_range(&entry.members, i).start as f64,
            shape: m.header.shape.iter().map(|&d| d as f64).collect(),
            dtype: m.header.dtype.descr(),
            fortran_order: m.header.fortran_order,
        };
        Some(entry.members.iter().zip(&entry.record.members).enumerate().map(value).collect())
    }
}

/// What a load found: a hit or not, and what it noticed.
#[napi(object, object_from_js = false)]
pub struct Loaded {
    pub hit: Option<Hit>,
    pub notes: Vec<Note>,
}

impl Loaded {
    pub(crate) fn of(entry: Option<cache_core::Entry<ArrayMemory>>, notes: Vec<CoreNote>) -> Loaded {
        let hit = entry.map(|e| Hit {
            class: e.record.class.name().to_owned(),
            result: e.record.result.into(),
            members: MemberValue::of(&e),
            array: LoadedValue::from(e.array),
        });
        Loaded { hit, notes: notes_of(notes) }
    }
}

/// What a store did, and what it noticed.
#[napi(object, object_from_js = false)]
pub struct StoreOutcome {
    /// This store published the entry (not another writer, and it did not fail).
    pub published: bool,
    /// Least recently used entries evicted after it, to keep the limits,
    /// as the tier removed them.
    pub evicted: f64,
    /// Set when the entry was not stored for being over a limit on its own.
    pub too_large: Option<TooLarge>,
    pub notes: Vec<Note>,
}

/// What JS is told of a store that returned `stored`, having noticed `notes`.
pub(crate) fn store_outcome(stored: cache_core::Stored, notes: Vec<Note>) -> StoreOutcome {
    use cache_core::Stored;
    let (evicted, too_large) = match stored {
        Stored::Published { evicted } => (evicted as f64, None),
        Stored::TooLarge { bytes, limit } => (0.0, Some(TooLarge { bytes: bytes as f64, limit: limit as f64 })),
        Stored::AlreadyThere | Stored::Failed => (0.0, None),
    };
    StoreOutcome { published: stored.is_published(), evicted, too_large, notes }
}

/// An entry not stored: its bytes, as the tier counts them, and the limit
/// (`maxEntryBytes` or `maxBytes`) they are over.
#[napi(object, object_from_js = false)]
pub struct TooLarge {
    pub bytes: f64,
    pub limit: f64,
}

/// A yes or no, and what finding it noticed (`has`, `remove`).
#[napi(object, object_from_js = false)]
pub struct Answer {
    pub yes: bool,
    pub notes: Vec<Note>,
}

/// The keys a removal removed, and what it noticed.
#[napi(object, object_from_js = false)]
pub struct RemovedKeys {
    pub keys: Vec<String>,
    pub notes: Vec<Note>,
}

#[napi(object)]
pub struct Totals {
    pub entries: f64,
    pub bytes: f64,
    pub hits: f64,
    pub misses: f64,
    /// What the listing skipped as not the cache's.
    pub foreign: f64,
}

impl From<cache_core::Totals> for Totals {
    fn from(t: cache_core::Totals) -> Totals {
        Totals {
            entries: t.entries as f64,
            bytes: t.bytes as f64,
            hits: t.hits as f64,
            misses: t.misses as f64,
            foreign: t.foreign as f64,
        }
    }
}

/// An entry as a listing sees it; times in milliseconds since the epoch.
#[napi(object)]
pub struct EntryRow {
    pub key: String,
    /// The function that computed it ("" when it could not be read).
    pub function: String,
    /// Its NumPy descr ("" when it could not be read, or of several arrays).
    pub dtype: String,
    pub shape: Vec<f64>,
    /// Of several arrays, each one's name, dtype and shape.
    pub members: Option<Vec<MemberRow>>,
    pub bytes: f64,
    pub created: f64,
    pub last_used: f64,
}

pub(crate) fn rows_of(rows: Vec<cache_core::EntryRow>) -> Vec<EntryRow> {
    let ms = |us: i64| ms_since_epoch(time_of_us(us));
    let member = |m: cache_core::MemberRow| MemberRow { shape: shape_of(&m.shape), name: m.name, dtype: m.dtype };
    rows.into_iter()
        .map(|r| {
            let members = cache_core::MemberRow::decode_all(&r.dtype).map(|ms| ms.into_iter().map(member).collect());
            EntryRow {
                dtype: if members.is_some() { String::new() } else { r.dtype },
                members,
                shape: shape_of(&r.shape),
                bytes: r.bytes as f64,
                created: ms(r.created),
                last_used: ms(r.last_used),
                key: r.key,
                function: r.function,
            }
        })
        .collect()
}

/// One array of an entry of several, as a listing shows it.
#[napi(object)]
pub struct MemberRow {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<f64>,
}

fn shape_of(shape: &[u64]) -> Vec<f64> {
    shape.iter().map(|&d| d as f64).collect()
}

fn ms_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0
}

#[napi(object)]
pub struct PruneSummary {
    pub removed_entries: f64,
    pub removed_bytes: f64,
    pub adopted: f64,
    pub dropped: f64,
    pub removed_leftovers: f64,
    pub entries: f64,
    pub bytes: f64,
    pub foreign: f64,
}

impl From<cache_core::PruneReport> for PruneSummary {
    fn from(r: cache_core::PruneReport) -> PruneSummary {
        PruneSummary {
            removed_entries: r.removed_entries as f64,
            removed_bytes: r.removed_bytes as f64,
            adopted: r.adopted as f64,
            dropped: r.dropped as f64,
            removed_leftovers: r.removed_leftovers as f64,
            entries: r.totals.entries as f64,
            bytes: r.totals.bytes as f64,
            foreign: r.totals.foreign as f64,
        }
    }
}

#[napi(object)]
pub struct DamagedEntry {
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

#[napi(object)]
pub struct VerifySummary {
    pub checked: f64,
    pub damaged: Vec<DamagedEntry>,
    pub removed: f64,
}

impl From<cache_core::VerifyReport> for VerifySummary {
    fn from(r: cache_core::VerifyReport) -> VerifySummary {
        VerifySummary {
            checked: r.checked as f64,
            damaged: r.damaged.into_iter().map(|(key, reason)| DamagedEntry { key, reason }).collect(),
            removed: r.removed as f64,
        }
    }
}

#[napi(object)]
pub struct ClearSummary {
    /// Files or objects removed.
    pub removed: f64,
    pub removed_dir: bool,
}

impl From<cache_core::ClearReport> for ClearSummary {
    fn from(r: cache_core::ClearReport) -> ClearSummary {
        ClearSummary { removed: r.removed as f64, removed_dir: r.removed_dir }
    }
}
