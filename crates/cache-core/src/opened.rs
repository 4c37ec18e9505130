//! An entry opened for reads of its parts: its record and headers checked,
//! its data not read. Every read fetches the whole blocks its range
//! touches (see [`crate::blocks`]), checks each against the entry's block
//! digests, and returns only the range. A tier gives the entry's file as a
//! [`RangeSource`] (positioned reads of a file, ranged GETs of an object);
//! the checking lives here, once for every tier.

use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use npy_format::{decode_header_bytes, ByteOrder, Header, NpzMember};

use crate::blocks::{has_blocks, BlockDigests, BlockHasher, BLOCK};
use crate::record::EntryRecord;
use crate::{Error, Place, Result};

/// How much of an entry's file an open reads first: any header the cache
/// writes, with room to spare (the longest header allowed takes a second read).
pub const FIRST_READ: u64 = 64 * 1024;

/// An entry's file, read by position.
#[async_trait]
pub trait RangeSource: Send + Sync + Debug {
    /// Fills `dests`, one after another, with the file's bytes from
    /// `offset` on. A file that ends first, or was replaced since it was
    /// opened, is an error ([`Error::Damaged`] or a store's own).
    async fn read_at(&self, offset: u64, dests: &mut [&mut [u8]]) -> Result<()>;

    /// Where the file is, for errors.
    fn place(&self) -> Place;
}

/// What a tier found of an entry to open: its record, its file's first
/// bytes (all of its first array's headers), its length, and its block
/// digests as stored (None when there are none).
#[derive(Debug)]
pub struct Found {
    pub record: Arc<EntryRecord>,
    pub start: Vec<u8>,
    pub file_len: u64,
    pub blocks: Option<Vec<u8>>,
    pub source: Box<dyn RangeSource>,
}

/// An opened entry.
#[derive(Debug)]
pub struct OpenedEntry {
    pub record: Arc<EntryRecord>,
    /// Its array's header (of an archive, its first member's).
    pub header: Header,
    /// An archive's members, offsets in its file; empty for one array.
    pub members: Vec<NpzMember>,
    /// Where its body (all its record's data digest covers) begins in its file.
    body_start: u64,
    body_len: u64,
    stored_blocks: Option<Vec<u8>>,
    blocks: tokio::sync::OnceCell<Option<BlockDigests>>,
    source: Box<dyn RangeSource>,
}

