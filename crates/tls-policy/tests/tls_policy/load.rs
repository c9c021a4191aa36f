//! Loading and validation: key formats, clear errors naming setting and file,
//! ca_file/ca_path rules, CRLF, bundles and chains.

use std::path::Path;
use std::process::Command;

use consul_sec_tls_policy::{Error, TlsPolicy, TlsVersion, load_ca_path, load_private_key};
use p256::pkcs8::DecodePrivateKey;
use rustls_pki_types::PrivateKeyDer;

use crate::support::*;

fn setup() -> (Ca, Files, Leaf) {
    let ca = Ca::new("Load CA 1");
    let files = Files::new(&ca);
    let leaf = ca.issue(&LeafSpec::server(&["server.dc1.consul"]));
    (ca, files, leaf)
}

fn sec1_pem(pkcs8_pem: &str) -> String {
    let key = p256::SecretKey::from_pkcs8_pem(pkcs8_pem).expect("p256 key");
    key.to_sec1_pem(p256::pkcs8::LineEnding::LF).expect("sec1").to_string()
}

/// Handshake between a client trusting `files`' CA and a server using `server`.
fn works(server: &TlsPolicy, ca_file: &Path) -> bool {
    let client = TlsPolicy {
        ca_file: Some(ca_file.to_owned()),
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    let c = client.load().unwrap();
    let s = server.load().unwrap();
    handshake(c.client_config(), "server.dc1.consul", s.server_config().unwrap()).ok()
}

#[test]
fn pkcs8_key_loads_and_serves() {
    let (_ca, files, leaf) = setup();
    assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let p = files.policy("s", Some(&leaf));
    assert!(matches!(
        *load_private_key(p.key_file.as_ref().unwrap()).unwrap(),
        PrivateKeyDer::Pkcs8(_)
    ));
    assert!(works(&p, &files.ca_file));
}

#[test]
fn sec1_key_as_consul_writes_loads_and_serves() {
    let (_ca, files, leaf) = setup();
    let sec1 = sec1_pem(&leaf.key_pem);
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let (cert, _) = files.leaf("s", &leaf);
    let key = write(files.dir.path(), "sec1-key.pem", &sec1);
    assert!(matches!(*load_private_key(&key).unwrap(), PrivateKeyDer::Sec1(_)));
    let p = TlsPolicy { cert_file: Some(cert), key_file: Some(key), ..files.policy("x", None) };
    assert!(works(&p, &files.ca_file));
}

#[test]
fn pkcs1_rsa_key_loads_and_serves() {
    if !require_tool("openssl") {
        return;
    }
    let (ca, files, _) = setup();
    let dir = files.dir.path();
    let pkcs8 = dir.join("rsa8.pem");
    let pkcs1 = dir.join("rsa1.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pkcs8)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["rsa", "-traditional", "-in"])
        .arg(&pkcs8)
        .arg("-out")
        .arg(&pkcs1)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl rsa -traditional failed");
    let pkcs1_text = std::fs::read_to_string(&pkcs1).unwrap();
    assert!(pkcs1_text.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&pkcs8).unwrap()).unwrap();
    let leaf = ca.issue_for_key(&LeafSpec::server(&["server.dc1.consul"]), key);
    let (cert, _) = files.leaf("rsa", &leaf);
    assert!(matches!(*load_private_key(&pkcs1).unwrap(), PrivateKeyDer::Pkcs1(_)));
    let p = TlsPolicy { cert_file: Some(cert), key_file: Some(pkcs1), ..files.policy("x", None) };
    assert!(works(&p, &files.ca_file));
}

#[test]
fn encrypted_keys_are_refused_clearly() {
    let (_ca, files, leaf) = setup();
    let (cert, _) = files.leaf("s", &leaf);
    let pkcs8_encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let legacy = sec1_pem(&leaf.key_pem).replace(
        "-----BEGIN EC PRIVATE KEY-----\n",
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0123456789ABCDEF0123456789ABCDEF\n\n",
    );
    for (name, text) in [("enc8.pem", pkcs8_encrypted.to_owned()), ("legacy.pem", legacy)] {
        let key = write(files.dir.path(), name, &text);
        let p = TlsPolicy {
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            ..TlsPolicy::default()
        };
        let err = p.load().unwrap_err();
        assert!(matches!(&err, Error::EncryptedKey { path } if *path == key), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("key_file {}: the private key is encrypted", key.display())),
            "{msg}"
        );
    }
}

