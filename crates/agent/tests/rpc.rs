//! Consul's RPC port (issue 8, acceptance 1 and 2): first-byte multiplexing,
//! msgpack-RPC, the internal TLS policy in force on both ends, the client
//! connection pool, keyring forwarding, and a Go client through hashicorp's
//! msgpack-RPC codec. Certificates come from consul-sec-pki.

mod common;
#[path = "rpc/support.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::wait_until;
use consul_sec_agent::cluster::{Cluster, KeyOperation, KeyRequest};
use consul_sec_agent::connlimit::ConnLimiter;
use consul_sec_agent::keyring::KeyChange;
use consul_sec_agent::model::{AgentMember, KeyringResponse};
use consul_sec_agent::rpc::{ForwardToServers, Refusal, RpcError, server_addresses};
use consul_sec_gossip_crypto::SecretKey;
use consul_sec_pki::CertKind;
use consul_sec_tls_policy::TlsPolicy;
use rmpv::Value;
use support::{
    KEY, KEY2, Logs, Pki, client, member, policy, require, start_limited_server_on, start_server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF; the bytes the server sent before closing.
async fn drain(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    // A reset instead of a clean close is also "closed without a reply".
    let _ = read.expect("server did not close the connection");
    got
}

fn tls_error_text(err: &RpcError) -> String {
    match err {
        RpcError::Tls { source, .. } => source.to_string(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

// --- acceptance 1: the RPC port ---------------------------------------------------------------

#[tokio::test]
async fn plaintext_status_ping() {
    let server = start_server(&TlsPolicy::default()).await;
    let client = client(&TlsPolicy::default());
    client.ping(server.addr).await.unwrap();
    let reply = client.call(server.addr, "Status.Ping", &Value::Map(vec![])).await.unwrap();
    // Consul's Ping replies `struct{}{}`: an empty map.
    assert_eq!(reply, Value::Map(vec![]));
}

#[tokio::test]
async fn plaintext_wire_bytes_as_net_rpc_msgpack() {
    // A hand-written request: 0x00, header {ServiceMethod, Seq}, body {}.
    let server = start_server(&TlsPolicy::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut req = vec![0x00, 0x82, 0xad];
    req.extend_from_slice(b"ServiceMethod");
    req.push(0xab);
    req.extend_from_slice(b"Status.Ping");
    req.extend_from_slice(&[0xa3, b'S', b'e', b'q', 0x07, 0x80]);
    stream.write_all(&req).await.unwrap();
    stream.shutdown().await.unwrap();
    let got = drain(&mut stream).await;
    let mut rd = got.as_slice();
    let header = rmpv::decode::read_value(&mut rd).unwrap();
    let body = rmpv::decode::read_value(&mut rd).unwrap();
    assert!(rd.is_empty(), "trailing bytes {rd:?}");
    let field = |name: &str| {
        header.as_map().unwrap().iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v)
    };
    assert_eq!(field("ServiceMethod").and_then(Value::as_str), Some("Status.Ping"));
    assert_eq!(field("Seq").and_then(Value::as_u64), Some(7));
    assert_eq!(field("Error").and_then(Value::as_str), Some(""));
    assert_eq!(body, Value::Map(vec![]));
}

#[tokio::test]
async fn tls_status_ping_with_mutual_tls() {
    let pki = Pki::new();
    let server_pair = pki.issue("server", CertKind::Server, "dc1");
    let client_pair = pki.issue("client", CertKind::Client, "dc1");
    let server =
        start_server(&policy(Some(&pki.ca_file), Some(&server_pair), true, true, true)).await;
    let client = client(&policy(Some(&pki.ca_file), Some(&client_pair), false, true, true));
    client.ping(server.addr).await.unwrap();
    client.ping(server.addr).await.unwrap();
    assert_eq!(client.dials(), 1);
}

#[tokio::test]
async fn tls_optional_server_takes_plaintext_and_tls_on_one_port() {
    // Migration step 1: certificates configured, every verify flag off.
    let pki = Pki::new();
    let pair = pki.issue("server", CertKind::Server, "dc1");
    let server = start_server(&policy(Some(&pki.ca_file), Some(&pair), false, false, false)).await;
    client(&TlsPolicy::default()).ping(server.addr).await.unwrap();
    // No client certificate is asked for without verify_incoming.
    client(&policy(Some(&pki.ca_file), None, false, true, true)).ping(server.addr).await.unwrap();
}

#[tokio::test]
async fn unknown_methods_get_net_rpc_errors_and_the_stream_survives() {
    let server = start_server(&TlsPolicy::default()).await;
    let client = client(&TlsPolicy::default());
    let empty = Value::Map(vec![]);
    let err = client.call(server.addr, "Nope.Method", &empty).await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Remote { message, .. } if message == "rpc: can't find service Nope.Method"),
        "{err:?}"
    );
    let err = client.call(server.addr, "Status.Leader", &empty).await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Remote { message, .. } if message == "rpc: can't find method Status.Leader"),
        "{err:?}"
    );
    let err = client.call(server.addr, "NoDot", &empty).await.unwrap_err();
    assert_eq!(err.to_string(), "NoDot: rpc error: rpc: service/method request ill-formed: NoDot");
    client.ping(server.addr).await.unwrap();
    assert_eq!(client.dials(), 1, "an RPC error must not cost the connection");
}