impl OpenedEntry {
    /// Opens what a tier found: Ok(Err(why)) if it is not a whole entry.
    pub async fn open(found: Found) -> Result<std::result::Result<OpenedEntry, String>> {
        let Found { record, start, file_len, blocks, source } = found;
        let archive = record.result.is_archive();
        let decoded = if archive {
            npy_format::npz_member_at(&start, 0).map(|m| (m.header.clone(), m.data, Some(m)))
        } else {
            decode_header_bytes(&start).map(|(h, at)| (h, at, None))
        };
        let (stored, body_start, first) = match decoded {
            Ok(d) => d,
            Err(e) => return Ok(Err(format!("its first array's header is not valid: {e}"))),
        };
        let data_len = match stored.data_len() {
            Ok(n) => n,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let fits =
            body_start.checked_add(data_len).is_some_and(|end| if archive { end <= file_len } else { end == file_len });
        if !fits {
            return Ok(Err(format!(
                "it holds {} bytes of data where its header needs {data_len}",
                file_len.saturating_sub(body_start)
            )));
        }
        let mut opened = OpenedEntry {
            header: Header { dtype: stored.dtype.native(), ..stored.clone() },
            record,
            members: Vec::new(),
            body_start,
            body_len: file_len - body_start,
            stored_blocks: blocks,
            blocks: tokio::sync::OnceCell::new(),
            source,
        };
        match first {
            None => {
                if let Err(why) = opened.record.check(&stored, stored.dtype.byte_order, None) {
                    return Ok(Err(why));
                }
            }
            Some(first) => match opened.walk_members(first).await? {
                Ok(members) => opened.members = members,
                Err(why) => return Ok(Err(why)),
            },
        }
        Ok(Ok(opened))
    }

    /// [`open`](Self::open), a damaged entry as the error that says where and why.
    pub async fn open_found(found: Found) -> Result<std::result::Result<OpenedEntry, Error>> {
        let place = found.source.place();
        Ok(OpenedEntry::open(found).await?.map_err(|reason| Error::Damaged { place, reason }))
    }

    /// An archive's members, each one's headers read (and checked by
    /// block) where the one before it ends, checked against the record.
    /// Small members share blocks: the blocks last read are held, so each
    /// is read and checked once.
    async fn walk_members(&self, first: NpzMember) -> Result<std::result::Result<Vec<NpzMember>, String>> {
        // Headers the cache writes are a few hundred bytes; the longest allowed takes a wider read.
        const FIRST_READ: u64 = 4096;
        let count = self.record.members.len();
        let end = self.body_start + self.body_len;
        let mut held = None;
        let mut members = vec![first];
        while members.len() < count {
            let last = members.last().expect("one at least");
            let at = last.data + last.data_len;
            let mut want = FIRST_READ;
            let found = loop {
                let span = at - self.body_start..(at + want).min(end) - self.body_start;
                let wide = span.end - span.start >= npy_format::MAX_NPZ_PREAMBLE as u64 || span.end == self.body_len;
                match npy_format::npz_member_at(self.checked_span(span, &mut held).await?, at) {
                    Err(npy_format::Error::TruncatedHeader) if !wide => want = npy_format::MAX_NPZ_PREAMBLE as u64,
                    found => break found,
                }
            };
            match found {
                Ok(m) if m.data.checked_add(m.data_len).is_some_and(|e| e <= end) => members.push(m),
                Ok(m) => return Ok(Err(format!("its array {} runs past its end", m.name))),
                Err(e) => return Ok(Err(format!("its archive is not valid: {e}"))),
            }
        }
        if let Err(why) = self.record.check_archive(&members, None) {
            return Ok(Err(why));
        }
        Ok(Ok(members.into_iter().map(|m| NpzMember { header: native(&m.header), ..m }).collect()))
    }

    /// `range` of the body, checked: from `held` (the blocks last read)
    /// when they hold it, else read with the whole blocks around it, which
    /// `held` then keeps.
    async fn checked_span<'h>(
        &self,
        range: Range<u64>,
        held: &'h mut Option<(Range<u64>, Vec<u8>)>,
    ) -> Result<&'h [u8]> {
        let holds = held.as_ref().is_some_and(|(r, _)| r.start <= range.start && range.end <= r.end);
        if !holds {
            let around = if has_blocks(self.body_len) {
                range.start / BLOCK * BLOCK..(range.end.div_ceil(BLOCK) * BLOCK).min(self.body_len)
            } else {
                0..self.body_len
            };
            let bytes = self.read_checked(around.clone()).await?;
            *held = Some((around, bytes));
        }
        let (r, bytes) = held.as_ref().expect("held just now");
        Ok(&bytes[(range.start - r.start) as usize..(range.end - r.start) as usize])
    }

    /// Bytes of its body: all its data digest covers.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Where array `member` (0 for an entry of one array) lies in the body.
    pub fn member_range(&self, member: usize) -> Range<u64> {
        match self.members.get(member) {
            Some(m) => m.data - self.body_start..m.data - self.body_start + m.data_len,
            None => 0..self.header.data_len().unwrap_or(0),
        }
    }

    /// Reads `range` of the body into `dest` (exactly its length), every
    /// block it touches checked.
    pub async fn read_into(&self, range: Range<u64>, dest: &mut [u8]) -> Result<()> {
        if range.end < range.start || range.end > self.body_len || dest.len() as u64 != range.end - range.start {
            return Err(Error::InvalidArgument {
                message: format!("bytes {range:?} are not within the entry's {} bytes of data", self.body_len),
            });
        }
        if range.is_empty() {
            return Ok(());
        }
        let Some(blocks) = self.blocks().await? else {
            // One block: all of it, checked against the data digest.
            let whole = self.read_checked(0..self.body_len).await?;
            dest.copy_from_slice(&whole[range.start as usize..range.end as usize]);
            return Ok(());
        };
        let (first, last) = (range.start / BLOCK, (range.end - 1) / BLOCK);
        let block_range = |i: u64| i * BLOCK..((i + 1) * BLOCK).min(self.body_len);
        // Blocks the range only touches are read into scratch memory; those
        // it covers, straight into `dest`.
        let whole = |i: u64| {
            let b = block_range(i);
            range.start <= b.start && b.end <= range.end
        };
        let lo = if whole(first) { first } else { first + 1 };
        let hi = if last > first && !whole(last) { last } else { last + 1 };
        let covered = if lo < hi { block_range(lo).start..block_range(hi - 1).end } else { 0..0 };
        let scratch = |i: u64| vec![0; (block_range(i).end - block_range(i).start) as usize];
        let mut head = if whole(first) { Vec::new() } else { scratch(first) };
        let mut tail = if last > first && !whole(last) { scratch(last) } else { Vec::new() };
        let middle_at = (covered.start.max(range.start) - range.start) as usize;
        let middle = &mut dest[middle_at..middle_at + (covered.end - covered.start) as usize];
        {
            let mut dests: Vec<&mut [u8]> = Vec::with_capacity(3);
            if !head.is_empty() {
                dests.push(&mut head);
            }
            if !middle.is_empty() {
                dests.push(middle);
            }
            if !tail.is_empty() {
                dests.push(&mut tail);
            }
            self.source.read_at(self.body_start + block_range(first).start, &mut dests).await?;
        }
        let check = |i: u64, bytes: &[u8]| {
            if blocks.holds(i, bytes) {
                Ok(())
            } else {
                let b = block_range(i);
                Err(self.damaged(format!("its data at bytes {}..{} does not match its block digest", b.start, b.end)))
            }
        };
        if !head.is_empty() {
            check(first, &head)?;
        }
        if !tail.is_empty() {
            check(last, &tail)?;
        }
        let middle = &dest[middle_at..middle_at + (covered.end - covered.start) as usize];
        for (n, bytes) in middle.chunks(BLOCK as usize).enumerate() {
            check(covered.start / BLOCK + n as u64, bytes)?;
        }
        if !head.is_empty() {
            let b = block_range(first);
            let to = (b.end.min(range.end) - range.start) as usize;
            dest[..to].copy_from_slice(&head[(range.start - b.start) as usize..(range.start - b.start) as usize + to]);
        }
        if !tail.is_empty() {
            let b = block_range(last);
            let from = (b.start - range.start) as usize;
            let n = (range.end - b.start) as usize;
            dest[from..from + n].copy_from_slice(&tail[..n]);
        }
        Ok(())
    }

    /// `range` of the body in memory of its own, checked.
    async fn read_checked(&self, range: Range<u64>) -> Result<Vec<u8>> {
        if !has_blocks(self.body_len) {
            let mut whole = vec![0; self.body_len as usize];
            self.source.read_at(self.body_start, &mut [&mut whole]).await?;
            if blake3::hash(&whole).as_bytes() != &self.record.data_digest {
                return Err(self.damaged("its data does not match the digest stored with it".into()));
            }
            // The range, in place: no second copy of the body.
            whole.truncate(range.end as usize);
            whole.drain(..range.start as usize);
            return Ok(whole);
        }
        let mut out = vec![0; (range.end - range.start) as usize];
        Box::pin(self.read_into(range, &mut out)).await?;
        Ok(out)
    }

    /// The block digests: as stored, or (missing, or not of this data)
    /// made once from the whole body.
    async fn blocks(&self) -> Result<Option<&BlockDigests>> {
        if !has_blocks(self.body_len) {
            return Ok(None);
        }
        let made = self
            .blocks
            .get_or_try_init(|| async {
                let stored = self
                    .stored_blocks
                    .as_deref()
                    .map(|bytes| BlockDigests::decode(bytes, self.body_len, &self.record.data_digest));
                if let Some(Ok(blocks)) = stored {
                    return Ok(Some(blocks));
                }
                self.hash_whole_body().await.map(Some)
            })
            .await?;
        Ok(made.as_ref())
    }

    /// Block digests from every byte of the body, checked against the record.
    async fn hash_whole_body(&self) -> Result<BlockDigests> {
        const PIECE: u64 = 8 * BLOCK;
        let mut hasher = BlockHasher::new(self.body_len);
        let mut piece = vec![0; PIECE.min(self.body_len) as usize];
        let mut at = 0;
        while at < self.body_len {
            let n = PIECE.min(self.body_len - at) as usize;
            self.source.read_at(self.body_start + at, &mut [&mut piece[..n]]).await?;
            hasher.update(&piece[..n]);
            at += n as u64;
        }
        match hasher.finish() {
            Some((digest, Some(blocks))) if digest == self.record.data_digest => Ok(blocks),
            _ => Err(self.damaged("its data does not match the digest stored with it".into())),
        }
    }

    fn damaged(&self, reason: String) -> Error {
        Error::Damaged { place: self.source.place(), reason }
    }
}

fn native(header: &Header) -> Header {
    debug_assert!(header.dtype.item_size <= 1 || header.dtype.byte_order == ByteOrder::NATIVE);
    Header { dtype: header.dtype.native(), ..header.clone() }
}
