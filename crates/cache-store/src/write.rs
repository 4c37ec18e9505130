//! Writing an entry: both files under temporary names, the array straight
//! from the caller's memory (hashed meanwhile), then renamed into place,
//! the record last.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cache_core::record::{MAX_FUNCTION_NAME, VERIFY_DATA_UP_TO};
use cache_core::{Content, EntryRow, Error, NewEntry};

use crate::files::EntryFiles;
use crate::layout::{self, Part};

/// An entry written under temporary names, not yet in place. Dropping it
/// unplaced removes its files.
pub(crate) struct Prepared<'a> {
    files: &'a EntryFiles,
    key: &'a str,
    temp_array: PathBuf,
    temp_record: PathBuf,
    /// The block digests' file, for an entry of more than one block.
    temp_blocks: Option<PathBuf>,
    archive: bool,
    pub(crate) row: EntryRow,
    placed: bool,
}

impl Prepared<'_> {
    /// Renames the files into place: the block digests, the array, then
    /// the record, whose presence is what makes an entry a hit.
    pub(crate) fn place(&self) -> Result<(), Error> {
        let (array, record) = (self.files.layout.array(self.key, self.archive), self.files.layout.record(self.key));
        // The data of the other form, from an entry this one replaces, would be a leftover.
        let _ = fs::remove_file(self.files.layout.array(self.key, !self.archive));
        let blocks = self.files.layout.blocks(self.key);
        match &self.temp_blocks {
            Some(temp) => fs::rename(temp, &blocks).map_err(Error::io("rename into place", &blocks))?,
            // Those of an entry this one replaces would not add up to its digest.
            None => {
                let _ = fs::remove_file(&blocks);
            }
        }
        fs::rename(&self.temp_array, &array).map_err(Error::io("rename into place", &array))?;
        fs::rename(&self.temp_record, &record).map_err(Error::io("rename into place", &record))
    }

    pub(crate) fn placed(mut self) {
        self.placed = true;
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.temp_array);
            let _ = fs::remove_file(&self.temp_record);
            if let Some(temp) = &self.temp_blocks {
                let _ = fs::remove_file(temp);
            }
        }
    }
}

/// The bytes an entry's files take, as its index row counts them, known
/// before anything is written: the data file, and the record (whose
/// digests have a fixed length, so zeros measure it).
/// Refused, before anything is written, if `entry` does not describe `content`.
pub(crate) fn entry_len(content: &Content, entry: &NewEntry, now_us: i64, boot: Option<&str>) -> Result<u64, Error> {
    let record = content.record(entry, [0; 32], cache_core::clock::time_of_us(now_us))?.written_in(boot);
    Ok(content.len() + record.encode().len() as u64)
}

impl EntryFiles {
    /// Writes the entry of `key` (a checked key) under temporary names:
    /// the data file straight from the caller's memory, hashed meanwhile,
    /// then its record. With `filled`, the data file is there already
    /// (a draft of this directory's, which `content` maps): it is hashed.
    pub(crate) fn prepare<'a>(
        &'a self,
        key: &'a str,
        content: &Content,
        entry: &NewEntry,
        now_us: i64,
        boot: Option<&str>,
        filled: Option<&Path>,
    ) -> Result<Prepared<'a>, Error> {
        // Refused before anything is written (the record's own check follows, once it is made).
        if entry.function.len() > MAX_FUNCTION_NAME {
            return Err(Error::NameTooLong { len: entry.function.len(), max: MAX_FUNCTION_NAME });
        }
        let archive = content.is_archive();
        let (dtype, shape) = content.described();
        let mut prepared = Prepared {
            files: self,
            key,
            temp_array: filled.map_or_else(|| self.layout.temp(key, layout::data_part(archive)), Path::to_path_buf),
            temp_record: self.layout.temp(key, Part::Record),
            temp_blocks: None,
            archive,
            row: EntryRow {
                key: key.to_owned(),
                function: entry.function.to_owned(),
                dtype,
                shape,
                bytes: 0,
                created: now_us,
                last_used: now_us,
            },
            placed: false,
        };
        let temp_array = &prepared.temp_array;
        let (digest, blocks) = match filled {
            Some(_) => content.body_digests(),
            None => {
                let mut array_file = layout::create_new(temp_array)?;
                // No fsync: a killed process cannot leave a partial file under a
                // real name, and after an OS crash the record's boot makes the
                // first hit check all the data (see `read`).
                let (digests, written) = std::thread::scope(|s| {
                    // A large array is hashed on another thread while this one writes it.
                    let hashing =
                        (content.data_len() > VERIFY_DATA_UP_TO as u64).then(|| s.spawn(|| content.body_digests()));
                    let written = write_content(&mut array_file, content).map_err(Error::io("write", temp_array));
                    let digests = match hashing {
                        Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                        None => content.body_digests(),
                    };
                    (digests, written)
                });
                written?;
                digests
            }
        };
        if let Some(blocks) = blocks {
            let temp = prepared.temp_blocks.insert(self.layout.temp(key, Part::Blocks));
            layout::create_new(temp)?.write_all(&blocks.encode()).map_err(Error::io("write", &*temp))?;
        }
        let record =
            content.record(entry, digest, cache_core::clock::time_of_us(now_us))?.written_in(boot).encode_checked()?;
        let mut record_file = layout::create_new(&prepared.temp_record)?;
        record_file.write_all(&record).map_err(Error::io("write", &prepared.temp_record))?;
        let array_len = fs::metadata(&prepared.temp_array).map_err(Error::io("inspect", &prepared.temp_array))?.len();
        prepared.row.bytes = array_len + record.len() as u64;
        debug_assert_eq!(
            Some(prepared.row.bytes),
            entry_len(content, entry, now_us, boot).ok(),
            "limits judge entries by entry_len"
        );
        Ok(prepared)
    }
}

/// Writes `content` to `file`: its preamble, then each part of its body as
/// the caller's memory holds it.
fn write_content(file: &mut fs::File, content: &Content) -> std::io::Result<()> {
    file.write_all(&content.preamble())?;
    for part in content.body() {
        file.write_all(&part)?;
    }
    Ok(())
}
