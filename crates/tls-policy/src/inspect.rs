//! Certificate inspection: what a certificate holds and whether it fits a
//! role under a policy.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, files, server_name};

/// Warn about certificates that expire within this long (30 days).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The job a certificate is meant to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A Consul server of this datacenter: needs `server.<dc>.<domain>` in its
    /// DNS SANs and, when it has an EKU extension, both serverAuth (it is
    /// dialled) and clientAuth (it dials other servers).
    Server {
        /// The server's datacenter.
        datacenter: String,
    },
    /// A client agent: needs clientAuth when it has an EKU extension.
    Client,
}

/// How to judge a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectOptions {
    /// The role it should fit.
    pub role: Role,
    /// Consul's domain (trailing dot ignored).
    pub domain: String,
    /// The time to judge validity at.
    pub now: SystemTime,
    /// Report [`Problem::ExpiresSoon`] when less than this remains.
    pub expiry_warning: Duration,
}

impl InspectOptions {
    /// Options for `role` in domain `consul`, now, with a 30-day warning.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            domain: crate::DEFAULT_DOMAIN.to_owned(),
            now: SystemTime::now(),
            expiry_warning: EXPIRY_WARNING,
        }
    }
}

/// One thing wrong with a certificate for its role.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// `not_after` is in the past.
    Expired {
        /// Seconds since the UNIX epoch.
        not_after: i64,
    },
    /// `not_before` is in the future.
    NotYetValid {
        /// Seconds since the UNIX epoch.
        not_before: i64,
    },
    /// Valid now, but not for much longer.
    ExpiresSoon {
        /// Whole days left.
        days_left: u64,
    },
    /// The EKU extension is present and lacks a usage the role needs.
    MissingEku {
        /// `serverAuth` or `clientAuth`.
        usage: &'static str,
    },
    /// A server certificate without `server.<dc>.<domain>` among its DNS SANs.
    MissingServerName {
        /// The name that is needed.
        expected: String,
    },
    /// The private key given does not belong to this certificate.
    KeyMismatch,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { not_after } => write!(f, "expired: not valid after {not_after} (UNIX)"),
            Self::NotYetValid { not_before } => {
                write!(f, "not yet valid: not valid before {not_before} (UNIX)")
            }
            Self::ExpiresSoon { days_left } => write!(f, "expires within {days_left} days"),
            Self::MissingEku { usage } => write!(f, "extended key usage lacks {usage}"),
            Self::MissingServerName { expected } => {
                write!(f, "DNS SANs lack {expected} (needed for verify_server_hostname)")
            }
            Self::KeyMismatch => f.write_str("private key does not match the certificate"),
        }
    }
}

/// What a certificate holds, and what is wrong with it for the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateReport {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, colon-separated hex.
    pub serial: String,
    /// Start of validity, seconds since the UNIX epoch.
    pub not_before: i64,
    /// End of validity, seconds since the UNIX epoch.
    pub not_after: i64,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Extended key usages (`serverAuth`, `clientAuth`, ... or dotted OIDs);
    /// `None` when the certificate has no EKU extension (any usage).
    pub extended_key_usage: Option<Vec<String>>,
    /// Whether this is a CA certificate.
    pub is_ca: bool,
    /// Every problem found for the role; empty when it fits.
    pub problems: Vec<Problem>,
}