#[tokio::test]
async fn keyring_operation_over_rpc() {
    let server = start_server(&TlsPolicy::default()).await;
    let client = client(&TlsPolicy::default());
    let key2 = SecretKey::from_base64(KEY2).unwrap();
    let install = KeyRequest {
        op: KeyOperation::Change(KeyChange::Install(key2.clone())),
        relay_factor: 0,
        local_only: false,
    };
    let responses = client.keyring_operation(server.addr, &install).await.unwrap();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].error, None);
    assert_eq!(responses[0].datacenter, "dc1");
    assert!(server.store.keyring().keys().iter().any(|k| k == &key2), "key not installed");

    let list = KeyRequest { op: KeyOperation::List, relay_factor: 0, local_only: true };
    let responses = client.keyring_operation(server.addr, &list).await.unwrap();
    assert_eq!(responses[0].keys.get(KEY), Some(&1));
    assert_eq!(responses[0].keys.get(KEY2), Some(&1));
    assert_eq!(responses[0].primary_keys.get(KEY), Some(&1));
    assert_eq!(responses[0].num_nodes, 1);

    // Removing the primary is refused on the node; the answer carries it.
    let remove = KeyRequest {
        op: KeyOperation::Change(KeyChange::Remove(SecretKey::from_base64(KEY).unwrap())),
        relay_factor: 0,
        local_only: false,
    };
    let responses = client.keyring_operation(server.addr, &remove).await.unwrap();
    assert_eq!(responses[0].error.as_deref(), Some("1/1 nodes reported failure"));
    let message = responses[0].messages.get("server1").cloned().unwrap_or_default();
    assert!(message.ends_with("removing the primary key is not allowed"), "{message}");

    // A bad request is an RPC error, not a dropped connection.
    let bad = Value::Map(vec![(Value::from("Operation"), Value::from("rotate"))]);
    let err = client.call(server.addr, "Internal.KeyringOperation", &bad).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Internal.KeyringOperation: rpc error: Operation: unknown keyring operation \"rotate\""
    );
    assert_eq!(client.dials(), 1);
}

/// The client agent's view of the cluster: itself and the servers it gossips with.
struct Members(Vec<AgentMember>);

