//! The small slice of msgpack that go-msgpack's zero-value handle speaks.
//!
//! Encoding writes exactly what Go writes (structs as maps with sorted field
//! names, byte slices in the raw/str family, smallest integer widths), so our
//! output is byte-identical to captured Go messages. Decoding goes through
//! `rmpv` (depth-limited, with capped preallocation, after a cheap check
//! that bounds how many values one message may hold) and then picks fields
//! by their Go names, accepting what Go's decoder accepts: missing keys and
//! nil keep the zero value, unknown keys are skipped, integers of any width.

use rmpv::Value;

use crate::Error;

/// Appends msgpack values to a byte vector. Writing into a `Vec` cannot fail,
/// so the helpers ignore rmp's I/O error type.
#[derive(Debug, Default)]
pub(crate) struct Enc {
    pub(crate) buf: Vec<u8>,
}

impl Enc {
    pub(crate) fn new() -> Self {
        Self { buf: Vec::new() }
    }

    pub(crate) fn with_type(ty: u8) -> Self {
        Self { buf: vec![ty] }
    }

    pub(crate) fn map(&mut self, len: u32) -> &mut Self {
        // Writing into a Vec<u8> is infallible.
        let _ = rmp::encode::write_map_len(&mut self.buf, len);
        self
    }

    pub(crate) fn array(&mut self, len: u32) -> &mut Self {
        let _ = rmp::encode::write_array_len(&mut self.buf, len);
        self
    }

    /// A length in the raw/str family as go-msgpack writes it: fixstr below
    /// 32, then `0xda` u16, then `0xdb` u32 (never str8 `0xd9`).
    fn raw_len(&mut self, len: usize) {
        if len < 32 {
            self.buf.push(0xa0 | len as u8);
        } else if let Ok(l) = u16::try_from(len) {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&l.to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.raw_len(bytes.len());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes())
    }

    pub(crate) fn key(&mut self, name: &str) -> &mut Self {
        self.str(name)
    }

    pub(crate) fn uint(&mut self, v: u64) -> &mut Self {
        let _ = rmp::encode::write_uint(&mut self.buf, v);
        self
    }

