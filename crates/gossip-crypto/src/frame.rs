//! memberlist's encryption frame, the encrypted stream frame and the label
//! header.

use std::fmt;
use std::sync::atomic::Ordering;

use rand::Rng as _;

use crate::cipher::{Cipher, NONCE_LEN, TAG_LEN};
use crate::keyring::Snapshot;
use crate::{Error, Keyring};

/// The message type byte that starts an encrypted stream (memberlist
/// `encryptMsg`).
pub const ENCRYPT_MSG_TYPE: u8 = 0x0a;
/// Length of the stream frame header: the type byte and a big-endian `u32`
/// payload length.
pub const STREAM_HEADER_LEN: usize = 5;
/// The largest encrypted stream payload memberlist accepts: 20 MiB.
pub const MAX_STREAM_PAYLOAD: usize = 20 * 1024 * 1024;
/// The message type byte of the label header (memberlist `hasLabelMsg`, 244).
pub const LABEL_MSG_TYPE: u8 = 0xF4;
/// The longest label a header can carry.
pub const MAX_LABEL_LEN: usize = 255;

/// The encryption frame version, the first byte of every payload.
///
/// memberlist sends version 1 from protocol 2 on (every serf and Consul node
/// does); version 0 pads the message PKCS#7-style to a multiple of 16 bytes
/// first. Both are accepted when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncryptionVersion {
    /// Legacy: PKCS#7-style padding before sealing.
    V0,
    /// No padding: what memberlist protocol 2 and later sends.
    #[default]
    V1,
}

impl EncryptionVersion {
    /// The version byte.
    pub fn byte(self) -> u8 {
        match self {
            EncryptionVersion::V0 => 0,
            EncryptionVersion::V1 => 1,
        }
    }

    /// The smallest valid payload of this version: version byte, nonce, tag,
    /// and for version 0 at least one 16-byte padded block.
    pub fn min_payload_len(self) -> usize {
        match self {
            EncryptionVersion::V0 => 1 + NONCE_LEN + 16 + TAG_LEN,
            EncryptionVersion::V1 => 1 + NONCE_LEN + TAG_LEN,
        }
    }

    /// The payload length for a `plaintext_len`-byte message.
    pub fn payload_len(self, plaintext_len: usize) -> usize {
        let padding = match self {
            EncryptionVersion::V0 => 16 - plaintext_len % 16,
            EncryptionVersion::V1 => 0,
        };
        1 + NONCE_LEN + plaintext_len + padding + TAG_LEN
    }
}