impl Cluster for Members {
    fn local_member(&self) -> AgentMember {
        self.0[0].clone()
    }
    fn members(&self) -> Vec<AgentMember> {
        self.0.clone()
    }
    fn key_operation(
        &self,
        _request: KeyRequest,
    ) -> impl std::future::Future<Output = KeyringResponse> + Send {
        // A client never answers keyring operations itself.
        std::future::ready(KeyringResponse {
            error: Some("not forwarded".into()),
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn client_agent_forwards_keyring_operations_to_a_server() {
    let pki = Pki::new();
    let server_pair = pki.issue("server", CertKind::Server, "dc1");
    let client_pair = pki.issue("client", CertKind::Client, "dc1");
    let server =
        start_server(&policy(Some(&pki.ca_file), Some(&server_pair), true, true, true)).await;
    let dead: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let members = vec![
        member("client1", "127.0.0.1:1".parse().unwrap(), false),
        // A server that is gone first: the forwarder moves on to the next one.
        member("server0", dead, true),
        member("server1", server.addr, true),
    ];
    assert_eq!(server_addresses(&members, "dc1"), vec![dead, server.addr]);
    assert!(server_addresses(&members, "dc2").is_empty());

    let rpc = client(&policy(Some(&pki.ca_file), Some(&client_pair), false, true, true));
    let agent = ForwardToServers::new(Members(members), rpc.clone());
    let key2 = SecretKey::from_base64(KEY2).unwrap();
    let install = KeyRequest {
        op: KeyOperation::Change(KeyChange::Install(key2.clone())),
        relay_factor: 0,
        local_only: false,
    };
    let response = agent.key_operation(install).await;
    assert_eq!(response.error, None, "{response:?}");
    assert!(server.store.keyring().keys().iter().any(|k| k == &key2));
    let list = agent
        .key_operation(KeyRequest { op: KeyOperation::List, relay_factor: 0, local_only: false })
        .await;
    assert_eq!(list.keys.len(), 2);

    let lonely = ForwardToServers::new(Members(vec![member("c", server.addr, false)]), rpc.clone());
    let dials = rpc.dials();
    let response = lonely
        .key_operation(KeyRequest { op: KeyOperation::List, relay_factor: 0, local_only: false })
        .await;
    // No server in the pool: the operation runs on the agent's own pool
    // (the test cluster answers "not forwarded"), and nothing is dialled.
    assert_eq!(response.error.as_deref(), Some("not forwarded"));
    assert_eq!(rpc.dials(), dials);

    // A server agent runs them on its own pool: nothing is dialled.
    let own = ForwardToServers::local(Members(vec![member("s", server.addr, true)]));
    assert!(own.client().is_none());
    let response = own
        .key_operation(KeyRequest { op: KeyOperation::List, relay_factor: 0, local_only: false })
        .await;
    assert_eq!(response.error.as_deref(), Some("not forwarded"));
}

#[tokio::test]
async fn pool_reuses_connections() {
    let server = start_server(&TlsPolicy::default()).await;
    let client = client(&TlsPolicy::default());
    for _ in 0..20 {
        client.ping(server.addr).await.unwrap();
    }
    assert_eq!(client.dials(), 1);
    assert_eq!(client.idle_connections(server.addr), 1);

    // Eight calls at once need more connections; at most four stay idle.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            let addr = server.addr;
            tokio::spawn(async move { c.ping(addr).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(client.dials() > 1 && client.dials() <= 8, "dials {}", client.dials());
    assert!(client.idle_connections(server.addr) <= 4);
    let before = client.dials();
    for _ in 0..4 {
        client.ping(server.addr).await.unwrap();
    }
    assert_eq!(client.dials(), before, "idle connections are reused");
}

#[tokio::test]
async fn pool_redials_after_server_restart() {
    let server = start_server(&TlsPolicy::default()).await;
    let addr = server.addr;
    let client = client(&TlsPolicy::default());
    client.ping(addr).await.unwrap();
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Same port again; the pooled connection is dead.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _server = support::start_server_on(listener, &TlsPolicy::default());
    client.ping(addr).await.unwrap();
    assert_eq!(client.dials(), 2);
}

#[tokio::test]
async fn pool_closes_connections_idle_longer_than_max_idle_time() {
    let server = start_server(&TlsPolicy::default()).await;
    let tls = Arc::new(consul_sec_tls_policy::TlsConfigurator::new(&TlsPolicy::default()).unwrap());
    let config = consul_sec_agent::rpc::PoolConfig {
        max_idle_time: Duration::from_millis(200),
        ..Default::default()
    };
    let client = consul_sec_agent::rpc::RpcClient::new(tls, config);
    client.ping(server.addr).await.unwrap();
    client.ping(server.addr).await.unwrap();
    assert_eq!(client.dials(), 1, "reused while fresh");
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.ping(server.addr).await.unwrap();
    assert_eq!(client.dials(), 2, "an idle connection past max_idle_time is not reused");
}

#[tokio::test]
async fn pool_keeps_connections_per_datacenter() {
    let server = start_server(&TlsPolicy::default()).await;
    let client = client(&TlsPolicy::default());
    let ping = Value::Map(Vec::new());
    client.call_in("dc1", server.addr, "Status.Ping", &ping).await.unwrap();
    client.call_in("dc2", server.addr, "Status.Ping", &ping).await.unwrap();
    assert_eq!(client.dials(), 2, "a dc1 connection does not serve dc2");
    client.call_in("dc1", server.addr, "Status.Ping", &ping).await.unwrap();
    client.call_in("dc2", server.addr, "Status.Ping", &ping).await.unwrap();
    assert_eq!(client.dials(), 2);
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let (logs, _guard) = Logs::capture();
    let server = start_server(&TlsPolicy::default()).await;
    // 0xc1 is never valid msgpack.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&[0x00, 0xc1]).await.unwrap();
    assert!(drain(&mut stream).await.is_empty());
    logs.wait_for(&["rpc: bad request", "invalid msgpack marker 0xc1"]).await;
    // A header announcing a 4 GiB string is refused before it arrives.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&[0x00, 0xdb, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
    assert!(drain(&mut stream).await.is_empty());
    logs.wait_for(&["msgpack value larger than"]).await;
    // A 100 KiB argument is over the server's request limit.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut request = vec![0x00, 0x82, 0xad];
    request.extend_from_slice(b"ServiceMethod");
    request.push(0xab);
    request.extend_from_slice(b"Status.Ping");
    request.extend_from_slice(&[0xa3, b'S', b'e', b'q', 0x00, 0xdb, 0x00, 0x01, 0x90, 0x00]);
    request.resize(request.len() + 100 * 1024, b'x');
    let _ = stream.write_all(&request).await;
    assert!(drain(&mut stream).await.is_empty());
    let limit = format!("msgpack value larger than {} bytes", consul_sec_agent::rpc::MAX_REQUEST);
    logs.wait_for(&[limit.as_str()]).await;
    // The header must be a map with a string ServiceMethod.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&[0x00, 0x81, 0xad]).await.unwrap();
    stream.write_all(b"ServiceMethod").await.unwrap();
    stream.write_all(&[0x05, 0x80]).await.unwrap();
    assert!(drain(&mut stream).await.is_empty());
    logs.wait_for(&["request header: field ServiceMethod missing or not a string"]).await;
    // Unknown and unsupported first bytes (Consul's ERROR texts).
    for byte in [0x02u8, 0x16, 0x01, 0x04] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&[byte]).await.unwrap();
        assert!(drain(&mut stream).await.is_empty(), "byte {byte:#x}");
    }
    logs.wait_for(&["ERROR", "unrecognized RPC byte", "byte=2"]).await;
    logs.wait_for(&["ERROR", "unrecognized RPC byte", "byte=22"]).await;
    logs.wait_for(&["RPC type byte 0x04 is not served"]).await;
    // The server still serves.
    client(&TlsPolicy::default()).ping(server.addr).await.unwrap();
}

/// `limits.rpc_max_conns_per_client`: a client IP with the maximum open
/// gets its next connection closed unanswered, with Consul's log line; the
/// connections it has keep working, and a new limit applies at once.
#[tokio::test]
async fn connections_per_client_ip_are_limited() {
    let (logs, _guard) = Logs::capture();
    let limiter = ConnLimiter::new(2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = start_limited_server_on(listener, &TlsPolicy::default(), limiter.clone());
    let pooled = client(&TlsPolicy::default());
    // Two connections: the client's pooled one and one held idle.
    pooled.ping(server.addr).await.unwrap();
    let _held = TcpStream::connect(server.addr).await.unwrap();
    wait_until(|| limiter.open(server.addr.ip()) == 2).await;

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let _ = third.write_all(&[0x00]).await;
    assert!(drain(&mut third).await.is_empty(), "the third connection got an answer");
    let line =
        logs.wait_for(&["rejecting RPC conn from because rpc_max_conns_per_client exceeded"]).await;
    assert!(line.contains("ERROR") && line.contains("conn=from=127.0.0.1:"), "{line}");
    assert!(line.contains("limit=2"), "{line}");
    // The pooled connection still serves calls.
    pooled.ping(server.addr).await.unwrap();
    assert_eq!(pooled.dials(), 1);

    // A higher limit takes effect for the next connection.
    limiter.set_max(3);
    let other = client(&TlsPolicy::default());
    other.ping(server.addr).await.unwrap();
    // Closed connections free their places.
    drop(other);
    wait_until(|| limiter.open(server.addr.ip()) == 2).await;
}

// --- acceptance 2: the policy in force -------------------------------------------------------

#[tokio::test]
async fn verify_incoming_refuses_plaintext_and_logs_why() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let pair = pki.issue("server", CertKind::Server, "dc1");
    let server = start_server(&policy(Some(&pki.ca_file), Some(&pair), true, false, false)).await;

    let err = client(&TlsPolicy::default()).ping(server.addr).await.unwrap_err();
    assert!(matches!(err, RpcError::PlaintextRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("it may require TLS (verify_incoming)"), "{err}");
    let line = logs.wait_for(&["Non-TLS connection attempted with VerifyIncoming set"]).await;
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("conn=from=127.0.0.1:"), "{line}");

    // Whatever the plaintext byte, nothing is written back.
    for byte in [0x00u8, 0x01, 0x04, 0x05] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&[byte, 0x80]).await.unwrap();
        assert!(drain(&mut stream).await.is_empty(), "byte {byte:#x}");
    }
    let count = logs.text().matches("Non-TLS connection attempted with VerifyIncoming set").count();
    assert_eq!(count, 5, "{}", logs.text());

    // The server's own accept path reports the same refusal.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut peer = TcpStream::connect(addr).await.unwrap();
    let (stream, from) = listener.accept().await.unwrap();
    peer.write_all(&[0x00]).await.unwrap();
    let cluster = consul_sec_agent::cluster::LocalCluster::new(
        member("s", addr, true),
        "dc1",
        server.store.clone(),
    );
    let rpc_server = consul_sec_agent::rpc::RpcServer::new(server.tls.clone(), cluster);
    let err = rpc_server.handle_connection(stream, from).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Refused { refusal: Refusal::NonTlsWithVerifyIncoming, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{from}: Non-TLS connection attempted with VerifyIncoming set")
    );
}

#[tokio::test]
async fn verify_incoming_refuses_tls_without_a_client_certificate() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let pair = pki.issue("server", CertKind::Server, "dc1");
    let server = start_server(&policy(Some(&pki.ca_file), Some(&pair), true, false, false)).await;
    // A client that verifies the server but has no certificate of its own.
    let err = client(&policy(Some(&pki.ca_file), None, false, true, true))
        .ping(server.addr)
        .await
        .unwrap_err();
    let text = tls_error_text(&err);
    assert!(text.contains("CertificateRequired") || text.contains("certificate"), "{text}");
    let line = logs.wait_for(&["ERROR", "failed to read byte", "from=127.0.0.1:"]).await;
    assert!(line.contains("no certificate") || line.contains("NoCertificatesPresented"), "{line}");
}

#[tokio::test]
async fn verify_incoming_refuses_a_client_certificate_from_another_ca() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let other = Pki::new();
    let server_pair = pki.issue("server", CertKind::Server, "dc1");
    let stranger = other.issue("client", CertKind::Client, "dc1");
    let server =
        start_server(&policy(Some(&pki.ca_file), Some(&server_pair), true, false, false)).await;
    // The stranger trusts the right CA for the server but presents a certificate the server does not.
    let mut client_policy = policy(Some(&pki.ca_file), Some(&stranger), false, true, true);
    client_policy.ca_file = Some(pki.ca_file.clone());
    let err = client(&client_policy).ping(server.addr).await.unwrap_err();
    tls_error_text(&err);
    let line = logs.wait_for(&["failed to read byte", "from=127.0.0.1:"]).await;
    assert!(line.to_lowercase().contains("issuer"), "{line}");
}

