//! CA and certificate issuance with Consul's defaults, file names and key
//! files, shared by `consul-sec tls ca create` / `tls cert create` and
//! `cargo xtask gen-certs`.
//!
//! This crate reproduces what `consul tls ca create` and `consul tls cert
//! create` produce: an ECDSA P-256 CA whose common name is
//! `Consul Agent CA <serial>`, valid 1825 days, optionally with critical DNS
//! name constraints (`<domain>`, `localhost` and any extra domains); and
//! server, client and CLI certificates valid 365 days whose names are in the
//! subject alternative names (`server.<dc>.<domain>`, `localhost`,
//! `127.0.0.1` for servers), with both the serverAuth and clientAuth extended
//! key usages for servers and clients so that servers can dial each other
//! with the certificate they serve. Private keys are written as SEC1
//! `EC PRIVATE KEY` PEM, the only form Consul's own tools read, and are read
//! back in SEC1 or PKCS#8. Serial numbers are random 128-bit integers and the
//! validity period is always explicit.
//!
//! It deliberately does not do TLS (see `consul-sec-tls-policy`), Connect
//! (SPIFFE) CAs, certificate renewal or revocation, or keys other than
//! P-256. Certificates are issued in memory ([`create_ca`], [`issue_cert`]);
//! the [`files`] module adds Consul's file names and safe file writing
//! (atomic, keys mode 0600, never overwriting a file).
//!
//! # Example
//!
//! ```
//! use consul_sec_pki::{Ca, CaRequest, CertKind, CertRequest, create_ca, issue_cert};
//!
//! # fn main() -> Result<(), consul_sec_pki::Error> {
//! // `consul tls ca create`
//! let ca_files = create_ca(&CaRequest::default())?;
//! assert!(ca_files.key_pem.as_str().starts_with("-----BEGIN EC PRIVATE KEY-----"));
//!
//! // `consul tls cert create -server -dc dc1`, signed by a CA loaded from PEM.
//! let ca = Ca::from_pem(&ca_files.cert_pem, ca_files.key_pem.as_str())?;
//! let server = issue_cert(&ca, &CertRequest::new(CertKind::Server))?;
//! assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod ca;
mod cert;
mod error;
pub mod files;
mod key;
pub mod names;

pub use ca::{Ca, CaRequest, DEFAULT_CA_DAYS, create_ca};
pub use cert::{CertKind, CertRequest, DEFAULT_CERT_DAYS, issue_cert};
pub use error::Error;
pub use key::{Issued, KeyPem, PrivateKey, read_signing_key, write_signing_key};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
