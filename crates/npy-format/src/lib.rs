//! A small, dependency-free codec for NumPy `.npy` files.
//!
//! It reads and writes plain numeric arrays (`bool`, `int8`..`int64`,
//! `uint8`..`uint64`, `float16/32/64`, `complex64/128`, any byte order) as raw
//! bytes, without going through typed element arrays:
//!
//! - [`read_npy`] reads a file straight into a 64-byte aligned [`AlignedBuf`]
//!   (one copy, from the kernel) and converts big-endian data to native order
//!   in place. The buffer can be handed to foreign code with
//!   [`AlignedBuf::into_raw_parts`].
//! - [`write_npy`] / [`write_npy_to`] write a preamble and then the caller's
//!   bytes with a single `write_all`.
//! - [`Header::encode`] produces byte-for-byte the preamble NumPy 2.x
//!   `np.save` writes; [`decode_header`] accepts format versions 1.0, 2.0 and
//!   3.0 and rejects anything else (objects, strings, structured dtypes,
//!   bad or oversized headers) with a message saying what is wrong.
//!
//! All input is treated as untrusted: header size is capped before it is
//! allocated, sizes use checked arithmetic, and the file length must match the
//! shape exactly before any data buffer is allocated.
//!
//! The format is specified in NumPy's `numpy/lib/format.py` (NEP 1).
//!
//! # Example
//!
//! ```
//! use npy_format::{read_npy, write_npy, ByteOrder, Dtype, Header, Kind};
//!
//! let dir = std::env::temp_dir().join(format!("npy-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("a.npy");
//!
//! let values = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
//! let header = Header {
//!     dtype: Dtype::parse("<f8")?,
//!     shape: vec![2, 3],
//!     fortran_order: false,
//! };
//! write_npy(&path, &header, &bytes)?;
//!
//! let array = read_npy(&path)?;
//! assert_eq!(array.header.shape, vec![2, 3]);
//! assert_eq!(array.header.dtype.kind, Kind::Float);
//! assert_eq!(array.header.dtype.byte_order, ByteOrder::Little);
//! assert_eq!(array.data.as_slice(), &bytes[..]);
//! assert_eq!(array.data.as_ptr() as usize % 64, 0);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buf;
mod dtype;
mod error;
mod file;
mod header;
mod map;
mod npz;

pub use buf::{AlignedBuf, ALIGN, LARGE};
pub use dtype::{swap_to_native, ByteOrder, Dtype, Kind};
pub use error::Error;
pub use file::{
    check_header, check_npy, read_npy, read_npy_file, read_npy_file_into, read_npy_into, write_npy, write_npy_to,
    NpyArray,
};
pub use header::{decode_header, decode_header_bytes, Header, MAGIC, MAX_DIMS, MAX_HEADER_LEN};
pub use map::{live_maps, map_npy_file, map_npz_file, MappedNpy, MAX_LIVE_MAPS};
pub use npz::{
    aligned_npz_file_members, aligned_npz_members, check_member_name, npz_member_at, npz_preamble_len, plan_npz,
    read_aligned_npz_into, read_exact_at, read_npz, read_npz_into, read_npz_members, write_npz, write_npz_to,
    MemberLayout, NpzLayout, NpzMember, MAX_MEMBERS, MAX_MEMBER_NAME, MAX_NPZ_PREAMBLE, NPZ_ALIGN,
};
