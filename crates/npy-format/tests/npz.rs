//! Aligned `.npz` archives: layout, what other readers make of them, and
//! what is refused.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};

use npy_format::{read_npz_members, write_npz_to, Dtype, Error, Header, NpzLayout, MAX_MEMBERS, NPZ_ALIGN};

fn header(descr: &str, shape: &[u64]) -> Header {
    Header { dtype: Dtype::parse(descr).unwrap(), shape: shape.to_vec(), fortran_order: false }
}

/// Members of every shape of interest: n-d, 0-d, empty, big-endian,
/// one-byte, a name of several scripts.
fn members() -> Vec<(String, Header, Vec<u8>)> {
    let f8: Vec<u8> = (0..12).flat_map(|i| (i as f64 * 1.5).to_le_bytes()).collect();
    let i4: Vec<u8> = (0..5).flat_map(|i: i32| (i - 2).to_le_bytes()).collect();
    let be: Vec<u8> = (0..3).flat_map(|i| (i as f32 + 0.25).to_be_bytes()).collect();
    vec![
        ("mean".into(), header("<f8", &[3, 4]), f8),
        ("arr_1".into(), header("<i4", &[5]), i4),
        ("scalar".into(), header("|u1", &[]), vec![7]),
        ("empty".into(), header("<f4", &[0, 3]), vec![]),
        ("big".into(), header(">f4", &[3]), be),
        ("flags".into(), header("|b1", &[2]), vec![1, 0]),
        ("σ-größe 名".into(), header("<u2", &[1]), vec![1, 2]),
    ]
}

fn written(dir: &tempfile::TempDir, members: &[(String, Header, Vec<u8>)]) -> (std::path::PathBuf, NpzLayout) {
    let path = dir.path().join("a.npz");
    let refs: Vec<(&str, &Header, &[u8])> = members.iter().map(|(n, h, d)| (n.as_str(), h, d.as_slice())).collect();
    let layout = write_npz_to(&mut File::create(&path).unwrap(), &refs).unwrap();
    (path, layout)
}

#[test]
fn members_read_back_with_their_data_aligned_where_the_layout_said() {
    let tmp = tempfile::tempdir().unwrap();
    let members = members();
    let (path, layout) = written(&tmp, &members);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, layout.len());
    let found = read_npz_members(&mut File::open(&path).unwrap()).unwrap();
    assert_eq!(found.len(), members.len());
    for ((name, header, data), (planned, read)) in members.iter().zip(layout.members().iter().zip(&found)) {
        assert_eq!(&read.name, name);
        assert_eq!(&read.header, header);
        assert_eq!((read.data, read.data_len), (planned.data, planned.data_len), "{name}");
        assert_eq!(read.data % NPZ_ALIGN, 0, "{name}'s data is aligned");
        assert_eq!(&bytes[read.data as usize..(read.data + read.data_len) as usize], data.as_slice());
        let npy = [header.encode(), data.clone()].concat();
        assert_eq!(read.crc, crc32fast::hash(&npy), "{name}'s CRC-32 is its .npy file's");
    }
}

#[test]
fn a_general_zip_reader_reads_every_member_as_its_npy_file_and_checks_its_crc() {
    let tmp = tempfile::tempdir().unwrap();
    let members = members();
    let (path, _) = written(&tmp, &members);
    let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let expected: Vec<String> = members.iter().map(|(n, _, _)| format!("{n}.npy")).collect();
    assert_eq!(names.iter().collect::<std::collections::HashSet<_>>(), expected.iter().collect());
    for (name, header, data) in &members {
        let mut got = Vec::new();
        // Reading to the end checks the CRC-32.
        archive.by_name(&format!("{name}.npy")).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got, [header.encode(), data.clone()].concat(), "{name}");
    }
}

#[test]
fn numpy_loads_the_archive_as_a_dict_of_its_members() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    if !std::path::Path::new(python).exists() {
        panic!("{python} is missing: run `node scripts/setup.mjs --python` first");
    }
    let tmp = tempfile::tempdir().unwrap();
    let members = members();
    let (path, _) = written(&tmp, &members);
    let script = r#"
import sys, json, numpy as np
with np.load(sys.argv[1]) as z:
    print(json.dumps({k: [z[k].dtype.str, list(z[k].shape), z[k].tobytes().hex()] for k in z.files}))
"#;
    let out = std::process::Command::new(python).args(["-c", script]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.as_object().unwrap().len(), members.len());
    for (name, header, data) in &members {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let expected = serde_json::json!([header.dtype.descr(), header.shape, hex]);
        assert_eq!(got[name], expected, "{name}");
    }
}

