//! Creating a CA (`consul tls ca create`) and loading one to sign with.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa,
    KeyUsagePurpose, NameConstraints, SerialNumber,
};
use x509_parser::extensions::GeneralName;

use crate::key::{Issued, PrivateKey, read_signing_key, write_signing_key};
use crate::names::{dns_name_within, validate_dns_name};
use crate::{Error, Result};

/// Validity of a new CA in days when none is given, as Consul.
pub const DEFAULT_CA_DAYS: u32 = 1825;

/// What `consul tls ca create` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRequest {
    /// The Consul domain (`-domain`, default `consul`): a name constraint
    /// when constraints are on, and the file-name prefix.
    pub domain: String,
    /// Validity in days from now (`-days`, default 1825; 0 means 365, as
    /// Consul's generator does).
    pub days: u32,
    /// Add critical permitted-DNS name constraints (`-name-constraint`):
    /// the additional constraints, then `domain`, then `localhost`.
    pub name_constraint: bool,
    /// Extra permitted DNS domains (`-additional-name-constraint`), used only
    /// with `name_constraint`.
    pub additional_name_constraints: Vec<String>,
    /// Subject common name (`-common-name`); `None` or an empty name gives
    /// Consul's `Consul Agent CA <serial in decimal>`.
    pub common_name: Option<String>,
}

impl Default for CaRequest {
    fn default() -> Self {
        CaRequest {
            domain: "consul".to_owned(),
            days: DEFAULT_CA_DAYS,
            name_constraint: false,
            additional_name_constraints: Vec::new(),
            common_name: None,
        }
    }
}

impl CaRequest {
    /// The permitted DNS subtrees the CA will carry, in Consul's order, or
    /// an empty list when `name_constraint` is off.
    pub fn permitted_dns_names(&self) -> Vec<String> {
        if !self.name_constraint {
            return Vec::new();
        }
        let mut names: Vec<String> =
            self.additional_name_constraints.iter().map(|n| n.trim().to_owned()).collect();
        names.retain(|n| !n.is_empty());
        names.push(self.domain.clone());
        names.push("localhost".to_owned());
        names
    }
}

/// Creates a self-signed CA as `consul tls ca create` does: a new P-256
/// key, a random 128-bit serial, CN `Consul Agent CA <serial>`, basic
/// constraints CA=true, key usage certSign, cRLSign and digitalSignature,
/// valid from now for `days`, and optional critical name constraints.
///
/// The key is returned as SEC1 PEM.
pub fn create_ca(request: &CaRequest) -> Result<Issued> {
    validate_dns_name(&request.domain, "domain")?;
    let permitted = request.permitted_dns_names();
    for name in &permitted {
        // A leading dot ("only subdomains") is valid in a constraint.
        validate_dns_name(name.strip_prefix('.').unwrap_or(name), "name constraint")?;
    }

    let key = PrivateKey::generate()?;
    let serial = random_serial();
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    // An empty name is Consul's flag default, not a request for an empty subject.
    let common_name = match request.common_name.as_deref() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!("Consul Agent CA {serial}"),
    };
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, common_name);
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, request.days)?;
    if !permitted.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted.into_iter().map(GeneralSubtree::DnsName).collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    let cert = params
        .self_signed(&key)
        .map_err(|source| Error::Generate { what: "CA certificate".to_owned(), source })?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: write_signing_key(&key)? })
}

/// A CA loaded from its certificate and key, ready to sign with
/// [`issue_cert`](crate::issue_cert).
#[derive(Debug)]
pub struct Ca {
    cert_pem: String,
    issuer: rcgen::Issuer<'static, PrivateKey>,
    /// `None` when the CA has no permitted DNS subtrees (everything allowed).
    permitted_dns: Option<Vec<String>>,
    excluded_dns: Vec<String>,
}

