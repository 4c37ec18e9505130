//! The golden vectors of call keys (test-vectors/call-keys.json): each
//! call's bytes hash to its key. The JS suite checks that each call encodes
//! to those bytes (__test__/vectors.spec.ts).

use cache_key::Key;

#[test]
fn each_calls_bytes_hash_to_its_golden_key() {
    let text = include_str!("../../../test-vectors/call-keys.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["context"], "numpy-func-cache 2026-11 call key v1");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let hex = case["bytes"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let key = Key::from_parts(&bytes, &[]).unwrap();
        assert_eq!(key.to_hex(), case["key"].as_str().unwrap(), "{}", case["about"]);
        // A spliced buffer hashes as the same bytes in place.
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        let spliced = Key::from_parts(head, &[cache_key::Splice { offset: head.len(), bytes: tail }]).unwrap();
        assert_eq!(spliced, key);
    }
}