#[test]
fn numpys_own_savez_is_read_and_its_compressed_form_is_refused_naming_the_member() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed) = (tmp.path().join("plain.npz"), tmp.path().join("packed.npz"));
    let script = r#"
import sys, numpy as np
a = np.arange(6, dtype='<f8').reshape(2, 3)
np.savez(sys.argv[1], a, labels=np.array([1, 2, 3], dtype='>i2'))
np.savez_compressed(sys.argv[2], a=a)
"#;
    let out = std::process::Command::new(python).args(["-c", script]).arg(&plain).arg(&packed).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut file = File::open(&plain).unwrap();
    let found = read_npz_members(&mut file).unwrap();
    // In the archive's order: savez puts keyword arrays before positional ones.
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["labels", "arr_0"]);
    assert_eq!(found[1].header, header("<f8", &[2, 3]));
    let mut data = vec![0u8; 48];
    file.seek(SeekFrom::Start(found[1].data)).unwrap();
    file.read_exact(&mut data).unwrap();
    let expected: Vec<u8> = (0..6).flat_map(|i| (i as f64).to_le_bytes()).collect();
    assert_eq!(data, expected);
    assert_eq!(found[0].header, header(">i2", &[3]));
    match read_npz_members(&mut File::open(&packed).unwrap()) {
        Err(Error::BadMember { name, reason }) => {
            assert_eq!(name, "a");
            assert!(reason.contains("compressed"), "{reason}");
        }
        other => panic!("expected a compressed member refused, got {other:?}"),
    }
}

#[test]
fn names_that_zip_tools_or_numpy_would_read_otherwise_are_refused() {
    let h = header("<f8", &[1]);
    for name in ["", "a/b", "..", ".", "a\\b", "tab\there", &"x".repeat(256)] {
        match NpzLayout::plan(&[(name, &h)]) {
            Err(Error::BadMember { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name:?}: expected BadMember, got {other:?}"),
        }
    }
    assert!(matches!(NpzLayout::plan(&[("a", &h), ("a", &h)]), Err(Error::DuplicateMember(n)) if n == "a"));
    let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("arr_{i}")).collect();
    let refs: Vec<(&str, &Header)> = many.iter().map(|n| (n.as_str(), &h)).collect();
    assert!(
        matches!(NpzLayout::plan(&refs), Err(Error::TooManyMembers { count, max }) if count == MAX_MEMBERS + 1 && max == MAX_MEMBERS)
    );
    assert!(NpzLayout::plan(&refs[..MAX_MEMBERS]).is_ok());
}

#[test]
fn data_of_the_wrong_length_is_refused_before_anything_is_written() {
    let h = header("<f8", &[2]);
    let mut out = Vec::new();
    let err = write_npz_to(&mut out, &[("a", &h, &[0u8; 15][..])]).unwrap_err();
    assert!(matches!(err, Error::DataLenMismatch { actual: 15, expected: 16, .. }), "{err}");
    assert!(out.is_empty());
}

#[test]
fn a_member_whose_npy_header_disagrees_with_its_size_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let members = vec![("a".to_owned(), header("<f8", &[4]), vec![0u8; 32])];
    let (path, layout) = written(&tmp, &members);
    // Claim 5 elements in the member's own .npy header: 8 bytes it does not have.
    let mut bytes = fs::read(&path).unwrap();
    let npy = layout.members()[0].npy as usize;
    let at = npy + bytes[npy..].windows(4).position(|w| w == b"(4,)").unwrap();
    bytes[at + 1] = b'5';
    fs::write(&path, &bytes).unwrap();
    match read_npz_members(&mut File::open(&path).unwrap()) {
        Err(Error::BadMember { name, reason }) => assert!(name == "a" && reason.contains("truncated"), "{reason}"),
        other => panic!("expected BadMember, got {other:?}"),
    }
}