#[tokio::test]
async fn verify_outgoing_refuses_a_server_from_another_ca() {
    let pki = Pki::new();
    let other = Pki::new();
    let rogue = other.issue("server", CertKind::Server, "dc1");
    let server =
        start_server(&policy(Some(&other.ca_file), Some(&rogue), false, false, false)).await;
    // verify_outgoing alone: chain checked, name not.
    let err = client(&policy(Some(&pki.ca_file), None, false, true, false))
        .ping(server.addr)
        .await
        .unwrap_err();
    let text = tls_error_text(&err);
    assert!(text.to_lowercase().contains("issuer"), "{text}");
    // Without verify_outgoing the same server is dialled in plaintext and answers.
    client(&TlsPolicy::default()).ping(server.addr).await.unwrap();
}

#[tokio::test]
async fn verify_server_hostname_refuses_a_server_of_another_datacenter() {
    let pki = Pki::new();
    let dc2 = pki.issue("server-dc2", CertKind::Server, "dc2");
    let server = start_server(&policy(Some(&pki.ca_file), Some(&dc2), false, false, false)).await;
    // verify_outgoing without the hostname check accepts any certificate of the CA...
    client(&policy(Some(&pki.ca_file), None, false, true, false)).ping(server.addr).await.unwrap();
    // ...verify_server_hostname wants server.dc1.consul.
    let err = client(&policy(Some(&pki.ca_file), None, false, false, true))
        .ping(server.addr)
        .await
        .unwrap_err();
    let text = tls_error_text(&err);
    assert!(text.contains("server.dc1.consul"), "{text}");
    assert!(text.contains("server.dc2.consul"), "{text}");
}