    pub(crate) fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.uint(v as u64)
        } else {
            let _ = rmp::encode::write_sint(&mut self.buf, v);
            self
        }
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        let _ = rmp::encode::write_bool(&mut self.buf, v);
        self
    }

    pub(crate) fn nil(&mut self) -> &mut Self {
        let _ = rmp::encode::write_nil(&mut self.buf);
        self
    }

    pub(crate) fn opt_raw(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => self.raw(b),
            None => self.nil(),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The most msgpack values (every nil, integer, string, array, map, ...,
/// counted at every depth) that one decoded value may contain. `rmpv` builds
/// a tree in which each value costs tens of bytes, so without this bound a
/// 1-byte nil repeated millions of times turns a small compressed stream
/// into hundreds of megabytes. A million values is far above any real
/// memberlist or serf message (a node state is 15 values).
pub(crate) const MAX_VALUES: u64 = 1_000_000;

/// The depth budget handed to rmpv, which spends about two units per level
/// of nesting. rmpv's default (1024) recurses deep enough to overflow a
/// 2 MiB thread stack in a debug build; Go's messages nest a handful of
/// levels (serf's push/pull is the deepest at about six).
const MAX_DEPTH: usize = 64;

/// Checks, without allocating or recursing, that the first msgpack value in
/// `input` holds at most [`MAX_VALUES`] values and that no array or map
/// declares more elements than there are bytes left to hold them (every
/// value takes at least one byte). Stops at a reserved marker, which `rmpv`
/// then reports.
fn check_value_size(input: &[u8], what: &'static str) -> Result<(), Error> {
    let truncated = Error::Truncated { what };
    let mut rest = input;
    // Values still to be read: the first value, plus the elements announced
    // by every array and map header met so far.
    let mut pending: u64 = 1;
    let mut seen: u64 = 0;
    while pending > 0 {
        let (&marker, tail) = rest.split_first().ok_or_else(|| truncated.clone())?;
        rest = tail;
        pending -= 1;
        seen += 1;
        if seen > MAX_VALUES {
            return Err(Error::Msgpack {
                what,
                reason: format!("more than {MAX_VALUES} values in one message"),
            });
        }
        // What follows the marker: a fixed number of payload bytes, a
        // big-endian length (of `width` bytes) then that many payload bytes
        // plus `extra`, or a number of elements.
        let (skip, elements) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            // fixext 1/2/4/8/16: a type byte then the data.
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            // str8/bin8, str16/bin16, str32/bin32, ext8/16/32 (+ type byte).
            0xc4 | 0xd9 => (read_len(&mut rest, 1, &truncated)?, 0),
            0xc5 | 0xda => (read_len(&mut rest, 2, &truncated)?, 0),
            0xc6 | 0xdb => (read_len(&mut rest, 4, &truncated)?, 0),
            0xc7 => (read_len(&mut rest, 1, &truncated)?.saturating_add(1), 0),
            0xc8 => (read_len(&mut rest, 2, &truncated)?.saturating_add(1), 0),
            0xc9 => (read_len(&mut rest, 4, &truncated)?.saturating_add(1), 0),
            0xdc => (0, read_len(&mut rest, 2, &truncated)? as u64),
            0xdd => (0, read_len(&mut rest, 4, &truncated)? as u64),
            0xde => (0, 2 * read_len(&mut rest, 2, &truncated)? as u64),
            0xdf => (0, 2 * read_len(&mut rest, 4, &truncated)? as u64),
            // 0xc1 is reserved: leave the error to rmpv.
            _ => return Ok(()),
        };
        rest = rest.get(skip..).ok_or_else(|| truncated.clone())?;
        pending += elements;
        // Each pending value needs at least one more byte of input.
        if pending > rest.len() as u64 {
            return Err(truncated);
        }
    }
    Ok(())
}

/// Reads a `width`-byte big-endian length from the front of `rest`.
fn read_len(rest: &mut &[u8], width: usize, truncated: &Error) -> Result<usize, Error> {
    let (len, tail) = rest.split_at_checked(width).ok_or_else(|| truncated.clone())?;
    *rest = tail;
    Ok(len.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
}

/// Reads one msgpack value from the front of `input`, advancing it. The
/// value's size is checked first (see [`check_value_size`]).
pub(crate) fn read_value(input: &mut &[u8], what: &'static str) -> Result<Value, Error> {
    check_value_size(input, what)?;
    rmpv::decode::read_value_with_max_depth(input, MAX_DEPTH).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated { what },
        _ => Error::Msgpack { what, reason: e.to_string() },
    })
}

/// The fields of a Go struct decoded from a msgpack map.
pub(crate) struct Fields {
    what: &'static str,
    entries: Vec<(Value, Value)>,
}

impl Fields {
    /// Reads one struct (a map, or nil meaning all zero values) from `input`.
    pub(crate) fn read(input: &mut &[u8], what: &'static str) -> Result<Self, Error> {
        let v = read_value(input, what)?;
        Self::from_value(v, what)
    }