#[test]
fn key_not_matching_certificate_is_refused() {
    let (ca, files, leaf) = setup();
    let other = ca.issue(&LeafSpec::client());
    let (cert, _) = files.leaf("s", &leaf);
    let (_, other_key) = files.leaf("o", &other);
    let p = TlsPolicy {
        cert_file: Some(cert.clone()),
        key_file: Some(other_key.clone()),
        ..TlsPolicy::default()
    };
    let err = p.load().unwrap_err();
    assert!(matches!(&err, Error::KeyMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "key_file {}: private key does not match the certificate in cert_file {}",
            other_key.display(),
            cert.display()
        )
    );
}

#[test]
fn cert_without_key_and_key_without_cert_are_errors() {
    let (_ca, files, leaf) = setup();
    let (cert, key) = files.leaf("s", &leaf);
    let err =
        TlsPolicy { cert_file: Some(cert.clone()), ..TlsPolicy::default() }.load().unwrap_err();
    assert!(matches!(&err, Error::CertWithoutKey { cert_file } if *cert_file == cert));
    assert!(err.to_string().starts_with("key_file: not set, but cert_file"));
    let err = TlsPolicy { key_file: Some(key.clone()), ..TlsPolicy::default() }.load().unwrap_err();
    assert!(matches!(&err, Error::KeyWithoutCert { key_file } if *key_file == key));
    assert!(err.to_string().starts_with("cert_file: not set, but key_file"));
}

#[test]
fn files_without_the_expected_pem_block_name_setting_and_path() {
    let (_ca, files, leaf) = setup();
    let (cert, key) = files.leaf("s", &leaf);
    let junk = write(files.dir.path(), "junk.txt", "not pem at all\n");

    let err = TlsPolicy {
        cert_file: Some(junk.clone()),
        key_file: Some(key.clone()),
        ..TlsPolicy::default()
    }
    .load()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cert_file {}: no PEM CERTIFICATE block found", junk.display())
    );

    // A key file holding a certificate only.
    let err = TlsPolicy {
        cert_file: Some(cert.clone()),
        key_file: Some(cert.clone()),
        ..TlsPolicy::default()
    }
    .load()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "key_file {}: no PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block found",
            cert.display()
        )
    );

    // A CA file holding a key only.
    let err = TlsPolicy { ca_file: Some(key.clone()), ..TlsPolicy::default() }.load().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("ca_file {}: no PEM CERTIFICATE block found", key.display())
    );

    // Truncated PEM.
    let truncated = write(files.dir.path(), "trunc.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let err =
        TlsPolicy { ca_file: Some(truncated.clone()), ..TlsPolicy::default() }.load().unwrap_err();
    assert!(matches!(err, Error::Pem { setting: "ca_file", .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("ca_file {}: malformed PEM", truncated.display()))
    );

    // A key file that lost its line breaks: the error must not quote it
    // (the PEM reader's own message lists the line's bytes).
    let pem = std::fs::read_to_string(&key).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    let one_line = pem.replace('\n', " ");
    let squashed = write(files.dir.path(), "one-line-key.pem", &one_line);
    let policy = TlsPolicy {
        cert_file: Some(cert),
        key_file: Some(squashed.clone()),
        ..TlsPolicy::default()
    };
    let err = policy.load().unwrap_err();
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    assert!(
        text.starts_with(&format!("key_file {}: malformed PEM: a BEGIN line", squashed.display())),
        "{text}"
    );
    for shown in [&text, &debug] {
        assert!(!shown.contains(&body[..20]), "{shown}");
        let first_bytes = format!("{:?}", &body.as_bytes()[..8]);
        assert!(!shown.contains(first_bytes.trim_matches(['[', ']'])), "{shown}");
    }
}

#[test]
fn missing_file_error_names_setting_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err =
        TlsPolicy { ca_file: Some(missing.clone()), ..TlsPolicy::default() }.load().unwrap_err();
    assert!(matches!(&err, Error::Read { setting: "ca_file", path, .. } if *path == missing));
    assert!(err.to_string().starts_with(&format!("ca_file {}: ", missing.display())));
}

