//! Shared helpers: a parsed view of a certificate and the tool check.

use std::net::IpAddr;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use consul_sec_pki::{Ca, CaRequest, Issued, create_ca};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

/// The fields the tests assert, pulled out of a PEM certificate.
#[derive(Debug)]
pub(crate) struct Fields {
    pub(crate) cn: String,
    pub(crate) issuer_cn: String,
    pub(crate) serial: Vec<u8>,
    pub(crate) dns: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
    /// `None` when the extension is absent.
    pub(crate) eku: Option<(bool, bool)>,
    pub(crate) eku_other: bool,
    pub(crate) key_usage: Vec<&'static str>,
    pub(crate) is_ca: Option<bool>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) permitted_dns: Option<Vec<String>>,
    pub(crate) name_constraints_critical: bool,
    pub(crate) ski: Option<Vec<u8>>,
    pub(crate) aki: Option<Vec<u8>>,
    pub(crate) spki_alg: String,
    pub(crate) sig_alg: String,
}

pub(crate) fn fields(pem: &str) -> Fields {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    assert_eq!(pem.label, "CERTIFICATE");
    let cert = pem.parse_x509().expect("x509");
    let cn = |name: &X509Name<'_>| {
        name.iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or_default().to_owned()
    };
    let mut f = Fields {
        cn: cn(cert.subject()),
        issuer_cn: cn(cert.issuer()),
        serial: cert.raw_serial().to_vec(),
        dns: Vec::new(),
        ips: Vec::new(),
        eku: None,
        eku_other: false,
        key_usage: Vec::new(),
        is_ca: None,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        permitted_dns: None,
        name_constraints_critical: false,
        ski: None,
        aki: None,
        spki_alg: cert.public_key().algorithm.algorithm.to_id_string(),
        sig_alg: cert.signature_algorithm.algorithm.to_id_string(),
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => f.dns.push((*d).to_owned()),
                        GeneralName::IPAddress(b) => f.ips.push(match b.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*b).expect("v4")),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*b).expect("v6")),
                            n => panic!("IP SAN of {n} bytes"),
                        }),
                        other => panic!("unexpected SAN {other:?}"),
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                f.eku = Some((eku.server_auth, eku.client_auth));
                f.eku_other = eku.any
                    || eku.code_signing
                    || eku.email_protection
                    || eku.time_stamping
                    || eku.ocsp_signing
                    || !eku.other.is_empty();
            }
            ParsedExtension::KeyUsage(ku) => {
                let names = [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                ];
                f.key_usage = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
            }
            ParsedExtension::BasicConstraints(bc) => f.is_ca = Some(bc.ca),
            ParsedExtension::NameConstraints(nc) => {
                f.name_constraints_critical = ext.critical;
                f.permitted_dns = nc.permitted_subtrees.as_ref().map(|subtrees| {
                    subtrees
                        .iter()
                        .filter_map(|s| match s.base {
                            GeneralName::DNSName(d) => Some(d.to_owned()),
                            _ => None,
                        })
                        .collect()
                });
            }
            ParsedExtension::SubjectKeyIdentifier(id) => f.ski = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                f.aki = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    f
}

pub(crate) fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs())
        .expect("secs")
}

/// Asserts the validity starts about now and lasts exactly `days`.
pub(crate) fn assert_validity(f: &Fields, days: i64) {
    let now = now();
    assert!(
        (now - 120..=now + 1).contains(&f.not_before),
        "not_before {} vs now {now}",
        f.not_before
    );
    assert_eq!(f.not_after - f.not_before, days * 86_400, "validity in seconds");
}

/// A fresh CA with default settings, returned both as files and loaded.
pub(crate) fn new_ca() -> (Issued, Ca) {
    new_ca_with(&CaRequest::default())
}

pub(crate) fn new_ca_with(request: &CaRequest) -> (Issued, Ca) {
    let issued = create_ca(request).expect("create CA");
    let ca = Ca::from_pem(&issued.cert_pem, issued.key_pem.as_str()).expect("load CA");
    (issued, ca)
}

/// Whether `tool` can be run. Absent: the test prints why it skips, or
/// panics when CONSUL_SEC_INTEROP=1 demands real peers.
pub(crate) fn require_tool(tool: &str) -> bool {
    let present = Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success());
    if !present {
        if std::env::var("CONSUL_SEC_INTEROP").as_deref() == Ok("1") {
            panic!("{tool} is required when CONSUL_SEC_INTEROP=1 but could not be run");
        }
        eprintln!("skipping: {tool} not found (set CONSUL_SEC_INTEROP=1 to make this a failure)");
    }
    present
}
