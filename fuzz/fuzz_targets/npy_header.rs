//! `decode_header_bytes` on arbitrary bytes.
//!
//! Properties:
//! - never panics, whatever the input;
//! - a decoded header is valid: supported dtype, `data_len` computes, the
//!   data offset lies within the input;
//! - `Header::encode` of a decoded header decodes back to an equal header,
//!   with the data offset at the end of the encoded preamble, a 64-byte
//!   aligned preamble, and `encode` idempotent on its own output;
//! - decoding through a reader that returns one to three bytes per `read`
//!   gives the same result and leaves the reader at the data offset.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use npy_format::{decode_header, decode_header_bytes, Error, MAX_HEADER_LEN};

/// A reader handing out its bytes in small pieces, to exercise short reads.
struct Trickle<'a> {
    rest: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 3 + 1;
        let n = self.step.min(buf.len()).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

fn same_error(a: &Error, b: &Error) -> bool {
    a.to_string() == b.to_string()
}

fuzz_target!(|data: &[u8]| {
    let decoded = decode_header_bytes(data);

    // A reader with short reads must agree with the slice decoder.
    let mut trickle = Trickle { rest: data, step: 0 };
    let streamed = decode_header(&mut trickle);
    match (&decoded, &streamed) {
        (Ok((h1, o1)), Ok((h2, o2))) => {
            assert_eq!(h1, h2);
            assert_eq!(o1, o2);
            assert_eq!(data.len() - trickle.rest.len(), *o1 as usize, "reader left past the data offset");
        }
        (Err(e1), Err(e2)) => assert!(same_error(e1, e2), "{e1} vs {e2}"),
        _ => panic!("slice and reader decoding disagree: {decoded:?} vs {streamed:?}"),
    }

    let (header, offset) = match decoded {
        Ok(ok) => ok,
        Err(e) => {
            // Error messages are built from untrusted text: must not panic.
            let _ = e.to_string();
            let _ = format!("{e:?}");
            return;
        }
    };

    assert!(offset as usize <= data.len(), "offset {offset} past the {}-byte input", data.len());
    header.dtype.validate().expect("decoded dtype must be supported");
    let data_len = header.data_len().expect("decode_header checks data_len");
    assert_eq!(data_len, header.element_count().unwrap() * header.dtype.item_size as u64);
    let _ = header.dtype.descr();
    let _ = header.dtype.native();

    // Round trip.
    let encoded = header.encode();
    assert_eq!(encoded.len() % 64, 0, "preamble not padded to 64 bytes");
    assert_eq!(encoded.last(), Some(&b'\n'));
    if encoded.len() as u64 > MAX_HEADER_LEN + 12 {
        // Writers refuse such headers (HeaderTooLarge); only a huge dim list gets here.
        return;
    }
    let (again, again_offset) =
        decode_header_bytes(&encoded).unwrap_or_else(|e| panic!("encode of {header:?} does not decode: {e}"));
    assert_eq!(again, header, "round trip changed the header");
    assert_eq!(again_offset as usize, encoded.len());
    assert_eq!(again.encode(), encoded, "encode is not idempotent");
});
