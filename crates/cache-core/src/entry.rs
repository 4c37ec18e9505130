//! An entry as a load returns it, and the memory its array is read into.

use std::sync::Arc;

use npy_format::{AlignedBuf, ByteOrder, Header, MappedNpy, NpyArray, NpzMember};

use crate::notes::{Note, NoteKind, Notes};
use crate::record::EntryRecord;
use crate::Error;

/// Memory an array can be read into: the caller's allocator makes it (see
/// [`Alloc`]), the tier fills every byte, and the caller gets it back.
pub trait Buffer: AsRef<[u8]> + AsMut<[u8]> + Send + 'static {}

impl<B: AsRef<[u8]> + AsMut<[u8]> + Send + 'static> Buffer for B {}

/// The caller's allocator: called with the data's length (at most twice in
/// one load: a read that races a store is retried) and how the tier will
/// fill it. The memory's contents do not matter; a hit has overwritten
/// every byte.
pub type Alloc<'a, B> = dyn FnMut(usize, Filling) -> Result<B, npy_format::Error> + Send + 'a;

/// How a tier fills the memory it asks for, so an allocator can ready it:
/// fresh memory costs a page fault per page on first write, taken faster in
/// one go before a single reader, and in parallel by many writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filling {
    /// One reader, from start to end (a file read).
    InOrder,
    /// Many writers at once, each its own part (ranged downloads).
    InParallel,
}

/// The allocator of fresh, zeroed Rust memory.
pub fn zeroed(len: usize, filling: Filling) -> Result<AlignedBuf, npy_format::Error> {
    match filling {
        Filling::InOrder => AlignedBuf::zeroed(len),
        Filling::InParallel => AlignedBuf::zeroed_lazily(len),
    }
}

/// A stored entry read back and checked.
#[derive(Debug)]
pub struct Entry<B = AlignedBuf> {
    /// One array; of an archive, its first member's header (native) over
    /// all that follows its preamble (the body, see [`crate::content`]).
    pub array: LoadedArray<B>,
    pub record: Arc<EntryRecord>,
    /// An archive's members (headers native, offsets in its file); empty
    /// for one array.
    pub members: Vec<NpzMember>,
}

impl<B: AsRef<[u8]>> Entry<B> {
    /// Member `i`'s data, in the loaded body.
    pub fn member_data(&self, i: usize) -> &[u8] {
        &self.array.data()[crate::content::member_range(&self.members, i)]
    }

    /// The content to store this entry again elsewhere.
    pub fn content(&self) -> crate::Content<'_> {
        crate::Content::of_loaded(self.array.header(), self.array.data(), &self.members)
    }
}

/// An entry's array: read into memory of its own, or mapped from its file.
#[derive(Debug)]
pub enum LoadedArray<B = AlignedBuf> {
    Read(NpyArray<B>),
    Mapped(MappedNpy),
}

impl<B: AsRef<[u8]>> LoadedArray<B> {
    pub fn header(&self) -> &Header {
        match self {
            LoadedArray::Read(a) => &a.header,
            LoadedArray::Mapped(m) => &m.header,
        }
    }

    pub fn data(&self) -> &[u8] {
        match self {
            LoadedArray::Read(a) => a.data.as_ref(),
            LoadedArray::Mapped(m) => m.data(),
        }
    }

    /// The byte order the data was stored in (it is native now).
    pub fn stored_order(&self) -> ByteOrder {
        match self {
            LoadedArray::Read(a) => a.stored_order,
            // Only native-order data is mapped.
            LoadedArray::Mapped(_) => ByteOrder::NATIVE,
        }
    }
}

/// What one tier's read of an entry found.
#[derive(Debug)]
pub enum Lookup<B = AlignedBuf> {
    Hit(Entry<B>),
    /// No entry, only part of one (an interrupted store), or one written
    /// by another version of the cache.
    Miss,
    /// Data is there but does not form an entry: a miss, which the next
    /// store replaces.
    Damaged(Error),
}

impl<B> Lookup<B> {
    /// The entry of a hit; a damaged entry becomes a note of `tier`'s.
    pub fn into_entry(self, notes: &mut Notes, tier: &str) -> Option<Entry<B>> {
        match self {
            Lookup::Hit(entry) => Some(entry),
            Lookup::Miss => None,
            Lookup::Damaged(error) => {
                notes.push(Note { kind: NoteKind::Damaged, error, tier: tier.to_owned() });
                None
            }
        }
    }
}
