//! TlsConfigurator: atomic swap, new handshakes use the new material, a bad
//! policy leaves the old one in force.

use consul_sec_tls_policy::{Error, TlsConfigurator};

use crate::support::*;

#[test]
fn reload_swaps_certificate_ca_and_flags_for_new_handshakes() {
    let old_ca = Ca::new("Reload CA old");
    let new_ca = Ca::new("Reload CA new");
    let old_files = Files::new(&old_ca);
    let new_files = Files::new(&new_ca);
    let old_server = old_ca.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let new_server = new_ca.issue(&LeafSpec::server(&["server.dc1.consul"]));

    // Server side configurator.
    let server = TlsConfigurator::new(&old_files.policy("srv", Some(&old_server))).unwrap();
    // Client side configurator, trusting the old CA.
    let mut client_policy = old_files.policy("cli", None);
    client_policy.verify_server_hostname = true;
    let client = TlsConfigurator::new(&client_policy).unwrap();

    let before = server.current();
    let out =
        handshake(client.client_config(), "server.dc1.consul", server.server_config().unwrap());
    assert!(out.ok(), "{out:?}");

    // Server moves to the new CA + certificate and turns verify_incoming on.
    let new_client_leaf = new_ca.issue(&LeafSpec::client());
    let mut new_server_policy = new_files.policy("srv", Some(&new_server));
    new_server_policy.verify_incoming = true;
    server.reload(&new_server_policy).unwrap();
    assert!(server.current().policy().verify_incoming);

    // The old client (old CA, no cert) now fails: unknown issuer.
    let out =
        handshake(client.client_config(), "server.dc1.consul", server.server_config().unwrap());
    assert!(
        matches!(
            out.client_err(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{out:?}"
    );
    // An already-fetched configuration (an established listener's handshake) keeps the old material.
    let out =
        handshake(client.client_config(), "server.dc1.consul", before.server_config().unwrap());
    assert!(out.ok(), "{out:?}");

    // The client reloads to the new CA with a client certificate: works again, and the cert is demanded.
    let mut new_client_policy = new_files.policy("cli", Some(&new_client_leaf));
    new_client_policy.verify_server_hostname = true;
    client.reload(&new_client_policy).unwrap();
    let out =
        handshake(client.client_config(), "server.dc1.consul", server.server_config().unwrap());
    assert!(out.ok(), "{out:?}");
    assert!(out.client_cert_seen);
}

#[test]
fn failed_reload_keeps_old_policy_and_returns_error() {
    let ca = Ca::new("Reload CA keep");
    let files = Files::new(&ca);
    let leaf = ca.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let good = files.policy("srv", Some(&leaf));
    let server = TlsConfigurator::new(&good).unwrap();
    let in_force = server.current();

    // New key on disk that does not match the certificate.
    let other = ca.issue(&LeafSpec::client());
    let (_, other_key) = files.leaf("other", &other);
    let bad = consul_sec_tls_policy::TlsPolicy {
        key_file: Some(other_key),
        verify_incoming: true,
        ..good.clone()
    };
    let err = server.reload(&bad).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    assert!(std::sync::Arc::ptr_eq(&in_force, &server.current()));
    assert!(!server.current().policy().verify_incoming);

    // Handshakes still use the old certificate.
    let mut client = files.policy("cli", None);
    client.verify_server_hostname = true;
    let out = handshake(
        client.load().unwrap().client_config(),
        "server.dc1.consul",
        server.server_config().unwrap(),
    );
    assert!(out.ok(), "{out:?}");
}
