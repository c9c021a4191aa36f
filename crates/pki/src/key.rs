//! P-256 private keys: generation, and the SEC1 <-> PKCS#8 conversion that
//! lets rcgen (which with ring reads only PKCS#8) sign with the SEC1
//! `EC PRIVATE KEY` files Consul writes and reads.

use std::fmt;

use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use zeroize::{Zeroize as _, Zeroizing};

use crate::{Error, Result};

/// A private key in PEM form. Wiped from memory on drop; `Debug` does not
/// show it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem(Zeroizing<String>);

impl KeyPem {
    /// The PEM text, e.g. `-----BEGIN EC PRIVATE KEY-----\n...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPem([redacted])")
    }
}

/// A freshly made certificate and its private key, both PEM encoded: what
/// [`create_ca`](crate::create_ca) and [`issue_cert`](crate::issue_cert)
/// return.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, `-----BEGIN CERTIFICATE-----`.
    pub cert_pem: String,
    /// The private key as SEC1, `-----BEGIN EC PRIVATE KEY-----`, the form
    /// Consul writes and reads.
    pub key_pem: KeyPem,
}

/// An ECDSA P-256 private key that can sign certificates. Key bytes are
/// wiped on drop and never shown by `Debug`.
pub struct PrivateKey {
    /// The key as p256 holds it (zeroized on drop by p256), used to write SEC1.
    secret: p256::SecretKey,
    /// The same key as rcgen's signer.
    pair: rcgen::KeyPair,
}

impl PrivateKey {
    /// A new random P-256 key from the operating system's CSPRNG (through
    /// ring, as rcgen does).
    pub fn generate() -> Result<Self> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|source| Error::Generate { what: "P-256 private key".to_owned(), source })?;
        let der = Zeroizing::new(pair.serialize_der());
        let secret = p256::SecretKey::from_pkcs8_der(&der).map_err(|source| Error::KeyDecode {
            origin: "generated key".to_owned(),
            source: Box::new(source),
        })?;
        Ok(PrivateKey { secret, pair })
    }

    /// The uncompressed public point (65 bytes), as it appears in a
    /// certificate's subjectPublicKey.
    pub fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key_raw()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(P-256, [redacted])")
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // p256 wipes `secret` itself; rcgen keeps a PKCS#8 copy that it only
        // wipes on request.
        self.pair.zeroize();
    }
}

impl rcgen::PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.pair.algorithm()
    }
}

impl rcgen::SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.pair.sign(msg)
    }
}

/// Reads a P-256 private key from PEM, either SEC1 (`EC PRIVATE KEY`, what
/// Consul writes) or PKCS#8 (`PRIVATE KEY`, what most other tools write).
///
/// `origin` names the key in errors (a path, or "CA key").
pub fn read_signing_key(pem: &str, origin: &str) -> Result<PrivateKey> {
    let decode_error = |source: &dyn std::error::Error| Error::KeyDecode {
        origin: origin.to_owned(),
        source: Box::new(Reason::from_chain(source)),
    };
    // The PEM decoders explain a missing block with messages about
    // encapsulation boundaries or NUL bytes; say what is wrong instead.
    if pem.trim().is_empty() {
        return Err(decode_error(&Reason("the file is empty".to_owned())));
    }
    if !pem.contains("-----BEGIN ") {
        return Err(decode_error(&Reason("no PEM block found".to_owned())));
    }
    // `from_pem` dispatches on the PEM label: PKCS#8 or SEC1.
    let secret = p256::SecretKey::from_pem(pem.trim_start()).map_err(|e| decode_error(&e))?;
    let pkcs8 = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| Error::KeyEncode { origin: origin.to_owned() })?;
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| decode_error(&e))?;
    Ok(PrivateKey { secret, pair })
}

/// A decoder's explanation flattened into one message: the PEM and DER
/// decoders nest errors whose texts repeat each other, which an error
/// report that prints the whole chain would show twice.
#[derive(Debug)]
struct Reason(String);

impl Reason {
    fn from_chain(err: &dyn std::error::Error) -> Reason {
        let mut text = err.to_string();
        let mut next = err.source();
        while let Some(cause) = next {
            let part = cause.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            next = cause.source();
        }
        Reason(text)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reason {}

/// Writes a private key as SEC1 PEM (`-----BEGIN EC PRIVATE KEY-----`), the
/// only private-key form Consul's `tls cert create` reads.
pub fn write_signing_key(key: &PrivateKey) -> Result<KeyPem> {
    key.secret
        .to_sec1_pem(LineEnding::LF)
        .map(KeyPem)
        .map_err(|_| Error::KeyEncode { origin: "private key".to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_sec1_and_pkcs8() {
        let key = PrivateKey::generate().expect("generate");
        let sec1 = write_signing_key(&key).expect("sec1");
        assert!(sec1.as_str().starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let back = read_signing_key(sec1.as_str(), "test").expect("read sec1");
        assert_eq!(back.public_key_raw(), key.public_key_raw());
        assert_eq!(key.public_key_raw().len(), 65);

        let pkcs8 = key.secret.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = read_signing_key(&pkcs8, "test").expect("read pkcs8");
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn garbage_key_names_its_origin_and_no_key_text() {
        let err = read_signing_key(
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "ca-key.pem",
        )
        .expect_err("garbage");
        let text = err.to_string();
        assert!(text.starts_with("ca-key.pem: not a P-256 private key"), "{text}");
        assert!(matches!(err, Error::KeyDecode { .. }));
    }

    /// Every cause of a decode error, as `{:#}` in the CLI prints them.
    fn chain(err: &Error) -> Vec<String> {
        let mut out = vec![err.to_string()];
        let mut next = std::error::Error::source(err);
        while let Some(cause) = next {
            out.push(cause.to_string());
            next = cause.source();
        }
        out
    }

    #[test]
    fn empty_or_pem_less_key_files_say_so() {
        let err = read_signing_key("", "k.pem").expect_err("empty");
        assert_eq!(chain(&err)[1..], ["the file is empty"]);
        let err = read_signing_key("  \n", "k.pem").expect_err("blank");
        assert_eq!(chain(&err)[1..], ["the file is empty"]);
        let err = read_signing_key("not a key at all", "k.pem").expect_err("no pem");
        assert_eq!(chain(&err)[1..], ["no PEM block found"]);
    }

    #[test]
    fn decoder_causes_are_not_repeated() {
        // A truncated key: the decoders nest errors with the same text.
        let key = PrivateKey::generate().expect("generate");
        let sec1 = write_signing_key(&key).expect("sec1");
        let err = read_signing_key(&sec1.as_str()[..100], "k.pem").expect_err("truncated");
        let causes = chain(&err);
        assert_eq!(causes.len(), 2, "{causes:?}");
        let parts: Vec<&str> = causes[1].split(": ").collect();
        let mut unique = parts.clone();
        unique.dedup();
        assert_eq!(parts, unique, "{causes:?}");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = PrivateKey::generate().expect("generate");
        let pem = write_signing_key(&key).expect("sec1");
        assert_eq!(format!("{pem:?}"), "KeyPem([redacted])");
        assert_eq!(format!("{key:?}"), "PrivateKey(P-256, [redacted])");
    }
}