impl Keyring {
    /// Seals `plaintext` with the primary key: `version | nonce | ciphertext
    /// | tag`, with `aad` as GCM additional data (memberlist uses the label
    /// for packets, empty without one). The 12-byte nonce is fresh for every
    /// message, from the thread-local CSPRNG.
    pub fn seal(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        version: EncryptionVersion,
    ) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(version.payload_len(plaintext.len()));
        self.seal_into(&mut out, plaintext, aad, version)?;
        Ok(out)
    }

    /// Like [`seal`](Keyring::seal), appending the payload to `out`, so a
    /// caller can reuse one buffer or write a header before it.
    pub fn seal_into(
        &self,
        out: &mut Vec<u8>,
        plaintext: &[u8],
        aad: &[u8],
        version: EncryptionVersion,
    ) -> Result<(), Error> {
        self.with_snapshot(|snapshot| {
            let primary = snapshot.entries.first().ok_or(Error::EmptyKeyring)?;
            Self::seal_with(&primary.cipher, out, plaintext, aad, version)
        })
    }

    fn seal_with(
        cipher: &Cipher,
        out: &mut Vec<u8>,
        plaintext: &[u8],
        aad: &[u8],
        version: EncryptionVersion,
    ) -> Result<(), Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);

        let start = out.len();
        out.reserve(version.payload_len(plaintext.len()));
        out.push(version.byte());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        if version == EncryptionVersion::V0 {
            let padding = 16 - plaintext.len() % 16;
            // `padding` is 1..=16, so the cast cannot truncate.
            out.resize(out.len() + padding, padding as u8);
        }
        let body_start = start + 1 + NONCE_LEN;
        let sealed = out
            .get_mut(body_start..)
            .ok_or(Error::SealFailed { len: plaintext.len() })
            .and_then(|body| {
                cipher
                    .seal_in_place(nonce, aad, body)
                    .map_err(|_| Error::SealFailed { len: plaintext.len() })
            });
        match sealed {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(err) => {
                out.truncate(start);
                Err(err)
            }
        }
    }

    /// Opens a payload sealed by memberlist (version 0 or 1), trying every
    /// key with `aad` as additional data.
    ///
    /// The key that opened the previous payload is tried first, then the
    /// others in ring order; the result is the same as memberlist's
    /// primary-first order because only the right key authenticates a
    /// frame. For version 0 the padding length is read from the last byte
    /// and removed, as memberlist does (without checking the padding bytes);
    /// a length beyond the plaintext is an [`Error::InvalidPadding`].
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(payload.len());
        self.open_into(&mut out, payload, aad)?;
        Ok(out)
    }

    /// Like [`open`](Keyring::open), appending the plaintext to `out` so a
    /// caller can reuse one buffer; on error `out` is left as it was.
    pub fn open_into(&self, out: &mut Vec<u8>, payload: &[u8], aad: &[u8]) -> Result<(), Error> {
        let (&version_byte, _) = payload.split_first().ok_or(Error::EmptyPayload)?;
        let version = match version_byte {
            0 => EncryptionVersion::V0,
            1 => EncryptionVersion::V1,
            version => return Err(Error::UnsupportedVersion { version }),
        };
        let min = version.min_payload_len();
        let too_short =
            || Error::PayloadTooShort { len: payload.len(), version: version_byte, min };
        if payload.len() < min {
            return Err(too_short());
        }
        // The length check above makes these splits succeed; they stay
        // checked so that no slice index can panic.
        let (nonce, rest) = payload
            .get(1..)
            .and_then(|p| p.split_first_chunk::<NONCE_LEN>())
            .ok_or_else(too_short)?;
        let (body, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or_else(too_short)?;
        let (nonce, tag) = (*nonce, *tag);

        self.with_snapshot(|snapshot| {
            Self::open_with(snapshot, out, nonce, body, tag, aad, version)
        })
    }

    /// Tries the hinted key, then the others in ring order.
    fn open_with(
        snapshot: &Snapshot,
        out: &mut Vec<u8>,
        nonce: [u8; NONCE_LEN],
        body: &[u8],
        tag: [u8; TAG_LEN],
        aad: &[u8],
        version: EncryptionVersion,
    ) -> Result<(), Error> {
        let entries = &snapshot.entries;
        let hinted = snapshot.hint.load(Ordering::Relaxed);
        let first = if hinted < entries.len() { hinted } else { 0 };
        let order = std::iter::once(first).chain((0..entries.len()).filter(|&i| i != first));

        let start = out.len();
        out.extend_from_slice(body);
        for (attempt, index) in order.enumerate() {
            let (Some(entry), Some(buf)) = (entries.get(index), out.get_mut(start..)) else {
                continue;
            };
            if attempt > 0 {
                // A failed attempt leaves the buffer unspecified.
                buf.copy_from_slice(body);
            }
            if entry.cipher.open_in_place(nonce, aad, buf, tag).is_ok() {
                if index != hinted {
                    snapshot.hint.store(index, Ordering::Relaxed);
                }
                if version == EncryptionVersion::V0 {
                    let padding = buf.last().copied().unwrap_or(0);
                    let len = buf.len();
                    let Some(keep) = len.checked_sub(usize::from(padding)) else {
                        out.truncate(start);
                        return Err(Error::InvalidPadding { padding, len });
                    };
                    out.truncate(start + keep);
                }
                return Ok(());
            }
        }
        out.truncate(start);
        Err(Error::NoKeyDecrypts { tried: entries.len() })
    }

    /// Seals `plaintext` as a complete stream frame: `0x0a`, the big-endian
    /// `u32` length of the payload, then the payload, sealed with those five
    /// bytes followed by the label as additional data.
    pub fn seal_stream(
        &self,
        plaintext: &[u8],
        label: &Label,
        version: EncryptionVersion,
    ) -> Result<Vec<u8>, Error> {
        let payload_len = version.payload_len(plaintext.len());
        let too_large = Error::StreamTooLarge { len: payload_len, limit: MAX_STREAM_PAYLOAD };
        if payload_len > MAX_STREAM_PAYLOAD {
            return Err(too_large);
        }
        let len = u32::try_from(payload_len).map_err(|_| too_large)?;
        let header = stream_header(len);
        let mut aad = Vec::with_capacity(STREAM_HEADER_LEN + label.as_bytes().len());
        aad.extend_from_slice(&header);
        aad.extend_from_slice(label.as_bytes());
        let mut out = Vec::with_capacity(STREAM_HEADER_LEN + payload_len);
        out.extend_from_slice(&header);
        self.seal_into(&mut out, plaintext, &aad, version)?;
        Ok(out)
    }

    /// Opens a complete stream frame (`0x0a`, length, payload). `frame` must
    /// hold exactly the header and the payload it declares.
    pub fn open_stream(&self, frame: &[u8], label: &Label) -> Result<Vec<u8>, Error> {
        let header: [u8; STREAM_HEADER_LEN] = frame
            .get(..STREAM_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::StreamLength { expected: STREAM_HEADER_LEN, actual: frame.len() })?;
        let payload_len = stream_payload_len(header)?;
        let expected = STREAM_HEADER_LEN + payload_len;
        let payload = frame
            .get(STREAM_HEADER_LEN..)
            .filter(|p| p.len() == payload_len)
            .ok_or(Error::StreamLength { expected, actual: frame.len() })?;
        let mut aad = Vec::with_capacity(STREAM_HEADER_LEN + label.as_bytes().len());
        aad.extend_from_slice(&header);
        aad.extend_from_slice(label.as_bytes());
        self.open(payload, &aad)
    }
}

fn stream_header(len: u32) -> [u8; STREAM_HEADER_LEN] {
    let [a, b, c, d] = len.to_be_bytes();
    [ENCRYPT_MSG_TYPE, a, b, c, d]
}

