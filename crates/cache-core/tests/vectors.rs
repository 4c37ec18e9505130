//! The golden vectors of entry records and lease lines
//! (test-vectors/records.json, archive-records.json, leases.json), checked as blake3's
//! test_vectors are: a change to either format fails here, and in the JS
//! suite (__test__/vectors.spec.ts), loudly.
//!
//! `NFC_WRITE_VECTORS=1 cargo test -p cache-core --test vectors` rewrites
//! them from this implementation: only with a new format.

use std::path::PathBuf;
use std::time::Duration;

use cache_core::lease::{self, Holder};
use cache_core::record::header_digest;
use cache_core::{data_digest, ArrayClass, Content, EntryRecord, MemberForm, NewArchive, NewEntry, ResultForm};
use npy_format::{Dtype, Header};
use serde_json::{json, Value};

fn vectors(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors").join(name)
}

fn writing() -> bool {
    std::env::var("NFC_WRITE_VECTORS").as_deref() == Ok("1")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors(name)).unwrap()).unwrap()
}

fn write(name: &str, value: &Value) {
    std::fs::write(vectors(name), serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
}

/// The inputs of records.json, when it is written anew.
fn record_inputs() -> Vec<Value> {
    let f8: Vec<u8> = [1.5f64, -2.0, 0.0, 3.25, 1e300, -0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    vec![
        json!({ "function": "embed", "result": "ndarray", "class": "Float64Array", "created": "2026-11-27T15:33:58.123456Z", "boot": "5d1e0c7a9b3f2468",
                "header": { "descr": "<f8", "shape": [2, 3], "fortranOrder": false }, "data": hex(&f8) }),
        json!({ "function": "spectrum", "result": "typedarray", "class": "Float64Array", "created": "2026-01-01T00:00:00.000001Z", "boot": "00000000000000ff",
                "header": { "descr": "<f8", "shape": [6], "fortranOrder": false }, "data": hex(&f8) }),
        json!({ "function": "mask", "result": "ndarray", "class": "Uint8Array", "created": "2026-06-30T12:00:00.500000Z",
                "header": { "descr": "|b1", "shape": [2, 2], "fortranOrder": true }, "data": "01000101" }),
        json!({ "function": "an \"escaped\" name ✓\n", "result": "typedarray", "class": "Buffer", "created": "2026-11-27T15:33:58.000000Z",
                "header": { "descr": "|u1", "shape": [0], "fortranOrder": false }, "data": "" }),
    ]
}

fn record_of(case: &Value) -> (EntryRecord, Header, Vec<u8>) {
    let s = |k: &str| case[k].as_str().unwrap();
    let h = &case["header"];
    let header = Header {
        dtype: Dtype::parse(h["descr"].as_str().unwrap()).unwrap(),
        shape: h["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect(),
        fortran_order: h["fortranOrder"].as_bool().unwrap(),
    };
    let result = if s("result") == "ndarray" { ResultForm::NdArray } else { ResultForm::TypedArray };
    let class = ArrayClass::from_name(s("class")).unwrap();
    let entry = NewEntry { function: s("function"), result, class, members: &[] };
    let created = humantime::parse_rfc3339(s("created")).unwrap();
    let data = unhex(s("data"));
    // A directory's records note their boot; an object store's (and older ones) do not.
    let record = EntryRecord::new(&entry, &header, data_digest(&data), created).written_in(case["boot"].as_str());
    (record, header, data)
}

#[test]
fn entry_records_encode_decode_and_digest_as_the_golden_vectors_say() {
    if writing() {
        let cases: Vec<Value> = record_inputs()
            .into_iter()
            .map(|mut case| {
                let (record, header, data) = record_of(&case);
                case["headerDigest"] = json!(hex(&header_digest(&header)));
                case["dataDigest"] = json!(hex(&data_digest(&data)));
                case["json"] = json!(String::from_utf8(record.encode()).unwrap());
                case
            })
            .collect();
        let about = "Entry records: `json` is the record as written (<key>.json, and base64 in an object's metadata); the digests are BLAKE3 of the .npy header as the cache writes it and of the data; `boot`, where given, is the boot tag a directory's record notes (an object store's records, and older ones, have none).";
        write("records.json", &json!({ "about": about, "format": cache_core::record::FORMAT, "cases": cases }));
    }
    let vectors = read("records.json");
    assert_eq!(vectors["format"], json!(cache_core::record::FORMAT));
    for case in vectors["cases"].as_array().unwrap() {
        let (record, header, data) = record_of(case);
        let json = case["json"].as_str().unwrap();
        assert_eq!(String::from_utf8(record.encode()).unwrap(), json);
        assert_eq!(hex(&header_digest(&header)), case["headerDigest"].as_str().unwrap());
        assert_eq!(hex(&data_digest(&data)), case["dataDigest"].as_str().unwrap());
        let decoded = EntryRecord::decode(json.as_bytes()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(decoded.check(&header, header.dtype.byte_order, Some(&data)), Ok(()));
    }
}

/// The inputs of archive-records.json, when it is written anew: entries of
/// several arrays, each member a name, class, header and data.
fn archive_record_inputs() -> Vec<Value> {
    let f8: Vec<u8> = [1.5f64, -2.0, 0.0, 3.25].iter().flat_map(|v| v.to_le_bytes()).collect();
    let i4: Vec<u8> = [7i32, -1, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    // 1-d members are bare typed arrays; the others n-d arrays.
    let member = |name: &str, class: &str, descr: &str, shape: &[u64], data: &[u8]| {
        let form = if shape.len() == 1 { "typedarray" } else { "ndarray" };
        json!({ "name": name, "class": class, "form": form, "descr": descr, "shape": shape, "data": hex(data) })
    };
    vec![
        json!({ "function": "moments", "result": "record", "created": "2026-12-07T10:00:00.000001Z", "boot": "5d1e0c7a9b3f2468",
                "members": [member("mean", "Float64Array", "<f8", &[2, 2], &f8), member("counts", "Int32Array", "<i4", &[3], &i4),
                            member("mask", "Buffer", "|u1", &[2], &[1, 0]), member("half", "Float16Array", "<f2", &[1], &[0, 60])] }),
        json!({ "function": "pair", "result": "tuple", "created": "2026-12-07T10:00:00.000000Z",
                "members": [member("arr_0", "Uint8ClampedArray", "|u1", &[0], &[]), member("arr_1", "BigInt64Array", "<i8", &[1], &[9, 0, 0, 0, 0, 0, 0, 0])] }),
    ]
}

/// An archive case's record and file, as the cache writes them.
fn archive_of(case: &Value) -> (EntryRecord, Vec<u8>) {
    let s = |k: &str| case[k].as_str().unwrap();
    let members = case["members"].as_array().unwrap();
    let headers: Vec<Header> = (members.iter())
        .map(|m| Header {
            dtype: Dtype::parse(m["descr"].as_str().unwrap()).unwrap(),
            shape: m["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect(),
            fortran_order: false,
        })
        .collect();
    let data: Vec<Vec<u8>> = members.iter().map(|m| unhex(m["data"].as_str().unwrap())).collect();
    let forms: Vec<MemberForm> = (members.iter())
        .map(|m| MemberForm {
            class: ArrayClass::from_name(m["class"].as_str().unwrap()).unwrap(),
            form: if m["form"] == "ndarray" { ResultForm::NdArray } else { ResultForm::TypedArray },
        })
        .collect();
    let named: Vec<(&str, &Header, &[u8])> = (members.iter().zip(&headers).zip(&data))
        .map(|((m, h), d)| (m["name"].as_str().unwrap(), h, d.as_slice()))
        .collect();
    let content = Content::npz(NewArchive::new(&named).unwrap());
    let result = if s("result") == "tuple" { ResultForm::Tuple } else { ResultForm::Record };
    let entry = NewEntry { function: s("function"), result, class: forms[0].class, members: &forms };
    let created = humantime::parse_rfc3339(s("created")).unwrap();
    let record = content.record(&entry, content.body_digests().0, created).unwrap().written_in(case["boot"].as_str());
    let mut file = content.preamble().to_vec();
    content.body().iter().for_each(|part| file.extend_from_slice(part));
    (record, file)
}

#[test]
fn archive_records_encode_decode_and_digest_as_the_golden_vectors_say() {
    if writing() {
        let cases: Vec<Value> = archive_record_inputs()
            .into_iter()
            .map(|mut case| {
                let (record, file) = archive_of(&case);
                case["file"] = json!(hex(&file));
                case["json"] = json!(String::from_utf8(record.encode()).unwrap());
                case
            })
            .collect();
        let about = "Records of entries of several arrays: `json` is the record as written; `file` the entry's .npz (headerDigest is BLAKE3 of its bytes before the first member's data, dataDigest of all the rest); `classes` and `forms` have one letter per member, in order.";
        write(
            "archive-records.json",
            &json!({ "about": about, "format": cache_core::record::ARCHIVE_FORMAT, "cases": cases }),
        );
    }
    let vectors = read("archive-records.json");
    assert_eq!(vectors["format"], json!(cache_core::record::ARCHIVE_FORMAT));
    for case in vectors["cases"].as_array().unwrap() {
        let (record, file) = archive_of(case);
        let json = case["json"].as_str().unwrap();
        assert_eq!(String::from_utf8(record.encode()).unwrap(), json);
        assert_eq!(hex(&file), case["file"].as_str().unwrap());
        let decoded = EntryRecord::decode(json.as_bytes()).unwrap();
        assert_eq!(decoded, record);
        let at = npy_format::npz_preamble_len(&file).unwrap() as usize;
        let members = cache_core::open_archive(&decoded, &file[..at], &file[at..], true).unwrap();
        assert_eq!(members.len(), case["members"].as_array().unwrap().len());
    }
}

/// The holders of leases.json's lines, when it is written anew.
fn holder_inputs() -> Vec<Holder> {
    let holder = |tag: &str, pid, ms: Option<u64>, host: &str| Holder {
        tag: tag.into(),
        pid,
        stale_after: ms.map(Duration::from_millis),
        host_name: host.into(),
    };
    vec![
        holder("0123456789abcdef", 4242, Some(60_000), "node-1"),
        holder("fedcba9876543210", 1, Some(200), "worker-6b7c9d8f4-x7k2p"),
        holder("00000000000000ff", 99999, Some(86_400_000), ""),
    ]
}

fn holder_json(h: &Holder) -> Value {
    json!({ "tag": h.tag, "pid": h.pid, "staleAfterMs": h.stale_after.map(|d| d.as_millis() as u64), "hostName": h.host_name })
}

#[test]
fn lease_lines_write_read_and_judge_as_the_golden_vectors_say() {
    if writing() {
        let lines: Vec<Value> =
            holder_inputs().iter().map(|h| json!({ "holder": holder_json(h), "line": h.line() })).collect();
        let not_leases =
            json!(["", "0123456789abcdef", "0123456789abcdef notapid 60000 h", "\u{fffd} 1", "a".repeat(300)]);
        let judge = |line: &str, age: u64, own: u64, skew: u64| {
            let stale = lease::is_stale(
                Holder::parse(line.as_bytes()).as_ref(),
                Duration::from_millis(age),
                Duration::from_millis(own),
                Duration::from_millis(skew),
            );
            json!({ "line": line, "ageMs": age, "ownStaleAfterMs": own, "skewMs": skew, "stale": stale })
        };
        let elsewhere = "0123456789abcdef 4242 5000 node-1\n";
        let unbounded = "0123456789abcdef 4242 10000000000000000 node-1\n";
        let judgements = json!([
            judge(elsewhere, 4_999, 60_000, 0),
            judge(elsewhere, 5_000, 60_000, 0),
            judge(elsewhere, 6_000, 60_000, 2_000),
            judge(elsewhere, 7_000, 60_000, 2_000),
            judge("garbage that is no lease", 59_999, 60_000, 0),
            judge("garbage that is no lease", 60_000, 60_000, 0),
            judge(unbounded, 86_399_999, 60_000, 0),
            judge(unbounded, 86_400_000, 60_000, 0),
        ]);
        let about = "Lease lines (a directory's .<key>.lock, a store's <key>.lease): `<host tag> <pid> <staleAfter ms> <host name>\\n`; what is no lease line; and when a lease of another host is stale (its own staleAfter, at most a day, plus the tier's clock skew; the claimant's own when it declares none).";
        write(
            "leases.json",
            &json!({ "about": about, "maxLeaseLen": lease::MAX_LEASE_LEN, "maxStaleAfterMs": lease::MAX_STALE_AFTER.as_millis() as u64, "lines": lines, "notLeases": not_leases, "judgements": judgements }),
        );
    }
    let vectors = read("leases.json");
    assert_eq!(vectors["maxLeaseLen"], json!(lease::MAX_LEASE_LEN));
    assert_eq!(vectors["maxStaleAfterMs"], json!(lease::MAX_STALE_AFTER.as_millis() as u64));
    for l in vectors["lines"].as_array().unwrap() {
        let line = l["line"].as_str().unwrap();
        let holder = Holder::parse(line.as_bytes()).unwrap();
        assert_eq!(holder_json(&holder), l["holder"]);
        assert_eq!(holder.line(), line);
    }
    for bad in vectors["notLeases"].as_array().unwrap() {
        assert_eq!(Holder::parse(bad.as_str().unwrap().as_bytes()), None, "{bad}");
    }
    for j in vectors["judgements"].as_array().unwrap() {
        let ms = |k: &str| Duration::from_millis(j[k].as_u64().unwrap());
        let holder = Holder::parse(j["line"].as_str().unwrap().as_bytes());
        let stale = lease::is_stale(holder.as_ref(), ms("ageMs"), ms("ownStaleAfterMs"), ms("skewMs"));
        assert_eq!(json!(stale), j["stale"], "{j}");
    }
}
