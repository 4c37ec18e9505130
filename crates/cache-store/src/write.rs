//! Writing an entry: both files under temporary names, the array straight
//! from the caller's memory (hashed meanwhile), then renamed into place,
//! the record last.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use cache_core::record::{self, MAX_FUNCTION_NAME, VERIFY_DATA_UP_TO};
use cache_core::{EntryRecord, EntryRow, Error, NewEntry};
use npy_format::Header;

use crate::files::EntryFiles;
use crate::layout::{self, Part};

/// An entry written under temporary names, not yet in place. Dropping it
/// unplaced removes its files.
pub(crate) struct Prepared<'a> {
    files: &'a EntryFiles,
    key: &'a str,
    temp_array: PathBuf,
    temp_record: PathBuf,
    pub(crate) row: EntryRow,
    placed: bool,
}

impl Prepared<'_> {
    /// Renames the files into place: the array, then the record, whose
    /// presence is what makes an entry a hit.
    pub(crate) fn place(&self) -> Result<(), Error> {
        let (array, record) = (self.files.layout.array(self.key), self.files.layout.record(self.key));
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
        }
    }
}

/// The bytes an entry's files take, as its index row counts them, known
/// before anything is written: the `.npy`, and the record (whose digests
/// have a fixed length, so zeros measure it).
pub(crate) fn entry_len(header: &Header, data: &[u8], entry: &NewEntry, now_us: i64, boot: Option<&str>) -> u64 {
    let record = EntryRecord::new(entry, header, [0; 32], cache_core::clock::time_of_us(now_us)).written_in(boot);
    (header.encode().len() + data.len() + record.encode().len()) as u64
}

impl EntryFiles {
    /// Writes the entry of `key` (a checked key) under temporary names:
    /// the array straight from `data`, hashed meanwhile, then its record.
    pub(crate) fn prepare<'a>(
        &'a self,
        key: &'a str,
        header: &Header,
        data: &[u8],
        entry: &NewEntry,
        now_us: i64,
        boot: Option<&str>,
    ) -> Result<Prepared<'a>, Error> {
        // Refused before anything is written (the record's own check follows, once it is made).
        if entry.function.len() > MAX_FUNCTION_NAME {
            return Err(Error::NameTooLong { len: entry.function.len(), max: MAX_FUNCTION_NAME });
        }
        let mut prepared = Prepared {
            files: self,
            key,
            temp_array: self.layout.temp(key, Part::Array),
            temp_record: self.layout.temp(key, Part::Record),
            row: EntryRow {
                key: key.to_owned(),
                function: entry.function.to_owned(),
                dtype: header.dtype.descr(),
                shape: header.shape.clone(),
                bytes: 0,
                created: now_us,
                last_used: now_us,
            },
            placed: false,
        };
        let mut array_file = layout::create_new(&prepared.temp_array)?;
        let temp_array = &prepared.temp_array;
        // No fsync: a killed process cannot leave a partial file under a
        // real name, and after an OS crash the record's boot makes the
        // first hit check all the data (see `read`).
        let (digest, written) = std::thread::scope(|s| {
            // A large array is hashed on another thread while this one writes it.
            let hashing = (data.len() > VERIFY_DATA_UP_TO).then(|| s.spawn(|| record::data_digest(data)));
            let written = npy_format::write_npy_to(&mut array_file, header, data).map_err(|e| match e {
                // A failed write (a full disk) names the file it failed on.
                npy_format::Error::Io { action, source } => {
                    Error::Io { action, path: temp_array.to_path_buf(), source }
                }
                e => Error::from(e),
            });
            let digest = match hashing {
                Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                None => record::data_digest(data),
            };
            (digest, written)
        });
        written?;
        let record = EntryRecord::new(entry, header, digest, cache_core::clock::time_of_us(now_us))
            .written_in(boot)
            .encode_checked()?;
        let mut record_file = layout::create_new(&prepared.temp_record)?;
        record_file.write_all(&record).map_err(Error::io("write", &prepared.temp_record))?;
        let array_len = array_file.metadata().map_err(Error::io("inspect", &prepared.temp_array))?.len();
        prepared.row.bytes = array_len + record.len() as u64;
        debug_assert_eq!(
            prepared.row.bytes,
            entry_len(header, data, entry, now_us, boot),
            "limits judge entries by entry_len"
        );
        Ok(prepared)
    }
}