#[tokio::test]
async fn a_client_certificate_cannot_pose_as_a_server() {
    let pki = Pki::new();
    let client_pair = pki.issue("client", CertKind::Client, "dc1");
    let impostor =
        start_server(&policy(Some(&pki.ca_file), Some(&client_pair), false, false, false)).await;
    let err = client(&policy(Some(&pki.ca_file), Some(&client_pair), false, true, true))
        .ping(impostor.addr)
        .await
        .unwrap_err();
    let text = tls_error_text(&err);
    assert!(text.contains("server.dc1.consul") && text.contains("client.dc1.consul"), "{text}");
}

#[tokio::test]
async fn nested_tls_is_refused() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let pair = pki.issue("server", CertKind::Server, "dc1");
    let server = start_server(&policy(Some(&pki.ca_file), Some(&pair), false, false, false)).await;
    let client_policy = policy(Some(&pki.ca_file), None, false, true, true).load().unwrap();
    let consul_sec_tls_policy::Outgoing::Tls { server_name, config } =
        client_policy.outgoing("dc1").unwrap()
    else {
        panic!("expected TLS")
    };
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&[0x03]).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await.unwrap();
    tls.write_all(&[0x03]).await.unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut got)).await.unwrap();
    assert!(got.is_empty());
    logs.wait_for(&["ERROR", "TLS connection attempting to establish inner TLS connection"]).await;
}

