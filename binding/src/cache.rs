//! The `Cache` class: one cache location (`cache_tiered::open`: a
//! directory, an object store, or a local directory in front of one) as
//! JS sees it, over the `cache_core::Tier` contract. Each `...Async`
//! method is its synchronous twin's operation run on the cache's runtime
//! (see `calls`); arguments arrive checked by the TS layer and are only
//! converted here.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;

use cache_core::{
    key_of, progress, Claim, Content, Key, Lease, Limits, NewArchive, NewArray, Notes, OnDisk, Tier, Wait,
};
use npy_format::Header;

use crate::arrays::{ArrayLayout, JsBytes};
use crate::calls::{inline, run, spawn, INLINE_BELOW};
use crate::errors::{Failure, Outcome};
use crate::jobs::{InlineProgress, RuntimeCallback, RuntimeProgress, StopFlag};
use crate::memory::{self, ArrayMemory, JsThreadAlloc};
use crate::opened::EntryHandle;
use crate::output::OutputDraft;
use crate::values::{
    notes_of, rows_of, store_outcome, Answer, CacheOptions, ClearSummary, EntryArg, EntryRow, LimitsArg, Loaded,
    OwnedEntry, PruneSummary, RemovedKeys, StoreOutcome, Totals, VerifySummary,
};

type Shared = Arc<dyn Tier<ArrayMemory>>;

/// A long job for the runtime, reporting to `$p` (a `RuntimeProgress`) as
/// `$progress`: a job stopped before it began does nothing, and its last
/// skipped report is sent before it settles.
macro_rules! on_runtime {
    ($p:ident, $progress:ident => $job:expr) => {
        async move {
            let mut $p = $p;
            if $p.stopped() {
                return Err(Failure::from(cache_core::Error::Stopped));
            }
            let out = {
                let $progress: &mut progress::Progress<'_> = &mut |d, t| $p.report(d, t);
                $job.await
            };
            $p.finish();
            out.map_err(Failure::from)
        }
    };
}

/// A cache location.
#[napi]
pub struct Cache {
    tier: Shared,
}

/// Who holds a lease another process (or this one) took.
#[napi(object)]
pub struct LeaseHolder {
    /// `<host tag> <pid>`.
    pub holder: String,
    pub this_process: bool,
    /// The holder is (or may be) the calling JS thread: a synchronous wait would never end.
    pub this_thread: bool,
}

/// No lease can be taken now (links refused, the store down): compute without one.
#[napi(object, object_from_js = false)]
pub struct NoLease {
    pub reason: Failure,
}

/// A held compute-once lease; `release` gives it up (also done when collected).
#[napi]
pub struct ComputeLease {
    lease: Option<Lease>,
}

#[napi]
impl ComputeLease {
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

fn claimed(claim: Claim) -> Either3<ComputeLease, LeaseHolder, NoLease> {
    match claim {
        Claim::Taken(lease) => Either3::A(ComputeLease { lease: Some(lease) }),
        Claim::Held { holder, this_process, this_thread } => {
            Either3::B(LeaseHolder { holder: holder.to_string(), this_process, this_thread })
        }
        Claim::Unavailable(e) => Either3::C(NoLease { reason: e.into() }),
    }
}

fn stale_after_of(ms: f64) -> Outcome<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::invalid(format!("staleAfter must be a positive number of milliseconds, got {ms}")))
}

/// A result to store: its key, record, and each array's name (none for
/// one array), header and memory, which the TS layer keeps referenced and
/// unchanged until the call settles.
struct ToStore {
    key: Key,
    entry: OwnedEntry,
    names: Vec<String>,
    headers: Vec<Header>,
    data: Vec<JsBytes>,
}

impl ToStore {
    fn of(key: &str, data: &TypedArray, layout: ArrayLayout, entry: EntryArg) -> Outcome<ToStore> {
        ToStore::of_members(key, vec![], &[data], vec![layout], entry)
    }

