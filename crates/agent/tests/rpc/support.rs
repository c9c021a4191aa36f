//! Fixtures for the RPC tests: certificates from consul-sec-pki written to a
//! temp dir, TLS policies, a server on 127.0.0.1:0, and log capture.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consul_sec_agent::cluster::LocalCluster;
use consul_sec_agent::connlimit::{ConnLimiter, DEFAULT_RPC_MAX_CONNS_PER_CLIENT};
use consul_sec_agent::keyring::KeyringStore;
use consul_sec_agent::model::AgentMember;
use consul_sec_agent::rpc::{PoolConfig, RpcClient, RpcServer};
use consul_sec_gossip_crypto::{Keyring, SecretKey};
use consul_sec_pki::{Ca, CaRequest, CertKind, CertRequest, create_ca, issue_cert};
use consul_sec_tls_policy::{TlsConfigurator, TlsPolicy};
use tokio::net::TcpListener;
use tracing_subscriber::fmt::MakeWriter;

pub(crate) const KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
pub(crate) const KEY2: &str = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";

/// A CA made by the pki crate, with its certificate written to `<dir>/ca.pem`.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: Ca,
    pub(crate) ca_file: PathBuf,
}

/// A certificate and key pair on disk.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let issued = create_ca(&CaRequest::default()).unwrap();
        let ca = Ca::from_pem(&issued.cert_pem, issued.key_pem.as_str()).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &issued.cert_pem).unwrap();
        Pki { dir, ca, ca_file }
    }

    /// `consul tls cert create -<kind> -dc <dc>` written as `<name>.pem` / `<name>-key.pem`.
    pub(crate) fn issue(&self, name: &str, kind: CertKind, dc: &str) -> Pair {
        let mut request = CertRequest::new(kind);
        request.dc = dc.to_owned();
        let issued = issue_cert(&self.ca, &request).unwrap();
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem.as_str()).unwrap();
        Pair { cert, key }
    }
}

/// The internal_rpc TLS settings of one agent.
pub(crate) fn policy(
    ca: Option<&Path>,
    pair: Option<&Pair>,
    verify_incoming: bool,
    verify_outgoing: bool,
    verify_server_hostname: bool,
) -> TlsPolicy {
    TlsPolicy {
        ca_file: ca.map(Path::to_path_buf),
        cert_file: pair.map(|p| p.cert.clone()),
        key_file: pair.map(|p| p.key.clone()),
        verify_incoming,
        verify_outgoing,
        verify_server_hostname,
        ..TlsPolicy::default()
    }
}

/// A server agent's RPC port on 127.0.0.1, over a one-node cluster.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Arc<TlsConfigurator>,
    pub(crate) store: Arc<KeyringStore>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn member(name: &str, addr: SocketAddr, server: bool) -> AgentMember {
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("dc".to_owned(), "dc1".to_owned());
    tags.insert("role".to_owned(), if server { "consul" } else { "node" }.to_owned());
    if server {
        tags.insert("port".to_owned(), addr.port().to_string());
    }
    AgentMember::alive(name, SocketAddr::new(addr.ip(), 8301), tags)
}

pub(crate) async fn start_server(policy: &TlsPolicy) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_server_on(listener, policy)
}

pub(crate) fn start_server_on(listener: TcpListener, policy: &TlsPolicy) -> TestServer {
    start_limited_server_on(listener, policy, ConnLimiter::new(DEFAULT_RPC_MAX_CONNS_PER_CLIENT))
}

/// A server whose connections per client IP are counted by `limiter`.
pub(crate) fn start_limited_server_on(
    listener: TcpListener,
    policy: &TlsPolicy,
    limiter: Arc<ConnLimiter>,
) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let tls = Arc::new(TlsConfigurator::new(policy).unwrap());
    let key = SecretKey::from_base64(KEY).unwrap();
    let store = Arc::new(KeyringStore::new(Keyring::from_keys([key]).unwrap(), None));
    let cluster = LocalCluster::new(member("server1", addr, true), "dc1", store.clone());
    let server = Arc::new(RpcServer::new(tls.clone(), cluster).with_conn_limiter(limiter));
    let task = tokio::spawn(server.serve(listener));
    TestServer { addr, tls, store, task }
}

pub(crate) fn client(policy: &TlsPolicy) -> RpcClient {
    let tls = Arc::new(TlsConfigurator::new(policy).unwrap());
    let config = PoolConfig { call_timeout: Duration::from_secs(10), ..PoolConfig::default() };
    RpcClient::new(tls, config)
}

/// Log lines written while the guard lives (current-thread runtime only:
/// the subscriber is the thread's default).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits up to 5 s for a line containing every one of `parts`; returns it.
    pub(crate) async fn wait_for(&self, parts: &[&str]) -> String {
        for _ in 0..100 {
            if let Some(line) = self.text().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no log line with {parts:?}; logs:\n{}", self.text());
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// True when `name` runs; otherwise prints why the test is skipped, or
/// panics when CONSUL_SEC_INTEROP=1.
pub(crate) fn require(found: bool, what: &str) -> bool {
    if !found {
        if std::env::var("CONSUL_SEC_INTEROP").as_deref() == Ok("1") {
            panic!("{what} is required (CONSUL_SEC_INTEROP=1) but is not available");
        }
        eprintln!("skipping: {what} not available (set CONSUL_SEC_INTEROP=1 to make this fail)");
    }
    found
}
