//! RPC first byte: classification, the verify_incoming rule and its log line,
//! and the outgoing 0x03 decision, including a full upgrade flow in memory.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use consul_sec_tls_policy::{Accept, Outgoing, Refusal, RpcType, TlsPolicy, accept};
use rustls::ServerConnection;

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber that records formatted log lines.
fn logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

fn server_pki(verify_incoming: bool) -> (Files, TlsPolicy, Leaf) {
    let ca = Ca::new("RPC CA 1");
    let files = Files::new(&ca);
    let server = ca.issue(&LeafSpec::server(&["server.dc1.consul"]));
    let client = ca.issue(&LeafSpec::client());
    let mut p = files.policy("server", Some(&server));
    p.verify_incoming = verify_incoming;
    (files, p, client)
}

#[test]
fn verify_incoming_refuses_plaintext_and_logs_consul_message() {
    let (_f, policy, _) = server_pki(true);
    let loaded = policy.load().unwrap();
    for byte in [0x00u8, 0x01, 0x04, 0x05, 0x02, 0x16] {
        let (decision, log) = logs(|| loaded.accept(byte, false, &"10.0.0.9:1234"));
        assert_eq!(decision, Accept::Refuse(Refusal::NonTlsWithVerifyIncoming), "byte {byte}");
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("Non-TLS connection attempted with VerifyIncoming set"), "{log}");
        assert!(log.contains("conn=from=10.0.0.9:1234"), "{log}");
    }
    // TLS starts are let through: 0x03 (verified) and 0x07 (insecure bootstrap).
    let (d, log) = logs(|| loaded.accept(0x03, false, &"10.0.0.9:1234"));
    assert_eq!(d, Accept::StartTls);
    assert!(log.is_empty(), "{log}");
    assert_eq!(loaded.accept(0x07, false, &"p"), Accept::StartInsecureTls);
    // Inside TLS the inner byte is served.
    assert_eq!(loaded.accept(0x04, true, &"p"), Accept::Serve(RpcType::MultiplexV2));
    assert_eq!(loaded.accept(0x01, true, &"p"), Accept::Serve(RpcType::Raft));
}

#[test]
fn without_verify_incoming_plaintext_and_tls_share_the_port() {
    let (_f, policy, _) = server_pki(false);
    let loaded = policy.load().unwrap();
    let (d, log) = logs(|| loaded.accept(0x04, false, &"p"));
    assert_eq!(d, Accept::Serve(RpcType::MultiplexV2));
    assert!(log.is_empty());
    assert_eq!(loaded.accept(0x00, false, &"p"), Accept::Serve(RpcType::Consul));
    assert_eq!(loaded.accept(0x05, false, &"p"), Accept::Serve(RpcType::Snapshot));
    assert_eq!(loaded.accept(0x03, false, &"p"), Accept::StartTls);
    // The pure rule gives the same answer.
    assert_eq!(accept(0x04, false, false, &"p"), Accept::Serve(RpcType::MultiplexV2));
}

#[test]
fn nested_tls_and_unknown_bytes_are_refused_with_consul_errors() {
    let (_f, policy, _) = server_pki(false);
    let loaded = policy.load().unwrap();
    let (d, log) = logs(|| loaded.accept(0x03, true, &"p"));
    assert_eq!(d, Accept::Refuse(Refusal::NestedTls));
    assert!(
        log.contains("ERROR")
            && log.contains("TLS connection attempting to establish inner TLS connection"),
        "{log}"
    );
    let (d, log) = logs(|| loaded.accept(0x02, false, &"p"));
    assert_eq!(d, Accept::Refuse(Refusal::Unrecognized(2)));
    assert!(
        log.contains("ERROR") && log.contains("unrecognized RPC byte") && log.contains("byte=2"),
        "{log}"
    );
}

#[test]
fn tls_upgrade_without_server_certificate_is_refused() {
    let loaded = TlsPolicy::default().load().unwrap();
    let (d, log) = logs(|| loaded.accept(0x03, false, &"p"));
    assert_eq!(d, Accept::Refuse(Refusal::TlsNotConfigured));
    assert!(log.contains("TLS connection attempted, server not configured for TLS"), "{log}");
    assert_eq!(loaded.accept(0x04, false, &"p"), Accept::Serve(RpcType::MultiplexV2));
}

