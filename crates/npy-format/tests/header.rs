//! Header codec: byte-exact encoding, tolerant decoding, strict rejection.

use npy_format::{decode_header, decode_header_bytes, ByteOrder, Dtype, Error, Header, Kind};

fn header(descr: &str, shape: &[u64], fortran_order: bool) -> Header {
    Header { dtype: Dtype::parse(descr).unwrap(), shape: shape.to_vec(), fortran_order }
}

/// A v1.0 preamble around an arbitrary dict text (no alignment padding).
fn v1(dict: &str) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

fn decode_dict(dict: &str) -> Result<Header, Error> {
    decode_header_bytes(&v1(dict)).map(|(h, _)| h)
}

fn err_text(dict: &str) -> String {
    decode_dict(dict).unwrap_err().to_string()
}

// Every literal below is the preamble NumPy 2.4.6 `np.save` wrote for an array
// of that dtype, shape and order (the data bytes were cut off).
#[test]
fn encode_matches_numpy_byte_for_byte() {
    let cases: &[(&str, &[u64], bool, &[u8])] = &[
        ("<f8", &[3, 4], false, b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }                                                          \n"),
        ("<f8", &[], false, b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }                                                              \n"),
        ("|b1", &[0], false, b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (0,), }                                                            \n"),
        (">i2", &[5], false, b"\x93NUMPY\x01\x00v\x00{'descr': '>i2', 'fortran_order': False, 'shape': (5,), }                                                            \n"),
        ("<c16", &[2, 3, 4], true, b"\x93NUMPY\x01\x00v\x00{'descr': '<c16', 'fortran_order': True, 'shape': (2, 3, 4), }                                                       \n"),
        ("|u1", &[0, 3], false, b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (0, 3), }                                                          \n"),
        ("|i1", &[7], false, b"\x93NUMPY\x01\x00v\x00{'descr': '|i1', 'fortran_order': False, 'shape': (7,), }                                                            \n"),
        ("<f2", &[1; 20], false, b"\x93NUMPY\x01\x00\xb6\x00{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }                                                                    \n"),
        ("<c8", &[123456789, 0], false, b"\x93NUMPY\x01\x00v\x00{'descr': '<c8', 'fortran_order': False, 'shape': (123456789, 0), }                                                  \n"),
        (">f8", &[2, 3], true, b"\x93NUMPY\x01\x00v\x00{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }                                                           \n"),
        ("<u8", &[0, 1000000], false, b"\x93NUMPY\x01\x00v\x00{'descr': '<u8', 'fortran_order': False, 'shape': (0, 1000000), }                                                    \n"),
        // Fortran order: the growth-axis spaces depend on the *last* dim.
        ("<f4", &[3, 1000000], true, b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (3, 1000000), }                                                     \n"),
        // NumPy pads a full 64 spaces when the text is already aligned.
        ("<i4", &[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 100], false, b"\x93NUMPY\x01\x00\xb6\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 100), }                                                                                    \n"),
    ];
    for &(descr, shape, fortran, expected) in cases {
        let h = header(descr, shape, fortran);
        let encoded = h.encode();
        assert_eq!(String::from_utf8_lossy(&encoded), String::from_utf8_lossy(expected), "{descr} {shape:?}");
        assert_eq!(encoded, expected, "{descr} {shape:?}");
        let (decoded, offset) = decode_header_bytes(expected).unwrap();
        assert_eq!(decoded, h);
        assert_eq!(offset, expected.len() as u64);
    }
}

#[test]
fn encode_is_aligned_and_decodes_for_many_shapes() {
    let shapes: Vec<Vec<u64>> =
        vec![vec![], vec![0], vec![1], vec![u64::MAX], vec![0, 3], vec![2, 3, 4], (1..=32).collect(), vec![7; 64]];
    for shape in shapes {
        for fortran in [false, true] {
            for descr in ["|b1", "<i8", ">u4", "<c8"] {
                let h = Header { dtype: Dtype::parse(descr).unwrap(), shape: shape.clone(), fortran_order: fortran };
                let bytes = h.encode();
                assert_eq!(bytes.len() % 64, 0);
                assert_eq!(bytes.last(), Some(&b'\n'));
                assert_eq!(&bytes[6..8], &[1, 0]);
                if h.data_len().is_ok() {
                    assert_eq!(decode_header_bytes(&bytes).unwrap(), (h, bytes.len() as u64));
                }
            }
        }
    }
}

