//! Every row of the verify_* matrix (consul-semantics A.3) as real handshakes.

use consul_sec_tls_policy::{Error, Outgoing, TlsPolicy, Warning, handshake_error};

use crate::support::*;

/// CA, server cert for dc1 and a client cert, written to files.
struct Pki {
    ca: Ca,
    files: Files,
    server: Leaf,
    client: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("Consul Agent CA 1");
    let files = Files::new(&ca);
    let server = ca.issue(&LeafSpec::server(&["server.dc1.consul", "localhost"]));
    let client = ca.issue(&LeafSpec::client());
    Pki { ca, files, server, client }
}

impl Pki {
    fn server_policy(&self, f: impl FnOnce(&mut TlsPolicy)) -> TlsPolicy {
        let mut p = self.files.policy("server", Some(&self.server));
        f(&mut p);
        p
    }
    fn client_policy(&self, f: impl FnOnce(&mut TlsPolicy)) -> TlsPolicy {
        let mut p = self.files.policy("client", Some(&self.client));
        f(&mut p);
        p
    }
}

fn dial(client: &TlsPolicy, server: &TlsPolicy, target_dc: &str) -> Outcome {
    let c = client.load().expect("client policy loads");
    let s = server.load().expect("server policy loads");
    let name = c.policy().server_name_for(target_dc);
    handshake(c.client_config(), &name, s.server_config().expect("server config"))
}

// Row "nothing set" / "only CA/cert/key files": TLS optional, no client cert asked,
// outgoing plaintext.
#[test]
fn files_only_tls_optional_no_client_cert_requested_outgoing_plaintext() {
    let pki = pki();
    let server = pki.server_policy(|_| {});
    let loaded = server.load().unwrap();
    assert!(!loaded.verify_outgoing_effective());
    assert!(matches!(loaded.outgoing("dc1").unwrap(), Outgoing::Plaintext));
    assert_eq!(loaded.outgoing("dc1").unwrap().prefix_byte(), None);
    assert_eq!(loaded.warnings(), &[Warning::CaWithoutVerifyOutgoing]);

    // A client with a certificate: the server does not ask for it.
    let out = dial(&pki.client_policy(|_| {}), &server, "dc1");
    assert!(out.ok(), "{out:?}");
    assert!(!out.client_cert_seen, "server must not request a client certificate");
    // A client with nothing configured at all also completes the handshake.
    let out = dial(&TlsPolicy::default(), &server, "dc1");
    assert!(out.ok(), "{out:?}");
}

#[test]
fn nothing_set_loads_without_files_and_dials_plaintext() {
    let loaded = TlsPolicy::default().load().unwrap();
    assert!(matches!(loaded.outgoing("dc2").unwrap(), Outgoing::Plaintext));
    assert!(matches!(loaded.server_config(), Err(Error::NoServerCertificate)));
    assert!(loaded.warnings().is_empty());
}

// Row verify_outgoing: chain verified, no hostname check.
#[test]
fn verify_outgoing_accepts_other_name_from_right_ca() {
    let pki = pki();
    let other_name = pki.ca.issue(&LeafSpec::server(&["something.else.example"]));
    let server = pki.files.policy("other", Some(&other_name));
    let client = pki.client_policy(|p| p.verify_outgoing = true);
    let loaded = client.load().unwrap();
    assert_eq!(loaded.warnings(), &[Warning::NoServerHostnameCheck]);
    let Outgoing::Tls { server_name, .. } = loaded.outgoing("dc1").unwrap() else {
        panic!("verify_outgoing must dial TLS")
    };
    assert_eq!(server_name.to_str(), "server.dc1.consul");
    assert_eq!(loaded.outgoing("dc1").unwrap().prefix_byte(), Some(0x03));

    let out = dial(&client, &server, "dc1");
    assert!(out.ok(), "{out:?}");
    // Consul sets no ServerName (SNI) without hostname verification.
    assert_eq!(out.sni, None);
}

#[test]
fn verify_outgoing_refuses_other_ca() {
    let pki = pki();
    let rogue = Ca::new("Rogue CA 2");
    let rogue_files = Files::new(&rogue);
    let rogue_server = rogue.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let server = rogue_files.policy("server", Some(&rogue_server));
    let client = pki.client_policy(|p| p.verify_outgoing = true);
    let out = dial(&client, &server, "dc1");
    assert!(!out.ok());
    let err = out.client_err().clone();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        "{err:?}"
    );
    assert!(handshake_error(err).to_string().contains("not signed by a CA from ca_file/ca_path"));
}

