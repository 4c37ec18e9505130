//! What the TS layer and the command line take from the core rather than
//! restate: the dtype table, the cache's defaults, and its file names.

use cache_core::{elements_per_item, ArrayClass};
use npy_format::Dtype;

/// One supported dtype.
#[napi(object)]
pub struct DtypeInfo {
    /// NumPy's descr in native order, e.g. `'<f8'`.
    pub descr: String,
    /// NumPy's name, e.g. `'float64'`.
    pub name: String,
    pub item_size: u32,
    /// The class `readNpy` gives for it.
    pub read_class: String,
    /// Every class that may hold it.
    pub classes: Vec<String>,
    /// Elements of the class per array element (2 for complex).
    pub elements_per_item: u32,
}

/// One typed-array class.
#[napi(object)]
pub struct ClassInfo {
    pub name: String,
    /// What a bare array of the class is stored as.
    pub default_dtype: String,
}

/// The dtype table (see `cache_store::ArrayClass`).
#[napi]
pub fn dtype_table() -> Vec<DtypeInfo> {
    Dtype::supported()
        .map(|dtype| DtypeInfo {
            descr: dtype.descr(),
            name: dtype.name(),
            item_size: dtype.item_size as u32,
            read_class: ArrayClass::reading(&dtype).name().to_owned(),
            classes: ArrayClass::ALL.into_iter().filter(|c| c.holds(&dtype)).map(|c| c.name().to_owned()).collect(),
            elements_per_item: elements_per_item(&dtype) as u32,
        })
        .collect()
}

#[napi]
pub fn class_table() -> Vec<ClassInfo> {
    ArrayClass::ALL
        .into_iter()
        .map(|c| ClassInfo { name: c.name().to_owned(), default_dtype: c.default_dtype().descr() })
        .collect()
}

/// The cache's defaults and bounds, in milliseconds.
#[napi(object)]
pub struct Defaults {
    /// `computeOnce.staleAfter` when not given.
    pub stale_after_ms: f64,
    /// The least `computeOnce.staleAfter` (the lease is refreshed every quarter of it).
    pub min_stale_after_ms: f64,
    /// The most a lease is taken to promise: past it, any lease is broken.
    pub max_stale_after_ms: f64,
    /// How often uses recorded in memory are written to the index.
    pub flush_every_ms: f64,
    /// The most dimensions an array may have (NumPy reads no more).
    pub max_dims: u32,
    /// The most arrays a cached result of several holds.
    pub max_entry_members: u32,
}

#[napi]
pub fn defaults() -> Defaults {
    Defaults {
        stale_after_ms: cache_core::lease::DEFAULT_STALE_AFTER.as_millis() as f64,
        min_stale_after_ms: cache_core::lease::MIN_STALE_AFTER.as_millis() as f64,
        max_stale_after_ms: cache_core::lease::MAX_STALE_AFTER.as_millis() as f64,
        flush_every_ms: cache_store::FLUSH_EVERY.as_millis() as f64,
        max_dims: npy_format::MAX_DIMS as u32,
        max_entry_members: cache_core::record::MAX_ENTRY_MEMBERS as u32,
    }
}

/// Why `name` cannot name an array in an `.npz` (empty, too long, a path
/// separator, a control character, `.` or `..`), or null if it can.
#[napi]
pub fn member_name_problem(name: String) -> Option<String> {
    match npy_format::check_member_name(&name) {
        Err(npy_format::Error::BadMember { reason, .. }) => Some(reason),
        Err(other) => Some(other.to_string()),
        Ok(()) => None,
    }
}

/// Whether a file of this name shows that its directory is a cache (the
/// index or an entry's file), for tools that must not open a foreign one.
#[napi]
pub fn marks_a_cache(name: String) -> bool {
    cache_store::marks_a_cache(&name)
}

/// Whether `s` is a cache key as entries and the CLI write it: 64
/// lower-case hex digits.
#[napi]
pub fn is_key(s: String) -> bool {
    cache_core::is_key(&s)
}

/// Whether `s` could begin a cache key: 1 to 64 lower-case hex digits.
#[napi]
pub fn is_key_prefix(s: String) -> bool {
    cache_core::is_key_prefix(&s)
}

/// Whether `location` names an object store (`s3://`, `gs://`, `az://`)
/// rather than a directory.
#[napi]
pub fn is_store_location(location: String) -> bool {
    cache_remote::is_remote(&location)
}

/// The schemes of object-store locations this build opens, e.g. `'s3'`.
#[napi]
pub fn store_schemes() -> Vec<String> {
    cache_remote::SCHEMES.iter().map(|s| s.to_string()).collect()
}

/// This host's tag, as temporary file names and leases carry it (for this
/// package's tests, which plant such files). Not part of the public API.
#[napi]
pub fn host_tag() -> String {
    cache_core::host::tag().to_owned()
}
