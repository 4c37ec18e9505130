//! `OutputDraft`: a result written straight into the cache
//! (`cache_core::Draft`), as JS sees it. Its data is lent to JS as a
//! writable ArrayBuffer over a shared map of the entry's file; once the
//! function has filled it, the buffer is detached, so that no later write
//! reaches the file, and the tier publishes the file.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;

use cache_core::draft::MmapMut;
use cache_core::{lock, Draft, Key, Notes, Stored, Tier};

use crate::calls::{inline, run, spawn};
use crate::errors::{Failure, Outcome};
use crate::memory::{self, ArrayMemory};
use crate::values::{notes_of, store_outcome, EntryArg, LoadedValue, OwnedEntry, StoreOutcome};

type Shared = Arc<dyn Tier<ArrayMemory>>;

/// The writable map JS fills, while it is lent. Taken out when the buffer
/// is detached (then unmapped) or collected; forgotten, never unmapped, if
/// the buffer went elsewhere before it could be detached.
type FillMap = Arc<Mutex<Option<MmapMut>>>;

/// An entry's file to fill, then publish or discard.
#[napi]
pub struct OutputDraft {
    tier: Shared,
    key: Key,
    draft: Option<Draft>,
    map: FillMap,
    /// What making the draft noticed (a tier that could not make it: the
    /// draft is then a file of its own), reported with the publish.
    notes: Notes,
}

/// A published draft: what the store did, and the array as the caller gets it.
#[napi(object, object_from_js = false)]
pub struct Published {
    pub stored: StoreOutcome,
    pub array: LoadedValue,
}

impl OutputDraft {
    pub(crate) fn new(tier: Shared, key: Key, draft: Draft, notes: Notes) -> OutputDraft {
        OutputDraft { tier, key, draft: Some(draft), map: Arc::default(), notes }
    }

    fn draft(&self) -> Outcome<&Draft> {
        self.draft.as_ref().ok_or_else(|| Failure::invalid("the output was published or discarded already"))
    }

    /// Ends the loan of `buffer`, the one `buffer()` gave: detached, so JS
    /// writes no more, and unmapped. Refused if it was detached meanwhile
    /// (transferred elsewhere, whose holder may still write it): the map
    /// is then kept as long as the process lives, and nothing is stored.
    fn end_loan(&mut self, buffer: ArrayBuffer) -> Outcome<()> {
        // Out of the lock before the runtime is called: Bun finalizes a buffer as it detaches it.
        let Some(mut map) = lock(&self.map).take() else { return Ok(()) };
        match buffer.is_detached() {
            Ok(false) => {}
            Ok(true) => {
                std::mem::forget(map);
                return Err(Failure::invalid(
                    "the output array's buffer was detached while the function filled it (moved into a byte \
                     stream or transferred, say), so nothing was stored; fill it in place",
                ));
            }
            Err(e) => {
                std::mem::forget(map);
                return Err(js_failure(e));
            }
        }
        // A runtime without external buffers gave JS a copy: its contents go to the file.
        if buffer.as_ptr() != map.as_ptr() {
            map.copy_from_slice(&buffer);
        }
        if let Err(e) = buffer.detach() {
            std::mem::forget(map);
            return Err(js_failure(e));
        }
        drop(map);
        Ok(())
    }
}

#[napi]
impl OutputDraft {
    /// The writable ArrayBuffer over the draft's data (its length: the
    /// data's bytes). Given once.
    #[napi(catch_unwind)]
    pub fn buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>> {
        let map = run(env, || {
            if lock(&self.map).is_some() {
                return Err(Failure::invalid("the output's buffer was given already"));
            }
            Ok(self.draft()?.fill_map()?)
        })?;
        let Some(mut map) = map else { return ArrayBuffer::copy_from(env, Vec::<u8>::new()) };
        let (ptr, len) = (map.as_mut_ptr(), map.len());
        *lock(&self.map) = Some(map);
        let lent = self.map.clone();
        // SAFETY: the map lives in `self.map` until the loan ends or V8 frees the buffer.
        unsafe { ArrayBuffer::from_external(env, ptr, len, lent, |_, lent| drop(lock(&lent).take())) }
    }

    /// Publishes the filled draft as the entry, on this thread: `buffer`
    /// (the one `buffer()` gave) is detached first. Returns what the store
    /// did, and the array, mapped from the published file where it can be.
    #[napi(catch_unwind)]
    pub fn publish(&mut self, env: &Env, buffer: Option<ArrayBuffer>, entry: EntryArg) -> Result<Published> {
        let (mut draft, entry) = run(env, || Ok((self.take(buffer)?, OwnedEntry::of(entry)?)))?;
        let (tier, key, mut notes) = (self.tier.clone(), self.key, std::mem::take(&mut self.notes));
        let stored = inline(env, async { tier.publish(&key, &mut draft, entry.borrow(), &mut notes).await })?;
        run(env, || published(draft, stored, notes))
    }

    /// `publish`, on the cache's runtime.
    #[napi(catch_unwind)]
    pub fn publish_async<'env>(
        &mut self,
        env: &'env Env,
        buffer: Option<ArrayBuffer>,
        entry: EntryArg,
    ) -> Result<PromiseRaw<'env, Published>> {
        let (mut draft, entry) = run(env, || Ok((self.take(buffer)?, OwnedEntry::of(entry)?)))?;
        let (tier, key, mut notes) = (self.tier.clone(), self.key, std::mem::take(&mut self.notes));
        let op = async move {
            let stored = tier.publish(&key, &mut draft, entry.borrow(), &mut notes).await;
            Ok::<_, Failure>((draft, stored, notes))
        };
        spawn(env, op, |env, (draft, stored, notes)| run(env, || published(draft, stored?, notes)))
    }

    /// Ends the loan of `buffer` and gives the array without publishing
    /// it (a computation that may have seen other arguments): its file is
    /// removed once mapped.
    #[napi(catch_unwind)]
    pub fn withhold(&mut self, env: &Env, buffer: Option<ArrayBuffer>) -> Result<LoadedValue> {
        run(env, || Ok(LoadedValue::from(self.take(buffer)?.into_loaded(&mut memory::own)?)))
    }

    /// Ends the loan of `buffer` and removes the draft's file: nothing is stored.
    #[napi(catch_unwind)]
    pub fn discard(&mut self, env: &Env, buffer: Option<ArrayBuffer>) -> Result<()> {
        let ended = match buffer {
            Some(buffer) => self.end_loan(buffer),
            None => Ok(()),
        };
        self.draft = None;
        run(env, || ended)
    }
}

impl OutputDraft {
    /// The draft, the loan of `buffer` ended.
    fn take(&mut self, buffer: Option<ArrayBuffer>) -> Outcome<Draft> {
        self.draft()?;
        if let Some(buffer) = buffer {
            if let Err(e) = self.end_loan(buffer) {
                // Nothing of it is published: its file goes now.
                self.draft = None;
                return Err(e);
            }
        } else if lock(&self.map).is_some() {
            return Err(Failure::invalid("the buffer that buffer() gave must be passed back"));
        }
        Ok(self.draft.take().expect("checked"))
    }
}

/// What the caller gets of a published draft.
fn published(draft: Draft, stored: Stored, notes: Notes) -> Outcome<Published> {
    let array = draft.into_loaded(&mut memory::own)?;
    Ok(Published { stored: store_outcome(stored, notes_of(notes)), array: LoadedValue::from(array) })
}

/// A failure of the runtime's own (an ArrayBuffer it could not detach, say).
fn js_failure(e: napi::Error) -> Failure {
    Failure::invalid(format!("the output's buffer: {}", e.reason))
}
