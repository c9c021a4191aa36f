//! Issue 8 performance: `Status.Ping` round trips over Consul's RPC port
//! with a warm connection pool, plaintext (`0x00`) against mutual TLS
//! (`0x03`, `verify_incoming` + `verify_server_hostname`), and the cost of a
//! new connection (dial, optional TLS handshake, one ping) with pooling off.
//!
//! Run: `cargo bench -p consul-sec-agent --bench rpc -- --warm-up-time 1 --measurement-time 3`.

use std::path::Path;
use std::sync::Arc;

use consul_sec_agent::cluster::LocalCluster;
use consul_sec_agent::keyring::KeyringStore;
use consul_sec_agent::model::AgentMember;
use consul_sec_agent::rpc::{PoolConfig, RpcClient, RpcServer};
use consul_sec_gossip_crypto::{Keyring, SecretKey};
use consul_sec_pki::{Ca, CaRequest, CertKind, CertRequest, create_ca, issue_cert};
use consul_sec_tls_policy::{TlsConfigurator, TlsPolicy};
use criterion::{Criterion, criterion_group, criterion_main};

fn write_pair(
    dir: &Path,
    ca: &Ca,
    name: &str,
    kind: CertKind,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let issued = issue_cert(ca, &CertRequest::new(kind)).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.as_str()).unwrap();
    (cert, key)
}

fn member() -> AgentMember {
    AgentMember::alive("bench", "127.0.0.1:8301".parse().unwrap(), Default::default())
}

fn bench_rpc(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_issued = create_ca(&CaRequest::default()).unwrap();
    let ca = Ca::from_pem(&ca_issued.cert_pem, ca_issued.key_pem.as_str()).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_issued.cert_pem).unwrap();
    let (server_cert, server_key) = write_pair(dir.path(), &ca, "server", CertKind::Server);
    let (client_cert, client_key) = write_pair(dir.path(), &ca, "client", CertKind::Client);

    // verify_incoming is off so one server takes both plaintext and TLS.
    let server_policy = TlsPolicy {
        ca_file: Some(ca_file.clone()),
        cert_file: Some(server_cert),
        key_file: Some(server_key),
        ..TlsPolicy::default()
    };
    let mtls_server_policy = TlsPolicy { verify_incoming: true, ..server_policy.clone() };
    let tls_client_policy = TlsPolicy {
        ca_file: Some(ca_file),
        cert_file: Some(client_cert),
        key_file: Some(client_key),
        verify_outgoing: true,
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };

    let start = |policy: &TlsPolicy| {
        let tls = Arc::new(TlsConfigurator::new(policy).unwrap());
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let key =
                SecretKey::from_base64("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=").unwrap();
            let store = Arc::new(KeyringStore::new(Keyring::from_keys([key]).unwrap(), None));
            let server = Arc::new(RpcServer::new(tls, LocalCluster::new(member(), "dc1", store)));
            tokio::spawn(server.serve(listener));
            addr
        })
    };
    let plain_addr = start(&server_policy);
    let mtls_addr = start(&mtls_server_policy);

    let client = |policy: &TlsPolicy, max_idle: usize| {
        let tls = Arc::new(TlsConfigurator::new(policy).unwrap());
        RpcClient::new(tls, PoolConfig { max_idle_per_server: max_idle, ..PoolConfig::default() })
    };
    let plain = client(&TlsPolicy::default(), 4);
    let tls = client(&tls_client_policy, 4);
    let plain_cold = client(&TlsPolicy::default(), 0);
    let tls_cold = client(&tls_client_policy, 0);

    let mut group = c.benchmark_group("rpc_status_ping_warm_pool");
    group.bench_function("plaintext", |b| b.iter(|| rt.block_on(plain.ping(plain_addr)).unwrap()));
    group.bench_function("mtls", |b| b.iter(|| rt.block_on(tls.ping(mtls_addr)).unwrap()));
    group.finish();

    let mut group = c.benchmark_group("rpc_new_connection_and_ping");
    group.bench_function("plaintext", |b| {
        b.iter(|| rt.block_on(plain_cold.ping(plain_addr)).unwrap())
    });
    group.bench_function("mtls", |b| b.iter(|| rt.block_on(tls_cold.ping(mtls_addr)).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_rpc);
criterion_main!(benches);
