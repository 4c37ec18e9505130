//! A result written straight into the cache: the entry's `.npy` made first,
//! at its full length, for the caller to fill through a shared map of it
//! ([`Draft::data_offset`] on); then a tier publishes that file as the
//! entry ([`Tier::publish`](crate::Tier::publish)), with no copy in memory.

use std::fs::File;
use std::path::{Path, PathBuf};

pub use memmap2::MmapMut;
use memmap2::{Mmap, MmapOptions};
use npy_format::Header;

use crate::content::Content;
use crate::entry::{Alloc, Buffer, Filling, LoadedArray};
use crate::{host, Error, Result};

/// An entry's file, laid out and not yet filled or published. Dropped
/// while still its own (not published under an entry's name), it removes
/// its file.
#[derive(Debug)]
pub struct Draft {
    file: File,
    path: PathBuf,
    header: Header,
    data_offset: u64,
    own: bool,
    /// Whether the published array is given mapped.
    map_result: bool,
}

impl Draft {
    /// Creates `path`, which must not exist, holding `header` and then room
    /// for its data, allocated on disk now: a disk too full for it fails
    /// here, not while a shared map of it is written (where it would kill
    /// the process).
    pub fn create(path: PathBuf, header: Header) -> Result<Draft> {
        Draft::create_with_mode(path, header, 0o644)
    }

    fn create_with_mode(path: PathBuf, header: Header, _mode: u32) -> Result<Draft> {
        // Refused before anything is made, as a store refuses it.
        npy_format::check_header(&header)?;
        let preamble = header.encode();
        let len = preamble.len() as u64 + header.data_len()?;
        let mut options = File::options();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, _mode);
        let file = options.open(&path).map_err(Error::io("create", &path))?;
        let draft = Draft { file, path, header, data_offset: preamble.len() as u64, own: true, map_result: true };
        std::io::Write::write_all(&mut &draft.file, &preamble).map_err(Error::io("write", &draft.path))?;
        allocate(&draft.file, len).map_err(Error::io("allocate room for the result in", &draft.path))?;
        Ok(draft)
    }

    /// A draft in the system's temporary directory (`TMPDIR`), for a tier
    /// with no directory of its own on this machine. Readable by its owner
    /// alone, and (on unix) unlinked at once: only its open file is used,
    /// and a killed process leaves nothing behind.
    pub fn in_temp_dir(header: Header) -> Result<Draft> {
        let (host, pid, random) = (host::tag(), std::process::id(), host::random_u64());
        let path = std::env::temp_dir().join(format!("numpy-func-cache-output-{host}-{pid}-{random:016x}.npy"));
        #[allow(unused_mut)]
        let mut draft = Draft::create_with_mode(path, header, 0o600)?;
        #[cfg(unix)]
        if std::fs::remove_file(&draft.path).is_ok() {
            draft.own = false;
        }
        Ok(draft)
    }

    /// Says the array is to be read back, not mapped, once published: its
    /// file may vanish under a map (a network filesystem's).
    pub fn read_back(mut self) -> Draft {
        self.map_result = false;
        self
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Where the data begins in the file (a multiple of 64).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Bytes of data.
    pub fn data_len(&self) -> u64 {
        self.header.data_len().expect("checked when created")
    }

    /// Its data, mapped shared and writable, for the caller to fill: what
    /// is written there is the file's. None for an array of no data.
    ///
    /// # Safety
    /// Nothing may write through the map once the draft is read
    /// ([`filled`](Self::filled), [`Tier::publish`](crate::Tier::publish)),
    /// or the entry would not be what its digest says: the caller drops the
    /// map (or ends every writer's access) before then.
    pub unsafe fn fill_map(&self) -> Result<Option<MmapMut>> {
        if self.data_len() == 0 {
            return Ok(None);
        }
        let len =
            usize::try_from(self.data_len()).map_err(|_| Error::invalid("the output is too large to map here"))?;
        // SAFETY: the draft's file, whose length is fixed, written only through this map.
        let map = unsafe { MmapOptions::new().offset(self.data_offset).len(len).map_mut(&self.file) };
        Ok(Some(map.map_err(Error::io("map", &self.path))?))
    }

    /// The file as it is filled now, mapped for reading: to hash or send.
    pub fn filled(&self) -> Result<Filled> {
        // SAFETY: the draft's file is this process's, and only its data is
        // written (through the caller's map), never its length.
        let map = unsafe { Mmap::map(&self.file) }.map_err(Error::io("map", &self.path))?;
        Ok(Filled { map, header: self.header.clone(), data_offset: self.data_offset as usize })
    }

    /// The array the file holds, as a hit gives it: a private,
    /// copy-on-write map of it (writes to it never reach the file), else,
    /// when it cannot or should not be mapped (no data, too many maps
    /// alive, [`read_back`](Self::read_back)), read into `alloc`'s memory.
    pub fn into_loaded<B: Buffer>(self, alloc: &mut Alloc<'_, B>) -> Result<LoadedArray<B>> {
        if self.map_result {
            if let Some(mapped) = npy_format::map_npy_file(&self.file, &self.path)? {
                return Ok(LoadedArray::Mapped(mapped));
            }
        }
        let mut file = self.file.try_clone().map_err(Error::io("reopen", &self.path))?;
        std::io::Seek::rewind(&mut file).map_err(Error::io("read", &self.path))?;
        let read = npy_format::read_npy_file_into(&mut file, &self.path, |len| alloc(len, Filling::InOrder))?;
        Ok(LoadedArray::Read(read))
    }

    /// Says the file is now an entry's, under another name: dropping the
    /// draft leaves it.
    pub fn published(&mut self) {
        self.own = false;
    }

    /// Whether its file is still the draft's own (not published).
    pub fn is_own(&self) -> bool {
        self.own
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if self.own {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A filled draft, mapped for reading.
#[derive(Debug)]
pub struct Filled {
    map: Mmap,
    header: Header,
    data_offset: usize,
}

impl Filled {
    /// What a store writes of it: the `.npy` it already is.
    pub fn content(&self) -> Result<Content<'_>> {
        Ok(Content::npy(&self.header, &self.map[self.data_offset..])?)
    }
}

/// Allocates `len` bytes for `file` (or, where the filesystem cannot, sets
/// its length: it is then sparse).
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).map_err(|_| std::io::Error::from(std::io::ErrorKind::FileTooLarge))?;
        // SAFETY: an open descriptor; posix_fallocate returns its error rather than setting errno.
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
            0 => return Ok(()),
            libc::EOPNOTSUPP | libc::EINVAL => {}
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
    }
    file.set_len(len)
}
