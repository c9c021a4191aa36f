//! In-process checks of CAs and certificates with x509-parser.

use std::collections::HashSet;
use std::net::IpAddr;

use consul_sec_pki::{
    Ca, CaRequest, CertKind, CertRequest, Error, PrivateKey, create_ca, issue_cert,
    read_signing_key, write_signing_key,
};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

use crate::common::{assert_validity, fields, new_ca, new_ca_with};

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[test]
fn ca_has_consul_defaults() {
    let (issued, _) = new_ca();
    let f = fields(&issued.cert_pem);
    // CN carries the serial in decimal, as Consul's "Consul Agent CA <serial>".
    let serial = f.serial.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    assert_eq!(f.cn, format!("Consul Agent CA {serial}"));
    assert_eq!(f.issuer_cn, f.cn, "self-signed");
    assert_eq!(f.is_ca, Some(true));
    assert_eq!(f.key_usage, ["digitalSignature", "keyCertSign", "cRLSign"]);
    assert_eq!(f.eku, None, "a CA has no extended key usage");
    assert!(f.dns.is_empty() && f.ips.is_empty());
    assert_eq!(f.permitted_dns, None, "no name constraints unless asked");
    assert_validity(&f, 1825);
    assert_eq!(f.spki_alg, OID_EC_PUBLIC_KEY);
    assert_eq!(f.sig_alg, OID_ECDSA_SHA256);
    assert!(f.ski.is_some());
    assert!(issued.key_pem.as_str().starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
}

#[test]
fn ca_days_common_name_and_zero_days() {
    let request =
        CaRequest { days: 10, common_name: Some("Test CA".to_owned()), ..CaRequest::default() };
    let (issued, _) = new_ca_with(&request);
    let f = fields(&issued.cert_pem);
    assert_eq!(f.cn, "Test CA");
    assert_validity(&f, 10);

    // `-common-name=""` is Consul's default: the serial name, never an empty subject.
    let (issued, _) =
        new_ca_with(&CaRequest { common_name: Some(String::new()), ..CaRequest::default() });
    let f = fields(&issued.cert_pem);
    let serial = f.serial.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    assert_eq!(f.cn, format!("Consul Agent CA {serial}"));

    // Consul's generator turns 0 days into 365.
    let (issued, _) = new_ca_with(&CaRequest { days: 0, ..CaRequest::default() });
    assert_validity(&fields(&issued.cert_pem), 365);

    let err =
        create_ca(&CaRequest { days: u32::MAX, ..CaRequest::default() }).expect_err("too long");
    assert!(matches!(err, Error::InvalidDays { days: u32::MAX }), "{err}");
}

#[test]
fn ca_name_constraints_as_consul() {
    let request = CaRequest {
        name_constraint: true,
        additional_name_constraints: vec!["example.com".to_owned()],
        ..CaRequest::default()
    };
    let (issued, ca) = new_ca_with(&request);
    let f = fields(&issued.cert_pem);
    assert_eq!(
        f.permitted_dns,
        Some(vec!["example.com".into(), "consul".into(), "localhost".into()])
    );
    assert!(f.name_constraints_critical);

    // Names inside the constraints are issued...
    let mut server = CertRequest::new(CertKind::Server);
    server.additional_dns_names = vec!["consul.example.com".to_owned()];
    let cert = issue_cert(&ca, &server).expect("inside constraints");
    assert!(fields(&cert.cert_pem).dns.contains(&"consul.example.com".to_owned()));

    // ...names outside are refused before anything is signed.
    server.additional_dns_names = vec!["evil.test".to_owned()];
    let err = issue_cert(&ca, &server).expect_err("outside constraints");
    assert!(matches!(&err, Error::NameNotPermitted { name } if name == "evil.test"), "{err}");
    assert_eq!(err.to_string(), "evil.test: not permitted by the name constraints of the CA");

    // Additional constraints are ignored without -name-constraint, as Consul.
    let loose = CaRequest { name_constraint: false, ..request };
    assert_eq!(fields(&new_ca_with(&loose).0.cert_pem).permitted_dns, None);

    let bad = CaRequest {
        name_constraint: true,
        additional_name_constraints: vec!["not a domain".to_owned()],
        ..CaRequest::default()
    };
    assert!(matches!(create_ca(&bad), Err(Error::InvalidDnsName { .. })));
}

#[test]
fn server_certificate_profile() {
    let (ca_files, ca) = new_ca();
    let ca_fields = fields(&ca_files.cert_pem);
    let mut request = CertRequest::new(CertKind::Server);
    request.node = Some("n1".to_owned());
    request.additional_dns_names = vec!["consul.internal".to_owned()];
    request.additional_ips = vec![ip("10.0.0.7"), ip("::1")];
    let issued = issue_cert(&ca, &request).expect("server");
    let f = fields(&issued.cert_pem);
    assert_eq!(f.cn, "server.dc1.consul");
    assert_eq!(f.issuer_cn, ca_fields.cn);
    assert_eq!(
        f.dns,
        ["consul.internal", "n1.server.dc1.consul", "server.dc1.consul", "localhost"]
    );
    assert_eq!(f.ips, [ip("10.0.0.7"), ip("::1"), ip("127.0.0.1")]);
    assert_eq!(f.eku, Some((true, true)), "serverAuth and clientAuth");
    assert!(!f.eku_other);
    assert_eq!(f.key_usage, ["digitalSignature", "keyEncipherment"]);
    assert_eq!(f.is_ca, Some(false));
    assert_validity(&f, 365);
    assert_eq!(f.aki, ca_fields.ski, "authority key id is the CA's subject key id");
    assert_eq!(f.spki_alg, OID_EC_PUBLIC_KEY);
    assert_eq!(f.sig_alg, OID_ECDSA_SHA256);
    assert!(issued.key_pem.as_str().starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
}

#[test]
fn client_and_cli_certificate_profiles() {
    let (_, ca) = new_ca();
    let mut client = CertRequest::new(CertKind::Client);
    client.dc = "dc2".to_owned();
    client.domain = "corp".to_owned();
    client.days = 30;
    client.additional_dns_names = vec!["c1.example".to_owned()];
    let f = fields(&issue_cert(&ca, &client).expect("client").cert_pem);
    assert_eq!(f.cn, "client.dc2.corp");
    assert_eq!(f.dns, ["c1.example", "client.dc2.corp", "localhost"]);
    assert_eq!(f.ips, [ip("127.0.0.1")]);
    assert_eq!(f.eku, Some((true, true)));
    assert_validity(&f, 30);

    // CLI certificates: additional DNS names are dropped, no 127.0.0.1, no EKU.
    let mut cli = CertRequest::new(CertKind::Cli);
    cli.additional_dns_names = vec!["foo.example".to_owned()];
    cli.additional_ips = vec![ip("192.0.2.1")];
    let f = fields(&issue_cert(&ca, &cli).expect("cli").cert_pem);
    assert_eq!(f.cn, "cli.dc1.consul");
    assert_eq!(f.dns, ["cli.dc1.consul", "localhost"]);
    assert_eq!(f.ips, [ip("192.0.2.1")]);
    assert_eq!(f.eku, None);
    assert_eq!(f.key_usage, ["digitalSignature", "keyEncipherment"]);
}

#[test]
fn serials_are_random_and_at_most_128_bits() {
    let (_, ca) = new_ca();
    let request = CertRequest::new(CertKind::Client);
    let serials: HashSet<Vec<u8>> =
        (0..8).map(|_| fields(&issue_cert(&ca, &request).expect("cert").cert_pem).serial).collect();
    assert_eq!(serials.len(), 8, "every certificate gets its own serial");
    for serial in &serials {
        // DER integer of a positive 128-bit value: at most 16 bytes plus a sign byte.
        assert!(serial.len() <= 17 && serial.iter().any(|b| *b != 0), "{serial:?}");
    }
    // Several serials with 16 significant bytes show they are not small counters.
    assert!(serials.iter().any(|s| s.len() >= 15));
}

#[test]
fn bad_requests_are_refused_with_named_errors() {
    let (_, ca) = new_ca();
    let mut request = CertRequest::new(CertKind::Server);
    request.additional_dns_names = vec!["bad name!".to_owned()];
    let err = issue_cert(&ca, &request).expect_err("bad dns");
    assert_eq!(err.to_string(), "\"bad name!\": not a valid DNS name (used as DNS name)");

    let mut request = CertRequest::new(CertKind::Server);
    request.dc = "dc 1".to_owned();
    assert!(matches!(
        issue_cert(&ca, &request),
        Err(Error::InvalidDnsName { role: "datacenter", .. })
    ));

    let mut request = CertRequest::new(CertKind::Client);
    request.node = Some("n1".to_owned());
    let err = issue_cert(&ca, &request).expect_err("node on client");
    assert!(matches!(&err, Error::NodeRequiresServer { node } if node == "n1"), "{err}");
}

#[test]
fn ca_loading_checks_key_match_and_ca_flag() {
    let (ca_a, _) = new_ca();
    let (ca_b, _) = new_ca();
    let err = Ca::from_pem(&ca_a.cert_pem, ca_b.key_pem.as_str()).expect_err("mismatch");
    assert!(matches!(err, Error::KeyMismatch { .. }));
    assert_eq!(
        err.to_string(),
        "CA key: private key does not match the CA certificate CA certificate"
    );

    let (_, ca) = new_ca();
    let leaf = issue_cert(&ca, &CertRequest::new(CertKind::Server)).expect("leaf");
    let err = Ca::from_pem(&leaf.cert_pem, leaf.key_pem.as_str()).expect_err("leaf as CA");
    assert!(matches!(err, Error::NotACa { .. }), "{err}");

    let err = Ca::from_pem("no pem here", ca_a.key_pem.as_str()).expect_err("no pem");
    assert!(matches!(err, Error::CertificateParse { .. }), "{err}");
    let err = Ca::from_pem(&ca_a.cert_pem, "junk").expect_err("junk key");
    assert!(matches!(err, Error::KeyDecode { .. }), "{err}");
    assert!(!err.to_string().contains("junk"));
}

#[test]
fn pkcs8_and_sec1_keys_both_sign() {
    let (ca_files, _) = new_ca();
    // The same CA key re-encoded as PKCS#8 ("PRIVATE KEY") still loads.
    let sec1 = p256::SecretKey::from_sec1_pem(ca_files.key_pem.as_str()).expect("sec1");
    let pkcs8 = sec1.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
    let ca = Ca::from_pem(&ca_files.cert_pem, &pkcs8).expect("CA with PKCS#8 key");
    issue_cert(&ca, &CertRequest::new(CertKind::Server)).expect("signs");

    // Reading and writing keys keeps the key and always writes SEC1.
    let key = read_signing_key(&pkcs8, "pkcs8").expect("read");
    let written = write_signing_key(&key).expect("write");
    assert_eq!(written.as_str(), ca_files.key_pem.as_str());
    let fresh = PrivateKey::generate().expect("generate");
    assert_ne!(fresh.public_key_raw(), key.public_key_raw());
}

#[test]
fn an_expired_ca_is_refused() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, date_time_ymd};
    let key = PrivateKey::generate().expect("generate");
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).expect("self-signed");
    let key_pem = write_signing_key(&key).expect("sec1");
    let err = Ca::from_pem(&cert.pem(), key_pem.as_str()).expect_err("expired");
    assert!(matches!(err, Error::CaNotValidNow { .. }), "{err}");
    assert!(
        err.to_string().starts_with("CA certificate: CA certificate is not valid now"),
        "{err}"
    );
}
