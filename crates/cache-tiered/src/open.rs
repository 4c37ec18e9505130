//! A cache location opened as one tier: what a binding holds.
//!
//! - a directory: the directory tier, failing open for stores;
//! - `s3://`, `gs://`, `az://`: the object-store tier, failing open (and
//!   pausing after an outage), with the cache's limits as its own;
//! - such a location with a local directory: the local tier (with the
//!   cache's limits, `mmap` and `verify`) in front of the store.

use std::path::PathBuf;
use std::sync::Arc;

use cache_core::{Buffer, Clock, Error, Limits, Tier};
use cache_remote::{is_remote, RemoteCache, Settings, SCHEMES};
use cache_store::{CacheDir, Verify};

use crate::fail_open::{FailOpen, STORE_PAUSE};
use crate::tiered::Tiered;

/// How to open a location.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Hits are memory-mapped where the data can be used in place (a directory's).
    pub map: bool,
    /// Every hit checks all its data against its digest (a store's always do).
    pub verify: bool,
    pub limits: Limits,
    /// For an object-store location: a local directory in front of it.
    pub local_dir: Option<PathBuf>,
    /// For an object-store location: settings over the environment's.
    pub store: Option<Settings>,
}

/// The limits of the store behind a local tier, given the cache's: the
/// cache's limits are the local tier's; `max_age` holds for the store's
/// hits too (see `Tiered`), and `max_entry_bytes` for its stores (an entry
/// over it is sent nowhere).
pub fn shared_limits(limits: &Limits) -> Limits {
    Limits { max_age: limits.max_age, max_entry_bytes: limits.max_entry_bytes, ..Limits::default() }
}

/// Opens `location`. Makes no request and creates nothing.
pub fn open<B: Buffer>(location: &str, options: Options) -> Result<Arc<dyn Tier<B>>, Error> {
    let clock = Clock::system();
    let dir = |path: PathBuf| -> Result<CacheDir, Error> {
        let verify = if options.verify { Verify::All } else { Verify::Small };
        Ok(CacheDir::open_with_clock(path, clock.clone())?
            .with_limits(options.limits)
            .with_verify(verify)
            .with_map(options.map))
    };
    if !is_remote(location) {
        if options.local_dir.is_some() || options.store.is_some() {
            let schemes = SCHEMES.map(|s| format!("{s}://")).join(", ");
            return Err(Error::invalid(format!(
                "a local tier and object-store settings are for object-store locations ({schemes}), and {location:?} is a directory"
            )));
        }
        let local: Arc<dyn Tier<B>> = Arc::new(dir(PathBuf::from(location))?);
        let label = local.location().to_owned();
        return Ok(Arc::new(FailOpen::new(local, label, None)));
    }
    let store = RemoteCache::open(location, &options.store.clone().unwrap_or_default())?.with_clock(clock.clone());
    let Some(local_dir) = options.local_dir.clone() else {
        let store: Arc<dyn Tier<B>> = Arc::new(store.with_limits(options.limits));
        let label = store.location().to_owned();
        return Ok(Arc::new(FailOpen::new(store, label, Some(STORE_PAUSE))));
    };
    let store: Arc<dyn Tier<B>> = Arc::new(store.with_limits(shared_limits(&options.limits)));
    let label = store.location().to_owned();
    let local: Arc<dyn Tier<B>> = Arc::new(dir(local_dir)?);
    let local = Arc::new(FailOpen::new(local, format!("the local tier of {label}"), None));
    let store = Arc::new(FailOpen::new(store, label, Some(STORE_PAUSE)));
    Ok(Arc::new(Tiered::new(local, store)))
}
