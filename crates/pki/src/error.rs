//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or writing keys and
/// certificates. Messages name the offending thing first and never contain
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A private key PEM was not a P-256 key in SEC1 (`EC PRIVATE KEY`) or
    /// PKCS#8 (`PRIVATE KEY`) form. `origin` names the key (a path or
    /// "CA key"); the source never contains key bytes.
    #[error(
        "{origin}: not a P-256 private key in SEC1 (EC PRIVATE KEY) or PKCS#8 (PRIVATE KEY) PEM"
    )]
    KeyDecode {
        /// Where the key came from.
        origin: String,
        /// Why the decoder rejected it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A P-256 key could not be encoded as SEC1 or PKCS#8 PEM.
    #[error("{origin}: could not encode the private key")]
    KeyEncode {
        /// Which key.
        origin: String,
    },

    /// A CA certificate PEM held no `CERTIFICATE` block or the block did not
    /// parse as an X.509 certificate.
    #[error("{origin}: no valid PEM certificate found ({reason})")]
    CertificateParse {
        /// Where the certificate came from.
        origin: String,
        /// What the parser said.
        reason: String,
    },

    /// The certificate given as a CA does not have basic constraints CA=true.
    #[error("{origin}: certificate is not a CA (basic constraints CA=true missing)")]
    NotACa {
        /// Where the certificate came from.
        origin: String,
    },

    /// The CA certificate is not valid at the current time.
    #[error(
        "{origin}: CA certificate is not valid now (valid from {not_before} until {not_after})"
    )]
    CaNotValidNow {
        /// Where the certificate came from.
        origin: String,
        /// Start of its validity period.
        not_before: String,
        /// End of its validity period.
        not_after: String,
    },

    /// The CA private key is not the key of the CA certificate.
    #[error("{key}: private key does not match the CA certificate {cert}")]
    KeyMismatch {
        /// Where the CA certificate came from.
        cert: String,
        /// Where the CA key came from.
        key: String,
    },

    /// A DNS name (a datacenter, domain, node name, additional DNS name or
    /// name constraint) is not a valid DNS name.
    #[error("{name:?}: not a valid DNS name (used as {role})")]
    InvalidDnsName {
        /// The offending name.
        name: String,
        /// What the name was used for, e.g. "additional DNS name".
        role: &'static str,
    },

    /// A node name was given for a client or CLI certificate; only server
    /// certificates carry `<node>.server.<dc>.<domain>`.
    #[error("{node:?}: a node name requires a server certificate")]
    NodeRequiresServer {
        /// The node name that was given.
        node: String,
    },

    /// The CA's name constraints do not permit a name of the new
    /// certificate, so Consul (Go's x509 verification) would reject it.
    #[error("{name}: not permitted by the name constraints of the CA")]
    NameNotPermitted {
        /// The DNS name that is outside the constraints.
        name: String,
    },

    /// The validity period would end after 9999-12-31, the last date a
    /// certificate can carry.
    #[error("{days} days: validity would end after the year 9999")]
    InvalidDays {
        /// The requested number of days.
        days: u32,
    },

    /// rcgen refused to build or sign a certificate.
    #[error("{what}: certificate generation failed")]
    Generate {
        /// What was being generated.
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },

    /// A file to be written already exists; nothing is ever overwritten.
    #[error("{path}: already exists", path = path.display())]
    FileExists {
        /// The existing file.
        path: PathBuf,
    },

    /// No `<prefix>-<n>.pem` / `<prefix>-<n>-key.pem` pair is free for
    /// `n` in `0..10000`.
    #[error("{prefix}: could not find a filename that doesn't already exist")]
    NoFreeFileName {
        /// The file-name prefix, e.g. `dc1-server-consul`.
        prefix: String,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {action} failed", path = path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done, e.g. "reading the CA certificate".
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}