#[test]
fn ca_file_wins_over_ca_path() {
    let (_ca, files, leaf) = setup();
    // ca_path points to something unusable; ca_file is set, so ca_path is never read.
    let p = TlsPolicy {
        ca_path: Some(files.dir.path().join("does-not-exist")),
        ..files.policy("s", Some(&leaf))
    };
    let loaded = p.load().unwrap();
    assert_eq!(loaded.ca_certificates().len(), 1);
}

#[test]
fn ca_path_is_walked_recursively_without_extension_filter() {
    let a = Ca::new("Path CA A");
    let b = Ca::new("Path CA B");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "top.pem", &a.pem);
    write(dir.path(), "nested/deeper/a.txt", &b.pem);
    let certs = load_ca_path(dir.path()).unwrap();
    assert_eq!(certs.len(), 2);

    // A server from CA B (found only in the nested .txt) is trusted.
    let leaf = b.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let bfiles = Files::new(&b);
    let server = bfiles.policy("s", Some(&leaf));
    let client = TlsPolicy {
        ca_path: Some(dir.path().to_owned()),
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    let out = handshake(
        client.load().unwrap().client_config(),
        "server.dc1.consul",
        server.load().unwrap().server_config().unwrap(),
    );
    assert!(out.ok(), "{out:?}");
}

#[test]
fn ca_path_naming_a_file_reads_that_file() {
    let a = Ca::new("Path CA file");
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "one.crt", &a.pem);
    assert_eq!(load_ca_path(&f).unwrap().len(), 1);
}

#[test]
fn ca_path_without_certificates_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty-sub")).unwrap();
    let err = TlsPolicy { ca_path: Some(dir.path().to_owned()), ..TlsPolicy::default() }
        .load()
        .unwrap_err();
    assert!(matches!(err, Error::NoCaInPath { .. }));
    assert_eq!(
        err.to_string(),
        format!("ca_path {}: no CA certificates found", dir.path().display())
    );
}

#[test]
fn ca_path_with_a_non_pem_file_names_that_file() {
    let a = Ca::new("Path CA C");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ca.pem", &a.pem);
    let readme = write(dir.path(), "sub/README", "these are our CAs\n");
    let err = load_ca_path(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("ca_path {}: no PEM CERTIFICATE block found", readme.display())
    );
}

#[test]
fn crlf_files_work() {
    let (_ca, files, leaf) = setup();
    let crlf = |s: &str| s.replace('\n', "\r\n");
    let ca = write(
        files.dir.path(),
        "ca-crlf.pem",
        &crlf(&std::fs::read_to_string(&files.ca_file).unwrap()),
    );
    let cert = write(files.dir.path(), "crlf.pem", &crlf(&leaf.cert_pem));
    let key = write(files.dir.path(), "crlf-key.pem", &crlf(&sec1_pem(&leaf.key_pem)));
    assert!(std::fs::read_to_string(&key).unwrap().contains("\r\n"));
    let server = TlsPolicy {
        ca_file: Some(ca.clone()),
        cert_file: Some(cert),
        key_file: Some(key),
        ..TlsPolicy::default()
    };
    assert!(works(&server, &ca));
}