#[test]
fn verify_outgoing_refuses_expired_server_certificate() {
    let pki = pki();
    let expired = pki.ca.issue(&LeafSpec {
        validity: Validity::Expired,
        ..LeafSpec::server(&["server.dc1.consul"])
    });
    let server = pki.files.policy("expired", Some(&expired));
    for hostname in [false, true] {
        let client = pki.client_policy(|p| {
            p.verify_outgoing = true;
            p.verify_server_hostname = hostname;
        });
        let out = dial(&client, &server, "dc1");
        let err = out.client_err().clone();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
        assert!(handshake_error(err).to_string().contains("peer certificate expired"));
    }
}

#[test]
fn verify_outgoing_refuses_server_certificate_without_server_auth_eku() {
    let pki = pki();
    let client_only = pki
        .ca
        .issue(&LeafSpec { eku: Some(CLIENT_ONLY), ..LeafSpec::server(&["server.dc1.consul"]) });
    let server = pki.files.policy("srv", Some(&client_only));
    let out = dial(&pki.client_policy(|p| p.verify_outgoing = true), &server, "dc1");
    let msg = handshake_error(out.client_err().clone()).to_string();
    assert!(msg.contains("server certificate lacks the serverAuth extended key usage"), "{msg}");
}

#[test]
fn verify_outgoing_without_ca_is_an_error() {
    let pki = pki();
    let (c, k) = pki.files.leaf("c", &pki.client);
    let p = TlsPolicy {
        cert_file: Some(c),
        key_file: Some(k),
        verify_outgoing: true,
        ..TlsPolicy::default()
    };
    let err = p.load().unwrap_err();
    assert!(matches!(err, Error::VerifyOutgoingWithoutCa { implied: false }));
    assert_eq!(
        err.to_string(),
        "verify_outgoing: set but no CA certificates were provided (set ca_file or ca_path)"
    );
}

// Row verify_server_hostname: implies verify_outgoing, requires server.<target dc>.<domain>.
#[test]
fn verify_server_hostname_implies_verify_outgoing() {
    let pki = pki();
    let client = pki.client_policy(|p| p.verify_server_hostname = true);
    assert!(!client.verify_outgoing);
    let loaded = client.load().unwrap();
    assert!(loaded.verify_outgoing_effective());
    assert!(loaded.verify_outgoing_implied());
    assert_eq!(loaded.warnings(), &[Warning::VerifyOutgoingImplied]);
    assert_eq!(loaded.outgoing("dc1").unwrap().prefix_byte(), Some(0x03));
    let out = dial(&client, &pki.server_policy(|_| {}), "dc1");
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.sni.as_deref(), Some("server.dc1.consul"));

    let no_ca = TlsPolicy { verify_server_hostname: true, ..TlsPolicy::default() };
    assert!(matches!(no_ca.load(), Err(Error::VerifyOutgoingWithoutCa { implied: true })));
}

#[test]
fn verify_server_hostname_uses_the_dialled_datacenter() {
    let pki = pki();
    let dc2 = pki.ca.issue(&LeafSpec::server(&["server.dc2.consul"]));
    let dc2_server = pki.files.policy("dc2", Some(&dc2));
    // The local agent is in dc1 and dials dc2.
    let client = pki.client_policy(|p| {
        p.verify_server_hostname = true;
        p.datacenter = "dc1".into();
        p.domain = "consul.".into();
    });
    let out = dial(&client, &dc2_server, "dc2");
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.sni.as_deref(), Some("server.dc2.consul"));
    // The same certificate does not pass when dc1 is dialled.
    let out = dial(&client, &dc2_server, "dc1");
    let msg = handshake_error(out.client_err().clone()).to_string();
    assert_eq!(
        msg,
        "tls handshake: server certificate is not valid for server.dc1.consul: it holds server.dc2.consul, 127.0.0.1 (the subject CN is never used; a wildcard covers one label)"
    );
}

