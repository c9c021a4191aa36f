//! The msgpack framing of Go's `net/rpc` with hashicorp's msgpack codec
//! (`net-rpc-msgpackrpc`), as Consul's RPC connections carry it.
//!
//! A request is two msgpack values back to back, with no length prefix:
//! the header map `{ServiceMethod, Seq}` and the argument value. A response
//! is the header map `{Error, Seq, ServiceMethod}` and the reply value (an
//! empty map when `Error` is set, as `net/rpc` sends `struct{}{}`).
//!
//! Reading is bounded: a value is only decoded once a structural scan has
//! found all of its bytes in the buffer, a value larger than
//! [`MAX_MESSAGE`] or nested deeper than [`MAX_DEPTH`] is an error, and
//! nothing is preallocated from lengths read off the wire.
//!
//! Writing follows go-msgpack's zero-value handle: strings and byte slices
//! in the raw family (fixstr, `0xda`, `0xdb`; never str8 `0xd9`), integers
//! in their smallest width, structs as maps keyed by field name.

use rmpv::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest single msgpack value (header or body) accepted: 4 MiB.
pub const MAX_MESSAGE: usize = 4 << 20;

/// The deepest nesting of arrays and maps accepted in one value.
pub const MAX_DEPTH: usize = 64;

/// Why bytes read off the wire are not a usable msgpack-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A value is larger than the connection's limit ([`MAX_MESSAGE`] at most).
    #[error("msgpack value larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// Arrays/maps nested deeper than [`MAX_DEPTH`].
    #[error("msgpack value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The byte `0xc1`, which msgpack never uses.
    #[error("invalid msgpack marker 0x{0:02x} at offset {1}")]
    InvalidMarker(u8, usize),
    /// The stream ended in the middle of a value.
    #[error("connection closed in the middle of a msgpack value ({0} bytes buffered)")]
    Truncated(usize),
    /// The bytes scanned as one value but did not decode.
    #[error("malformed msgpack value: {0}")]
    Malformed(String),
    /// A header lacks a field or has the wrong type for it.
    #[error("{what}: field {field} missing or not {expected}")]
    Field {
        /// Which message (`request header`, `response header`, `KeyringRequest`, ...).
        what: &'static str,
        /// The Go field name.
        field: &'static str,
        /// The expected msgpack type.
        expected: &'static str,
    },
}

/// Length of the first complete msgpack value in `buf`: `Ok(None)` when
/// more bytes are needed. Never allocates proportionally to lengths read.
#[cfg(test)]
fn value_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    Scan::new().advance(buf, MAX_MESSAGE)
}

/// A structural scan of one msgpack value that resumes where it stopped
/// when more bytes arrive, so reading a value costs time linear in its
/// size however it is split across reads.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Values still to read per open container; the bottom entry is the
    /// top-level value.
    stack: Vec<u64>,
    /// Where the next value starts.
    pos: usize,
}

impl Scan {
    pub(crate) fn new() -> Self {
        Self { stack: vec![1], pos: 0 }
    }

    /// Scans on from where the last call stopped (`buf` must start with
    /// the same bytes as before). `Ok(Some(len))` once the value is
    /// complete, which also resets the scan for the next value.
    pub(crate) fn advance(
        &mut self,
        buf: &[u8],
        limit: usize,
    ) -> Result<Option<usize>, CodecError> {
        loop {
            match self.stack.last() {
                None => {
                    let len = self.pos;
                    *self = Scan::new();
                    return Ok(Some(len));
                }
                Some(0) => {
                    self.stack.pop();
                    continue;
                }
                Some(_) => {}
            }
            // Nothing below changes the scan until the whole header and
            // payload of this value are in `buf`.
            let pos = self.pos;
            let Some(&marker) = buf.get(pos) else { return Ok(None) };
            let be = |n: usize| -> Option<u64> {
                let bytes = buf.get(pos + 1..pos + 1 + n)?;
                Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            };
            // (bytes this header and its payload take, child values that follow)
            let (size, children): (u64, u64) = match marker {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0),
                0x80..=0x8f => (1, 2 * u64::from(marker & 0x0f)),
                0x90..=0x9f => (1, u64::from(marker & 0x0f)),
                0xa0..=0xbf => (1 + u64::from(marker & 0x1f), 0),
                0xc1 => return Err(CodecError::InvalidMarker(marker, pos)),
                0xc4 | 0xd9 => match be(1) {
                    Some(n) => (2 + n, 0),
                    None => return Ok(None),
                },
                0xc5 | 0xda => match be(2) {
                    Some(n) => (3 + n, 0),
                    None => return Ok(None),
                },
                0xc6 | 0xdb => match be(4) {
                    Some(n) => (5 + n, 0),
                    None => return Ok(None),
                },
                0xc7 => match be(1) {
                    Some(n) => (3 + n, 0),
                    None => return Ok(None),
                },
                0xc8 => match be(2) {
                    Some(n) => (4 + n, 0),
                    None => return Ok(None),
                },
                0xc9 => match be(4) {
                    Some(n) => (6 + n, 0),
                    None => return Ok(None),
                },
                0xca => (5, 0),
                0xcb => (9, 0),
                0xcc | 0xd0 => (2, 0),
                0xcd | 0xd1 => (3, 0),
                0xce | 0xd2 => (5, 0),
                0xcf | 0xd3 => (9, 0),
                0xd4 => (3, 0),
                0xd5 => (4, 0),
                0xd6 => (6, 0),
                0xd7 => (10, 0),
                0xd8 => (18, 0),
                0xdc => match be(2) {
                    Some(n) => (3, n),
                    None => return Ok(None),
                },
                0xdd => match be(4) {
                    Some(n) => (5, n),
                    None => return Ok(None),
                },
                0xde => match be(2) {
                    Some(n) => (3, 2 * n),
                    None => return Ok(None),
                },
                0xdf => match be(4) {
                    Some(n) => (5, 2 * n),
                    None => return Ok(None),
                },
            };
            let end = (pos as u64).saturating_add(size);
            if end > limit as u64 {
                return Err(CodecError::TooLarge { limit });
            }
            // `end` fits in usize: it is at most `limit`.
            let end = end as usize;
            if end > buf.len() {
                return Ok(None);
            }
            if let Some(top) = self.stack.last_mut() {
                *top -= 1;
            }
            self.pos = end;
            if children > 0 {
                if self.stack.len() > MAX_DEPTH {
                    return Err(CodecError::TooDeep);
                }
                self.stack.push(children);
            }
        }
    }
}

