//! Block digests: an entry's body (what its record's `dataDigest` covers)
//! cut into blocks of [`BLOCK`] bytes, each a subtree of BLAKE3's tree
//! (as Bao cuts it), so a part of the body is checked by hashing only the
//! blocks it covers.
//!
//! The chaining values of the blocks are kept beside the entry, as its
//! *block digests* (`<key>.blocks`), for bodies of more than one block:
//!
//! ```text
//! "NFCBLOCK" | version u8 (1) | log2(block) u8 | 6 zero bytes | body length u64 LE | 32-byte chaining values
//! ```
//!
//! They need no trust: merged up BLAKE3's tree they give its root, which
//! must be the record's `dataDigest` ([`BlockDigests::decode`] checks it),
//! so a planted, stale or cut file of block digests is refused, never
//! believed.

use blake3::hazmat::{left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};

use crate::record::Digest;

/// The bytes of a block: a read of part of an entry hashes whole blocks,
/// so a row costs at most two blocks more than its own bytes, and a 4 GiB
/// body has 128 KiB of block digests.
pub const BLOCK: u64 = 1 << 20;

const MAGIC: &[u8; 8] = b"NFCBLOCK";
const VERSION: u8 = 1;
const HEAD: usize = 24;

/// Whether `block` can cut data into subtrees.
pub fn usable(block: u64) -> bool {
    block.is_power_of_two() && block >= blake3::CHUNK_LEN as u64
}

/// The chaining value of the block at `offset` (a multiple of the block
/// size) of data longer than one block.
pub fn block_cv(offset: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    if bytes.len() >= 1 << 18 {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
    hasher.finalize_non_root()
}

/// The digest of `len` bytes (more than one block) from the chaining values
/// of its blocks, in order.
pub fn root(len: u64, block: u64, cvs: &[ChainingValue]) -> Digest {
    let (left, right) = split(0, len, block, cvs);
    *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
}

/// The two halves' chaining values of the subtree [at, at + len).
fn split(at: u64, len: u64, block: u64, cvs: &[ChainingValue]) -> (ChainingValue, ChainingValue) {
    let left = left_subtree_len(len);
    (subtree(at, left, block, cvs), subtree(at + left, len - left, block, cvs))
}

fn subtree(at: u64, len: u64, block: u64, cvs: &[ChainingValue]) -> ChainingValue {
    if len <= block {
        return cvs[(at / block) as usize];
    }
    let (left, right) = split(at, len, block, cvs);
    merge_subtrees_non_root(&left, &right, Mode::Hash)
}

/// The block digests of one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDigests {
    body_len: u64,
    cvs: Vec<ChainingValue>,
}

/// Whether a body of `len` bytes has block digests (more than one block).
pub fn has_blocks(len: u64) -> bool {
    len > BLOCK
}

impl BlockDigests {
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The digest of the whole body.
    pub fn root(&self) -> Digest {
        root(self.body_len, BLOCK, &self.cvs)
    }