#[test]
fn huge_header_switches_to_version_2() {
    // 25 000 dims of 1 make a dict longer than 65 535 bytes.
    let h = header("<f8", &vec![1; 25_000], false);
    let bytes = h.encode();
    assert_eq!(&bytes[6..8], &[2, 0]);
    assert_eq!(bytes.len() % 64, 0);
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(12 + len, bytes.len());
    assert_eq!(decode_header_bytes(&bytes).unwrap(), (h, bytes.len() as u64));
}

#[test]
fn decode_from_reader_stops_at_data() {
    let mut file = header("<i4", &[2], false).encode();
    file.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
    let mut reader = &file[..];
    let (h, offset) = decode_header(&mut reader).unwrap();
    assert_eq!(h.shape, vec![2]);
    assert_eq!(offset, 128);
    assert_eq!(reader, &[1, 0, 0, 0, 2, 0, 0, 0]);
}

// Full files written by NumPy with np.lib.format.write_array(f, np.array([1., 2., 3.]), version=...).
#[test]
fn decodes_versions_2_and_3() {
    let v2: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x08@";
    let v3: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x08@";
    for file in [v2, v3] {
        let (h, offset) = decode_header_bytes(file).unwrap();
        assert_eq!(h, header("<f8", &[3], false));
        assert_eq!(offset, 128);
        assert_eq!(file.len() as u64 - offset, 24);
    }
    // v3 allows UTF-8; invalid UTF-8 is rejected.
    let mut bad = b"\x93NUMPY\x03\x00\x06\x00\x00\x00".to_vec();
    bad.extend_from_slice(b"{\xff\xfe}  ");
    assert!(decode_header_bytes(&bad).unwrap_err().to_string().contains("UTF-8"));
}

#[test]
fn decode_accepts_python_dict_variants() {
    let want = header("<f8", &[3, 4], false);
    for dict in [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4)}",
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3, 4)}",
        "{'shape':(3,4),'fortran_order':False,'descr':'<f8'}",
        "  {  'fortran_order' :\tFalse ,\n 'shape' : ( 3 , 4 , ) , 'descr' : '<f8' , }  \n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 4L), }",
        "{'descr': '=f8', 'fortran_order': False, 'shape': (3, 4), }",
        "{'descr': '|f8', 'fortran_order': False, 'shape': (3, 4), }",
        "{'descr': 'f8', 'fortran_order': False, 'shape': (3, 4), }",
    ] {
        assert_eq!(decode_dict(dict).unwrap(), want, "{dict}");
    }
    let h = decode_dict("{'descr': '<u1', 'fortran_order': True, 'shape': (5,)}").unwrap();
    assert_eq!(h, header("|u1", &[5], true));
    assert_eq!(decode_dict("{'descr': '>i4', 'fortran_order': False, 'shape': ()}").unwrap().shape, Vec::<u64>::new());
    assert_eq!(decode_dict("{'descr': '>i4', 'fortran_order': False, 'shape': (1_000,)}").unwrap().shape, vec![1000]);
}

