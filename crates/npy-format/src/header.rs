//! The .npy preamble: magic, version, header length and the header dict.

use std::io::{self, Read};

use crate::error::shape_repr;
use crate::{Dtype, Error};

/// `\x93NUMPY`, the first six bytes of every .npy file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest header dict we accept, checked before allocating it. NumPy's own
/// default limit is 10 000; this leaves room for arrays with many dims.
pub const MAX_HEADER_LEN: u64 = 1 << 20;

/// The most dimensions NumPy (2.x, `NPY_MAXDIMS`) handles; writers refuse
/// more, as a file NumPy cannot load is no use to share.
pub const MAX_DIMS: usize = 64;

/// NumPy pads the preamble to this so data can be mmapped aligned.
const ARRAY_ALIGN: usize = 64;
/// Spare spaces NumPy leaves so the growth axis can be rewritten in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The decoded header of a .npy file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub dtype: Dtype,
    /// Dimensions; empty for a 0-d (scalar) array.
    pub shape: Vec<u64>,
    /// True when the data is stored column-major.
    pub fortran_order: bool,
}

impl Header {
    /// Product of the dims (1 for a 0-d array); overflow is an error.
    pub fn element_count(&self) -> Result<u64, Error> {
        self.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(|| self.overflow())
    }

    /// Size of the data section in bytes; overflow is an error.
    pub fn data_len(&self) -> Result<u64, Error> {
        self.element_count()?.checked_mul(self.dtype.item_size as u64).ok_or_else(|| self.overflow())
    }

    pub(crate) fn overflow(&self) -> Error {
        Error::SizeOverflow { shape: self.shape.clone(), descr: self.dtype.descr() }
    }

    /// The full preamble, byte-for-byte what NumPy 2.x `np.save` writes:
    /// magic, version, length, dict, growth-axis spaces, padding to a
    /// multiple of 64 and a final `'\n'`. Version 1.0 when the length fits
    /// in 16 bits, else 2.0.
    ///
    /// Fields are written as given: the dtype is not validated (the writers
    /// do that) and `fortran_order` is kept even for 1-D arrays, where
    /// `np.save` would write `False`.
    pub fn encode(&self) -> Vec<u8> {
        let dict = self.dict_text();
        // +1 for the trailing '\n' (format.py's `hlen`).
        let hlen = dict.len() + 1;
        let (major, total_len) = version_and_len(hlen);
        let mut out = Vec::with_capacity(12 + total_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(total_len as u16).to_le_bytes());
        } else {
            // Only a multi-GiB shape list could overflow this; writers
            // reject headers over MAX_HEADER_LEN long before.
            let len32 = u32::try_from(total_len).unwrap_or(u32::MAX);
            out.extend_from_slice(&len32.to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        // `padlen` spaces, then the '\n' counted in `hlen`.
        out.resize(out.len() + (total_len - hlen), b' ');
        out.push(b'\n');
        out
    }

    /// The header-length field `encode` would write (dict + padding + '\n').
    pub(crate) fn encode_len(&self) -> usize {
        version_and_len(self.dict_text().len() + 1).1
    }

    /// `_write_array_header`'s dict text, keys sorted, plus growth spaces.
    fn dict_text(&self) -> String {
        let mut s = format!(
            "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
            self.dtype.descr(),
            if self.fortran_order { "True" } else { "False" },
            shape_repr(&self.shape)
        );
        let growth_axis = if self.fortran_order { self.shape.last() } else { self.shape.first() };
        if let Some(dim) = growth_axis {
            let digits = dim.to_string().len();
            s.extend(std::iter::repeat_n(' ', GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
        }
        s
    }
}

/// `_wrap_header_guess_version`: 1.0 if the length fits 16 bits, else 2.0
/// (3.0 only matters for non-latin-1 text, which our dicts never contain).
fn version_and_len(hlen: usize) -> (u8, usize) {
    let v1 = pad(10, hlen);
    if v1 <= u16::MAX as usize {
        (1, v1)
    } else {
        (2, pad(12, hlen))
    }
}

/// format.py `_wrap_header`: header-length field value for a dict of `hlen`
/// bytes (incl. '\n') after a `prefix`-byte magic+version+length. NumPy always
/// adds 1..=64 spaces, so a 64 here is intended.
fn pad(prefix: usize, hlen: usize) -> usize {
    let padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
    hlen + padlen
}

/// Reads the preamble from `reader`, leaving it at the first data byte.
///
/// Returns the header and the data offset (preamble length). The header is
/// validated (supported dtype, byte length fits in `u64`) but not checked
/// against any data; the dtype keeps the file's byte order.
pub fn decode_header<R: Read>(reader: &mut R) -> Result<(Header, u64), Error> {
    let mut magic = [0u8; 8];
    let got = read_up_to(reader, &mut magic)?;
    if magic[..got.min(6)] != MAGIC[..got.min(6)] {
        return Err(Error::BadMagic);
    }
    if got < 8 {
        return Err(Error::TruncatedHeader);
    }
    let (major, minor) = (magic[6], magic[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2usize, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(Error::UnsupportedVersion { major, minor }),
    };
    let mut len_bytes = [0u8; 4];
    read_exact(reader, &mut len_bytes[..len_size])?;
    let header_len = u32::from_le_bytes(len_bytes) as u64;
    if header_len > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge { len: header_len, max: MAX_HEADER_LEN });
    }
    let mut text = vec![0u8; header_len as usize];
    read_exact(reader, &mut text)?;
    let header = parse_dict(&text, utf8)?;
    header.data_len()?;
    Ok((header, 8 + len_size as u64 + header_len))
}

/// [`decode_header`] over a byte slice; trailing bytes (the data) are ignored.
pub fn decode_header_bytes(bytes: &[u8]) -> Result<(Header, u64), Error> {
    let mut reader = bytes;
    decode_header(&mut reader)
}

/// Like `read_exact` but returns how much it got before EOF.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read the .npy header")(e)),
        }
    }
    Ok(got)
}

