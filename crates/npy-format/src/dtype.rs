//! Element types: the `descr` string of a .npy header.

use crate::Error;

/// Byte order of multi-byte elements: NumPy's `'<'`, `'>'` and `'|'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Little,
    Big,
    /// `'|'`: single-byte types, where order does not apply.
    NotApplicable,
}

impl ByteOrder {
    /// The host's order; what `'='` means in a descriptor.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") { ByteOrder::Big } else { ByteOrder::Little };
}

/// The kind of element (NumPy's type character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `b`: one byte, 0 or 1.
    Bool,
    /// `i`: signed integer.
    Int,
    /// `u`: unsigned integer.
    Uint,
    /// `f`: IEEE float (2, 4 or 8 bytes).
    Float,
    /// `c`: two floats (real, imaginary); `item_size` counts both.
    Complex,
}

impl Kind {
    fn char(self) -> char {
        match self {
            Kind::Bool => 'b',
            Kind::Int => 'i',
            Kind::Uint => 'u',
            Kind::Float => 'f',
            Kind::Complex => 'c',
        }
    }
}

/// A supported plain numeric dtype.
///
/// Values from [`Dtype::parse`] are always valid and normalized: 1-byte types
/// carry [`ByteOrder::NotApplicable`], multi-byte types never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtype {
    pub kind: Kind,
    /// Bytes per element (for complex, both halves together).
    pub item_size: usize,
    pub byte_order: ByteOrder,
}

impl Dtype {
    /// Parses a NumPy type string such as `'<f8'`, `'|b1'`, `'>i4'`, `'<c16'`.
    ///
    /// `'='` and `'|'` on multi-byte types mean native order, as in
    /// `np.dtype`. Objects, strings, datetimes, structured and 128-bit
    /// float types are rejected with a reason.
    pub fn parse(descr: &str) -> Result<Dtype, Error> {
        let unsupported = |reason: String| Error::UnsupportedDtype { descr: descr.to_string(), reason };
        let (order, rest) = match descr.as_bytes().first() {
            Some(b'<') => (Some(ByteOrder::Little), &descr[1..]),
            Some(b'>') => (Some(ByteOrder::Big), &descr[1..]),
            Some(b'|' | b'=') => (None, &descr[1..]),
            _ => (None, descr),
        };
        let mut chars = rest.chars();
        let kind_char = chars.next();
        let size_text = chars.as_str();
        let kind = match kind_char {
            Some('b') => Kind::Bool,
            Some('i') => Kind::Int,
            Some('u') => Kind::Uint,
            Some('f') => Kind::Float,
            Some('c') => Kind::Complex,
            Some('O') => {
                return Err(unsupported(
                    "object arrays are not supported (they need pickle); save a numeric array".into(),
                ))
            }
            Some('U' | 'S' | 'a') => {
                return Err(unsupported("string arrays are not supported; only numeric and bool arrays are".into()))
            }
            Some('M' | 'm') => {
                return Err(unsupported(
                    "datetime and timedelta arrays are not supported; convert to int64 first".into(),
                ))
            }
            Some('V') => {
                return Err(unsupported(
                    "void and structured arrays are not supported; save each field as its own array".into(),
                ))
            }
            _ => return Err(unsupported("expected a numeric type string such as '<f8', '<i4', '|u1' or '|b1'".into())),
        };
        // Bound the digits so parsing cannot overflow.
        let item_size = match size_text.len() {
            1..=3 if size_text.bytes().all(|b| b.is_ascii_digit()) => size_text.parse::<usize>().unwrap_or(0),
            _ => {
                return Err(unsupported(format!(
                    "'{}' must be followed by the item size in bytes, e.g. '{}8'",
                    kind.char(),
                    kind.char()
                )))
            }
        };
        if !valid_size(kind, item_size) {
            let reason = match (kind, item_size) {
                (Kind::Float, 12 | 16) | (Kind::Complex, 24 | 32) => {
                    "extended-precision floats (longdouble / float128) are not supported; convert to float64 first"
                        .to_string()
                }
                _ => format!(
                    "{item_size}-byte '{}' elements do not exist; valid sizes are {}",
                    kind.char(),
                    valid_sizes_text(kind)
                ),
            };
            return Err(unsupported(reason));
        }
        let byte_order = if item_size == 1 { ByteOrder::NotApplicable } else { order.unwrap_or(ByteOrder::NATIVE) };
        Ok(Dtype { kind, item_size, byte_order })
    }