    fn of_members(
        key: &str,
        names: Vec<String>,
        data: &[&TypedArray],
        layouts: Vec<ArrayLayout>,
        entry: EntryArg,
    ) -> Outcome<ToStore> {
        // One array without a name, or a name per array.
        let one_array = names.is_empty() && data.len() == 1;
        let named = !names.is_empty() && names.len() == data.len();
        if data.len() != layouts.len() || !(one_array || named) {
            return Err(Failure::invalid("one name, array and layout per member"));
        }
        Ok(ToStore {
            key: key_of(key)?,
            entry: OwnedEntry::of(entry)?,
            names,
            headers: layouts.iter().map(ArrayLayout::header).collect::<Outcome<_>>()?,
            data: data.iter().map(|d| JsBytes::of(d)).collect(),
        })
    }

    fn len(&self) -> usize {
        self.data.iter().map(|d| d.len()).sum()
    }

    async fn run(self, tier: Shared) -> Outcome<StoreOutcome> {
        let mut notes = Notes::new();
        // SAFETY: see the type's docs.
        let data: Vec<&[u8]> = self.data.iter().map(|d| unsafe { d.get() }).collect();
        let content = if self.names.is_empty() {
            Content::npy(&self.headers[0], data[0])?
        } else {
            let members: Vec<(&str, &Header, &[u8])> =
                (self.names.iter().zip(&self.headers).zip(&data)).map(|((n, h), d)| (n.as_str(), h, *d)).collect();
            Content::npz(NewArchive::new(&members)?)
        };
        let array = NewArray { content: &content, entry: self.entry.borrow() };
        let stored = tier.store(&self.key, array, &mut notes).await?;
        Ok(store_outcome(stored, notes_of(notes)))
    }
}

