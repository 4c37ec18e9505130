//! The bound on live mappings, alone in its own process: it takes every
//! map slot the bound allows.

use std::fs::File;

use npy_format::{live_maps, map_npy_file, write_npy, Dtype, Header, MAX_LIVE_MAPS};

#[test]
fn past_the_bound_on_live_mappings_files_are_read_instead_until_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![4], fortran_order: false };
    write_npy(&path, &header, &[7u8; 32]).unwrap();
    let file = File::open(&path).unwrap();
    let mut held: Vec<_> =
        (0..MAX_LIVE_MAPS).map(|i| map_npy_file(&file, &path).unwrap().unwrap_or_else(|| panic!("map {i}"))).collect();
    assert_eq!(live_maps(), MAX_LIVE_MAPS);
    assert!(map_npy_file(&file, &path).unwrap().is_none(), "mapped past the bound");
    held.pop();
    let again = map_npy_file(&file, &path).unwrap().expect("a slot came free");
    assert_eq!(again.data(), &[7u8; 32]);
    drop(held);
    drop(again);
    assert_eq!(live_maps(), 0);
}