#[test]
fn verify_server_hostname_refuses_wrong_name_and_lists_names() {
    let pki = pki();
    let wrong = pki.ca.issue(&LeafSpec::server(&["node1.example", "localhost"]));
    let server = pki.files.policy("wrong", Some(&wrong));
    let client = pki.client_policy(|p| p.verify_server_hostname = true);
    let out = dial(&client, &server, "dc1");
    let err = out.client_err().clone();
    let rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
        expected,
        presented,
    }) = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected.to_str(), "server.dc1.consul");
    assert_eq!(presented.len(), 3, "{presented:?}");
    let msg = handshake_error(err).to_string();
    assert!(msg.contains("not valid for server.dc1.consul"), "{msg}");
    assert!(msg.contains("it holds node1.example, localhost, 127.0.0.1"), "{msg}");
    // The server saw the refusal as an alert.
    assert!(out.server.is_err());
}

#[test]
fn subject_cn_is_never_used_for_the_hostname() {
    let pki = pki();
    let cn_only = pki.ca.issue(&LeafSpec {
        cn: "server.dc1.consul",
        dns: &["unrelated.example"],
        ..LeafSpec::server(&["x"])
    });
    let server = pki.files.policy("cn", Some(&cn_only));
    let out = dial(&pki.client_policy(|p| p.verify_server_hostname = true), &server, "dc1");
    assert!(matches!(
        out.client_err(),
        rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })
    ));
}

#[test]
fn wildcard_covers_exactly_one_label() {
    let pki = pki();
    let client = pki.client_policy(|p| p.verify_server_hostname = true);
    let one = pki.ca.issue(&LeafSpec::server(&["*.dc1.consul"]));
    let out = dial(&client, &pki.files.policy("w1", Some(&one)), "dc1");
    assert!(out.ok(), "{out:?}");
    let two = pki.ca.issue(&LeafSpec::server(&["*.consul"]));
    let out = dial(&client, &pki.files.policy("w2", Some(&two)), "dc1");
    assert!(matches!(
        out.client_err(),
        rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })
    ));
}

/// A client agent restarted as a server presents its client certificate
/// (same CA, both EKUs). Chain-only verification lets it through; hostname
/// verification stops it (the MITM case in Consul's docs).
#[test]
fn client_certificate_posing_as_server_is_refused_by_hostname_check() {
    let pki = pki();
    let impostor = pki.files.policy("impostor", Some(&pki.client));
    let chain_only = dial(&pki.client_policy(|p| p.verify_outgoing = true), &impostor, "dc1");
    assert!(
        chain_only.ok(),
        "without verify_server_hostname the impostor is accepted: {chain_only:?}"
    );
    let checked = dial(&pki.client_policy(|p| p.verify_server_hostname = true), &impostor, "dc1");
    let msg = handshake_error(checked.client_err().clone()).to_string();
    assert!(msg.contains("not valid for server.dc1.consul: it holds client.dc1.consul"), "{msg}");
}

// Row verify_incoming: client certificate required, chained to the CA, clientAuth EKU.
#[test]
fn verify_incoming_accepts_mtls() {
    let pki = pki();
    let server = pki.server_policy(|p| p.verify_incoming = true);
    let out = dial(&pki.client_policy(|p| p.verify_server_hostname = true), &server, "dc1");
    assert!(out.ok(), "{out:?}");
    assert!(out.client_cert_seen);
}

#[test]
fn verify_incoming_refuses_missing_client_certificate() {
    let pki = pki();
    let server = pki.server_policy(|p| p.verify_incoming = true);
    let client = TlsPolicy {
        ca_file: Some(pki.files.ca_file.clone()),
        verify_outgoing: true,
        ..TlsPolicy::default()
    };
    let out = dial(&client, &server, "dc1");
    assert!(matches!(out.server_err(), rustls::Error::NoCertificatesPresented), "{out:?}");
    assert!(!out.data_arrived);
    assert!(
        handshake_error(out.server_err().clone())
            .to_string()
            .contains("peer presented no certificate")
    );
    assert!(matches!(
        out.client_err(),
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)
    ));
}