fn read_exact<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<(), Error> {
    if read_up_to(reader, buf)? < buf.len() {
        return Err(Error::TruncatedHeader);
    }
    Ok(())
}

/// Parses the header dict: a Python literal like
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
///
/// Accepts any key order, either quote style, any whitespace, trailing
/// commas and Python 2 `L` suffixes; nothing else.
fn parse_dict(text: &[u8], utf8: bool) -> Result<Header, Error> {
    if utf8 && std::str::from_utf8(text).is_err() {
        return Err(Error::InvalidHeader("a version 3.0 header must be valid UTF-8".into()));
    }
    let mut p = Parser { s: text, pos: 0, utf8 };
    let mut descr: Option<Dtype> = None;
    let mut fortran: Option<bool> = None;
    let mut shape: Option<Vec<u64>> = None;

    p.ws();
    p.expect(b'{', "'{' at the start of the header dict")?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string("a quoted key or '}'")?;
        p.ws();
        p.expect(b':', "':' after the key")?;
        p.ws();
        let duplicate = match key.as_str() {
            "descr" => descr.replace(p.descr()?).is_some(),
            "fortran_order" => fortran.replace(p.bool()?).is_some(),
            "shape" => shape.replace(p.shape()?).is_some(),
            _ => return Err(Error::UnexpectedKey(key)),
        };
        if duplicate {
            return Err(Error::DuplicateKey(key));
        }
        p.ws();
        if p.eat(b'}') {
            break;
        }
        p.expect(b',', "',' or '}' after a value")?;
    }
    p.ws();
    if p.pos != text.len() {
        return Err(p.error("nothing but whitespace after the closing '}'"));
    }
    Ok(Header {
        dtype: descr.ok_or(Error::MissingKey("descr"))?,
        fortran_order: fortran.ok_or(Error::MissingKey("fortran_order"))?,
        shape: shape.ok_or(Error::MissingKey("shape"))?,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    utf8: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')) {
            self.pos += 1;
        }
    }

    fn error(&self, expected: &str) -> Error {
        let found = match self.peek() {
            None => "the end of the header".to_string(),
            Some(c) if c.is_ascii_graphic() => format!("'{}'", c as char),
            Some(c) => format!("byte 0x{c:02x}"),
        };
        Error::InvalidHeader(format!("expected {expected} but found {found} at offset {} of the header dict", self.pos))
    }

    fn expect(&mut self, c: u8, expected: &str) -> Result<(), Error> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// A '...' or "..." literal without escapes (none occur in valid headers).
    fn string(&mut self, expected: &str) -> Result<String, Error> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.error(expected)),
        };
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(c) if c == quote => break,
                Some(b'\\') => return Err(self.error("a string without backslash escapes")),
                Some(b'\n') | None => return Err(self.error("a closing quote")),
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.s[start..self.pos];
        self.pos += 1;
        Ok(if self.utf8 {
            String::from_utf8_lossy(raw).into_owned()
        } else {
            // Versions 1.0 and 2.0 are latin-1.
            raw.iter().map(|&b| b as char).collect()
        })
    }

    fn descr(&mut self) -> Result<Dtype, Error> {
        match self.peek() {
            Some(b'\'' | b'"') => Dtype::parse(&self.string("a dtype string")?),
            Some(b'[') => Err(Error::UnsupportedDtype {
                descr: "[...]".into(),
                reason: "structured dtypes (a list of fields) are not supported; save each field as its own array"
                    .into(),
            }),
            _ => Err(self.error("a dtype string such as '<f8' for 'descr'")),
        }
    }

    fn bool(&mut self) -> Result<bool, Error> {
        let rest = &self.s[self.pos..];
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            let ends_word = !rest.get(word.len()).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
            if rest.starts_with(word) && ends_word {
                self.pos += word.len();
                return Ok(value);
            }
        }
        Err(self.error("True or False for 'fortran_order'"))
    }

    /// A tuple of non-negative ints: `()`, `(5,)`, `(2, 3)`, `(3L,)`.
    fn shape(&mut self) -> Result<Vec<u64>, Error> {
        self.expect(b'(', "a tuple such as (2, 3) for 'shape'")?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            dims.push(self.dim()?);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if dims.len() == 1 {
                // `(5)` is an int in Python, not a tuple.
                return Err(self.error("',' after the only dim (a 1-tuple is written (5,))"));
            }
            self.expect(b')', "',' or ')' in 'shape'")?;
            break;
        }
        Ok(dims)
    }

    fn dim(&mut self) -> Result<u64, Error> {
        if self.peek() == Some(b'-') {
            return Err(Error::InvalidHeader(format!(
                "'shape' has a negative dimension at offset {} of the header dict",
                self.pos
            )));
        }
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.error("a non-negative integer dimension in 'shape'"));
        }
        let mut value: u64 = 0;
        let mut overflow = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(c - b'0'))) {
                    Some(v) => value = v,
                    None => overflow = true,
                },
                // Python allows 1_000; only between digits.
                b'_' if self.s.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => {}
                _ => break,
            }
            self.pos += 1;
        }
        if overflow {
            return Err(Error::InvalidHeader("'shape' has a dimension larger than 2^64 - 1".into()));
        }
        // Python 2 wrote longs as `3L`.
        if !self.eat(b'L') {
            self.eat(b'l');
        }
        Ok(value)
    }
}