#[test]
fn dtype_parse_and_canonical_descr() {
    let cases = [
        ("|b1", Kind::Bool, 1, ByteOrder::NotApplicable, "|b1"),
        (">b1", Kind::Bool, 1, ByteOrder::NotApplicable, "|b1"),
        ("|i1", Kind::Int, 1, ByteOrder::NotApplicable, "|i1"),
        ("<u1", Kind::Uint, 1, ByteOrder::NotApplicable, "|u1"),
        ("<i2", Kind::Int, 2, ByteOrder::Little, "<i2"),
        (">u2", Kind::Uint, 2, ByteOrder::Big, ">u2"),
        (">i4", Kind::Int, 4, ByteOrder::Big, ">i4"),
        ("<u4", Kind::Uint, 4, ByteOrder::Little, "<u4"),
        ("<i8", Kind::Int, 8, ByteOrder::Little, "<i8"),
        (">u8", Kind::Uint, 8, ByteOrder::Big, ">u8"),
        ("<f2", Kind::Float, 2, ByteOrder::Little, "<f2"),
        (">f4", Kind::Float, 4, ByteOrder::Big, ">f4"),
        ("<f8", Kind::Float, 8, ByteOrder::Little, "<f8"),
        ("<c8", Kind::Complex, 8, ByteOrder::Little, "<c8"),
        (">c16", Kind::Complex, 16, ByteOrder::Big, ">c16"),
        ("=f8", Kind::Float, 8, ByteOrder::NATIVE, "<f8"),
    ];
    for (text, kind, size, order, canonical) in cases {
        let d = Dtype::parse(text).unwrap();
        assert_eq!((d.kind, d.item_size, d.byte_order), (kind, size, order), "{text}");
        assert_eq!(d.descr(), canonical, "{text}");
        assert_eq!(d.needs_swap(), order == ByteOrder::Big, "{text}");
        let n = d.native();
        assert!(!n.needs_swap());
        assert_eq!(n.kind, kind);
        assert_eq!(n.item_size, size);
        assert_eq!(n.byte_order == ByteOrder::NotApplicable, size == 1);
    }
    assert_eq!(Dtype::parse(">f8").unwrap().native().descr(), "<f8");
}

#[test]
fn dtype_rejections_say_why() {
    let cases = [
        ("|O", "unsupported dtype '|O': object arrays are not supported"),
        ("<U5", "string arrays are not supported"),
        ("|S3", "string arrays are not supported"),
        ("<M8[ns]", "datetime"),
        ("<m8[s]", "datetime"),
        ("|V8", "structured"),
        ("<f16", "extended-precision"),
        ("<c32", "extended-precision"),
        ("<f1", "valid sizes are 2, 4 and 8"),
        ("|b2", "valid sizes are 1"),
        ("<i3", "valid sizes are 1, 2, 4 and 8"),
        ("<f", "item size"),
        ("<f99999999999999999999", "item size"),
        ("<f8 ", "item size"),
        ("", "expected a numeric type string"),
        ("float64", "item size"),
        ("<x4", "expected a numeric type string"),
        ("<é4", "expected a numeric type string"),
    ];
    for (text, needle) in cases {
        let msg = Dtype::parse(text).unwrap_err().to_string();
        assert!(msg.contains(needle), "{text}: {msg}");
    }
    let msg = err_text("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }");
    assert!(msg.contains("unsupported dtype '|O': object arrays are not supported"), "{msg}");
}

#[test]
fn dict_rejections_say_what_is_wrong() {
    let cases = [
        ("{'descr': '<f8', 'fortran_order': False}", "header is missing key 'shape'"),
        ("{'shape': (3,), 'fortran_order': False}", "header is missing key 'descr'"),
        ("{'descr': '<f8', 'shape': (3,)}", "header is missing key 'fortran_order'"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", "unexpected key 'x'"),
        ("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", "key 'descr' more than once"),
        ("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,)}", "structured dtypes"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}", "negative dimension"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, -1)}", "negative dimension"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (5)}", "1-tuple"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [5]}", "a tuple such as (2, 3)"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3.5)}", "',' or ')'"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "larger than 2^64 - 1"),
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", "True or False"),
        ("{'descr': '<f8', 'fortran_order': Falsey, 'shape': (3,)}", "True or False"),
        ("{'descr': 8, 'fortran_order': False, 'shape': (3,)}", "a dtype string"),
        ("{'descr': '<f8, 'fortran_order': False, 'shape': (3,)}", "unsupported dtype '<f8, '"),
        ("{'descr': '<f8}", "a closing quote"),
        ("{'descr': '<f8\\n', 'fortran_order': False, 'shape': (3,)}", "backslash"),
        ("{'descr' '<f8', 'fortran_order': False, 'shape': (3,)}", "':' after the key"),
        ("{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}", "',' or '}'"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} x", "nothing but whitespace"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)", "',' or '}'"),
        ("{descr: '<f8'}", "a quoted key"),
        ("['descr', '<f8']", "'{' at the start"),
        ("", "'{' at the start"),
        ("garbage", "'{' at the start"),
    ];
    for (dict, needle) in cases {
        let msg = err_text(dict);
        assert!(msg.contains(needle), "{dict}\n  -> {msg}");
    }
}