/// Decodes one complete msgpack value from exactly `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, CodecError> {
    let mut rd = bytes;
    // rmpv counts two levels per array or map.
    rmpv::decode::read_value_with_max_depth(&mut rd, 2 * (MAX_DEPTH + 1))
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Reads msgpack values one at a time from a byte stream.
pub(crate) struct FrameReader<S> {
    stream: S,
    buf: Vec<u8>,
    scan: Scan,
    limit: usize,
}

/// Shows sizes only: the buffer may hold a key in transit.
impl<S> std::fmt::Debug for FrameReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("buffered", &self.buf.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S> FrameReader<S> {
    /// A reader taking values of up to [`MAX_MESSAGE`] bytes.
    pub(crate) fn new(stream: S) -> Self {
        Self::with_limit(stream, MAX_MESSAGE)
    }

    /// A reader taking values of up to `limit` bytes (at most [`MAX_MESSAGE`]).
    pub(crate) fn with_limit(stream: S, limit: usize) -> Self {
        Self { stream, buf: Vec::new(), scan: Scan::new(), limit: limit.min(MAX_MESSAGE) }
    }

    /// The stream, for writing.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// An error reading a value: the stream failed or the bytes are bad.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Codec(CodecError),
}

impl<S: AsyncRead + Unpin> FrameReader<S> {
    /// The next value; `Ok(None)` when the stream ended cleanly between values.
    pub(crate) async fn read_value(&mut self) -> Result<Option<Value>, ReadError> {
        loop {
            if let Some(len) = self.scan.advance(&self.buf, self.limit).map_err(ReadError::Codec)? {
                let bytes =
                    self.buf.get(..len).ok_or(ReadError::Codec(CodecError::Truncated(len)))?;
                let value = decode(bytes).map_err(ReadError::Codec)?;
                self.buf.drain(..len);
                // A large value's buffer is not kept by an idle connection.
                if self.buf.capacity() > 64 * 1024 && self.buf.len() < 8 * 1024 {
                    self.buf.shrink_to(8 * 1024);
                }
                return Ok(Some(value));
            }
            if self.buf.len() >= self.limit {
                return Err(ReadError::Codec(CodecError::TooLarge { limit: self.limit }));
            }
            // Read into the buffer's spare room; grow it in steps, never by a wire length.
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(8 * 1024);
            }
            let n = self.stream.read_buf(&mut self.buf).await.map_err(ReadError::Io)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Codec(CodecError::Truncated(self.buf.len())))
                };
            }
        }
    }
}