    pub(crate) fn from_value(v: Value, what: &'static str) -> Result<Self, Error> {
        match v {
            Value::Map(entries) => Ok(Self { what, entries }),
            Value::Nil => Ok(Self { what, entries: Vec::new() }),
            other => Err(Error::WrongType {
                what,
                field: "(message)",
                expected: "map",
                found: kind(&other),
            }),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find_map(|(k, v)| {
            let key = match k {
                Value::String(s) => s.as_bytes(),
                _ => return None,
            };
            (key == name.as_bytes()).then_some(v)
        })
    }

    fn wrong(&self, field: &'static str, expected: &'static str, v: &Value) -> Error {
        Error::WrongType { what: self.what, field, expected, found: kind(v) }
    }

    pub(crate) fn value(&self, field: &'static str) -> Option<&Value> {
        match self.get(field) {
            None | Some(Value::Nil) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn bytes(&self, field: &'static str) -> Result<Vec<u8>, Error> {
        Ok(self.opt_bytes(field)?.unwrap_or_default())
    }

    pub(crate) fn opt_bytes(&self, field: &'static str) -> Result<Option<Vec<u8>>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(v) => value_bytes(v).map(Some).ok_or_else(|| self.wrong(field, "bytes", v)),
        }
    }

    pub(crate) fn string(&self, field: &'static str) -> Result<String, Error> {
        match self.value(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => String::from_utf8(s.as_bytes().to_vec())
                .map_err(|_| Error::InvalidUtf8 { what: self.what, field }),
            Some(v) => Err(self.wrong(field, "string", v)),
        }
    }

    pub(crate) fn u64(&self, field: &'static str) -> Result<u64, Error> {
        match self.value(field) {
            None => Ok(0),
            Some(Value::Integer(i)) => {
                i.as_u64().ok_or(Error::IntegerRange { what: self.what, field })
            }
            Some(v) => Err(self.wrong(field, "integer", v)),
        }
    }

    pub(crate) fn i64(&self, field: &'static str) -> Result<i64, Error> {
        match self.value(field) {
            None => Ok(0),
            Some(Value::Integer(i)) => {
                i.as_i64().ok_or(Error::IntegerRange { what: self.what, field })
            }
            Some(v) => Err(self.wrong(field, "integer", v)),
        }
    }

    pub(crate) fn u32(&self, field: &'static str) -> Result<u32, Error> {
        u32::try_from(self.u64(field)?).map_err(|_| Error::IntegerRange { what: self.what, field })
    }

    pub(crate) fn u16(&self, field: &'static str) -> Result<u16, Error> {
        u16::try_from(self.u64(field)?).map_err(|_| Error::IntegerRange { what: self.what, field })
    }

    pub(crate) fn u8(&self, field: &'static str) -> Result<u8, Error> {
        u8::try_from(self.u64(field)?).map_err(|_| Error::IntegerRange { what: self.what, field })
    }

    pub(crate) fn bool(&self, field: &'static str) -> Result<bool, Error> {
        match self.value(field) {
            None => Ok(false),
            Some(Value::Boolean(b)) => Ok(*b),
            // go-msgpack also accepts the fixints 0 and 1 for a bool.
            Some(Value::Integer(i)) if i.as_u64() == Some(0) => Ok(false),
            Some(Value::Integer(i)) if i.as_u64() == Some(1) => Ok(true),
            Some(v) => Err(self.wrong(field, "bool", v)),
        }
    }

    pub(crate) fn array(&self, field: &'static str) -> Result<Option<&[Value]>, Error> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong(field, "array", v)),
        }
    }

    pub(crate) fn string_list(&self, field: &'static str) -> Result<Option<Vec<String>>, Error> {
        let Some(items) = self.array(field)? else { return Ok(None) };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => String::from_utf8(s.as_bytes().to_vec())
                    .map_err(|_| Error::InvalidUtf8 { what: self.what, field }),
                other => Err(self.wrong(field, "string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub(crate) fn string_map<T>(
        &self,
        field: &'static str,
        mut conv: impl FnMut(&Value) -> Option<T>,
        expected: &'static str,
    ) -> Result<Vec<(String, T)>, Error> {
        match self.value(field) {
            None => Ok(Vec::new()),
            Some(Value::Map(m)) => m
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => String::from_utf8(s.as_bytes().to_vec())
                            .map_err(|_| Error::InvalidUtf8 { what: self.what, field })?,
                        other => return Err(self.wrong(field, "string key", other)),
                    };
                    let val = conv(v).ok_or_else(|| self.wrong(field, expected, v))?;
                    Ok((key, val))
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "map", v)),
        }
    }
}

