//! `cache_key::Key::from_parts` with fuzzer-chosen structure and splices.
//!
//! Properties:
//! - never panics;
//! - it fails exactly when a splice offset is before the previous one or past
//!   the end of the structure, with the index of the first bad splice;
//! - otherwise the key equals the key of the concatenation the splices
//!   describe (structure bytes with each splice's bytes inserted at its
//!   offset, in order) hashed with no splices; splices can be made larger
//!   than `PARALLEL_THRESHOLD` so the multi-threaded path is checked against
//!   the serial one.
#![no_main]

use cache_key::{Key, KeyError, Splice, PARALLEL_THRESHOLD};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Offset {
    /// Usually within a small structure, sometimes just past it.
    Small(u8),
    Medium(u16),
    /// Anything, including `usize::MAX`.
    Any(usize),
}

#[derive(Debug, Arbitrary)]
struct SpliceSpec {
    offset: Offset,
    bytes: Vec<u8>,
    /// When at least `BIG_FROM`: stretch `bytes` (repeated, or zeros when
    /// empty) to `PARALLEL_THRESHOLD - 64 + 4 * (big - BIG_FROM)` bytes,
    /// around the parallel-hashing threshold. Rare, as it is slow.
    big: u8,
}

const BIG_FROM: u8 = 0xF0;

#[derive(Debug, Arbitrary)]
struct Input {
    structure: Vec<u8>,
    splices: Vec<SpliceSpec>,
}

fuzz_target!(|input: Input| {
    // At most one big buffer per input keeps executions fast.
    let mut big_done = false;
    let owned: Vec<(usize, Vec<u8>)> = input
        .splices
        .iter()
        .map(|s| {
            let offset = match s.offset {
                Offset::Small(o) => o as usize,
                Offset::Medium(o) => o as usize,
                Offset::Any(o) => o,
            };
            let bytes = if s.big >= BIG_FROM && !big_done {
                big_done = true;
                let len = PARALLEL_THRESHOLD - 64 + 4 * (s.big - BIG_FROM) as usize;
                let mut v = if s.bytes.is_empty() { vec![0u8; 1] } else { s.bytes.clone() };
                while v.len() < len {
                    v.extend_from_within(..v.len().min(len - v.len()));
                }
                v
            } else {
                s.bytes.clone()
            };
            (offset, bytes)
        })
        .collect();
    let structure = &input.structure[..];
    let splices: Vec<Splice<'_>> = owned.iter().map(|(offset, bytes)| Splice { offset: *offset, bytes }).collect();

    // The documented rule, computed independently.
    let mut expected_error = None;
    let mut at = 0usize;
    for (index, s) in splices.iter().enumerate() {
        if s.offset < at || s.offset > structure.len() {
            expected_error =
                Some(KeyError::BadSpliceOffset { index, offset: s.offset, structure_len: structure.len() });
            break;
        }
        at = s.offset;
    }

    let result = Key::from_parts(structure, &splices);
    match (result, expected_error) {
        (Err(got), Some(want)) => {
            assert_eq!(got, want);
            let _ = got.to_string();
        }
        (Err(got), None) => panic!("valid splices rejected: {got}"),
        (Ok(_), Some(want)) => panic!("invalid splices accepted, expected {want}"),
        (Ok(key), None) => {
            let mut flat = Vec::new();
            let mut at = 0;
            for s in &splices {
                flat.extend_from_slice(&structure[at..s.offset]);
                flat.extend_from_slice(s.bytes);
                at = s.offset;
            }
            flat.extend_from_slice(&structure[at..]);
            let whole = Key::from_parts(&flat, &[]).expect("no splices cannot fail");
            assert_eq!(key, whole, "splicing differs from hashing the concatenation");
            // Where the same bytes are split between structure and splice does
            // not matter either: the whole thing as one splice into nothing.
            let one = Key::from_parts(&[], &[Splice { offset: 0, bytes: &flat }]).unwrap();
            assert_eq!(key, one);
            let hex = key.to_hex();
            assert_eq!(hex.len(), 64);
            assert!(hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        }
    }
});
