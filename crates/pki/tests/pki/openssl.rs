//! The `openssl` command checks what this crate issues: chain verification,
//! the printed extensions, validity and the SEC1 key files; and keys and
//! CAs made by openssl load here.

use std::path::Path;
use std::process::{Command, Output};

use consul_sec_pki::files::{create_ca_files, create_cert_files, load_ca};
use consul_sec_pki::{CaRequest, CertKind, CertRequest};

use crate::common::require_tool;

fn openssl(args: &[&str], dir: &Path) -> Output {
    Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl")
}

fn stdout_ok(args: &[&str], dir: &Path) -> String {
    let out = openssl(args, dir);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Text of `openssl x509 -text -noout` with runs of whitespace collapsed.
fn x509_text(cert: &str, dir: &Path) -> String {
    stdout_ok(&["x509", "-in", cert, "-text", "-noout"], dir)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks with `-checkend` that the certificate is valid for `days - 1`
/// more days but not for `days + 1`.
fn assert_openssl_validity_days(cert: &str, days: u64, dir: &Path) {
    let secs = |d: u64| (d * 86_400).to_string();
    let still_valid = openssl(&["x509", "-in", cert, "-noout", "-checkend", &secs(days - 1)], dir);
    assert!(still_valid.status.success(), "{cert} should be valid for {} more days", days - 1);
    let expired = openssl(&["x509", "-in", cert, "-noout", "-checkend", &secs(days + 1)], dir);
    assert!(!expired.status.success(), "{cert} should expire within {} days", days + 1);
}

fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).expect("file name").to_owned()
}

