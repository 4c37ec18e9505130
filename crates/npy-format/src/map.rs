//! Memory-mapped reading: the data section of a file as memory, no copy.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{MmapMut, MmapOptions};

use crate::{decode_header_bytes, Error, Header, NpzMember};

/// A .npy file mapped into memory. The mapping is private and
/// copy-on-write: writes through it change only this process's pages, never
/// the file, and replacing or unlinking the file leaves the mapping intact.
#[derive(Debug)]
pub struct MappedNpy {
    pub header: Header,
    map: MmapMut,
    offset: usize,
    _live: Live,
}

/// At most this many mappings are alive at once; past it, files are read
/// instead. A quarter of Linux's default `vm.max_map_count` (65530): a
/// program whose mapped arrays await collection (a loop that never
/// yields) must not take the map slots its allocator and runtime need, or
/// their next allocation fails and the process aborts.
pub const MAX_LIVE_MAPS: usize = 16_384;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One live mapping, counted while it exists.
#[derive(Debug)]
struct Live;

impl Live {
    fn take() -> Option<Live> {
        LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_LIVE_MAPS).then_some(n + 1)).ok()?;
        Some(Live)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many mappings are alive in this process.
pub fn live_maps() -> usize {
    LIVE.load(Ordering::Acquire)
}

impl MappedNpy {
    /// The data section.
    pub fn data(&self) -> &[u8] {
        &self.map[self.offset..]
    }

    /// Start of the data section, for handing the memory to foreign code
    /// that keeps this value alive as long as it uses the pointer.
    pub fn data_ptr(&mut self) -> *mut u8 {
        self.map[self.offset..].as_mut_ptr()
    }

    pub fn data_len(&self) -> usize {
        self.map.len() - self.offset
    }

    /// What precedes the data section: the header (an archive's first
    /// member's local header and header).
    pub fn preamble(&self) -> &[u8] {
        &self.map[..self.offset]
    }
}

/// Maps an opened .npy file whose data can be used in place: native byte
/// order, aligned for its element type, non-empty. Returns `Ok(None)` when it
/// cannot, or when [`MAX_LIVE_MAPS`] are alive (the caller reads the file
/// instead) and an error when the file is
/// not a valid .npy file. Every error names the file.
pub fn map_npy_file(file: &File, path: &Path) -> Result<Option<MappedNpy>, Error> {
    map_opened(file).map_err(|e| e.in_file(path))
}

/// Maps an opened archive as [`write_npz_to`](crate::write_npz_to) writes
/// them, when every member can be used in place (native byte order,
/// non-empty). Its [`MappedNpy::data`] is all that follows the first
/// member's preamble, and the members say where each one's data lies in
/// the file (checked as [`aligned_npz_members`](crate::aligned_npz_members)
/// checks them). `Ok(None)` and errors as [`map_npy_file`].
pub fn map_npz_file(file: &File, path: &Path) -> Result<Option<(MappedNpy, Vec<NpzMember>)>, Error> {
    let map_members = || {
        let Some((map, live)) = map_whole(file)? else { return Ok(None) };
        let offset = crate::npz_preamble_len(&map).map_err(|e| match e {
            Error::TruncatedHeader => Error::BadArchive("its first member's header is cut short".into()),
            e => e,
        })? as usize;
        let members = crate::aligned_npz_members(&map[..offset], &map[offset..])?;
        if members.iter().any(|m| m.data_len == 0 || m.header.dtype.needs_swap()) {
            return Ok(None);
        }
        let header = members[0].header.clone();
        Ok(Some((MappedNpy { header, map, offset, _live: live }, members)))
    };
    map_members().map_err(|e: Error| e.in_file(path))
}

/// A private map of all of `file`, and its count among the live ones; None
/// when it is empty or cannot be mapped now.
fn map_whole(file: &File) -> Result<Option<(MmapMut, Live)>, Error> {
    let file_len = crate::file::regular_file_len(file)?;
    if file_len == 0 {
        return Ok(None);
    }
    let Some(live) = Live::take() else { return Ok(None) };
    // SAFETY: the mapping is private; the cache never truncates or rewrites
    // an entry in place (it renames new files over old ones), so the mapped
    // file keeps its length while mapped.
    let mapped = unsafe { MmapOptions::new().map_copy(file) };
    // A mapping can fail for want of address space or map slots (many live
    // mappings): the caller reads the file instead.
    Ok(mapped.ok().map(|map| (map, live)))
}

fn map_opened(file: &File) -> Result<Option<MappedNpy>, Error> {
    let file_len = crate::file::regular_file_len(file)?;
    let Some((map, live)) = map_whole(file)? else { return Ok(None) };
    let (header, offset) = decode_header_bytes(&map)?;
    let expected = header.data_len()?;
    let actual = file_len.saturating_sub(offset);
    if actual != expected {
        return Err(Error::data_len_mismatch(&header, actual, expected));
    }
    let offset = offset as usize;
    if expected == 0 || header.dtype.needs_swap() || !offset.is_multiple_of(header.dtype.scalar_size()) {
        return Ok(None);
    }
    Ok(Some(MappedNpy { header, map, offset, _live: live }))
}
