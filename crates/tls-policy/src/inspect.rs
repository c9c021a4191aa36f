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
use x509_parser::time::ASN1Time;

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

impl Problem {
    /// A stable name for the kind of problem, for machine-readable reports:
    /// `Expired`, `NotYetValid`, `ExpiresSoon`, `MissingEku`,
    /// `MissingServerName` or `KeyMismatch` (the variant's name).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "Expired",
            Self::NotYetValid { .. } => "NotYetValid",
            Self::ExpiresSoon { .. } => "ExpiresSoon",
            Self::MissingEku { .. } => "MissingEku",
            Self::MissingServerName { .. } => "MissingServerName",
            Self::KeyMismatch => "KeyMismatch",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { not_after } => {
                write!(f, "expired: not valid after {}", rfc3339(*not_after))
            }
            Self::NotYetValid { not_before } => {
                write!(f, "not yet valid: not valid before {}", rfc3339(*not_before))
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

    /// `not_before` as an RFC 3339 UTC timestamp (`2026-12-03T19:16:37Z`).
    pub fn not_before_rfc3339(&self) -> String {
        rfc3339(self.not_before)
    }

    /// `not_after` as an RFC 3339 UTC timestamp (`2027-12-03T19:16:37Z`).
    pub fn not_after_rfc3339(&self) -> String {
        rfc3339(self.not_after)
    }

    /// Whole days from `now` until `not_after`, rounded down: 0 on the last
    /// day, negative once expired (-1 on the first day after).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        (self.not_after.saturating_sub(unix_secs(now))).div_euclid(86_400)
    }
}

/// What is wrong with a validity window at `now` (UNIX seconds), if anything.
fn validity_problem(
    not_before: i64,
    not_after: i64,
    now: i64,
    expiry_warning: std::time::Duration,
) -> Option<Problem> {
    if now > not_after {
        return Some(Problem::Expired { not_after });
    }
    if now < not_before {
        return Some(Problem::NotYetValid { not_before });
    }
    let left = u64::try_from(not_after - now).unwrap_or(0);
    // "Within N days" must hold: a part of a day counts as a day.
    (left < expiry_warning.as_secs())
        .then(|| Problem::ExpiresSoon { days_left: left.div_ceil(86_400) })
}

/// Seconds since the UNIX epoch as an RFC 3339 UTC timestamp; a value
/// outside the years 1..9999 (never in a parsed certificate) is written as
/// `@<seconds>`.
fn rfc3339(secs: i64) -> String {
    match ASN1Time::from_timestamp(secs) {
        Ok(time) => {
            let t = time.to_datetime();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => format!("@{secs}"),
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

    let mut problems: Vec<Problem> =
        validity_problem(not_before, not_after, now, options.expiry_warning).into_iter().collect();
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

    fn report(not_before: i64, not_after: i64) -> CertificateReport {
        CertificateReport {
            subject: "CN=x".into(),
            issuer: "CN=ca".into(),
            serial: "01".into(),
            not_before,
            not_after,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            extended_key_usage: None,
            is_ca: false,
            problems: Vec::new(),
        }
    }

    #[test]
    fn validity_is_written_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // 2024 is a leap year: the day after Feb 28 is Feb 29.
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_893_456_000), "2030-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), format!("@{}", i64::MAX));
        let r = report(1_709_164_800, 1_893_456_000);
        assert_eq!(r.not_before_rfc3339(), "2024-02-29T00:00:00Z");
        assert_eq!(r.not_after_rfc3339(), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn expires_soon_counts_a_part_of_a_day_as_a_day() {
        let end = 1_893_456_000;
        let soon = |now: i64| match validity_problem(0, end, now, EXPIRY_WARNING) {
            Some(Problem::ExpiresSoon { days_left }) => Some(days_left),
            _ => None,
        };
        assert_eq!(soon(end - 31 * 86_400), None);
        assert_eq!(soon(end - 5 * 86_400), Some(5));
        assert_eq!(soon(end - 5 * 86_400 + 3), Some(5), "4 days 23:59:57 is within 5 days");
        assert_eq!(soon(end - 4 * 86_400), Some(4));
        assert_eq!(soon(end - 1), Some(1));
    }

    #[test]
    fn problem_dates_are_rfc3339() {
        let expired = Problem::Expired { not_after: 1_893_456_000 };
        assert_eq!(expired.to_string(), "expired: not valid after 2030-01-01T00:00:00Z");
        let early = Problem::NotYetValid { not_before: 1_893_456_001 };
        assert_eq!(early.to_string(), "not yet valid: not valid before 2030-01-01T00:00:01Z");
    }

    #[test]
    fn days_left_rounds_down_and_goes_negative_after_expiry() {
        let end = 1_893_456_000;
        let r = report(0, end);
        let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap());
        assert_eq!(r.days_left(at(end - 10 * 86_400)), 10);
        assert_eq!(r.days_left(at(end - 10 * 86_400 + 1)), 9);
        assert_eq!(r.days_left(at(end - 1)), 0);
        assert_eq!(r.days_left(at(end)), 0);
        assert_eq!(r.days_left(at(end + 1)), -1);
        assert_eq!(r.days_left(at(end + 86_400 + 1)), -2);
    }

    #[test]
    fn problem_kinds_are_the_variant_names() {
        assert_eq!(Problem::ExpiresSoon { days_left: 3 }.kind(), "ExpiresSoon");
        assert_eq!(Problem::Expired { not_after: 0 }.kind(), "Expired");
        assert_eq!(Problem::NotYetValid { not_before: 0 }.kind(), "NotYetValid");
        assert_eq!(Problem::MissingEku { usage: "serverAuth" }.kind(), "MissingEku");
        assert_eq!(
            Problem::MissingServerName { expected: "server.dc1.consul".into() }.kind(),
            "MissingServerName"
        );
        assert_eq!(Problem::KeyMismatch.kind(), "KeyMismatch");
    }

    #[test]
    fn wildcard_covers_one_label() {
        assert!(dns_name_matches("*.dc1.consul", "server.dc1.consul"));
        assert!(!dns_name_matches("*.consul", "server.dc1.consul"));
        assert!(dns_name_matches("SERVER.dc1.consul", "server.dc1.consul"));
        assert!(!dns_name_matches("server.dc2.consul", "server.dc1.consul"));
    }
}