impl CertificateReport {
    /// True when no problem was found.
    pub fn fits(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Inspects one DER certificate for `options.role`. When `key` is given, a
/// key that does not belong to the certificate is reported as
/// [`Problem::KeyMismatch`].
pub fn inspect_certificate(
    cert: &CertificateDer<'_>,
    key: Option<&PrivateKeyDer<'_>>,
    options: &InspectOptions,
) -> Result<CertificateReport, Error> {
    let (_, x509) = X509Certificate::from_der(cert.as_ref()).map_err(|e| {
        Error::ParseCertificate { what: "certificate".to_owned(), message: e.to_string() }
    })?;
    let parse_err = |e: x509_parser::error::X509Error| Error::ParseCertificate {
        what: format!("certificate {}", x509.subject()),
        message: e.to_string(),
    };

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(san) = x509.subject_alternative_name().map_err(parse_err)? {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ip_addresses.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let eku = x509.extended_key_usage().map_err(parse_err)?.map(|e| e.value.clone());
    let extended_key_usage = eku.as_ref().map(|e| {
        let mut v = Vec::new();
        for (on, name) in [
            (e.any, "any"),
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
        ] {
            if on {
                v.push(name.to_owned());
            }
        }
        v.extend(e.other.iter().map(|o| o.to_id_string()));
        v
    });

    let validity = x509.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let now = unix_secs(options.now);

    let mut problems = Vec::new();
    if now > not_after {
        problems.push(Problem::Expired { not_after });
    } else if now < not_before {
        problems.push(Problem::NotYetValid { not_before });
    } else {
        let left = u64::try_from(not_after - now).unwrap_or(0);
        if left < options.expiry_warning.as_secs() {
            problems.push(Problem::ExpiresSoon { days_left: left / 86_400 });
        }
    }
    // As rustls-webpki checks it: with an EKU extension the usage must be
    // listed (anyExtendedKeyUsage does not count); without one, anything goes.
    if let Some(e) = &eku {
        if matches!(options.role, Role::Server { .. }) && !e.server_auth {
            problems.push(Problem::MissingEku { usage: "serverAuth" });
        }
        if !e.client_auth {
            problems.push(Problem::MissingEku { usage: "clientAuth" });
        }
    }
    if let Role::Server { datacenter } = &options.role {
        let expected = server_name(datacenter, &options.domain);
        if !dns_names.iter().any(|n| dns_name_matches(n, &expected)) {
            problems.push(Problem::MissingServerName { expected });
        }
    }
    if let Some(key) = key {
        let matches = rustls::crypto::ring::sign::any_supported_type(key)
            .map(|k| CertifiedKey::new(vec![cert.clone().into_owned()], k).keys_match())
            .map_err(|source| Error::InvalidKey { path: "<inspected key>".into(), source })?;
        if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) = matches
        {
            problems.push(Problem::KeyMismatch);
        }
    }

    Ok(CertificateReport {
        subject: x509.subject().to_string(),
        issuer: x509.issuer().to_string(),
        serial: x509.raw_serial_as_string(),
        not_before,
        not_after,
        dns_names,
        ip_addresses,
        extended_key_usage,
        is_ca: x509.is_ca(),
        problems,
    })
}

/// Inspects the first certificate of `cert_file` (and checks `key_file`
/// against it when given). Errors name the setting and the file.
pub fn inspect_certificate_file(
    cert_file: &Path,
    key_file: Option<&Path>,
    options: &InspectOptions,
) -> Result<CertificateReport, Error> {
    let chain = files::load_certs("cert_file", cert_file)?;
    let leaf = chain.first().ok_or_else(|| Error::NoPem {
        setting: "cert_file",
        path: cert_file.to_owned(),
        expected: "CERTIFICATE",
    })?;
    let key = key_file.map(files::load_private_key).transpose()?;
    inspect_certificate(leaf, key.as_deref(), options).map_err(|e| match e {
        Error::ParseCertificate { message, .. } => {
            Error::ParseCertificate { what: format!("cert_file {}", cert_file.display()), message }
        }
        Error::InvalidKey { source, .. } => {
            Error::InvalidKey { path: key_file.unwrap_or(cert_file).to_owned(), source }
        }
        other => other,
    })
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// DNS name match as webpki does it: exact (case-insensitive), or a leading
/// `*.` wildcard standing for exactly one label.
fn dns_name_matches(presented: &str, expected: &str) -> bool {
    if presented.eq_ignore_ascii_case(expected) {
        return true;
    }
    match (presented.strip_prefix("*."), expected.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty() && suffix.eq_ignore_ascii_case(rest)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_one_label() {
        assert!(dns_name_matches("*.dc1.consul", "server.dc1.consul"));
        assert!(!dns_name_matches("*.consul", "server.dc1.consul"));
        assert!(dns_name_matches("SERVER.dc1.consul", "server.dc1.consul"));
        assert!(!dns_name_matches("server.dc2.consul", "server.dc1.consul"));
    }
}