    /// Whether `bytes`, the body's block `index`, are as digested.
    pub fn holds(&self, index: u64, bytes: &[u8]) -> bool {
        let at = index * BLOCK;
        let expected = (self.body_len - at).min(BLOCK);
        bytes.len() as u64 == expected && self.cvs.get(index as usize) == Some(&block_cv(at, bytes))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 32 * self.cvs.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(BLOCK.trailing_zeros() as u8);
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&self.body_len.to_le_bytes());
        for cv in &self.cvs {
            out.extend_from_slice(cv);
        }
        out
    }

    /// Block digests read back, accepted only if they are of a body of
    /// `body_len` bytes whose digest is `data_digest`.
    pub fn decode(bytes: &[u8], body_len: u64, data_digest: &Digest) -> Result<BlockDigests, String> {
        if bytes.len() < HEAD || &bytes[..8] != MAGIC {
            return Err("they do not start as block digests".into());
        }
        if bytes[8] != VERSION {
            return Err(format!("they are of version {}, not {VERSION}", bytes[8]));
        }
        // Only this version's block size: a larger one, which anyone could
        // compute, would make every read of a row read that much.
        if u32::from(bytes[9]) != BLOCK.trailing_zeros() {
            return Err(format!("their block size 2^{} is not this version's, 2^{}", bytes[9], BLOCK.trailing_zeros()));
        }
        let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if len != body_len {
            return Err(format!("they are of {len} bytes of data, not {body_len}"));
        }
        if len <= BLOCK {
            return Err("they are of data of one block, which has none".into());
        }
        let count = len.div_ceil(BLOCK);
        let need = count.checked_mul(32).filter(|&n| n == (bytes.len() - HEAD) as u64);
        if need.is_none() {
            return Err(format!(
                "they hold {} bytes where {count} blocks need {}",
                bytes.len() - HEAD,
                count.saturating_mul(32)
            ));
        }
        let cvs = bytes[HEAD..].chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
        let digests = BlockDigests { body_len, cvs };
        if &digests.root() != data_digest {
            return Err("they do not add up to the record's data digest".into());
        }
        Ok(digests)
    }

    /// The longest block digests of a body of `body_len` bytes that this
    /// version reads (of its own block size).
    pub fn encoded_len(body_len: u64) -> u64 {
        HEAD as u64 + 32 * body_len.div_ceil(BLOCK)
    }
}

/// Hashes a body fed in pieces of any size into its block digests: what a
/// store feeds the body it writes through, and a read of an entry without
/// block digests feeds the whole body through.
#[derive(Debug)]
pub struct BlockHasher {
    at: u64,
    hasher: blake3::Hasher,
    /// The whole body's hasher, for a body of one block.
    whole: blake3::Hasher,
    cvs: Vec<ChainingValue>,
    body_len: u64,
}

impl BlockHasher {
    /// For a body of `body_len` bytes.
    pub fn new(body_len: u64) -> BlockHasher {
        BlockHasher { at: 0, hasher: blake3::Hasher::new(), whole: blake3::Hasher::new(), cvs: Vec::new(), body_len }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        if !has_blocks(self.body_len) {
            self.whole.update(bytes);
            self.at += bytes.len() as u64;
            return;
        }
        while !bytes.is_empty() {
            let in_block = self.at % BLOCK;
            let take = ((BLOCK - in_block) as usize).min(bytes.len());
            if take >= 1 << 18 {
                self.hasher.update_rayon(&bytes[..take]);
            } else {
                self.hasher.update(&bytes[..take]);
            }
            self.at += take as u64;
            bytes = &bytes[take..];
            if self.at.is_multiple_of(BLOCK) || self.at == self.body_len {
                self.end_block();
            }
        }
    }

    fn end_block(&mut self) {
        let mut next = blake3::Hasher::new();
        if self.at < self.body_len {
            next.set_input_offset(self.at);
        }
        self.cvs.push(std::mem::replace(&mut self.hasher, next).finalize_non_root());
    }