#[napi]
impl Cache {
    /// Opens `location`: a directory (made on the first store) or an
    /// object-store location (`s3://bucket/prefix`, `gs://`, `az://`).
    /// Makes no request and creates nothing.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: &Env, location: String, options: Option<CacheOptions>) -> Result<Self> {
        run(env, || {
            let options = options.unwrap_or_default().into_options()?;
            Ok(Cache { tier: cache_tiered::open(&location, options)? })
        })
    }

    /// The directory, absolute, or the store's URL.
    #[napi(getter)]
    pub fn location(&self) -> String {
        self.tier.location().to_owned()
    }

    /// Loads the entry of `key`, on this thread. A hit with nothing noticed
    /// returns its ArrayBuffer and writes the rest into `meta` (see
    /// `describe_hit`), building no objects; a miss with nothing noticed
    /// returns null; anything else, the whole `Loaded`.
    #[napi(catch_unwind)]
    pub fn load<'env>(
        &self,
        env: &'env Env,
        key: String,
        mut meta: Float64ArraySlice<'env>,
    ) -> Result<Either3<ArrayBuffer<'env>, Null, Loaded>> {
        let alloc = JsThreadAlloc::new(env);
        let (entry, notes) = inline(env, async {
            let key = key_of(&key)?;
            let mut notes = Notes::new();
            let entry = self.tier.load(&key, &mut |len, filling| alloc.alloc(len, filling), &mut notes).await?;
            Ok::<_, Failure>((entry, notes))
        })?;
        match entry {
            Some(entry) if notes.is_empty() && entry.members.is_empty() => {
                // SAFETY: the caller's array, which no JS code runs on during this call.
                run(env, || describe_hit(&entry, unsafe { meta.as_mut() }))?;
                Ok(Either3::A(memory::array_buffer(env, entry.array)?))
            }
            None if notes.is_empty() => Ok(Either3::B(Null)),
            entry => Ok(Either3::C(Loaded::of(entry, notes))),
        }
    }

    /// `load`, on the cache's runtime; a small load decided on this
    /// machine's disk is done here instead, and returned as is.
    #[napi(catch_unwind)]
    pub fn load_async<'env>(&self, env: &'env Env, key: String) -> Result<Either<Loaded, PromiseRaw<'env, Loaded>>> {
        let alloc = JsThreadAlloc::new(env);
        let (key, found, mut notes) = inline(env, async {
            let key = key_of(&key)?;
            let mut notes = Notes::new();
            let up_to = INLINE_BELOW as u64;
            let found =
                self.tier.load_on_disk(&key, up_to, &mut |len, filling| alloc.alloc(len, filling), &mut notes).await?;
            Ok::<_, Failure>((key, found, notes))
        })?;
        if let OnDisk::Decided(entry) = found {
            return Ok(Either::A(Loaded::of(entry, notes)));
        }
        let tier = self.tier.clone();
        let op = async move {
            let entry = tier.load(&key, &mut memory::own, &mut notes).await?;
            Ok::<_, Failure>((entry, notes))
        };
        spawn(env, op, |_, (entry, notes)| Ok(Loaded::of(entry, notes))).map(Either::B)
    }

    /// Stores the entry of `key` (create-only).
    #[napi(catch_unwind)]
    pub fn store(
        &self,
        env: &Env,
        key: String,
        data: TypedArray,
        layout: ArrayLayout,
        entry: EntryArg,
    ) -> Result<StoreOutcome> {
        let job = run(env, || ToStore::of(&key, &data, layout, entry))?;
        inline(env, job.run(self.tier.clone()))
    }

    /// `store`, on the cache's runtime (a small store on this machine's
    /// disk alone is done here instead, and returned as is). The caller
    /// keeps `data` referenced and unchanged until the promise settles.
    #[napi(catch_unwind)]
    pub fn store_async<'env>(
        &self,
        env: &'env Env,
        key: String,
        data: TypedArray,
        layout: ArrayLayout,
        entry: EntryArg,
    ) -> Result<Either<StoreOutcome, PromiseRaw<'env, StoreOutcome>>> {
        let job = run(env, || ToStore::of(&key, &data, layout, entry))?;
        self.store_job_async(env, job)
    }

    /// `store` of several arrays, named `names`, as one entry (an `.npz`).
    #[napi(catch_unwind)]
    pub fn store_members(
        &self,
        env: &Env,
        key: String,
        names: Vec<String>,
        data: Vec<TypedArray>,
        layouts: Vec<ArrayLayout>,
        entry: EntryArg,
    ) -> Result<StoreOutcome> {
        let job = run(env, || ToStore::of_members(&key, names, &data.iter().collect::<Vec<_>>(), layouts, entry))?;
        inline(env, job.run(self.tier.clone()))
    }

    /// `storeMembers`, on the cache's runtime, as `storeAsync` is.
    #[napi(catch_unwind)]
    pub fn store_members_async<'env>(
        &self,
        env: &'env Env,
        key: String,
        names: Vec<String>,
        data: Vec<TypedArray>,
        layouts: Vec<ArrayLayout>,
        entry: EntryArg,
    ) -> Result<Either<StoreOutcome, PromiseRaw<'env, StoreOutcome>>> {
        let job = run(env, || ToStore::of_members(&key, names, &data.iter().collect::<Vec<_>>(), layouts, entry))?;
        self.store_job_async(env, job)
    }

    fn store_job_async<'env>(
        &self,
        env: &'env Env,
        job: ToStore,
    ) -> Result<Either<StoreOutcome, PromiseRaw<'env, StoreOutcome>>> {
        if self.tier.stores_on_disk() && job.len() < INLINE_BELOW {
            return inline(env, job.run(self.tier.clone())).map(Either::A);
        }
        spawn(env, job.run(self.tier.clone()), |_, outcome| Ok(outcome)).map(Either::B)
    }

    /// A file to fill with the entry of `key`, an array of `layout` (C
    /// order), then publish (see `OutputDraft`). Made on this machine's
    /// disk: in the cache's directory, else the system's temporary one.
    #[napi(catch_unwind)]
    pub fn draft(&self, env: &Env, key: String, layout: ArrayLayout) -> Result<OutputDraft> {
        let tier = self.tier.clone();
        inline(env, async move {
            let (key, header) = (key_of(&key)?, layout.header()?);
            let mut notes = Notes::new();
            let draft = tier.draft(&key, &header, &mut notes).await?;
            Ok::<_, Failure>(OutputDraft::new(tier, key, draft, notes))
        })
    }

    /// Opens the entry of `key` for reads of its parts, reading none of its
    /// data (a handle that says whether it was found).
    #[napi(catch_unwind)]
    pub fn open(&self, env: &Env, key: String) -> Result<EntryHandle> {
        inline(env, open(self.tier.clone(), key))
    }

    #[napi(catch_unwind)]
    pub fn open_async<'env>(&self, env: &'env Env, key: String) -> Result<PromiseRaw<'env, EntryHandle>> {
        spawn(env, open(self.tier.clone(), key), |_, handle| Ok(handle))
    }

    /// Whether a load of `key` would hit now, without loading or counting it.
    #[napi(catch_unwind)]
    pub fn has(&self, env: &Env, key: String) -> Result<Answer> {
        inline(env, answer(self.tier.clone(), key, Ask::Has))
    }

    #[napi(catch_unwind)]
    pub fn has_async<'env>(&self, env: &'env Env, key: String) -> Result<PromiseRaw<'env, Answer>> {
        spawn(env, answer(self.tier.clone(), key, Ask::Has), |_, a| Ok(a))
    }

    /// Removes the entry of `key` (from every tier); says whether there was one.
    #[napi(catch_unwind)]
    pub fn remove(&self, env: &Env, key: String) -> Result<Answer> {
        inline(env, answer(self.tier.clone(), key, Ask::Remove))
    }

    #[napi(catch_unwind)]
    pub fn remove_async<'env>(&self, env: &'env Env, key: String) -> Result<PromiseRaw<'env, Answer>> {
        spawn(env, answer(self.tier.clone(), key, Ask::Remove), |_, a| Ok(a))
    }

    /// Removes every entry of the function named `name` (from every tier).
    #[napi(catch_unwind)]
    pub fn remove_function(
        &self,
        env: &Env,
        name: String,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<RemovedKeys> {
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, removed_keys(self.tier.clone(), name, &mut |d, t| p.report(d, t)));
        p.finish(out)
    }

    #[napi(catch_unwind)]
    pub fn remove_function_async<'env>(
        &self,
        env: &'env Env,
        name: String,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, RemovedKeys>> {
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => removed_keys(tier, name, progress)), |_, r| Ok(r))
    }

    /// Takes the compute-once lease of `key`, or says who holds it, or that
    /// none can be taken now.
    #[napi(catch_unwind)]
    pub fn claim(
        &self,
        env: &Env,
        key: String,
        stale_after_ms: f64,
    ) -> Result<Either3<ComputeLease, LeaseHolder, NoLease>> {
        let thread = std::thread::current().id();
        inline(env, claim(self.tier.clone(), key, stale_after_ms, thread)).map(claimed)
    }

    #[napi(catch_unwind)]
    pub fn claim_async<'env>(
        &self,
        env: &'env Env,
        key: String,
        stale_after_ms: f64,
    ) -> Result<PromiseRaw<'env, Either3<ComputeLease, LeaseHolder, NoLease>>> {
        // The JS thread calling: the claim itself runs on the runtime's.
        let thread = std::thread::current().id();
        spawn(env, claim(self.tier.clone(), key, stale_after_ms, thread), |_, c| Ok(claimed(c)))
    }

    /// Whether a live holder still has the lease of `key` (a read only):
    /// what a waiter polls, claiming again once it is false.
    #[napi(catch_unwind)]
    pub fn lease_held(&self, env: &Env, key: String, stale_after_ms: f64) -> Result<bool> {
        inline(env, lease_held(self.tier.clone(), key, stale_after_ms))
    }

    #[napi(catch_unwind)]
    pub fn lease_held_async<'env>(
        &self,
        env: &'env Env,
        key: String,
        stale_after_ms: f64,
    ) -> Result<PromiseRaw<'env, bool>> {
        spawn(env, lease_held(self.tier.clone(), key, stale_after_ms), |_, held| Ok(held))
    }

    /// Entries, bytes, hits and misses.
    #[napi(catch_unwind)]
    pub fn stats(
        &self,
        env: &Env,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<Totals> {
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, async { self.tier.totals(&mut |d, t| p.report(d, t)).await.map(Totals::from) });
        p.finish(out)
    }

    #[napi(catch_unwind)]
    pub fn stats_async<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, Totals>> {
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => tier.totals(progress)), |_, t| Ok(Totals::from(t)))
    }

    /// Every entry, most recently used first.
    #[napi(catch_unwind)]
    pub fn entries(
        &self,
        env: &Env,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<Vec<EntryRow>> {
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, async { self.tier.entries(&mut |d, t| p.report(d, t)).await });
        p.finish(out).map(rows_of)
    }

    #[napi(catch_unwind)]
    pub fn entries_async<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, Vec<EntryRow>>> {
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => tier.entries(progress)), |_, rows| Ok(rows_of(rows)))
    }

    /// Removes expired entries, then the least recently used until `limits`
    /// hold (the cache's own when omitted), and leftovers.
    #[napi(catch_unwind)]
    pub fn prune(
        &self,
        env: &Env,
        limits: Option<LimitsArg>,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<PruneSummary> {
        let limits = run(env, || limits_of(limits))?;
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, async { self.tier.prune(limits, &mut |d, t| p.report(d, t)).await });
        p.finish(out).map(PruneSummary::from)
    }

    #[napi(catch_unwind)]
    pub fn prune_async<'env>(
        &self,
        env: &'env Env,
        limits: Option<LimitsArg>,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, PruneSummary>> {
        let limits = run(env, || limits_of(limits))?;
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => tier.prune(limits, progress)), |_, r| Ok(PruneSummary::from(r)))
    }

    /// Checks every entry completely; with `remove`, removes the damaged ones.
    #[napi(catch_unwind)]
    pub fn verify(
        &self,
        env: &Env,
        remove: bool,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<VerifySummary> {
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, async { self.tier.verify(remove, &mut |d, t| p.report(d, t)).await });
        p.finish(out).map(VerifySummary::from)
    }

    #[napi(catch_unwind)]
    pub fn verify_async<'env>(
        &self,
        env: &'env Env,
        remove: bool,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, VerifySummary>> {
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => tier.verify(remove, progress)), |_, r| Ok(VerifySummary::from(r)))
    }

    /// Removes what the cache wrote; with `removeDir`, then the directory.
    #[napi(catch_unwind)]
    pub fn clear(
        &self,
        env: &Env,
        remove_dir: bool,
        on_progress: Option<Function<'_, FnArgs<(f64, f64)>, ()>>,
        stop: Option<&StopFlag>,
    ) -> Result<ClearSummary> {
        let mut p = InlineProgress::new(on_progress, stop);
        let out = inline(env, async { self.tier.clear(remove_dir, &mut |d, t| p.report(d, t)).await });
        p.finish(out).map(ClearSummary::from)
    }

    #[napi(catch_unwind)]
    pub fn clear_async<'env>(
        &self,
        env: &'env Env,
        remove_dir: bool,
        #[napi(ts_arg_type = "(done: number, total: number) => void")] on_progress: Option<RuntimeCallback>,
        stop: Option<&StopFlag>,
    ) -> Result<PromiseRaw<'env, ClearSummary>> {
        let (tier, p) = (self.tier.clone(), RuntimeProgress::new(on_progress, stop));
        spawn(env, on_runtime!(p, progress => tier.clear(remove_dir, progress)), |_, r| Ok(ClearSummary::from(r)))
    }

    /// Writes uses and counts held in memory where other processes see
    /// them, waiting for another process's transaction at most `waitMs`
    /// (0: not at all; omitted: as long as any write).
    #[napi(catch_unwind)]
    pub fn flush(&self, env: &Env, wait_ms: Option<f64>) -> Result<()> {
        let wait = match wait_ms {
            None => Wait::AsNeeded,
            Some(ms) if ms > 0.0 => Wait::AtMost(Duration::from_secs_f64(ms.min(1e9) / 1000.0)),
            Some(_) => Wait::Never,
        };
        inline(env, self.tier.flush(wait))
    }

    /// Flushes and lets go of handles (the index's); a later call reopens them.
    #[napi(catch_unwind)]
    pub fn close(&self, env: &Env) -> Result<()> {
        inline(env, self.tier.close())
    }

    /// Turns the recording of hits as uses off or on: for the benchmark
    /// that measures what recording costs. Not part of the public API.
    #[napi(catch_unwind)]
    pub fn set_recording(&self, on: bool) {
        self.tier.set_recording(on)
    }

    /// Moves this cache's clock forward: tests of expiry use it instead of
    /// sleeping. Not part of the public API.
    #[napi(catch_unwind)]
    pub fn advance_clock(&self, ms: f64) {
        if ms.is_finite() && ms > 0.0 {
            self.tier.clock().advance(Duration::from_secs_f64(ms / 1000.0));
        }
    }
}

