//! Cache keys: BLAKE3 over a canonical byte encoding of a call.
//!
//! The caller encodes the small parts of a call (type tags, lengths, numbers,
//! strings) into one `structure` buffer, and leaves the bytes of large buffers
//! where they are. [`Key::from_parts`] hashes the structure with each large
//! buffer spliced in at its recorded offset, so big arguments are read once,
//! in place, and never copied into the encoding.
//!
//! ```
//! use cache_key::{Key, Splice};
//! let data = [1u8, 2, 3, 4];
//! let structure = b"tag:len4:|rest";
//! let key = Key::from_parts(structure, &[Splice { offset: 9, bytes: &data }]).unwrap();
//! assert_eq!(key.to_hex().len(), 64);
//! ```

use std::fmt;

/// Domain-separation context: keys from another tool, or from a future
/// encoding of ours, never equal keys of this one.
const KEY_CONTEXT: &str = "numpy-func-cache 2026-11 call key v1";

/// Buffers at least this large are hashed on all cores; below it the
/// thread hand-off costs more than it saves.
pub const PARALLEL_THRESHOLD: usize = 1 << 20;

/// A buffer to hash at `offset` bytes into the structure.
#[derive(Debug, Clone, Copy)]
pub struct Splice<'a> {
    pub offset: usize,
    pub bytes: &'a [u8],
}

/// Why parts could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Splices must be in non-decreasing offset order within the structure.
    BadSpliceOffset { index: usize, offset: usize, structure_len: usize },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::BadSpliceOffset { index, offset, structure_len } => write!(
                f,
                "splice {index} has offset {offset}, which is before the previous splice \
                 or past the end of the {structure_len}-byte structure"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// A 32-byte BLAKE3 key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

/// Hex digits in a key's written form.
pub const HEX_LEN: usize = 64;

/// Whether `s` is a key's written form: 64 lower-case hex digits, nothing a
/// path or an object name could be made of. One spelling per key.
pub fn is_key(s: &str) -> bool {
    s.len() == HEX_LEN && s.bytes().all(is_key_digit)
}

/// Whether `s` could begin a key: 1 to 64 lower-case hex digits.
pub fn is_key_prefix(s: &str) -> bool {
    (1..=HEX_LEN).contains(&s.len()) && s.bytes().all(is_key_digit)
}

fn is_key_digit(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A key's written form, on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex([u8; HEX_LEN]);

impl std::ops::Deref for Hex {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).expect("hex digits are UTF-8")
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Key {
    /// Hashes `structure` with each splice's bytes inserted at its offset.
    pub fn from_parts(structure: &[u8], splices: &[Splice<'_>]) -> Result<Key, KeyError> {
        let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        let mut at = 0usize;
        for (index, splice) in splices.iter().enumerate() {
            if splice.offset < at || splice.offset > structure.len() {
                return Err(KeyError::BadSpliceOffset { index, offset: splice.offset, structure_len: structure.len() });
            }
            hasher.update(&structure[at..splice.offset]);
            update(&mut hasher, splice.bytes);
            at = splice.offset;
        }
        hasher.update(&structure[at..]);
        Ok(Key(*hasher.finalize().as_bytes()))
    }

    /// Lower-case hex, the form used in file and object names.
    pub fn to_hex(&self) -> String {
        self.hex().to_string()
    }

    /// [`to_hex`](Self::to_hex) without an allocation.
    pub fn hex(&self) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; HEX_LEN];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        Hex(out)
    }

    /// The key written as `s`, which must be [a key](is_key).
    pub fn parse(s: &str) -> Option<Key> {
        if !is_key(s) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let digit = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
            bytes[i] = digit(pair[0]) << 4 | digit(pair[1]);
        }
        Some(Key(bytes))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.hex())
    }
}

fn update(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_THRESHOLD {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(structure: &[u8], splices: &[Splice<'_>]) -> Key {
        Key::from_parts(structure, splices).unwrap()
    }

    #[test]
    fn splicing_equals_hashing_the_concatenation() {
        let big = vec![7u8; PARALLEL_THRESHOLD * 3 + 5];
        let small = [9u8, 8, 7];
        let structure = b"abcdefghij";
        let spliced = key(
            structure,
            &[
                Splice { offset: 2, bytes: &small },
                Splice { offset: 2, bytes: &big },
                Splice { offset: 10, bytes: &small },
            ],
        );
        let mut flat = b"ab".to_vec();
        flat.extend_from_slice(&small);
        flat.extend_from_slice(&big);
        flat.extend_from_slice(b"cdefghij");
        flat.extend_from_slice(&small);
        assert_eq!(spliced, key(&flat, &[]));
    }

    #[test]
    fn keys_are_domain_separated_from_plain_blake3() {
        let plain = blake3::hash(b"x");
        assert_ne!(key(b"x", &[]).0, *plain.as_bytes());
    }

    #[test]
    fn different_inputs_give_different_keys() {
        assert_ne!(key(b"a", &[]), key(b"b", &[]));
        assert_ne!(key(b"", &[Splice { offset: 0, bytes: b"1" }]), key(b"", &[Splice { offset: 0, bytes: b"2" }]));
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let big: Vec<u8> = (0..PARALLEL_THRESHOLD * 2).map(|i| (i % 251) as u8).collect();
        let mut serial = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        serial.update(&big);
        assert_eq!(key(b"", &[Splice { offset: 0, bytes: &big }]).0, *serial.finalize().as_bytes());
    }

    #[test]
    fn out_of_order_or_out_of_range_splices_are_errors() {
        let err = Key::from_parts(b"abc", &[Splice { offset: 2, bytes: b"" }, Splice { offset: 1, bytes: b"" }]);
        assert_eq!(err, Err(KeyError::BadSpliceOffset { index: 1, offset: 1, structure_len: 3 }));
        assert!(Key::from_parts(b"abc", &[Splice { offset: 4, bytes: b"" }]).is_err());
    }

    #[test]
    fn hex_is_64_lowercase_digits_and_parses_back() {
        let k = key(b"x", &[]);
        let hex = k.to_hex();
        assert_eq!(hex, blake3::Hash::from_bytes(k.0).to_hex().as_str());
        assert!(is_key(&hex));
        assert_eq!(Key::parse(&hex), Some(k));
        for bad in [hex.to_uppercase(), hex[1..].to_owned(), format!("{hex}0"), format!("../{}", &hex[3..])] {
            assert!(!is_key(&bad) && Key::parse(&bad).is_none(), "{bad}");
        }
        assert!(is_key_prefix(&hex[..6]) && !is_key_prefix("") && !is_key_prefix("abcg"));
    }
}