/// Reads a stream frame header and returns the payload length it declares,
/// for a reader that reads the five header bytes first and then exactly that
/// many bytes. Lengths above 20 MiB are refused, as memberlist does.
pub fn stream_payload_len(header: [u8; STREAM_HEADER_LEN]) -> Result<usize, Error> {
    let [kind, a, b, c, d] = header;
    if kind != ENCRYPT_MSG_TYPE {
        return Err(Error::NotEncryptedStream { found: kind });
    }
    let len = u32::from_be_bytes([a, b, c, d]);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_STREAM_PAYLOAD {
        return Err(Error::StreamTooLarge { len, limit: MAX_STREAM_PAYLOAD });
    }
    Ok(len)
}

/// A gossip label (newer memberlist): 0 to 255 bytes that keep clusters
/// apart. Empty means no label: no header is sent and the additional data
/// is memberlist 0.2.2's.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Label(Vec<u8>);

impl Label {
    /// A label; longer than 255 bytes is an [`Error::LabelTooLong`].
    pub fn new(label: impl Into<Vec<u8>>) -> Result<Label, Error> {
        let label = label.into();
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::LabelTooLong { len: label.len() });
        }
        Ok(Label(label))
    }

    /// The label's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `true` for the empty label (no header).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The header `0xF4 | len | label`, or nothing for the empty label.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.0.len());
        self.write_header(&mut out);
        out
    }

    /// Appends the header (nothing for the empty label) to `out`.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        // `Label::new` keeps the length at 255 or less.
        if let Ok(len) = u8::try_from(self.0.len())
            && len > 0
        {
            out.push(LABEL_MSG_TYPE);
            out.push(len);
            out.extend_from_slice(&self.0);
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// Splits a label header off the front of a packet or a stream. Without a
/// header (first byte not `0xF4`) the label is empty and `buf` is returned
/// whole. A header with length 0 is an [`Error::EmptyLabelHeader`].
pub fn split_label_header(buf: &[u8]) -> Result<(Label, &[u8]), Error> {
    let Some((&LABEL_MSG_TYPE, rest)) = buf.split_first() else {
        return Ok((Label::default(), buf));
    };
    let (&len, rest) =
        rest.split_first().ok_or(Error::TruncatedLabelHeader { declared: 0, available: 0 })?;
    if len == 0 {
        return Err(Error::EmptyLabelHeader);
    }
    let len = usize::from(len);
    if rest.len() < len {
        return Err(Error::TruncatedLabelHeader { declared: len, available: rest.len() });
    }
    let (label, rest) = rest.split_at(len);
    Ok((Label(label.to_vec()), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn payload_lengths_match_memberlist_overheads() {
        assert_eq!(EncryptionVersion::V1.payload_len(0), 29);
        assert_eq!(EncryptionVersion::V0.payload_len(0), 45);
        assert_eq!(EncryptionVersion::V0.payload_len(15), 45);
        assert_eq!(EncryptionVersion::V0.payload_len(16), 61);
        assert_eq!(EncryptionVersion::V1.min_payload_len(), 29);
        assert_eq!(EncryptionVersion::V0.min_payload_len(), 45);
    }

    #[test]
    fn seal_into_appends_after_existing_bytes() {
        let ring = Keyring::from_keys([SecretKey::from_bytes(&[3; 32]).unwrap()]).unwrap();
        let mut out = b"prefix".to_vec();
        ring.seal_into(&mut out, b"msg", b"", EncryptionVersion::V1).unwrap();
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out.len(), 6 + 3 + 29);
        assert_eq!(ring.open(&out[6..], b"").unwrap(), b"msg");
    }

    #[test]
    fn open_into_appends_and_restores_on_error() {
        let ring = Keyring::from_keys([SecretKey::from_bytes(&[5; 24]).unwrap()]).unwrap();
        let payload = ring.seal(b"plain", b"", EncryptionVersion::V0).unwrap();
        let mut out = b"kept".to_vec();
        ring.open_into(&mut out, &payload, b"").unwrap();
        assert_eq!(out, b"keptplain");
        let err = ring.open_into(&mut out, &payload, b"wrong aad").unwrap_err();
        assert!(matches!(err, Error::NoKeyDecrypts { tried: 1 }), "{err:?}");
        assert_eq!(out, b"keptplain");
        // Bad version-0 padding also leaves `out` unchanged.
        let mut msg = [0u8; 16];
        msg[15] = 99;
        let mut relabelled = ring.seal(&msg, b"", EncryptionVersion::V1).unwrap();
        relabelled[0] = 0;
        let err = ring.open_into(&mut out, &relabelled, b"").unwrap_err();
        assert!(matches!(err, Error::InvalidPadding { padding: 99, len: 16 }), "{err:?}");
        assert_eq!(out, b"keptplain");
    }

    #[test]
    fn seal_with_empty_ring_is_an_error() {
        let err = Keyring::empty().seal(b"x", b"", EncryptionVersion::V1).unwrap_err();
        assert!(matches!(err, Error::EmptyKeyring), "{err:?}");
    }
}
