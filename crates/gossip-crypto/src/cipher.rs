//! One AES-GCM cipher per installed key, keyed once when the key enters the
//! ring.
//!
//! ring's assembly AES-GCM serves 16- and 32-byte keys (it is several times
//! faster than the portable code); ring has no AES-192, so 24-byte keys use
//! the RustCrypto `aes-gcm` crate. Both are plain AES-GCM with a 12-byte
//! nonce and a 16-byte tag, which is all memberlist uses.

use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut as _, AesGcm, KeyInit as _};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::{Error, KeySize, SecretKey};

/// AES-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

type Aes192Gcm = AesGcm<aes::Aes192, U12>;

/// A keyed AES-GCM instance.
#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per installed key, already behind an Arc; boxing adds an indirection per message"
)]
pub(crate) enum Cipher {
    /// AES-128 or AES-256 through ring.
    Ring(LessSafeKey),
    /// AES-192 through RustCrypto.
    Aes192(Aes192Gcm),
}

/// The AEAD rejected the operation (bad tag, or a length beyond its limits).
#[derive(Debug)]
pub(crate) struct AeadFailure;

impl Cipher {
    /// Runs the key schedule for `key`.
    pub(crate) fn new(key: &SecretKey) -> Result<Cipher, Error> {
        let bytes = key.as_bytes();
        let ring_key = |algorithm| {
            // The length always matches the algorithm: `SecretKey` only
            // holds 16, 24 or 32 bytes and the size picks the algorithm.
            UnboundKey::new(algorithm, bytes).map(|k| Cipher::Ring(LessSafeKey::new(k)))
        };
        let made = match key.size() {
            KeySize::Aes128 => ring_key(&AES_128_GCM).ok(),
            KeySize::Aes256 => ring_key(&AES_256_GCM).ok(),
            KeySize::Aes192 => Aes192Gcm::new_from_slice(bytes).ok().map(Cipher::Aes192),
        };
        // Cannot fail for a valid `SecretKey`; reported rather than unwrapped.
        made.ok_or(Error::KeySize { len: bytes.len() })
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadFailure> {
        match self {
            Cipher::Ring(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .map_err(|_| AeadFailure)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
            Cipher::Aes192(cipher) => {
                let tag = cipher
                    .encrypt_inout_detached(&nonce.into(), aad, buf.into())
                    .map_err(|_| AeadFailure)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(&tag);
                Ok(out)
            }
        }
    }

    /// Checks `tag` and decrypts `buf` in place. On failure the contents of
    /// `buf` are unspecified.
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: [u8; TAG_LEN],
    ) -> Result<(), AeadFailure> {
        match self {
            Cipher::Ring(key) => key
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    tag.into(),
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| AeadFailure),
            Cipher::Aes192(cipher) => cipher
                .decrypt_inout_detached(&nonce.into(), aad, buf.into(), &tag.into())
                .map_err(|_| AeadFailure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_round_trips_and_rejects_a_bad_tag() {
        for len in [16, 24, 32] {
            let key = SecretKey::from_bytes(&vec![9u8; len]).unwrap();
            let cipher = Cipher::new(&key).unwrap();
            let mut buf = b"sixteen byte msg".to_vec();
            let tag = cipher.seal_in_place([1; 12], b"aad", &mut buf).unwrap();
            assert_ne!(&buf[..], b"sixteen byte msg");
            let sealed = buf.clone();
            cipher.open_in_place([1; 12], b"aad", &mut buf, tag).unwrap();
            assert_eq!(&buf[..], b"sixteen byte msg");
            let mut bad = tag;
            bad[0] ^= 1;
            let mut buf = sealed;
            assert!(cipher.open_in_place([1; 12], b"aad", &mut buf, bad).is_err());
        }
    }
}