#[tokio::test]
async fn reload_to_verify_incoming_refuses_new_plaintext_but_keeps_open_connections() {
    let pki = Pki::new();
    let pair = pki.issue("server", CertKind::Server, "dc1");
    let open = policy(Some(&pki.ca_file), Some(&pair), false, false, false);
    let server = start_server(&open).await;
    let plain = client(&TlsPolicy::default());
    plain.ping(server.addr).await.unwrap();

    server.tls.reload(&policy(Some(&pki.ca_file), Some(&pair), true, false, false)).unwrap();
    // The pooled connection was accepted before the reload and keeps working (Consul: existing
    // connections are untouched)...
    plain.ping(server.addr).await.unwrap();
    // ...but a new plaintext connection is refused.
    let fresh = client(&TlsPolicy::default());
    fresh.ping(server.addr).await.unwrap_err();
}

#[tokio::test]
async fn client_reload_to_verify_outgoing_moves_new_calls_to_tls() {
    // Migration step 2 on a client: after the reload, idle plaintext connections are not
    // reused; the next call dials 0x03 + TLS, which a verify_incoming server then accepts.
    let pki = Pki::new();
    let server_pair = pki.issue("server", CertKind::Server, "dc1");
    let client_pair = pki.issue("client", CertKind::Client, "dc1");
    let server_policy = policy(Some(&pki.ca_file), Some(&server_pair), false, false, false);
    let server = start_server(&server_policy).await;
    let tls = Arc::new(consul_sec_tls_policy::TlsConfigurator::new(&TlsPolicy::default()).unwrap());
    let rpc = consul_sec_agent::rpc::RpcClient::new(tls.clone(), Default::default());
    rpc.ping(server.addr).await.unwrap();
    assert_eq!(rpc.dials(), 1);

    tls.reload(&policy(Some(&pki.ca_file), Some(&client_pair), false, true, true)).unwrap();
    server.tls.reload(&policy(Some(&pki.ca_file), Some(&server_pair), true, true, true)).unwrap();
    rpc.ping(server.addr).await.unwrap();
    assert_eq!(rpc.dials(), 2, "the plaintext connection must not be reused after the reload");
    rpc.ping(server.addr).await.unwrap();
    assert_eq!(rpc.dials(), 2);
}

