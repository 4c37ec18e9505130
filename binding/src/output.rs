//! `OutputDraft`: a result written straight into the cache
//! (`cache_core::Draft`), as JS sees it. Its data is lent to JS as a
//! writable ArrayBuffer over a shared map of the entry's file; once the
//! function has filled it, the buffer is detached, so that no later write
//! reaches the file, and the tier publishes the file.

use std::sync::Arc;

use napi::bindgen_prelude::*;

use cache_core::draft::MmapMut;
use cache_core::{Draft, Key, Notes, Stored, Tier};

use crate::calls::{inline, run, spawn};
use crate::errors::{Failure, Outcome};
use crate::memory::{self, ArrayMemory};
use crate::values::{notes_of, store_outcome, EntryArg, LoadedValue, OwnedEntry, StoreOutcome};

type Shared = Arc<dyn Tier<ArrayMemory>>;

/// The draft's data lent to JS: the map, owned here (never by the buffer's
/// finalizer, which a runtime may run at once or while the memory is still
/// reachable elsewhere), and the buffer JS was given.
struct Loan {
    map: MmapMut,
    /// Where JS's buffer holds its bytes: the map's, or, where the runtime
    /// copied the external buffer, memory of its own.
    js_ptr: usize,
    len: usize,
}

impl Loan {
    fn copied(&self) -> bool {
        self.js_ptr != self.map.as_ptr() as usize
    }

    /// Lets go of the map: unmapped only where no JS buffer can still
    /// reach it (a copy was lent, or the buffer was detached by us);
    /// otherwise kept as long as the process lives.
    fn release(self, unmap: bool) {
        if unmap || self.copied() {
            drop(self.map)
        } else {
            std::mem::forget(self.map)
        }
    }
}

/// An entry's file to fill, then publish or discard.
#[napi]
pub struct OutputDraft {
    tier: Shared,
    key: Key,
    draft: Option<Draft>,
    loan: Option<Loan>,
    /// What making the draft noticed (a tier that could not make it: the
    /// draft is then a file of its own), reported with the publish.
    notes: Notes,
}

impl Drop for OutputDraft {
    fn drop(&mut self) {
        // A loan never ended (its buffer may be alive): never unmapped.
        if let Some(loan) = self.loan.take() {
            loan.release(false);
        }
    }
}

/// A published draft: what the store did, and the array as the caller gets it.
#[napi(object, object_from_js = false)]
pub struct Published {
    pub stored: StoreOutcome,
    pub array: LoadedValue,
}

impl OutputDraft {
    pub(crate) fn new(tier: Shared, key: Key, draft: Draft, notes: Notes) -> OutputDraft {
        OutputDraft { tier, key, draft: Some(draft), loan: None, notes }
    }

    fn draft(&self) -> Outcome<&Draft> {
        self.draft.as_ref().ok_or_else(|| Failure::invalid("the output was published or discarded already"))
    }

    /// Ends the loan of `buffer`, which must be the one `buffer()` gave:
    /// its bytes in the file (copied there if the runtime lent a copy), the
    /// buffer detached so that JS writes no more, the map unmapped. Refused
    /// if the buffer was detached meanwhile (moved elsewhere, whose holder
    /// may still write it): the map is then kept as long as the process
    /// lives, and nothing is stored.
    fn end_loan(&mut self, buffer: ArrayBuffer) -> Outcome<()> {
        let Some(mut loan) = self.loan.take() else {
            return match buffer.is_empty() {
                true => Ok(()),
                false => Err(Failure::invalid("this output lent no buffer of that length")),
            };
        };
        if buffer.is_detached().map_err(js_failure)? {
            loan.release(false);
            return Err(Failure::invalid(
                "the output array's buffer was detached while the function filled it (moved into a byte stream or \
                 transferred, say), so nothing was stored; fill it in place",
            ));
        }
        if buffer.as_ptr() as usize != loan.js_ptr || buffer.len() != loan.len {
            self.loan = Some(loan);
            return Err(Failure::invalid("this output lent another buffer: pass back the one buffer() gave"));
        }
        if loan.copied() {
            loan.map.copy_from_slice(&buffer);
        }
        // Bun finalizes a buffer as it detaches it: its finalizer owns nothing.
        match buffer.detach() {
            Ok(()) => {
                loan.release(true);
                Ok(())
            }
            // A copy lent, the file has its bytes: later writes to the copy reach nothing.
            Err(_) if loan.copied() => {
                loan.release(true);
                Ok(())
            }
            Err(e) => {
                loan.release(false);
                Err(js_failure(e))
            }
        }
    }
}

#[napi]
impl OutputDraft {
    /// The writable ArrayBuffer over the draft's data (its length: the
    /// data's bytes). Given once.
    #[napi(catch_unwind)]
    pub fn buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>> {
        let map = run(env, || {
            if self.loan.is_some() {
                return Err(Failure::invalid("the output's buffer was given already"));
            }
            // SAFETY: the map is owned by `self.loan` until the loan ends (the buffer detached) or
            // forever; the file is written through it alone, and read only after the loan ends.
            Ok(unsafe { self.draft()?.fill_map()? })
        })?;
        let Some(mut map) = map else { return ArrayBuffer::copy_from(env, Vec::<u8>::new()) };
        let (ptr, len) = (map.as_mut_ptr(), map.len());
        // SAFETY: the map outlives the buffer's use of it (see `Loan::release`).
        let buffer = unsafe { ArrayBuffer::from_external(env, ptr, len, (), |_, ()| {}) };
        let buffer = match buffer {
            Ok(buffer) => buffer,
            Err(e) => {
                // The runtime may or may not hold the pointer: the map is kept.
                std::mem::forget(map);
                return Err(e);
            }
        };
        self.loan = Some(Loan { js_ptr: buffer.as_ptr() as usize, len, map });
        Ok(buffer)
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
        match buffer {
            Some(buffer) => {
                if let Err(e) = self.end_loan(buffer) {
                    // Nothing of it is published: its file goes now.
                    if self.loan.is_none() {
                        self.draft = None;
                    }
                    return Err(e);
                }
            }
            None if self.loan.is_some() => {
                return Err(Failure::invalid("the buffer that buffer() gave must be passed back"));
            }
            None => {}
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