/// What a yes-or-no operation asks.
#[derive(Clone, Copy)]
enum Ask {
    Has,
    Remove,
}

async fn answer(tier: Shared, key: String, ask: Ask) -> Outcome<Answer> {
    let key = key_of(&key)?;
    let mut notes = Notes::new();
    let yes = match ask {
        Ask::Has => tier.has(&key, &mut notes).await?,
        Ask::Remove => tier.remove(&key, &mut notes).await?,
    };
    Ok(Answer { yes, notes: notes_of(notes) })
}

async fn open(tier: Shared, key: String) -> Outcome<EntryHandle> {
    let key = key_of(&key)?;
    let mut notes = Notes::new();
    let opened = tier.open(&key, &mut notes).await?;
    Ok(EntryHandle::of(opened, notes))
}

async fn removed_keys(tier: Shared, function: String, progress: &mut progress::Progress<'_>) -> Outcome<RemovedKeys> {
    let mut notes = Notes::new();
    let keys = tier.remove_function(&function, progress, &mut notes).await?;
    Ok(RemovedKeys { keys: keys.iter().map(Key::to_string).collect(), notes: notes_of(notes) })
}

async fn claim(tier: Shared, key: String, stale_after_ms: f64, thread: std::thread::ThreadId) -> Outcome<Claim> {
    let key = key_of(&key)?;
    Ok(cache_core::lease::claim_on(tier.as_ref(), &key, stale_after_of(stale_after_ms)?, thread).await?)
}