    /// The body's digest, and its block digests when it has them; None if
    /// it was fed more or less than its length.
    pub fn finish(self) -> Option<(Digest, Option<BlockDigests>)> {
        if self.at != self.body_len {
            return None;
        }
        if !has_blocks(self.body_len) {
            return Some((*self.whole.finalize().as_bytes(), None));
        }
        let digests = BlockDigests { body_len: self.body_len, cvs: self.cvs };
        Some((digests.root(), Some(digests)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
    }

    #[test]
    fn the_digest_from_blocks_is_blake3_of_the_whole() {
        let block = 4096u64;
        let data = data(100_000);
        for len in [4097usize, 5000, 8191, 8192, 8193, 12288, 16385, 40_000, 65_536, 65_537, 100_000] {
            let data = &data[..len];
            let cvs: Vec<ChainingValue> =
                data.chunks(block as usize).enumerate().map(|(i, b)| block_cv(i as u64 * block, b)).collect();
            assert_eq!(&root(len as u64, block, &cvs), blake3::hash(data).as_bytes(), "length {len}");
        }
        assert!(usable(16 << 20) && !usable(3 << 20) && !usable(512));
    }

    #[test]
    fn a_body_fed_in_any_pieces_gives_its_digest_and_block_digests_that_check_it() {
        let body = data(3 * BLOCK as usize + 12_345);
        for cut in [1usize, 7, 4096, BLOCK as usize - 1, BLOCK as usize, 2 * BLOCK as usize + 3] {
            let mut hasher = BlockHasher::new(body.len() as u64);
            let (a, b) = body.split_at(cut);
            hasher.update(a);
            hasher.update(b);
            let (digest, blocks) = hasher.finish().unwrap();
            assert_eq!(&digest, blake3::hash(&body).as_bytes(), "cut at {cut}");
            let blocks = blocks.unwrap();
            for (i, bytes) in body.chunks(BLOCK as usize).enumerate() {
                assert!(blocks.holds(i as u64, bytes));
            }
            let mut flipped = body[..BLOCK as usize].to_vec();
            flipped[777] ^= 1;
            assert!(!blocks.holds(0, &flipped) && !blocks.holds(1, &body[..BLOCK as usize]));
            assert_eq!(BlockDigests::decode(&blocks.encode(), body.len() as u64, &digest).unwrap(), blocks);
        }
        let small = data(BLOCK as usize);
        let mut hasher = BlockHasher::new(small.len() as u64);
        hasher.update(&small);
        assert_eq!(hasher.finish().unwrap(), (*blake3::hash(&small).as_bytes(), None));
        let mut short = BlockHasher::new(10);
        short.update(b"12345");
        assert!(short.finish().is_none());
    }

    #[test]
    fn block_digests_that_do_not_add_up_to_the_record_are_refused_saying_why() {
        let body = data(2 * BLOCK as usize + 1);
        let mut hasher = BlockHasher::new(body.len() as u64);
        hasher.update(&body);
        let (digest, blocks) = hasher.finish().unwrap();
        let good = blocks.unwrap().encode();
        let len = body.len() as u64;
        let refused = |bytes: &[u8], len: u64| BlockDigests::decode(bytes, len, &digest).unwrap_err();
        let mut flipped = good.clone();
        flipped[HEAD + 40] ^= 1;
        assert!(refused(&flipped, len).contains("data digest"));
        assert!(refused(&good[..good.len() - 1], len).contains("need"));
        assert!(refused(&good, len + 1).contains("not"));
        assert!(refused(b"NFCBLOC", len).contains("start"));
        let mut newer = good.clone();
        newer[8] = 2;
        assert!(refused(&newer, len).contains("version 2"));
        let mut coarser = good.clone();
        coarser[9] = 30;
        assert!(refused(&coarser, len).contains("block size 2^30"));
        assert!(BlockDigests::decode(&good, len, &[0; 32]).is_err());
    }

    /// The golden block digests: a change to the format fails here.
    #[test]
    fn block_digests_are_the_golden_ones() {
        let v: serde_json::Value = serde_json::from_str(include_str!("../../../test-vectors/blocks.json")).unwrap();
        let len = v["bodyLen"].as_u64().unwrap();
        // The golden body: byte i is (i * 31 + 7) mod 251.
        let body: Vec<u8> = (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect();
        let mut hasher = BlockHasher::new(len);
        hasher.update(&body);
        let (digest, blocks) = hasher.finish().unwrap();
        let encoded = blocks.unwrap().encode();
        if std::env::var_os("NFC_WRITE_VECTORS").is_some() {
            let out = serde_json::json!({
                "bodyLen": len,
                "body": "byte i is (i * 31 + 7) mod 251",
                "dataDigest": hex(&digest),
                "blocks": hex(&encoded),
            });
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors/blocks.json");
            std::fs::write(path, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
            return;
        }
        assert_eq!(hex(&digest), v["dataDigest"].as_str().unwrap());
        assert_eq!(hex(&encoded), v["blocks"].as_str().unwrap());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