/// Appends `value` as go-msgpack's zero-value handle writes it.
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) {
    // Writing into a Vec<u8> cannot fail; rmp's I/O errors are ignored.
    match value {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => {
            if let Some(u) = i.as_u64() {
                let _ = rmp::encode::write_uint(out, u);
            } else if let Some(s) = i.as_i64() {
                let _ = rmp::encode::write_sint(out, s);
            }
        }
        Value::F32(f) => {
            let _ = rmp::encode::write_f32(out, *f);
        }
        Value::F64(f) => {
            let _ = rmp::encode::write_f64(out, *f);
        }
        Value::String(s) => raw(s.as_bytes(), out),
        Value::Binary(b) => raw(b, out),
        Value::Array(items) => {
            let _ = rmp::encode::write_array_len(out, len32(items.len()));
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            let _ = rmp::encode::write_map_len(out, len32(entries.len()));
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Ext(ty, data) => {
            let _ = rmp::encode::write_ext_meta(out, len32(data.len()), *ty);
            out.extend_from_slice(data);
        }
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A string or byte slice in go-msgpack's raw family.
fn raw(bytes: &[u8], out: &mut Vec<u8>) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&len32(len).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Looks up a field of a Go struct encoded as a map (keys as strings or raw bytes).
pub(crate) fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Map(entries) = map else { return None };
    entries.iter().find_map(|(k, v)| {
        let key = match k {
            Value::String(s) => s.as_bytes(),
            Value::Binary(b) => b.as_slice(),
            _ => return None,
        };
        (key == name.as_bytes()).then_some(v)
    })
}

/// A string field (raw bytes must be UTF-8); a missing field or nil is "".
pub(crate) fn str_field(
    map: &Value,
    what: &'static str,
    name: &'static str,
) -> Result<String, CodecError> {
    let wrong = CodecError::Field { what, field: name, expected: "a string" };
    match field(map, name) {
        None | Some(Value::Nil) => Ok(String::new()),
        Some(Value::String(s)) => s.as_str().map(str::to_owned).ok_or(wrong),
        Some(Value::Binary(b)) => String::from_utf8(b.clone()).map_err(|_| wrong),
        Some(_) => Err(wrong),
    }
}

/// An unsigned integer field; a missing field or nil is 0.
pub(crate) fn uint_field(
    map: &Value,
    what: &'static str,
    name: &'static str,
) -> Result<u64, CodecError> {
    match field(map, name) {
        None | Some(Value::Nil) => Ok(0),
        Some(Value::Integer(i)) => i.as_u64().ok_or(CodecError::Field {
            what,
            field: name,
            expected: "an unsigned integer",
        }),
        Some(_) => Err(CodecError::Field { what, field: name, expected: "an unsigned integer" }),
    }
}

/// A boolean field; a missing field or nil is false.
pub(crate) fn bool_field(
    map: &Value,
    what: &'static str,
    name: &'static str,
) -> Result<bool, CodecError> {
    match field(map, name) {
        None | Some(Value::Nil) => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(CodecError::Field { what, field: name, expected: "a boolean" }),
    }
}

/// A Go struct as a msgpack map from field names.
pub(crate) fn map(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(fields.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

/// net/rpc's request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    pub(crate) service_method: String,
    pub(crate) seq: u64,
}

impl RequestHeader {
    pub(crate) fn to_value(&self) -> Value {
        map(vec![
            ("Seq", Value::from(self.seq)),
            ("ServiceMethod", Value::from(self.service_method.as_str())),
        ])
    }

    pub(crate) fn from_value(v: &Value) -> Result<Self, CodecError> {
        if !matches!(v, Value::Map(_)) {
            return Err(CodecError::Field {
                what: "request header",
                field: "ServiceMethod",
                expected: "a string (header is not a map)",
            });
        }
        Ok(Self {
            service_method: str_field(v, "request header", "ServiceMethod")?,
            seq: uint_field(v, "request header", "Seq")?,
        })
    }
}

/// net/rpc's response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHeader {
    pub(crate) service_method: String,
    pub(crate) seq: u64,
    pub(crate) error: String,
}

impl ResponseHeader {
    pub(crate) fn to_value(&self) -> Value {
        map(vec![
            ("Error", Value::from(self.error.as_str())),
            ("Seq", Value::from(self.seq)),
            ("ServiceMethod", Value::from(self.service_method.as_str())),
        ])
    }

    pub(crate) fn from_value(v: &Value) -> Result<Self, CodecError> {
        if !matches!(v, Value::Map(_)) {
            return Err(CodecError::Field {
                what: "response header",
                field: "Seq",
                expected: "an unsigned integer (header is not a map)",
            });
        }
        Ok(Self {
            service_method: str_field(v, "response header", "ServiceMethod")?,
            seq: uint_field(v, "response header", "Seq")?,
            error: str_field(v, "response header", "Error")?,
        })
    }
}

/// Encodes a header and a body back to back.
pub(crate) fn message(header: &Value, body: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(header, &mut out);
    encode(body, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    #[test]
    fn request_header_bytes_as_go_writes_them() {
        let h = RequestHeader { service_method: "Status.Ping".into(), seq: 1 };
        let bytes = enc(&h.to_value());
        let mut want = vec![0x82, 0xa3];
        want.extend_from_slice(b"Seq");
        want.push(0x01);
        want.push(0xad);
        want.extend_from_slice(b"ServiceMethod");
        want.push(0xab);
        want.extend_from_slice(b"Status.Ping");
        assert_eq!(bytes, want);
        assert_eq!(RequestHeader::from_value(&decode(&bytes).unwrap()).unwrap(), h);
    }

    #[test]
    fn long_strings_use_raw16_not_str8() {
        let s = "x".repeat(40);
        let bytes = enc(&Value::from(s.as_str()));
        assert_eq!(&bytes[..3], &[0xda, 0x00, 40]);
        assert_eq!(value_len(&bytes).unwrap(), Some(43));
    }

    #[test]
    fn scan_waits_for_all_bytes() {
        let msg = enc(&map(vec![("A", Value::Array(vec![Value::from(1), Value::from("bc")]))]));
        for cut in 0..msg.len() {
            assert_eq!(value_len(&msg[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(value_len(&msg).unwrap(), Some(msg.len()));
        let mut two = msg.clone();
        two.extend_from_slice(&msg);
        assert_eq!(value_len(&two).unwrap(), Some(msg.len()));
    }

    #[test]
    fn scan_rejects_bad_input() {
        assert_eq!(value_len(&[0x91, 0xc1]), Err(CodecError::InvalidMarker(0xc1, 1)));
        // A 4 GiB string header is refused before any byte of it arrives.
        assert_eq!(
            value_len(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(CodecError::TooLarge { limit: MAX_MESSAGE })
        );
        let deep = vec![0x91u8; MAX_DEPTH + 2];
        assert_eq!(value_len(&deep), Err(CodecError::TooDeep));
        // A map announcing 2^32 entries with none present just waits (no allocation).
        assert_eq!(value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]), Ok(None));
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let msg = enc(&map(vec![("A", Value::Array(vec![Value::from(1), Value::from("bc")]))]));
        let mut two = msg.clone();
        two.extend_from_slice(&msg);
        // One scan fed a byte more each time, as reads arrive.
        let mut scan = Scan::new();
        for cut in 0..msg.len() {
            assert_eq!(scan.advance(&two[..cut], MAX_MESSAGE).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(scan.advance(&two, MAX_MESSAGE).unwrap(), Some(msg.len()));
        // Completed scans start over for the next value.
        assert_eq!(scan.advance(&msg, MAX_MESSAGE).unwrap(), Some(msg.len()));
    }

    #[test]
    fn values_nested_max_depth_deep_decode() {
        let mut value = Value::from(1);
        for _ in 0..MAX_DEPTH {
            value = Value::Array(vec![value]);
        }
        let bytes = enc(&value);
        assert_eq!(value_len(&bytes).unwrap(), Some(bytes.len()));
        assert_eq!(decode(&bytes).unwrap(), value);
    }

    #[tokio::test]
    async fn reader_enforces_its_limit() {
        let bytes = enc(&Value::from("z".repeat(2048).as_str()));
        let mut r = FrameReader::with_limit(&bytes[..], 1024);
        let err = r.read_value().await.unwrap_err();
        assert!(matches!(err, ReadError::Codec(CodecError::TooLarge { limit: 1024 })), "{err:?}");
        // Debug shows sizes, never the buffered bytes.
        let shown = format!("{r:?}");
        assert!(shown.contains("limit: 1024") && !shown.contains("zzz"), "{shown}");
    }

    #[test]
    fn header_field_types_checked() {
        let bad = map(vec![("ServiceMethod", Value::from(5))]);
        let err = RequestHeader::from_value(&bad).unwrap_err();
        assert_eq!(err.to_string(), "request header: field ServiceMethod missing or not a string");
    }

    #[tokio::test]
    async fn reader_reports_truncation_and_clean_eof() {
        let msg = enc(&Value::from("hello"));
        let mut r = FrameReader::new(&msg[..3]);
        assert!(matches!(r.read_value().await, Err(ReadError::Codec(CodecError::Truncated(3)))));
        let mut both = msg.clone();
        both.extend_from_slice(&msg);
        let mut r = FrameReader::new(&both[..]);
        assert_eq!(r.read_value().await.unwrap(), Some(Value::from("hello")));
        assert_eq!(r.read_value().await.unwrap(), Some(Value::from("hello")));
        assert!(r.read_value().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reader_takes_values_spanning_many_reads() {
        let big = "y".repeat(100_000);
        let mut bytes = enc(&Value::from(big.as_str()));
        bytes.extend_from_slice(&enc(&Value::from(7)));
        let mut r = FrameReader::new(&bytes[..]);
        assert_eq!(r.read_value().await.unwrap(), Some(Value::from(big.as_str())));
        assert_eq!(r.read_value().await.unwrap(), Some(Value::from(7)));
        assert!(r.read_value().await.unwrap().is_none());
    }
}
