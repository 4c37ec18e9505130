//! The dtype table: which typed-array class holds which dtype.
//!
//! A result is stored from a typed array of some class and loaded back as
//! that class. The `.npy` header says the dtype but not the class (a
//! `Uint8ClampedArray` and a `Uint8Array` both store `|u1`; a `<f2` array
//! may be a `Float16Array` or raw bits in a `Uint16Array`), so the entry's
//! record keeps it, and this table says which pairs are valid. It is the
//! one table the codec's dtypes, the JS API and the command line share (the
//! binding exports it).

use npy_format::{Dtype, Kind};

/// A typed-array class, named as JavaScript names it (Node's `Buffer`, a
/// `Uint8Array` of its own, is one too: a result comes back as it went in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArrayClass {
    Int8Array,
    Uint8Array,
    Buffer,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float16Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
}

use ArrayClass::*;

impl ArrayClass {
    pub const ALL: [ArrayClass; 13] = [
        Int8Array,
        Uint8Array,
        Buffer,
        Uint8ClampedArray,
        Int16Array,
        Uint16Array,
        Int32Array,
        Uint32Array,
        Float16Array,
        Float32Array,
        Float64Array,
        BigInt64Array,
        BigUint64Array,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Int8Array => "Int8Array",
            Uint8Array => "Uint8Array",
            Buffer => "Buffer",
            Uint8ClampedArray => "Uint8ClampedArray",
            Int16Array => "Int16Array",
            Uint16Array => "Uint16Array",
            Int32Array => "Int32Array",
            Uint32Array => "Uint32Array",
            Float16Array => "Float16Array",
            Float32Array => "Float32Array",
            Float64Array => "Float64Array",
            BigInt64Array => "BigInt64Array",
            BigUint64Array => "BigUint64Array",
        }
    }

    pub fn from_name(name: &str) -> Option<ArrayClass> {
        ArrayClass::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class's letter in an archive's record (Python's `struct` letter
    /// of its element; `X` for a Buffer, `C` for a Uint8ClampedArray).
    pub fn code(self) -> char {
        match self {
            Int8Array => 'b',
            Uint8Array => 'B',
            Buffer => 'X',
            Uint8ClampedArray => 'C',
            Int16Array => 'h',
            Uint16Array => 'H',
            Int32Array => 'i',
            Uint32Array => 'I',
            Float16Array => 'e',
            Float32Array => 'f',
            Float64Array => 'd',
            BigInt64Array => 'q',
            BigUint64Array => 'Q',
        }
    }

    pub fn from_code(code: char) -> Option<ArrayClass> {
        ArrayClass::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Bytes per element of the class.
    pub fn element_size(self) -> usize {
        match self {
            Int8Array | Uint8Array | Buffer | Uint8ClampedArray => 1,
            Int16Array | Uint16Array | Float16Array => 2,
            Int32Array | Uint32Array | Float32Array => 4,
            Float64Array | BigInt64Array | BigUint64Array => 8,
        }
    }

    /// What a bare array of the class is stored as.
    pub fn default_dtype(self) -> Dtype {
        let (kind, item_size) = match self {
            Int8Array => (Kind::Int, 1),
            Uint8Array | Buffer | Uint8ClampedArray => (Kind::Uint, 1),
            Int16Array => (Kind::Int, 2),
            Uint16Array => (Kind::Uint, 2),
            Float16Array => (Kind::Float, 2),
            Int32Array => (Kind::Int, 4),
            Uint32Array => (Kind::Uint, 4),
            Float32Array => (Kind::Float, 4),
            Float64Array => (Kind::Float, 8),
            BigInt64Array => (Kind::Int, 8),
            BigUint64Array => (Kind::Uint, 8),
        };
        native(kind, item_size)
    }

    /// Whether an array of this class can hold `dtype`'s data.
    pub fn holds(self, dtype: &Dtype) -> bool {
        classes_of(dtype).1.contains(&self)
    }

    /// The class a plain read of `dtype` gives (one that exists everywhere).
    pub fn reading(dtype: &Dtype) -> ArrayClass {
        classes_of(dtype).0
    }
}

/// Elements of the class per element of the dtype: 2 for complex numbers
/// (real and imaginary interleaved), else 1.
pub fn elements_per_item(dtype: &Dtype) -> usize {
    if dtype.kind == Kind::Complex {
        2
    } else {
        1
    }
}

fn native(kind: Kind, item_size: usize) -> Dtype {
    Dtype { kind, item_size, byte_order: npy_format::ByteOrder::Little }.native()
}

/// The table itself: for each dtype, the class a read gives and every
/// class that may hold it.
fn classes_of(dtype: &Dtype) -> (ArrayClass, &'static [ArrayClass]) {
    match (dtype.kind, dtype.item_size) {
        (Kind::Bool, _) | (Kind::Uint, 1) => (Uint8Array, &[Uint8Array, Buffer, Uint8ClampedArray]),
        (Kind::Int, 1) => (Int8Array, &[Int8Array]),
        (Kind::Int, 2) => (Int16Array, &[Int16Array]),
        (Kind::Uint, 2) => (Uint16Array, &[Uint16Array]),
        (Kind::Float, 2) => (Uint16Array, &[Uint16Array, Float16Array]),
        (Kind::Int, 4) => (Int32Array, &[Int32Array]),
        (Kind::Uint, 4) => (Uint32Array, &[Uint32Array]),
        (Kind::Float, 4) | (Kind::Complex, 8) => (Float32Array, &[Float32Array]),
        (Kind::Int, _) => (BigInt64Array, &[BigInt64Array]),
        (Kind::Uint, _) => (BigUint64Array, &[BigUint64Array]),
        (Kind::Float, _) | (Kind::Complex, _) => (Float64Array, &[Float64Array]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_holds_its_default_dtype_and_every_dtype_reads_as_a_class_that_holds_it() {
        for class in ArrayClass::ALL {
            assert!(class.holds(&class.default_dtype()), "{class:?}");
            assert_eq!(ArrayClass::from_name(class.name()), Some(class));
        }
        for dtype in Dtype::supported() {
            let class = ArrayClass::reading(&dtype);
            assert!(class.holds(&dtype), "{}", dtype.descr());
            assert_eq!(class.element_size() * elements_per_item(&dtype), dtype.item_size, "{}", dtype.descr());
        }
    }

    #[test]
    fn classes_of_another_width_or_kind_do_not_hold_a_dtype() {
        let f8 = Dtype::parse("<f8").unwrap();
        assert!(!Float32Array.holds(&f8));
        assert!(!BigInt64Array.holds(&f8));
        assert!(!Uint8ClampedArray.holds(&Dtype::parse("|i1").unwrap()));
        assert!(Float16Array.holds(&Dtype::parse("<f2").unwrap()));
        assert!(!Float16Array.holds(&Dtype::parse("<u2").unwrap()));
    }
}