/// Bytes from a value in the str or bin family.
pub(crate) fn value_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Binary(b) => Some(b.clone()),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A short name of a msgpack value's kind for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "integer",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "string",
        Value::Binary(_) => "bin",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lengths_follow_go() {
        let mut e = Enc::new();
        e.raw(&[1; 31]);
        assert_eq!(e.buf[0], 0xbf);
        let mut e = Enc::new();
        e.raw(&[1; 32]);
        assert_eq!(&e.buf[..3], &[0xda, 0x00, 0x20]);
        let mut e = Enc::new();
        e.raw(&vec![0; 70000]);
        assert_eq!(&e.buf[..5], &[0xdb, 0x00, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn missing_and_nil_fields_are_zero() {
        let mut e = Enc::new();
        e.map(2).key("A").nil().key("B").uint(7);
        let bytes = e.finish();
        let f = Fields::read(&mut bytes.as_slice(), "test").unwrap();
        assert_eq!(f.u64("A").unwrap(), 0);
        assert_eq!(f.u64("B").unwrap(), 7);
        assert_eq!(f.string("C").unwrap(), "");
        assert!(matches!(f.u8("Z"), Ok(0)));
    }

    /// The size check walks every marker family exactly as rmpv reads it:
    /// a value using all of them decodes unchanged and is consumed whole.
    #[test]
    fn size_check_skips_every_marker_family() {
        let big = |n: usize| Value::String("x".repeat(n).into());
        let v = Value::Array(vec![
            Value::Nil,
            Value::Boolean(true),
            Value::from(5u8),
            Value::from(200u8),
            Value::from(60000u16),
            Value::from(70000u32),
            Value::from(u64::MAX),
            Value::from(-3i8),
            Value::from(-100i8),
            Value::from(-1000i16),
            Value::from(-100000i32),
            Value::from(i64::MIN),
            Value::F32(1.5),
            Value::F64(2.5),
            big(3),
            big(40),
            big(300),
            big(70000),
            Value::Binary(vec![1; 10]),
            Value::Binary(vec![1; 300]),
            Value::Binary(vec![1; 70000]),
            Value::Ext(1, vec![1]),
            Value::Ext(1, vec![1; 2]),
            Value::Ext(1, vec![1; 4]),
            Value::Ext(1, vec![1; 8]),
            Value::Ext(1, vec![1; 16]),
            Value::Ext(1, vec![1; 3]),
            Value::Ext(1, vec![1; 300]),
            Value::Ext(1, vec![1; 70000]),
            Value::Array((0..20).map(Value::from).collect()),
            Value::Array((0..70000).map(|_| Value::Nil).collect()),
            Value::Map(vec![(Value::from(1), Value::Nil); 20]),
            Value::Map(vec![(Value::from(1), Value::Nil); 70000]),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &v).unwrap();
        bytes.push(0xc3);
        let mut input = bytes.as_slice();
        assert_eq!(read_value(&mut input, "test").unwrap(), v);
        assert_eq!(input, &[0xc3]);
    }

    /// One value may hold at most MAX_VALUES msgpack values in all.
    #[test]
    fn value_count_is_bounded() {
        let nils = |n: u32| {
            let mut b = vec![0xdd];
            b.extend_from_slice(&n.to_be_bytes());
            b.resize(b.len() + n as usize, 0xc0);
            b
        };
        // The array itself plus MAX_VALUES - 1 nils: exactly at the limit.
        let at_limit = nils(MAX_VALUES as u32 - 1);
        assert!(read_value(&mut at_limit.as_slice(), "test").is_ok());
        let over = nils(MAX_VALUES as u32);
        let err = read_value(&mut over.as_slice(), "ping").unwrap_err();
        assert_eq!(
            err,
            Error::Msgpack {
                what: "ping",
                reason: "more than 1000000 values in one message".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "ping: invalid msgpack: more than 1000000 values in one message"
        );
    }

    /// An array or map announcing more elements than there are bytes left
    /// is refused before rmpv sees it.
    #[test]
    fn declared_count_beyond_input_is_truncated() {
        let cases: [&[u8]; 4] = [
            &[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
            &[0xdf, 0x00, 0x00, 0x00, 0x02, 0xc0, 0xc0, 0xc0],
            &[0x81, 0xc0],
            &[0x92, 0x92, 0xc0, 0xc0],
        ];
        for bytes in cases {
            assert_eq!(
                check_value_size(bytes, "test"),
                Err(Error::Truncated { what: "test" }),
                "{bytes:02x?}"
            );
        }
    }

    /// Deep nesting is walked without recursion and then refused by rmpv's
    /// depth limit, never overflowing the stack.
    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut bytes = vec![0x91; 200_000];
        bytes.push(0xc0);
        assert!(check_value_size(&bytes, "test").is_ok());
        let err = read_value(&mut bytes.as_slice(), "test").unwrap_err();
        assert_eq!(err.to_string(), "test: invalid msgpack: depth limit exceeded");
        // Go's nesting depth (serf push/pull: about six levels) still fits.
        let mut ok = vec![0x91; 20];
        ok.push(0xc0);
        assert!(read_value(&mut ok.as_slice(), "test").is_ok());
    }

    #[test]
    fn out_of_range_integer_is_an_error() {
        let mut e = Enc::new();
        e.map(1).key("Port").uint(70000);
        let bytes = e.finish();
        let f = Fields::read(&mut bytes.as_slice(), "alive").unwrap();
        let err = f.u16("Port").unwrap_err();
        assert_eq!(err.to_string(), "alive: field Port: integer out of range");
    }
}