async fn lease_held(tier: Shared, key: String, stale_after_ms: f64) -> Outcome<bool> {
    let key = key_of(&key)?;
    Ok(tier.lease_holder(&key, stale_after_of(stale_after_ms)?).await?.is_some())
}

fn limits_of(limits: Option<LimitsArg>) -> Outcome<Option<Limits>> {
    limits.map(LimitsArg::into_limits).transpose()
}

/// What a hit is, written into `meta` for `load`'s caller: the indexes of
/// its class (in `classTable`) and dtype (in `dtypeTable`), whether it was
/// stored as an ndarray, is in Fortran order, is memory-mapped, then its
/// number of dimensions and the dimensions.
fn describe_hit(entry: &cache_core::Entry<ArrayMemory>, meta: &mut [f64]) -> Outcome<()> {
    let header = entry.array.header();
    let class = cache_core::ArrayClass::ALL.iter().position(|&c| c == entry.record.class);
    let dtype = npy_format::Dtype::supported().position(|d| d == header.dtype);
    let (Some(class), Some(dtype)) = (class, dtype) else {
        return Err(Failure::invalid(format!("{} is not in the dtype table", header.dtype.descr())));
    };
    let fixed = [
        class as f64,
        dtype as f64,
        f64::from(u8::from(entry.record.result == cache_core::ResultForm::NdArray)),
        f64::from(u8::from(header.fortran_order)),
        f64::from(u8::from(matches!(entry.array, cache_core::LoadedArray::Mapped(_)))),
        header.shape.len() as f64,
    ];
    let Some(out) = meta.get_mut(..fixed.len() + header.shape.len()) else {
        return Err(Failure::invalid(format!("meta holds {} numbers, too few for this array", meta.len())));
    };
    out[..fixed.len()].copy_from_slice(&fixed);
    for (slot, &d) in out[fixed.len()..].iter_mut().zip(&header.shape) {
        *slot = d as f64;
    }
    Ok(())
}