    /// Every supported dtype, in host byte order, by item size and then
    /// kind (bool, int, uint, float, complex): the one list the cache and
    /// its bindings build on.
    pub fn supported() -> impl Iterator<Item = Dtype> {
        const ALL: [(Kind, usize); 14] = [
            (Kind::Bool, 1),
            (Kind::Int, 1),
            (Kind::Uint, 1),
            (Kind::Int, 2),
            (Kind::Uint, 2),
            (Kind::Float, 2),
            (Kind::Int, 4),
            (Kind::Uint, 4),
            (Kind::Float, 4),
            (Kind::Int, 8),
            (Kind::Uint, 8),
            (Kind::Float, 8),
            (Kind::Complex, 8),
            (Kind::Complex, 16),
        ];
        ALL.into_iter().map(|(kind, item_size)| Dtype { kind, item_size, byte_order: ByteOrder::Little }.native())
    }

    /// NumPy's name of the type: `"bool"`, `"int32"`, `"float64"`,
    /// `"complex128"` (the bits of the whole element).
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Bool => "bool".to_owned(),
            Kind::Int => format!("int{}", self.item_size * 8),
            Kind::Uint => format!("uint{}", self.item_size * 8),
            Kind::Float => format!("float{}", self.item_size * 8),
            Kind::Complex => format!("complex{}", self.item_size * 8),
        }
    }

    /// Canonical NumPy spelling, as `np.dtype(..).str` prints it:
    /// `'|b1'`, `'|u1'`, `'<f8'`, `'>i4'`, `'<c16'`.
    pub fn descr(&self) -> String {
        let order = if self.item_size == 1 {
            '|'
        } else {
            match self.byte_order {
                ByteOrder::Little => '<',
                ByteOrder::Big => '>',
                // '|' on a multi-byte type means native, like np.dtype('|f8').
                ByteOrder::NotApplicable => order_char(ByteOrder::NATIVE),
            }
        };
        format!("{order}{}{}", self.kind.char(), self.item_size)
    }

    /// The same dtype in host byte order (1-byte types stay `'|'`).
    pub fn native(&self) -> Dtype {
        Dtype { byte_order: if self.item_size == 1 { ByteOrder::NotApplicable } else { ByteOrder::NATIVE }, ..*self }
    }

    /// True when data in this dtype must be byte-swapped to be read natively.
    /// Bytes of one scalar: the item size, or half of it for a complex
    /// number (a pair of floats, each swapped and aligned on its own).
    pub fn scalar_size(&self) -> usize {
        match self.kind {
            Kind::Complex => self.item_size / 2,
            _ => self.item_size,
        }
    }

    pub fn needs_swap(&self) -> bool {
        self.item_size > 1 && self.byte_order != ByteOrder::NotApplicable && self.byte_order != ByteOrder::NATIVE
    }

    /// Checks that `kind` and `item_size` form a supported dtype; needed
    /// because the fields are public and can be set to anything.
    pub fn validate(&self) -> Result<(), Error> {
        if valid_size(self.kind, self.item_size) {
            Ok(())
        } else {
            Err(Error::UnsupportedDtype {
                descr: self.descr(),
                reason: format!(
                    "{}-byte '{}' elements are not supported; valid sizes are {}",
                    self.item_size,
                    self.kind.char(),
                    valid_sizes_text(self.kind)
                ),
            })
        }
    }
}

fn order_char(order: ByteOrder) -> char {
    match order {
        ByteOrder::Little => '<',
        ByteOrder::Big => '>',
        ByteOrder::NotApplicable => '|',
    }
}

fn valid_size(kind: Kind, size: usize) -> bool {
    match kind {
        Kind::Bool => size == 1,
        Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
        Kind::Float => matches!(size, 2 | 4 | 8),
        Kind::Complex => matches!(size, 8 | 16),
    }
}

fn valid_sizes_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "1",
        Kind::Int | Kind::Uint => "1, 2, 4 and 8",
        Kind::Float => "2, 4 and 8",
        Kind::Complex => "8 and 16",
    }
}

/// Byte-swaps `data` in place from `dtype`'s order to host order.
///
/// Does nothing when [`Dtype::needs_swap`] is false. Complex elements swap
/// each half separately. A trailing partial element is left untouched.
pub fn swap_to_native(dtype: &Dtype, data: &mut [u8]) {
    if !dtype.needs_swap() {
        return;
    }
    match dtype.scalar_size() {
        2 => swap_units::<2>(data),
        4 => swap_units::<4>(data),
        8 => swap_units::<8>(data),
        _ => {}
    }
}

// Fixed N lets the compiler turn each reverse into a bswap.
fn swap_units<const N: usize>(data: &mut [u8]) {
    for unit in data.chunks_exact_mut(N) {
        unit.reverse();
    }
}
