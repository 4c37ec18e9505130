//! An entry's record as object metadata. S3 metadata values are headers,
//! so the record's JSON (which may name a function in any script) travels
//! base64-encoded in one value of a few hundred bytes, far below S3's 2 KB.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cache_core::{EntryRecord, RecordProblem};
use object_store::{Attribute, AttributeValue, Attributes};

/// The metadata name (`x-amz-meta-nfcrecord` on S3): one word, since
/// Azure takes only C# identifiers and some proxies drop `_` in headers.
pub(crate) const RECORD: &str = "nfcrecord";

pub(crate) fn attributes_of(record: &EntryRecord) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata(RECORD.into()), AttributeValue::from(STANDARD.encode(record.encode())));
    attributes.insert(Attribute::ContentType, AttributeValue::from("application/octet-stream"));
    attributes
}

pub(crate) fn record_of(attributes: &Attributes) -> Result<EntryRecord, RecordProblem> {
    let value = attributes
        .get(&Attribute::Metadata(RECORD.into()))
        .ok_or_else(|| RecordProblem::Invalid("is missing (no nfcrecord metadata)".into()))?;
    let json =
        STANDARD.decode(value.as_ref()).map_err(|e| RecordProblem::Invalid(format!("metadata is not base64 ({e})")))?;
    EntryRecord::decode(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_golden_record_travels_as_its_base64_and_back() {
        let v: serde_json::Value = serde_json::from_str(include_str!("../../../test-vectors/records.json")).unwrap();
        for case in v["cases"].as_array().unwrap() {
            let json = case["json"].as_str().unwrap();
            let record = EntryRecord::decode(json.as_bytes()).unwrap();
            let attributes = attributes_of(&record);
            let value = attributes.get(&Attribute::Metadata(RECORD.into())).unwrap();
            assert_eq!(STANDARD.decode(value.as_ref()).unwrap(), json.as_bytes());
            assert_eq!(record_of(&attributes).unwrap(), record);
        }
    }
    use cache_core::{ArrayClass, NewEntry, ResultForm};
    use npy_format::{Dtype, Header};

    #[test]
    fn a_record_survives_metadata_and_a_missing_or_bad_one_says_so() {
        let header = Header { dtype: Dtype::parse("<f8").unwrap(), shape: vec![3], fortran_order: false };
        let entry = NewEntry {
            function: "embed ✓",
            result: ResultForm::TypedArray,
            class: ArrayClass::Float64Array,
            members: &[],
        };
        let record = EntryRecord::new(&entry, &header, [7; 32], std::time::SystemTime::UNIX_EPOCH);
        let attributes = attributes_of(&record);
        assert_eq!(record_of(&attributes).unwrap(), record);
        assert!(record_of(&Attributes::new()).unwrap_err().to_string().contains("missing"));
        let mut bad = Attributes::new();
        bad.insert(Attribute::Metadata(RECORD.into()), AttributeValue::from("%%%"));
        assert!(record_of(&bad).unwrap_err().to_string().contains("base64"));
    }
}
