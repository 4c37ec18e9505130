//! The BLAKE3 digest of an array's data from digests of its blocks, so each
//! ranged GET hashes its own block as soon as it lands (on its own thread)
//! instead of the whole array being hashed after the last byte. Blocks are
//! `block` bytes (a power of two, at least a chunk) at multiples of
//! `block`: each is a subtree of BLAKE3's tree, and the tree above them is
//! rebuilt by the same left-complete splits BLAKE3 makes. The result is
//! `blake3::hash` of the whole, which the tests check for many lengths.

use blake3::hazmat::{left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};

/// Whether `block` can cut data into subtrees.
pub(crate) fn usable(block: u64) -> bool {
    block.is_power_of_two() && block >= blake3::CHUNK_LEN as u64
}

/// The chaining value of the block at `offset` (a multiple of the block
/// size) of data longer than one block.
pub(crate) fn block_cv(offset: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// The digest of `len` bytes (more than one block) from the chaining values
/// of its blocks, in order.
pub(crate) fn root(len: u64, block: u64, cvs: &[ChainingValue]) -> [u8; 32] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_from_blocks_is_blake3_of_the_whole() {
        let block = 4096u64;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in [4097usize, 5000, 8191, 8192, 8193, 12288, 16385, 40_000, 65_536, 65_537, 100_000] {
            let data = &data[..len];
            let cvs: Vec<ChainingValue> =
                data.chunks(block as usize).enumerate().map(|(i, b)| block_cv(i as u64 * block, b)).collect();
            assert_eq!(&root(len as u64, block, &cvs), blake3::hash(data).as_bytes(), "length {len}");
        }
        assert!(usable(16 << 20) && !usable(3 << 20) && !usable(512));
    }
}