#[test]
fn ca_bundle_with_two_cas_trusts_both() {
    let old = Ca::new("Rotation CA old");
    let new = Ca::new("Rotation CA new");
    let dir = tempfile::tempdir().unwrap();
    let bundle = write(dir.path(), "bundle.pem", &format!("{}{}", old.pem, new.pem));
    let client = TlsPolicy {
        ca_file: Some(bundle.clone()),
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    assert_eq!(client.load().unwrap().ca_certificates().len(), 2);
    for ca in [&old, &new] {
        let f = Files::new(ca);
        let server = f.policy("s", Some(&ca.issue(&LeafSpec::server(&["server.dc1.consul"]))));
        assert!(works(&server, &bundle));
    }
}

#[test]
fn intermediate_chain_in_cert_file_works() {
    let root = Ca::new("Chain Root CA");
    let inter = root.intermediate("Chain Intermediate CA");
    let leaf = inter.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "root.pem", &root.pem);
    let cert = write(dir.path(), "chain.pem", &format!("{}{}", leaf.cert_pem, inter.pem));
    let key = write(dir.path(), "key.pem", &leaf.key_pem);
    let server = TlsPolicy {
        ca_file: Some(ca.clone()),
        cert_file: Some(cert),
        key_file: Some(key.clone()),
        ..TlsPolicy::default()
    };
    assert_eq!(server.load().unwrap().certificate_chain().unwrap().len(), 2);
    assert!(works(&server, &ca));
    // Without the intermediate the client cannot build the chain.
    let bare = write(dir.path(), "bare.pem", &leaf.cert_pem);
    let server = TlsPolicy { cert_file: Some(bare), ..server };
    assert!(!works(&server, &ca));
}

#[test]
fn version_and_cipher_rules() {
    let with13 = TlsPolicy {
        tls_min_version: TlsVersion::Tls13,
        tls_cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()],
        ..TlsPolicy::default()
    };
    let err = with13.load().unwrap_err();
    assert!(matches!(err, Error::CipherSuitesWithTls13));
    assert_eq!(err.to_string(), "tls_cipher_suites: TLS 1.3 cipher suites are not configurable");

    let unknown = TlsPolicy {
        tls_cipher_suites: vec!["TLS_RSA_WITH_AES_128_GCM_SHA256".into(), "BOGUS".into()],
        ..TlsPolicy::default()
    };
    assert_eq!(
        unknown.load().unwrap_err().to_string(),
        "tls_cipher_suites: no matching Consul Agent TLS cipher suite found for TLS_RSA_WITH_AES_128_GCM_SHA256,BOGUS"
    );
    let cbc = TlsPolicy {
        tls_cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()],
        ..TlsPolicy::default()
    };
    let err = cbc.load().unwrap_err();
    assert!(matches!(err, Error::UnsupportedCipherSuite { .. }));
    assert!(err.to_string().contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA not supported by rustls"));

    let ok = TlsPolicy {
        tls_cipher_suites: vec![
            " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ".into(),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        ],
        ..TlsPolicy::default()
    };
    assert_eq!(ok.cipher_suites().unwrap().len(), 2);
    let err = "TLSv1_1".parse::<TlsVersion>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "tls_min_version: TLSv1_1 is not supported: rustls speaks only TLS 1.2 and 1.3, please specify one of [TLSv1_2, TLSv1_3]"
    );
}

#[test]
fn debug_output_has_no_key_material() {
    let (_ca, files, leaf) = setup();
    let p = files.policy("s", Some(&leaf));
    let loaded = p.load().unwrap();
    let dbg = format!("{loaded:?}");
    let key_body: String = leaf.key_pem.lines().nth(1).unwrap().chars().take(20).collect();
    assert!(!dbg.contains(&key_body));
    assert!(dbg.contains("has_certificate: true"));
}