#[test]
fn what_is_not_a_zip_is_refused_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.npz");
    fs::write(&path, b"\x93NUMPY not a zip at all").unwrap();
    let err = read_npz_members(&mut File::open(&path).unwrap()).unwrap_err();
    assert!(matches!(err, Error::BadArchive(_)), "{err}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// test-vectors/npz.json: an archive's every byte, so a change to the
/// layout fails loudly. `NFC_WRITE_VECTORS=1 cargo test -p npy-format --test
/// npz` writes it anew from this implementation: only with a new format.
#[test]
fn the_archive_of_the_golden_members_is_the_golden_bytes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors/npz.json");
    let cases: Vec<(String, Header, Vec<u8>)> = vec![
        (
            "arr_0".into(),
            header("<f8", &[2, 2]),
            [1.0f64, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        ("labels".into(), header("|u1", &[3]), vec![7, 8, 9]),
        ("größe".into(), header(">i2", &[]), vec![0x01, 0x02]),
    ];
    let refs: Vec<(&str, &Header, &[u8])> = cases.iter().map(|(n, h, d)| (n.as_str(), h, d.as_slice())).collect();
    let mut bytes = Vec::new();
    let layout = write_npz_to(&mut bytes, &refs).unwrap();
    let members: Vec<serde_json::Value> = cases
        .iter()
        .zip(layout.members())
        .map(|((name, h, d), m)| {
            serde_json::json!({ "name": name, "descr": h.dtype.descr(), "shape": h.shape, "data": hex(d), "dataOffset": m.data })
        })
        .collect();
    let about = "An aligned .npz (crates/npy-format/src/npz.rs) of these members, in order: every byte.";
    let expected = serde_json::json!({ "about": about, "members": members, "archive": hex(&bytes) });
    if std::env::var("NFC_WRITE_VECTORS").as_deref() == Ok("1") {
        fs::write(path, serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
    }
    let golden: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(golden["members"], expected["members"], "the members and where their data lies");
    assert_eq!(unhex(golden["archive"].as_str().unwrap()), bytes, "the archive's bytes");
}

/// Offsets and sizes past 4 GiB take zip64 fields: a member after a 4.8 GB
/// one (a sparse file, never written) is found where the layout put it, by
/// this reader and by Python's zipfile.
#[cfg(unix)]
#[test]
fn a_member_past_4_gib_is_found_where_the_layout_put_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.npz");
    let (big, small) = (header("<f8", &[600_000_000]), header("<i4", &[2]));
    let layout = NpzLayout::plan(&[("big", &big), ("small", &small)]).unwrap();
    let m = layout.members();
    assert!(m[1].local_header > u32::MAX as u64);
    let file = File::create(&path).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(&layout.head(0, 0), m[0].local_header).unwrap();
    file.write_all_at(&layout.head(1, 0), m[1].local_header).unwrap();
    file.write_all_at(&[5, 0, 0, 0, 6, 0, 0, 0], m[1].data).unwrap();
    file.write_all_at(&layout.tail(&[0, 0]), m[1].data + 8).unwrap();
    assert_eq!(file.metadata().unwrap().len(), layout.len());
    let found = read_npz_members(&mut File::open(&path).unwrap()).unwrap();
    assert_eq!((found[0].data, found[0].data_len), (m[0].data, 4_800_000_000));
    assert_eq!((found[1].data, found[1].data_len, &found[1].header), (m[1].data, 8, &small));
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let script = "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, i.header_offset, i.file_size)";
    let out = std::process::Command::new(python).args(["-c", script]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let npy_len = |i: usize| m[i].data - m[i].npy + m[i].data_len;
    let expected = format!("big.npy 0 {}\nsmall.npy {} {}\n", npy_len(0), m[1].local_header, npy_len(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn read_npz_gives_every_member_in_native_order_and_refuses_a_flipped_byte_naming_the_member() {
    let tmp = tempfile::tempdir().unwrap();
    let members = members();
    let (path, layout) = written(&tmp, &members);
    let arrays = npy_format::read_npz(&path).unwrap();
    assert_eq!(arrays.len(), members.len());
    for ((name, header, data), (got_name, array)) in members.iter().zip(&arrays) {
        assert_eq!(got_name, name);
        assert_eq!(array.header.shape, header.shape);
        assert_eq!(array.header.dtype, header.dtype.native());
        let mut native = data.clone();
        npy_format::swap_to_native(&header.dtype, &mut native);
        assert_eq!(array.data.as_slice(), native.as_slice(), "{name}");
    }
    // A flipped byte in one member's data.
    let m = &layout.members()[0];
    let mut bytes = fs::read(&path).unwrap();
    bytes[m.data as usize + 5] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let err = npy_format::read_npz(&path).unwrap_err();
    assert_eq!(err.path(), Some(path.as_path()));
    match err.root() {
        Error::BadMember { name, reason } => assert!(name == "mean" && reason.contains("CRC-32"), "{reason}"),
        other => panic!("expected the member named, got {other:?}"),
    }
}

/// Splits an archive's bytes where its first member's data begins.
fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    bytes.split_at(npy_format::npz_preamble_len(bytes).unwrap() as usize)
}

#[test]
fn an_archive_of_this_crate_is_read_back_from_its_bytes_with_its_members_where_the_layout_put_them() {
    let tmp = tempfile::tempdir().unwrap();
    let members = members();
    let (path, layout) = written(&tmp, &members);
    let bytes = fs::read(&path).unwrap();
    let (preamble, body) = split(&bytes);
    assert_eq!(preamble.len() as u64, layout.members()[0].data);
    let found = npy_format::aligned_npz_members(preamble, body).unwrap();
    let listed = read_npz_members(&mut File::open(&path).unwrap()).unwrap();
    assert_eq!(found, listed, "the strict reader and the zip crate agree");
    let file = File::open(&path).unwrap();
    assert_eq!(npy_format::aligned_npz_file_members(&file).unwrap(), found, "from the file, headers only");
    let (read_preamble, read_body) =
        npy_format::read_aligned_npz_into(&file, &path, npy_format::AlignedBuf::zeroed).unwrap();
    assert_eq!((&read_preamble[..], read_body.as_ref()), (preamble, body));
    for (m, (name, h, data)) in found.iter().zip(&members) {
        assert_eq!((&m.name, &m.header), (name, h));
        assert_eq!(&bytes[m.data as usize..(m.data + m.data_len) as usize], data.as_slice());
    }
    // Cut anywhere before its first data, the start asks for more bytes.
    for cut in [0, 4, 29, preamble.len() - 1] {
        assert!(matches!(npy_format::npz_preamble_len(&bytes[..cut]), Err(Error::TruncatedHeader)), "{cut}");
    }
}

#[test]
fn an_archive_not_byte_for_byte_as_this_crate_writes_it_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, layout) = written(&tmp, &members());
    let bytes = fs::read(&path).unwrap();
    let strict = |b: &[u8]| {
        let at = npy_format::npz_preamble_len(b)?;
        npy_format::aligned_npz_members(&b[..at as usize], &b[at as usize..])
    };
    // A flipped byte outside the data: in a later member's header, in the
    // central directory (the CRC of member 0, then an offset), in the end record.
    let second = &layout.members()[1];
    let central = layout.members().last().map(|m| m.data + m.data_len).unwrap() as usize;
    for at in [second.local_header as usize + 8, central + 16, central + 42 + 4 + 9, bytes.len() - 3] {
        let mut edited = bytes.clone();
        edited[at] ^= 1;
        assert!(strict(&edited).is_err(), "a flipped byte at {at} passed");
        let edited_path = tmp.path().join("edited.npz");
        fs::write(&edited_path, &edited).unwrap();
        assert!(npy_format::aligned_npz_file_members(&File::open(&edited_path).unwrap()).is_err(), "{at}");
    }
    // Cut short or lengthened.
    assert!(strict(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(strict(&longer).is_err());
    // Data is not the reader's business: a flipped data byte passes (the cache's digest catches it).
    let mut data_edit = bytes.clone();
    data_edit[second.data as usize] ^= 1;
    assert!(strict(&data_edit).is_ok());
    // NumPy's own archives are laid out otherwise.
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let theirs = tmp.path().join("theirs.npz");
    let script = "import sys, numpy as np; np.savez(sys.argv[1], a=np.arange(3.0))";
    let out = std::process::Command::new(python).args(["-c", script]).arg(&theirs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = strict(&fs::read(&theirs).unwrap()).unwrap_err();
    assert!(matches!(err, Error::BadArchive(_)), "{err}");
}

#[test]
fn a_mapped_archive_shows_each_member_in_place_and_one_in_the_other_byte_order_is_read_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let native: Vec<_> = members().into_iter().filter(|(_, h, d)| !h.dtype.needs_swap() && !d.is_empty()).collect();
    let (path, _) = written(&tmp, &native);
    let (mapped, found) = npy_format::map_npz_file(&File::open(&path).unwrap(), &path).unwrap().unwrap();
    let offset = found[0].data;
    assert_eq!(mapped.data_len() as u64 + offset, fs::metadata(&path).unwrap().len());
    for (m, (_, _, data)) in found.iter().zip(&native) {
        let at = (m.data - offset) as usize;
        assert_eq!(&mapped.data()[at..at + data.len()], data.as_slice());
        assert_eq!(m.data % NPZ_ALIGN, 0);
    }
    drop(mapped);
    let (swapped, _) = written(&tmp, &members());
    assert!(npy_format::map_npz_file(&File::open(&swapped).unwrap(), &swapped).unwrap().is_none());
}
