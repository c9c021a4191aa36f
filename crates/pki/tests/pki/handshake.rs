//! Certificates issued here complete a mutual-TLS handshake through
//! consul-sec-tls-policy with `verify_incoming` and
//! `verify_server_hostname` on, in memory (no sockets).

use std::path::{Path, PathBuf};

use consul_sec_pki::files::{create_ca_files, create_cert_files, load_ca};
use consul_sec_pki::{CaRequest, CertKind, CertRequest};
use consul_sec_tls_policy::{LoadedPolicy, Outgoing, TlsPolicy};
use rustls::{ClientConnection, ServerConnection};

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let saved = create_ca_files(&path, &CaRequest::default()).expect("CA");
        Pki { _dir: dir, ca: saved.cert, dir: path }
    }

    fn issue(&self, request: &CertRequest) -> (PathBuf, PathBuf) {
        let ca = load_ca(&self.ca, &self.dir.join("consul-agent-ca-key.pem")).expect("load CA");
        let saved = create_cert_files(&self.dir, &ca, request).expect("cert");
        (saved.cert, saved.key)
    }

    /// Consul's fully verified RPC TLS settings with one certificate.
    fn policy(&self, (cert, key): &(PathBuf, PathBuf)) -> LoadedPolicy {
        TlsPolicy {
            ca_file: Some(self.ca.clone()),
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            verify_incoming: true,
            verify_outgoing: true,
            verify_server_hostname: true,
            ..TlsPolicy::default()
        }
        .load()
        .expect("policy loads")
    }
}

/// Runs a handshake between the dialler and the listener; returns the
/// first error either side reports.
fn handshake(
    dialler: &LoadedPolicy,
    target_dc: &str,
    listener: &LoadedPolicy,
) -> Result<(ClientConnection, ServerConnection), String> {
    let outgoing = dialler.outgoing(target_dc).map_err(|e| e.to_string())?;
    assert!(matches!(outgoing, Outgoing::Tls { .. }), "verified policies dial with TLS");
    let mut client =
        outgoing.client_connection().map_err(|e| e.to_string())?.expect("TLS connection");
    let mut server =
        ServerConnection::new(listener.server_config().expect("server config")).expect("server");
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("client write");
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).expect("server read");
        }
        server.process_new_packets().map_err(|e| format!("server: {e}"))?;
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("server write");
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).expect("client read");
        }
        client.process_new_packets().map_err(|e| format!("client: {e}"))?;
    }
    Err("handshake did not finish".to_owned())
}

fn der_of(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("cert");
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).expect("pem");
    pem.contents
}

#[test]
fn server_to_server_and_client_to_server_mutual_tls() {
    let pki = Pki::new();
    let server_a = pki.issue(&CertRequest::new(CertKind::Server));
    let server_b = pki.issue(&CertRequest::new(CertKind::Server));
    let client = pki.issue(&CertRequest::new(CertKind::Client));
    let listener = pki.policy(&server_a);

    // Servers dial each other with their server certificate (clientAuth EKU).
    let (c, s) = handshake(&pki.policy(&server_b), "dc1", &listener).expect("server to server");
    let client_seen = s.peer_certificates().expect("client cert presented");
    assert_eq!(client_seen[0].as_ref(), der_of(&server_b.0));
    let server_seen = c.peer_certificates().expect("server cert");
    assert_eq!(server_seen[0].as_ref(), der_of(&server_a.0));

    // A client agent with a client certificate.
    let (_, s) = handshake(&pki.policy(&client), "dc1", &listener).expect("client to server");
    assert_eq!(s.peer_certificates().expect("client cert")[0].as_ref(), der_of(&client.0));
}

#[test]
fn hostname_verification_rejects_wrong_names() {
    let pki = Pki::new();
    let server = pki.issue(&CertRequest::new(CertKind::Server));
    let client = pki.issue(&CertRequest::new(CertKind::Client));

    // A server of dc1 is not server.dc2.consul.
    let err = handshake(&pki.policy(&client), "dc2", &pki.policy(&server)).expect_err("dc2");
    assert!(
        err.starts_with("client: ") && err.contains("not valid for name \"server.dc2.consul\""),
        "{err}"
    );

    // A client certificate cannot pose as a server: it lacks server.dc1.consul.
    let err =
        handshake(&pki.policy(&server), "dc1", &pki.policy(&client)).expect_err("client as server");
    assert!(
        err.starts_with("client: ") && err.contains("not valid for name \"server.dc1.consul\""),
        "{err}"
    );

    // A certificate from another CA is refused by the listener.
    let other = Pki::new();
    let stranger = other.issue(&CertRequest::new(CertKind::Server));
    let stranger_policy = TlsPolicy {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(stranger.0.clone()),
        key_file: Some(stranger.1.clone()),
        verify_incoming: true,
        verify_outgoing: true,
        verify_server_hostname: true,
        ..TlsPolicy::default()
    }
    .load()
    .expect("loads");
    let err = handshake(&stranger_policy, "dc1", &pki.policy(&server)).expect_err("foreign CA");
    assert!(err.starts_with("server: ") && err.contains("UnknownIssuer"), "{err}");
}