#[test]
fn verify_incoming_refuses_client_certificate_from_other_ca() {
    let pki = pki();
    let rogue = Ca::new("Rogue CA 3");
    let rogue_files = Files::new(&rogue);
    let rogue_client = rogue.issue(&LeafSpec::client());
    let (c, k) = rogue_files.leaf("rogue", &rogue_client);
    let client = TlsPolicy {
        ca_file: Some(pki.files.ca_file.clone()),
        cert_file: Some(c),
        key_file: Some(k),
        verify_outgoing: true,
        ..TlsPolicy::default()
    };
    let out = dial(&client, &pki.server_policy(|p| p.verify_incoming = true), "dc1");
    assert!(
        matches!(
            out.server_err(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{out:?}"
    );
    assert!(!out.data_arrived);
}

#[test]
fn verify_incoming_refuses_expired_client_certificate() {
    let pki = pki();
    let expired = pki.ca.issue(&LeafSpec { validity: Validity::Expired, ..LeafSpec::client() });
    let mut client = pki.files.policy("expired-client", Some(&expired));
    client.verify_outgoing = true;
    let out = dial(&client, &pki.server_policy(|p| p.verify_incoming = true), "dc1");
    assert!(
        matches!(
            out.server_err(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
        ),
        "{out:?}"
    );
}

#[test]
fn verify_incoming_refuses_client_certificate_without_client_auth_eku() {
    let pki = pki();
    let server_only = pki.ca.issue(&LeafSpec { eku: Some(SERVER_ONLY), ..LeafSpec::client() });
    let mut client = pki.files.policy("srv-eku", Some(&server_only));
    client.verify_outgoing = true;
    let out = dial(&client, &pki.server_policy(|p| p.verify_incoming = true), "dc1");
    let err = out.server_err().clone();
    assert!(
        matches!(
            &err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::InvalidPurposeContext {
                required: rustls::ExtendedKeyPurpose::ClientAuth,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        handshake_error(err).to_string(),
        "tls handshake: client certificate lacks the clientAuth extended key usage (it allows: serverAuth)"
    );
    assert!(!out.data_arrived);
}

#[test]
fn verify_incoming_accepts_client_certificate_without_eku_extension() {
    let pki = pki();
    let no_eku = pki.ca.issue(&LeafSpec { eku: None, ..LeafSpec::client() });
    let mut client = pki.files.policy("no-eku", Some(&no_eku));
    client.verify_outgoing = true;
    let out = dial(&client, &pki.server_policy(|p| p.verify_incoming = true), "dc1");
    assert!(out.ok(), "{out:?}");
    assert!(out.client_cert_seen);
}

#[test]
fn verify_incoming_requires_ca_and_certificate() {
    let pki = pki();
    let (c, k) = pki.files.leaf("s", &pki.server);
    let no_ca = TlsPolicy {
        cert_file: Some(c),
        key_file: Some(k),
        verify_incoming: true,
        ..TlsPolicy::default()
    };
    let err = no_ca.load().unwrap_err();
    assert!(matches!(err, Error::VerifyIncomingWithoutCa));
    assert_eq!(
        err.to_string(),
        "verify_incoming: set but no CA certificates were provided (set ca_file or ca_path)"
    );
    let no_cert = TlsPolicy {
        ca_file: Some(pki.files.ca_file.clone()),
        verify_incoming: true,
        ..TlsPolicy::default()
    };
    let err = no_cert.load().unwrap_err();
    assert!(matches!(err, Error::VerifyIncomingWithoutCert));
    assert_eq!(err.to_string(), "verify_incoming: requires a cert_file and key_file pair");
}

#[test]
fn tls13_minimum_refuses_tls12_only_peer() {
    let pki = pki();
    let server =
        pki.server_policy(|p| p.tls_min_version = consul_sec_tls_policy::TlsVersion::Tls13);
    let s = server.load().unwrap();
    // A TLS 1.2-only client built directly with rustls.
    let provider = consul_sec_tls_policy::crypto_provider();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let out =
        handshake(std::sync::Arc::new(client), "server.dc1.consul", s.server_config().unwrap());
    assert!(matches!(out.server_err(), rustls::Error::PeerIncompatible(_)), "{out:?}");
}

#[test]
fn cipher_suite_list_limits_tls12() {
    let pki = pki();
    let server = pki.server_policy(|p| {
        p.tls_cipher_suites = vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()];
    });
    let s = server.load().unwrap();
    let provider = consul_sec_tls_policy::crypto_provider();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::CryptoProvider {
            cipher_suites: vec![
                rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            ..(*provider).clone()
        },
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(std::sync::Arc::new(
        consul_sec_tls_policy::DangerousNoServerVerification::new(provider),
    ))
    .with_no_client_auth();
    let out =
        handshake(std::sync::Arc::new(client), "server.dc1.consul", s.server_config().unwrap());
    assert!(out.server.is_err(), "a suite outside the list must not be negotiated: {out:?}");
    // TLS 1.3 is untouched by the list (Go applies it to TLS 1.2 only).
    let out = dial(&pki.client_policy(|_| {}), &server, "dc1");
    assert!(out.ok(), "{out:?}");
}