#[test]
fn outgoing_writes_0x03_exactly_when_verify_outgoing_is_on() {
    let (files, _, client) = server_pki(false);
    for (vo, vsh, tls) in
        [(false, false, false), (true, false, true), (false, true, true), (true, true, true)]
    {
        let mut p = files.policy("c", Some(&client));
        p.verify_outgoing = vo;
        p.verify_server_hostname = vsh;
        let out = p.load().unwrap().outgoing("dc7").unwrap();
        assert_eq!(out.prefix_byte(), if tls { Some(0x03) } else { None }, "vo={vo} vsh={vsh}");
        match out {
            Outgoing::Tls { server_name, .. } => {
                assert_eq!(server_name.to_str(), "server.dc7.consul")
            }
            Outgoing::Plaintext => assert!(!tls),
        }
    }
}

/// Full Consul upgrade on one in-memory "socket": the client writes 0x03 then
/// TLS then the inner 0x04; the server reads the byte, upgrades, reads 0x04
/// inside TLS and serves it.
#[test]
fn upgrade_flow_end_to_end() {
    let (files, server_policy, client_leaf) = server_pki(true);
    let mut client_policy = files.policy("client", Some(&client_leaf));
    client_policy.verify_server_hostname = true;
    let server = server_policy.load().unwrap();
    let client = client_policy.load().unwrap();

    let outgoing = client.outgoing("dc1").unwrap();
    let prefix = outgoing.prefix_byte().expect("TLS dial");
    let mut c = outgoing.client_connection().unwrap().expect("TLS connection");

    assert_eq!(server.accept(prefix, false, &"mem"), Accept::StartTls);
    let s = ServerConnection::new(server.server_config().unwrap()).unwrap();
    // Queue the inner type byte before driving; rustls sends it after the handshake.
    c.writer().write_all(&[RpcType::MultiplexV2.byte()]).unwrap();
    let mut s = {
        let out_and_conns = drive_keep(c, s);
        assert!(out_and_conns.0, "handshake failed");
        out_and_conns.1
    };
    let mut inner = [0u8; 1];
    s.reader().read_exact(&mut inner).unwrap();
    assert_eq!(server.accept(inner[0], true, &"mem"), Accept::Serve(RpcType::MultiplexV2));
}

/// Drives until quiet; returns (ok, server connection).
fn drive_keep(
    mut c: rustls::ClientConnection,
    mut s: ServerConnection,
) -> (bool, ServerConnection) {
    for _ in 0..32 {
        let mut moved = false;
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
                if s.process_new_packets().is_err() {
                    return (false, s);
                }
            }
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                if c.process_new_packets().is_err() {
                    return (false, s);
                }
            }
        }
        if !moved {
            break;
        }
    }
    (!s.is_handshaking() && !c.is_handshaking(), s)
}

#[test]
fn invalid_datacenter_name_is_a_clear_error() {
    let (files, _, client) = server_pki(false);
    let mut p = files.policy("c", Some(&client));
    p.verify_outgoing = true;
    let err = p.load().unwrap().outgoing("dc 1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "server name server.dc 1.consul: not a valid DNS name (check datacenter and domain)"
    );
}

/// F.3: with verify_incoming, 0x07 is let through and negotiated without a
/// client certificate, while 0x03 still demands one.
#[test]
fn insecure_tls_byte_negotiates_without_client_certificate() {
    let (files, server_policy, _) = server_pki(true);
    let server = server_policy.load().unwrap();
    assert_eq!(server.accept(0x07, false, &"p"), Accept::StartInsecureTls);
    let mut bootstrap = files.policy("none", None);
    bootstrap.verify_outgoing = true;
    let client = bootstrap.load().unwrap();
    let out = handshake(
        client.client_config(),
        "server.dc1.consul",
        server.insecure_server_config().unwrap(),
    );
    assert!(out.ok(), "{out:?}");
    assert!(!out.client_cert_seen);
    let out =
        handshake(client.client_config(), "server.dc1.consul", server.server_config().unwrap());
    assert!(matches!(out.server_err(), rustls::Error::NoCertificatesPresented), "{out:?}");
}
