//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use cache_core::{ArrayClass, Entry, Lookup, NewEntry, ResultForm};
use npy_format::{Dtype, Header};

pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn key(i: u32) -> String {
    format!("{i:064x}")
}

pub fn f8(shape: &[u64]) -> Header {
    Header { dtype: Dtype::parse("<f8").unwrap(), shape: shape.to_vec(), fortran_order: false }
}

pub fn bytes_of(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An n-d Float64Array result of function `f`.
pub const ND: NewEntry =
    NewEntry { function: "f", result: ResultForm::NdArray, class: ArrayClass::Float64Array, members: &[] };

/// The directory's files other than the index.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".numpy-func-cache-index.sqlite"))
        .collect();
    v.sort();
    v
}

/// This host's tag as the cache writes it into temporary names and leases.
pub fn host_tag() -> String {
    cache_core::host::tag().to_owned()
}

pub fn hit(lookup: Lookup) -> Entry {
    match lookup {
        Lookup::Hit(e) => e,
        Lookup::Miss => panic!("expected a hit, got a miss"),
        Lookup::Damaged(e) => panic!("expected a hit, got damaged: {e}"),
    }
}