#[test]
fn openssl_verifies_and_reads_every_issued_certificate() {
    if !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ca_request = CaRequest {
        name_constraint: true,
        additional_name_constraints: vec!["example.com".to_owned()],
        ..CaRequest::default()
    };
    let ca_files = create_ca_files(d, &ca_request).expect("CA files");
    let ca_cert = file_name(&ca_files.cert);
    let ca = load_ca(&ca_files.cert, &ca_files.key).expect("load CA");

    let text = x509_text(&ca_cert, d);
    assert!(text.contains("Subject: CN = Consul Agent CA "), "{text}");
    assert!(text.contains("X509v3 Basic Constraints: critical CA:TRUE"), "{text}");
    assert!(
        text.contains("X509v3 Key Usage: critical Digital Signature, Certificate Sign, CRL Sign"),
        "{text}"
    );
    assert!(
        text.contains(
            "X509v3 Name Constraints: critical Permitted: DNS:example.com DNS:consul DNS:localhost"
        ),
        "{text}"
    );
    assert!(text.contains("Public Key Algorithm: id-ecPublicKey"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(!text.contains("Extended Key Usage"), "{text}");
    assert_openssl_validity_days(&ca_cert, 1825, d);
    stdout_ok(&["ec", "-in", &file_name(&ca_files.key), "-noout"], d);

    let mut server = CertRequest::new(CertKind::Server);
    server.node = Some("n1".to_owned());
    server.additional_dns_names = vec!["consul.example.com".to_owned()];
    server.additional_ips = vec!["10.1.2.3".parse().expect("ip")];
    let mut cli = CertRequest::new(CertKind::Cli);
    cli.days = 7;
    let cases = [
        (
            server,
            "DNS:consul.example.com, DNS:n1.server.dc1.consul, DNS:server.dc1.consul, DNS:localhost, IP Address:10.1.2.3, IP Address:127.0.0.1",
            Some("TLS Web Server Authentication, TLS Web Client Authentication"),
            365,
        ),
        (
            CertRequest::new(CertKind::Client),
            "DNS:client.dc1.consul, DNS:localhost, IP Address:127.0.0.1",
            Some("TLS Web Client Authentication, TLS Web Server Authentication"),
            365,
        ),
        (cli, "DNS:cli.dc1.consul, DNS:localhost", None, 7),
    ];
    for (request, sans, eku, days) in cases {
        let saved = create_cert_files(d, &ca, &request).expect("cert files");
        let cert = file_name(&saved.cert);
        let key = file_name(&saved.key);

        let verified = stdout_ok(&["verify", "-CAfile", &ca_cert, &cert], d);
        assert_eq!(verified.trim(), format!("{cert}: OK"));
        if eku.is_some() {
            // Servers dial each other with their certificate: both purposes hold.
            for purpose in ["sslserver", "sslclient"] {
                stdout_ok(&["verify", "-purpose", purpose, "-CAfile", &ca_cert, &cert], d);
            }
        }

        let text = x509_text(&cert, d);
        let cn = request.common_name();
        assert!(text.contains(&format!("Subject: CN = {cn} ")), "{text}");
        assert!(text.contains(&format!("X509v3 Subject Alternative Name: {sans} ")), "{text}");
        assert!(
            text.contains("X509v3 Key Usage: critical Digital Signature, Key Encipherment"),
            "{text}"
        );
        assert!(text.contains("X509v3 Basic Constraints: critical CA:FALSE"), "{text}");
        assert!(text.contains("Signature Algorithm: ecdsa-with-SHA256"), "{text}");
        match eku {
            Some(eku) => {
                assert!(text.contains(&format!("X509v3 Extended Key Usage: {eku} ")), "{text}")
            }
            None => assert!(!text.contains("Extended Key Usage"), "{text}"),
        }
        assert_openssl_validity_days(&cert, days, d);

        // Keys are SEC1, which openssl (and Consul) read as EC keys.
        let key_text = std::fs::read_to_string(saved.key.clone()).expect("key");
        assert!(key_text.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        stdout_ok(&["ec", "-in", &key, "-noout"], d);
        // The key is the certificate's key.
        let from_cert = stdout_ok(&["x509", "-in", &cert, "-noout", "-pubkey"], d);
        let from_key = stdout_ok(&["ec", "-in", &key, "-pubout"], d);
        assert_eq!(from_cert, from_key);
    }
}

#[test]
fn openssl_rejects_a_certificate_from_another_ca() {
    if !require_tool("openssl") {
        return;
    }
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let ca_a = create_ca_files(dir_a.path(), &CaRequest::default()).expect("CA a");
    let ca_b = create_ca_files(dir_b.path(), &CaRequest::default()).expect("CA b");
    let ca_b = load_ca(&ca_b.cert, &ca_b.key).expect("load b");
    let saved = create_cert_files(dir_a.path(), &ca_b, &CertRequest::new(CertKind::Server))
        .expect("cert from b");
    let out = openssl(
        &["verify", "-CAfile", &file_name(&ca_a.cert), &file_name(&saved.cert)],
        dir_a.path(),
    );
    assert!(!out.status.success(), "a foreign certificate must not verify");
}

#[test]
fn openssl_made_keys_and_ca_load_in_sec1_and_pkcs8() {
    if !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // The key Consul's tools would hold: SEC1 "EC PRIVATE KEY", P-256.
    stdout_ok(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], d);
    stdout_ok(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=OpenSSL Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
        d,
    );
    stdout_ok(&["pkcs8", "-topk8", "-nocrypt", "-in", "ca-key.pem", "-out", "ca-key-pkcs8.pem"], d);
    let pkcs8 = std::fs::read_to_string(d.join("ca-key-pkcs8.pem")).expect("pkcs8");
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));

    for key in ["ca-key.pem", "ca-key-pkcs8.pem"] {
        let ca = load_ca(&d.join("ca.pem"), &d.join(key)).expect(key);
        let saved = create_cert_files(d, &ca, &CertRequest::new(CertKind::Client)).expect("issue");
        let verified = stdout_ok(&["verify", "-CAfile", "ca.pem", &file_name(&saved.cert)], d);
        assert!(verified.trim().ends_with(": OK"), "{verified}");
    }
}