// --- a Go client through hashicorp/net-rpc-msgpackrpc ----------------------------------------

const GO_CODEC: &str = "/usr/share/gocode/src/github.com/hashicorp/net-rpc-msgpackrpc";

/// Builds tests/go/rpcping (GOPATH mode, Debian's packaged Go sources) into `dir`.
fn build_go_client(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("CONSUL_SEC_RPCPING") {
        return Some(path.into());
    }
    let go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    if !require(go, "`go` on PATH") {
        return None;
    }
    if !require(
        std::path::Path::new(GO_CODEC).is_dir(),
        "golang-github-hashicorp-net-rpc-msgpackrpc-dev (Go sources)",
    ) {
        return None;
    }
    let out = dir.join("rpcping");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/rpcping/main.go");
    let cache = dir.join("gocache");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .env_remove("GOFLAGS")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_client_pings_over_tls_with_hashicorp_msgpack_codec() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(tool) = build_go_client(tmp.path()) else { return };
    let pki = Pki::new();
    let server_pair = pki.issue("server", CertKind::Server, "dc1");
    let client_pair = pki.issue("client", CertKind::Client, "dc1");
    let server =
        start_server(&policy(Some(&pki.ca_file), Some(&server_pair), true, true, true)).await;

    let run = |args: Vec<String>| {
        let tool = tool.clone();
        tokio::task::spawn_blocking(move || Command::new(tool).args(args).output().unwrap())
    };
    let base = vec![
        "-addr".to_owned(),
        server.addr.to_string(),
        "-ca".to_owned(),
        pki.ca_file.display().to_string(),
        "-server-name".to_owned(),
        "server.dc1.consul".to_owned(),
    ];
    let mut with_cert = base.clone();
    with_cert.extend([
        "-cert".to_owned(),
        client_pair.cert.display().to_string(),
        "-key".to_owned(),
        client_pair.key.display().to_string(),
    ]);
    let out = run(with_cert).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK handshake"), "{stdout}");
    assert!(stdout.contains("OK Status.Ping x3"), "{stdout}");
    assert!(
        stdout.contains(r#"OK Nope.Method error="rpc: can't find service Nope.Method""#),
        "{stdout}"
    );
    assert!(stdout.contains("OK Status.Ping after error"), "{stdout}");

    // verify_incoming: Go without a client certificate, and Go in plaintext, are refused.
    let out = run(base.clone()).await.unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let mut plain = base;
    plain.push("-plain".to_owned());
    let out = run(plain).await.unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL Status.Ping"));
}

#[tokio::test]
async fn a_server_that_never_answers_the_tls_handshake_times_out_naming_it() {
    let pki = Pki::new();
    // Accepts, reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let tls = Arc::new(
        consul_sec_tls_policy::TlsConfigurator::new(&policy(
            Some(&pki.ca_file),
            None,
            false,
            true,
            false,
        ))
        .unwrap(),
    );
    let config = consul_sec_agent::rpc::PoolConfig {
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let client = consul_sec_agent::rpc::RpcClient::new(tls, config);
    let started = std::time::Instant::now();
    let err = client.ping(addr).await.unwrap_err();
    assert!(matches!(&err, RpcError::Timeout { what, .. } if what == "TLS handshake"), "{err:?}");
    assert_eq!(err.to_string(), format!("{addr}: timed out during TLS handshake"));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}
