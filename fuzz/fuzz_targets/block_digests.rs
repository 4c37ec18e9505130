//! Block digests (`cache_core::blocks`) on arbitrary bytes.
//!
//! The input is a body length (8 bytes), a data digest (32 bytes), then
//! bytes taken as stored block digests; what follows a cut point is also
//! hashed as a body, fed in two pieces.
//!
//! Properties:
//! - `BlockDigests::decode` never panics, and what it accepts encodes back
//!   to exactly the input and adds up to the digest given;
//! - a body fed to `BlockHasher` in any two pieces gives BLAKE3 of the
//!   whole, and block digests that decode against that digest and hold
//!   every block of the body.
#![no_main]

use cache_core::blocks::{BlockDigests, BlockHasher, BLOCK};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 41 {
        return;
    }
    let body_len = u64::from_le_bytes(data[..8].try_into().unwrap());
    let digest: [u8; 32] = data[8..40].try_into().unwrap();
    let cut = usize::from(data[40]);
    let rest = &data[41..];
    if let Ok(blocks) = BlockDigests::decode(rest, body_len, &digest) {
        assert_eq!(blocks.encode(), rest, "accepted block digests encode back to themselves");
        assert_eq!(blocks.root(), digest);
    }
    // A body of more than a block, from the input repeated.
    let body: Vec<u8> = rest.iter().copied().cycle().take(BLOCK as usize + rest.len() * 97).collect();
    if body.is_empty() {
        return;
    }
    let at = (cut * 4099) % body.len();
    let mut hasher = BlockHasher::new(body.len() as u64);
    hasher.update(&body[..at]);
    hasher.update(&body[at..]);
    let (whole, blocks) = hasher.finish().expect("fed its whole length");
    assert_eq!(&whole, blake3::hash(&body).as_bytes());
    let blocks = blocks.expect("more than a block has block digests");
    let decoded = BlockDigests::decode(&blocks.encode(), body.len() as u64, &whole).expect("its own digests decode");
    for (i, b) in body.chunks(BLOCK as usize).enumerate() {
        assert!(decoded.holds(i as u64, b));
    }
});
