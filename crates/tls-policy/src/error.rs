//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, loading, inspecting or using a TLS policy.
///
/// File errors name the setting (`ca_file`, `ca_path`, `cert_file`,
/// `key_file`) and the path. No variant ever carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `tls_min_version` names TLS 1.0 or 1.1, which rustls does not implement.
    #[error(
        "tls_min_version: {value} is not supported: rustls speaks only TLS 1.2 and 1.3, please specify one of [TLSv1_2, TLSv1_3]"
    )]
    UnsupportedTlsVersion {
        /// The value as written.
        value: String,
    },

    /// `tls_min_version` is not a TLS version name Consul knows.
    #[error(
        "tls_min_version: no matching TLS version found for {value}, please specify one of [TLS_AUTO, TLSv1_2, TLSv1_3]"
    )]
    UnknownTlsVersion {
        /// The value as written.
        value: String,
    },

    /// `tls_cipher_suites` holds names that are not Consul agent cipher suites.
    #[error("tls_cipher_suites: no matching Consul Agent TLS cipher suite found for {names}")]
    UnknownCipherSuite {
        /// The unknown names, comma-joined.
        names: String,
    },

    /// `tls_cipher_suites` holds Consul names (the CBC suites) that rustls does not implement.
    #[error(
        "tls_cipher_suites: {names} not supported by rustls (only the ECDHE AES-GCM and CHACHA20-POLY1305 suites are)"
    )]
    UnsupportedCipherSuite {
        /// The unsupported names, comma-joined.
        names: String,
    },

    /// `tls_cipher_suites` was set together with `tls_min_version = TLSv1_3`.
    #[error("tls_cipher_suites: TLS 1.3 cipher suites are not configurable")]
    CipherSuitesWithTls13,

    /// Outgoing verification is on (possibly implied by `verify_server_hostname`) but no CA is configured.
    #[error(
        "verify_outgoing: set{} but no CA certificates were provided (set ca_file or ca_path)",
        if *.implied { " (implied by verify_server_hostname)" } else { "" }
    )]
    VerifyOutgoingWithoutCa {
        /// True when `verify_outgoing` itself was false and `verify_server_hostname` turned it on.
        implied: bool,
    },

    /// `verify_incoming` is on but no CA is configured.
    #[error("verify_incoming: set but no CA certificates were provided (set ca_file or ca_path)")]
    VerifyIncomingWithoutCa,

    /// `verify_incoming` is on but there is no certificate and key to serve TLS with.
    #[error("verify_incoming: requires a cert_file and key_file pair")]
    VerifyIncomingWithoutCert,

    /// `cert_file` is set without `key_file`.
    #[error("key_file: not set, but cert_file {} needs its private key", .cert_file.display())]
    CertWithoutKey {
        /// The configured certificate file.
        cert_file: PathBuf,
    },

    /// `key_file` is set without `cert_file`.
    #[error("cert_file: not set, but key_file {} needs its certificate", .key_file.display())]
    KeyWithoutCert {
        /// The configured key file.
        key_file: PathBuf,
    },

    /// A configured file or directory could not be read.
    #[error("{setting} {}: {source}", .path.display())]
    Read {
        /// The setting naming the path (`ca_file`, `ca_path`, `cert_file`, `key_file`).
        setting: &'static str,
        /// The path that failed.
        path: PathBuf,
        /// The operating system error.
        #[source]
        source: std::io::Error,
    },

    /// A file is not well-formed PEM (bad base64, missing END line, ...).
    #[error("{setting} {}: malformed PEM: {reason}", .path.display())]
    Pem {
        /// The setting naming the path.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong, in fixed words: the PEM reader's own errors quote
        /// the offending line, which in a key file is the key itself.
        reason: &'static str,
    },

    /// A file holds no PEM block of the kind the setting needs.
    #[error("{setting} {}: no PEM {expected} block found", .path.display())]
    NoPem {
        /// The setting naming the path.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for (`CERTIFICATE`, or the private key block names).
        expected: &'static str,
    },

    /// `ca_path` holds no certificate at all.
    #[error("ca_path {}: no CA certificates found", .path.display())]
    NoCaInPath {
        /// The directory.
        path: PathBuf,
    },

    /// A CA certificate could not be added to the trust store.
    #[error("{setting} {}: invalid CA certificate #{index}: {source}", .path.display())]
    InvalidCa {
        /// The setting naming the path.
        setting: &'static str,
        /// The file holding the certificate.
        path: PathBuf,
        /// 1-based position of the certificate in that file.
        index: usize,
        /// What rustls/webpki reported.
        #[source]
        source: rustls::Error,
    },

    /// The private key is encrypted; Consul and consul-sec only read plaintext keys.
    #[error(
        "key_file {}: the private key is encrypted; decrypt it first (e.g. `openssl pkey -in <file> -out <plain>`)",
        .path.display()
    )]
    EncryptedKey {
        /// The key file.
        path: PathBuf,
    },

    /// The private key could not be used (unsupported algorithm or malformed DER).
    #[error("key_file {}: unusable private key: {source}", .path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What the crypto provider reported.
        #[source]
        source: rustls::Error,
    },

    /// The private key does not belong to the first certificate in `cert_file`.
    #[error(
        "key_file {}: private key does not match the certificate in cert_file {}",
        .key_file.display(), .cert_file.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
    },

    /// A certificate could not be parsed as X.509.
    #[error("{what}: cannot parse certificate: {message}")]
    ParseCertificate {
        /// Which certificate (a file path or a role).
        what: String,
        /// The parser's message.
        message: String,
    },

    /// A datacenter/domain pair does not form a valid DNS server name.
    #[error("server name {name}: not a valid DNS name (check datacenter and domain)")]
    InvalidServerName {
        /// The name that was built.
        name: String,
    },

    /// Building a rustls configuration failed.
    #[error("{what}: {source}")]
    Config {
        /// Which configuration was being built.
        what: &'static str,
        /// What rustls reported.
        #[source]
        source: rustls::Error,
    },

    /// Building a certificate verifier from the CA certificates failed.
    #[error("{setting}: cannot build the {role} certificate verifier: {source}")]
    Verifier {
        /// The setting that asked for verification (`verify_incoming` or `verify_outgoing`).
        setting: &'static str,
        /// Whose certificates it verifies (`client` or `server`).
        role: &'static str,
        /// What rustls reported.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A server certificate was needed (TLS upgrade on the RPC port) but none is configured.
    #[error("cert_file: no server certificate configured, cannot accept TLS")]
    NoServerCertificate,

    /// A TLS handshake failed; the message explains it in Consul terms.
    #[error("tls handshake: {message}")]
    Handshake {
        /// A human explanation (for certificate name errors: the names the
        /// certificate holds and the name expected).
        message: String,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
}

/// Turns a rustls handshake error into [`Error::Handshake`] with a message
/// in Consul terms: for a name mismatch it lists the names the certificate
/// holds and the name that was expected; for a missing extended key usage it
/// says which one; for an unknown issuer it points at `ca_file`/`ca_path`.
pub fn handshake_error(source: rustls::Error) -> Error {
    let message = explain(&source);
    Error::Handshake { message, source }
}

fn explain(err: &rustls::Error) -> String {
    use rustls::{CertificateError as C, ExtendedKeyPurpose as P};
    let eku_name = |p: &P| match p {
        P::ClientAuth => "clientAuth".to_owned(),
        P::ServerAuth => "serverAuth".to_owned(),
        other => other.to_string(),
    };
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::NotValidForNameContext { expected, presented } => {
                let names = if presented.is_empty() {
                    "no DNS or IP names".to_owned()
                } else {
                    presented.iter().map(|n| plain_name(n)).collect::<Vec<_>>().join(", ")
                };
                format!(
                    "server certificate is not valid for {}: it holds {names} (the subject CN is never used; a wildcard covers one label)",
                    expected.to_str()
                )
            }
            C::NotValidForName => {
                "server certificate is not valid for the expected name".to_owned()
            }
            C::InvalidPurposeContext { required, presented } => {
                let allowed: Vec<String> = presented.iter().map(eku_name).collect();
                let who = match required {
                    P::ClientAuth => "client",
                    _ => "server",
                };
                format!(
                    "{who} certificate lacks the {} extended key usage (it allows: {})",
                    eku_name(required),
                    if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") }
                )
            }
            C::InvalidPurpose => {
                "peer certificate lacks the required extended key usage".to_owned()
            }
            C::UnknownIssuer => {
                "peer certificate is not signed by a CA from ca_file/ca_path (unknown issuer)"
                    .to_owned()
            }
            C::BadSignature => {
                "peer certificate signature does not verify against the configured CA".to_owned()
            }
            C::ExpiredContext { time, not_after } => format!(
                "peer certificate expired: not valid after {} (UNIX), {} seconds ago",
                not_after.as_secs(),
                time.as_secs().saturating_sub(not_after.as_secs())
            ),
            C::Expired => "peer certificate expired".to_owned(),
            C::NotValidYetContext { time, not_before } => format!(
                "peer certificate not valid yet: not valid before {} (UNIX), {} seconds from now",
                not_before.as_secs(),
                not_before.as_secs().saturating_sub(time.as_secs())
            ),
            C::NotValidYet => "peer certificate not valid yet".to_owned(),
            other => format!("peer certificate rejected: {other}"),
        },
        rustls::Error::NoCertificatesPresented => {
            "peer presented no certificate (verify_incoming requires a client certificate)"
                .to_owned()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("peer refused the handshake with alert {alert:?}")
        }
        other => other.to_string(),
    }
}

/// rustls renders presented names as `DnsName("x")` / `IpAddress(x)`; show just `x`.
fn plain_name(presented: &str) -> &str {
    if let Some(inner) = presented.strip_prefix("DnsName(\"").and_then(|r| r.strip_suffix("\")")) {
        return inner;
    }
    if let Some(inner) = presented.strip_prefix("IpAddress(").and_then(|r| r.strip_suffix(')')) {
        return inner;
    }
    presented
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_shown_plainly() {
        assert_eq!(plain_name("DnsName(\"server.dc1.consul\")"), "server.dc1.consul");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("other"), "other");
    }
}
