//! The golden vectors of the `.npy` preamble (test-vectors/npy-headers.json,
//! made by NumPy's np.save): the cache writes them byte for byte, and reads
//! them back as the header they describe.

use npy_format::{decode_header_bytes, Dtype, Header};

#[test]
fn every_header_is_what_numpy_writes_and_reads_back() {
    let text = include_str!("../../../test-vectors/npy-headers.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let header = Header {
            dtype: Dtype::parse(case["descr"].as_str().unwrap()).unwrap(),
            shape: case["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect(),
            fortran_order: case["fortranOrder"].as_bool().unwrap(),
        };
        let hex = case["preamble"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert_eq!(header.encode(), bytes, "{}", case["about"]);
        let (decoded, len) = decode_header_bytes(&bytes).unwrap();
        assert_eq!((decoded, len), (header, bytes.len() as u64), "{}", case["about"]);
    }
}