impl Ca {
    /// Loads a CA from a PEM certificate and a PEM key (SEC1 or PKCS#8).
    ///
    /// Fails if the certificate is not a CA, is not valid now, or the key is
    /// not the certificate's key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        Ca::from_pem_named(cert_pem, "CA certificate", key_pem, "CA key")
    }

    /// Like [`Ca::from_pem`], naming the certificate and key in errors
    /// (usually by their paths).
    pub fn from_pem_named(
        cert_pem: &str,
        cert_origin: &str,
        key_pem: &str,
        key_origin: &str,
    ) -> Result<Ca> {
        let parse_error =
            |reason: String| Error::CertificateParse { origin: cert_origin.to_owned(), reason };
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| parse_error(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            return Err(parse_error(format!("found a {:?} block", pem.label)));
        }
        let cert = pem.parse_x509().map_err(|e| parse_error(e.to_string()))?;

        let is_ca = cert.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(Error::NotACa { origin: cert_origin.to_owned() });
        }
        let validity = cert.validity();
        if !validity.is_valid() {
            return Err(Error::CaNotValidNow {
                origin: cert_origin.to_owned(),
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
            });
        }

        let key = read_signing_key(key_pem, key_origin)?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::KeyMismatch {
                cert: cert_origin.to_owned(),
                key: key_origin.to_owned(),
            });
        }

        let (permitted_dns, excluded_dns) = match cert.name_constraints() {
            Ok(Some(ext)) => (
                ext.value.permitted_subtrees.as_ref().map(|subtrees| dns_subtrees(subtrees)),
                ext.value.excluded_subtrees.as_ref().map(|s| dns_subtrees(s)).unwrap_or_default(),
            ),
            Ok(None) => (None, Vec::new()),
            Err(e) => return Err(parse_error(format!("name constraints: {e}"))),
        };
        // A permitted list with no DNS entries (e.g. only IP subtrees) does
        // not restrict DNS names.
        let permitted_dns = permitted_dns.filter(|names| !names.is_empty());

        let der = rustls_pki_types::CertificateDer::from(pem.contents.as_slice());
        let issuer = rcgen::Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| parse_error(format!("not usable as an issuer: {e}")))?;
        Ok(Ca { cert_pem: cert_pem.to_owned(), issuer, permitted_dns, excluded_dns })
    }

    /// The CA certificate as it was loaded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn issuer(&self) -> &rcgen::Issuer<'static, PrivateKey> {
        &self.issuer
    }

    /// Checks `name` against the CA's DNS name constraints, as Go's x509
    /// verification (which Consul runs before writing a certificate) would.
    pub(crate) fn check_name(&self, name: &str) -> Result<()> {
        let excluded = self.excluded_dns.iter().any(|c| dns_name_within(name, c));
        let permitted = self
            .permitted_dns
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| dns_name_within(name, c)));
        if permitted && !excluded {
            Ok(())
        } else {
            Err(Error::NameNotPermitted { name: name.to_owned() })
        }
    }
}

fn dns_subtrees(subtrees: &[x509_parser::extensions::GeneralSubtree<'_>]) -> Vec<String> {
    subtrees
        .iter()
        .filter_map(|s| match s.base {
            GeneralName::DNSName(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect()
}

/// A uniformly random serial in (0, 2^128), as Consul draws it (Consul
/// allows 0, which RFC 5280 does not).
pub(crate) fn random_serial() -> u128 {
    loop {
        let serial: u128 = rand::random();
        if serial != 0 {
            return serial;
        }
    }
}

/// The last instant X.509 `GeneralizedTime` (and the `time` crate rcgen
/// uses) can express: 9999-12-31T23:59:59Z.
const MAX_NOT_AFTER_SECS: u64 = 253_402_300_799;

/// Sets not-before to now and not-after to now + `days` (0 means 365, as in
/// Consul's generator). rcgen's default ends in the year 4096, so this is
/// never left unset.
pub(crate) fn set_validity(params: &mut CertificateParams, days: u32) -> Result<()> {
    let days = if days == 0 { 365 } else { days };
    let now = SystemTime::now();
    let not_after = now
        .checked_add(Duration::from_secs(u64::from(days) * 86_400))
        .filter(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() <= MAX_NOT_AFTER_SECS)
        })
        .ok_or(Error::InvalidDays { days })?;
    params.not_before = now.into();
    params.not_after = not_after.into();
    Ok(())
}
