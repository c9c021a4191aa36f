//! The small slice of msgpack that go-msgpack's zero-value handle speaks.
//!
//! Encoding writes exactly what Go writes (structs as maps with sorted field
//! names, byte slices in the raw/str family, smallest integer widths), so our
//! output is byte-identical to captured Go messages. Decoding goes through
//! `rmpv` (depth-limited and with capped preallocation) and then picks fields
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

/// Reads one msgpack value from the front of `input`, advancing it.
pub(crate) fn read_value(input: &mut &[u8], what: &'static str) -> Result<Value, Error> {
    rmpv::decode::read_value(input).map_err(|e| match e.kind() {
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
