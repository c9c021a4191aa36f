//! Gossip encryption keys: sizes, parsing from base64, generation.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::TryRng as _;
use zeroize::Zeroizing;

use crate::Error;

/// Standard base64 with required padding, as Go's `base64.StdEncoding`.
///
/// Go's standard encoding is not strict: it ignores non-zero bits in the last
/// symbol, so `trailing bits` are allowed here too, otherwise a key Consul
/// accepts could be refused.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// The three AES key sizes memberlist accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// 16 bytes, AES-128-GCM.
    Aes128,
    /// 24 bytes, AES-192-GCM.
    Aes192,
    /// 32 bytes, AES-256-GCM (what `consul keygen` and `serf keygen` print).
    Aes256,
}

impl KeySize {
    /// The size for a key of `len` bytes, if memberlist accepts that length.
    pub fn from_len(len: usize) -> Option<KeySize> {
        match len {
            16 => Some(KeySize::Aes128),
            24 => Some(KeySize::Aes192),
            32 => Some(KeySize::Aes256),
            _ => None,
        }
    }

    /// The key length in bytes.
    #[allow(clippy::len_without_is_empty, reason = "a key size is never empty")]
    pub fn len(self) -> usize {
        match self {
            KeySize::Aes128 => 16,
            KeySize::Aes192 => 24,
            KeySize::Aes256 => 32,
        }
    }
}

impl fmt::Display for KeySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AES-{}", self.len() * 8)
    }
}

/// A gossip encryption key: 16, 24 or 32 secret bytes.
///
/// The bytes are wiped when the key is dropped, `Debug` shows only the size,
/// and equality is checked without an early exit on the first differing byte.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<[u8; 32]>,
    size: KeySize,
}

impl SecretKey {
    /// A new random key of the given size from the operating system's CSPRNG,
    /// as `consul keygen` makes them.
    pub fn generate(size: KeySize) -> Result<SecretKey, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::SysRng.try_fill_bytes(&mut bytes[..size.len()]).map_err(Error::Random)?;
        Ok(SecretKey { bytes, size })
    }

    /// A key from raw bytes; the length must be 16, 24 or 32.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey, Error> {
        let size = KeySize::from_len(bytes.len()).ok_or(Error::KeySize { len: bytes.len() })?;
        let mut buf = Zeroizing::new([0u8; 32]);
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(SecretKey { bytes: buf, size })
    }

    /// Parses a key written as standard base64 with padding, as Consul's
    /// `encrypt` option, `consul keygen` and keyring files write it.
    ///
    /// CR and LF anywhere in the text are skipped, as Go's decoder does, so
    /// a value read with `$(cat keyfile)` or copied with line breaks works.
    /// Errors give the position of a bad character or the decoded length and
    /// never contain the key.
    pub fn from_base64(text: &str) -> Result<SecretKey, Error> {
        let input = text.as_bytes();
        // Pre-scan for characters outside the alphabet so the error can give
        // the position in the text as the user wrote it, and a hint for the
        // URL-safe alphabet. The decoding itself is the base64 crate's.
        let mut cleaned = Zeroizing::new(Vec::with_capacity(input.len()));
        // positions[i] = index in `input` of cleaned[i].
        let mut positions = Vec::with_capacity(input.len());
        for (index, &byte) in input.iter().enumerate() {
            match byte {
                b'\r' | b'\n' => continue,
                b'-' | b'_' => return Err(Error::UrlSafeKey { position: index }),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {
                    cleaned.push(byte);
                    positions.push(index);
                }
                _ => return Err(Error::InvalidKeyCharacter { position: index }),
            }
        }
        let original = |offset: usize| positions.get(offset).copied().unwrap_or(input.len());
        let decoded = Zeroizing::new(GO_STD_BASE64.decode(&cleaned[..]).map_err(|err| {
            use base64::DecodeError as E;
            match err {
                // Only `=` can reach here as an invalid byte: it is misplaced.
                E::InvalidByte(offset, _) => Error::MalformedKey {
                    reason: format!("unexpected `=` at byte {}", original(offset)),
                },
                E::InvalidLength(len) => Error::MalformedKey {
                    reason: format!(
                        "{len} base64 characters, expected a multiple of 4 with `=` padding"
                    ),
                },
                E::InvalidLastSymbol { offset, .. } => Error::MalformedKey {
                    reason: format!("invalid last symbol at byte {}", original(offset)),
                },
                E::InvalidPadding => {
                    Error::MalformedKey { reason: "missing or incorrect `=` padding".to_owned() }
                }
            }
        })?);
        match KeySize::from_len(decoded.len()) {
            None if decoded.iter().all(|&b| is_base64_text(b)) && !decoded.is_empty() => {
                Err(Error::DoubleEncodedKey { len: decoded.len() })
            }
            None => Err(Error::KeySize { len: decoded.len() }),
            // A right-sized key could still be the base64 text of a shorter
            // key (24 characters of text encode a 16-byte key and make a
            // valid AES-192 length). Random keys essentially never decode
            // that way, so refuse only when the bytes are themselves a valid
            // encoded key.
            Some(_) if looks_like_encoded_key(&decoded) => {
                Err(Error::DoubleEncodedKey { len: decoded.len() })
            }
            Some(_) => SecretKey::from_bytes(&decoded),
        }
    }

    /// The key as standard base64 with padding, the form Consul prints and
    /// stores. The returned string is wiped when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(GO_STD_BASE64.encode(self.as_bytes()))
    }

    /// The raw key bytes (16, 24 or 32 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.size.len()]
    }

    /// The key's size.
    pub fn size(&self) -> KeySize {
        self.size
    }
}

fn is_base64_text(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'-' | b'_')
}

fn looks_like_encoded_key(decoded: &[u8]) -> bool {
    decoded.iter().all(|&b| is_base64_text(b))
        && GO_STD_BASE64
            .decode(decoded)
            .map(|inner| {
                let inner = Zeroizing::new(inner);
                KeySize::from_len(inner.len()).is_some()
            })
            .unwrap_or(false)
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &SecretKey) -> bool {
        // The length is public (it is the key size); the bytes are compared
        // without an early exit.
        self.size == other.size
            && self.as_bytes().iter().zip(other.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, redacted)", self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_size_round_trips_lengths() {
        for size in [KeySize::Aes128, KeySize::Aes192, KeySize::Aes256] {
            assert_eq!(KeySize::from_len(size.len()), Some(size));
        }
        assert_eq!(KeySize::from_len(20), None);
        assert_eq!(KeySize::Aes192.to_string(), "AES-192");
    }

    #[test]
    fn bytes_beyond_the_size_stay_zero_and_unused() {
        let key = SecretKey::from_bytes(&[7u8; 16]).unwrap();
        assert_eq!(key.as_bytes(), &[7u8; 16]);
        assert!(key.bytes[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn equality_compares_size_and_bytes() {
        let a = SecretKey::from_bytes(&[1u8; 16]).unwrap();
        let b = SecretKey::from_bytes(&[1u8; 16]).unwrap();
        let mut other = [1u8; 16];
        other[15] = 2;
        let c = SecretKey::from_bytes(&other).unwrap();
        let d = SecretKey::from_bytes(&[1u8; 24]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