#[test]
fn size_overflow_is_an_error() {
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}";
    assert!(matches!(decode_dict(dict), Err(Error::SizeOverflow { .. })));
    // Element count fits, byte length does not.
    let h = header("<f8", &[1 << 61, 4], false);
    assert_eq!(h.element_count().unwrap(), 1 << 63);
    assert!(matches!(h.data_len(), Err(Error::SizeOverflow { .. })));
    let msg = h.data_len().unwrap_err().to_string();
    assert!(msg.contains("(2305843009213693952, 4) of '<f8'") && msg.contains("overflows"), "{msg}");
    // 10^15 elements is a valid header; only the file size check refuses it.
    let h = decode_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,)}").unwrap();
    assert_eq!(h.data_len().unwrap(), 8_000_000_000_000_000);
}

#[test]
fn preamble_rejections() {
    let good = header("<f8", &[3], false).encode();
    let msg = decode_header_bytes(b"NUMPY\x01\x00garbage").unwrap_err().to_string();
    assert_eq!(msg, "bad magic: not a .npy file (it does not start with \\x93NUMPY)");
    assert!(matches!(decode_header_bytes(b"PK\x03\x04"), Err(Error::BadMagic)));

    // Every strict prefix of a valid preamble is a truncation, never a panic.
    for cut in 0..good.len() {
        let err = decode_header_bytes(&good[..cut]).unwrap_err();
        assert!(matches!(err, Error::TruncatedHeader), "cut {cut}: {err}");
    }

    for (major, minor) in [(0, 0), (1, 1), (4, 0), (255, 255)] {
        let mut bytes = good.clone();
        bytes[6] = major;
        bytes[7] = minor;
        let msg = decode_header_bytes(&bytes).unwrap_err().to_string();
        assert!(msg.contains(&format!("version {major}.{minor}")), "{msg}");
    }

    // A 4 GiB header length is refused before anything is allocated.
    let huge = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{";
    let err = decode_header_bytes(huge).unwrap_err();
    assert!(matches!(err, Error::HeaderTooLarge { len: 0xffff_ffff, .. }), "{err}");
    assert!(err.to_string().contains("4294967295"));
}

/// Cheap stand-in for fuzzing: mutated and truncated headers must not panic.
#[test]
fn mutated_headers_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let bases = [
        header("<f8", &[3, 4], false).encode(),
        header(">c16", &[], true).encode(),
        header("|b1", &[0, 7, 1], false).encode(),
    ];
    let alphabet = b"{}()[],:'\" -0123456789LTrueFalsedescrshapefortran_order<>|=ifucbOUS\n\x00\xff";
    for i in 0..30_000 {
        let mut bytes = bases[i % bases.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            let pos = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[pos] = alphabet[(next() as usize) % alphabet.len()],
                1 => bytes.truncate(pos),
                _ => {
                    bytes.insert(pos, alphabet[(next() as usize) % alphabet.len()]);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        if let Ok((h, offset)) = decode_header_bytes(&bytes) {
            assert!(offset <= bytes.len() as u64);
            assert!(h.data_len().is_ok());
        }
    }
}

#[test]
fn the_supported_dtypes_are_listed_once_each_in_native_order_with_numpy_names() {
    let all: Vec<Dtype> = Dtype::supported().collect();
    let descrs: Vec<String> = all.iter().map(Dtype::descr).collect();
    let expected = ["|b1", "|i1", "|u1", "<i2", "<u2", "<f2", "<i4", "<u4", "<f4", "<i8", "<u8", "<f8", "<c8", "<c16"];
    assert_eq!(descrs, expected);
    let names: Vec<String> = all.iter().map(Dtype::name).collect();
    let expected = [
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "float16",
        "int32",
        "uint32",
        "float32",
        "int64",
        "uint64",
        "float64",
        "complex64",
        "complex128",
    ];
    assert_eq!(names, expected);
    for dtype in all {
        assert!(dtype.validate().is_ok());
        assert_eq!(Dtype::parse(&dtype.descr()).unwrap(), dtype);
        assert!(!dtype.needs_swap());
    }
}
