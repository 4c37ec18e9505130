//! What an operation noticed and got past: a damaged entry read as a miss,
//! a store that could not be read or written so the call went on without
//! it. Bindings turn notes into their events (the JS package's
//! `damagedEntry` and `storeError`); the operation itself succeeds.

use crate::Error;

/// One thing noticed.
#[derive(Debug)]
pub struct Note {
    pub kind: NoteKind,
    /// The failure itself.
    pub error: Error,
    /// Which tier, as users know it: its location, or "the local tier of <location>".
    pub tier: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// An entry failed its checks: it was a miss, and the next store replaces it.
    Damaged,
    /// The tier could not be read (after its retries), so the call went on without it.
    Unavailable,
    /// A result could not be stored there; the call returned it all the same.
    StoreFailed,
}

/// The notes of one operation.
pub type Notes = Vec<Note>;
