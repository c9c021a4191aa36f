//! The agent library's public API: the HTTP API over an in-memory cluster
//! (request and response JSON, 400/404/405/500), the same over a socket
//! with the API client, and HTTPS with client certificates.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::wait_until;
use consul_sec_agent::api::{ApiState, respond, serve};
use consul_sec_agent::client::{ApiClient, ClientOptions, KeyringAction};
use consul_sec_agent::cluster::LocalCluster;
use consul_sec_agent::connlimit::{ConnLimiter, DEFAULT_HTTP_MAX_CONNS_PER_CLIENT};
use consul_sec_agent::keyring::KeyringStore;
use consul_sec_agent::model::{AgentMember, SelfConfig};
use consul_sec_gossip_crypto::{Keyring, SecretKey, load_keyring_file};
use http_body_util::BodyExt as _;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const K2: &str = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";
const K3: &str = "VKFvzVuXY3tqHj8nBxj33usQxpU6XjLX4OHwXuPNFME=";

fn member() -> AgentMember {
    let tags = [("role".to_owned(), "node".to_owned()), ("dc".to_owned(), "dc1".to_owned())];
    // Serf delegate protocol 4, as a Consul agent advertises it.
    let member = AgentMember::alive("node1", "127.0.0.1:8301".parse().unwrap(), tags.into());
    AgentMember { delegate_cur: 4, ..member }
}

fn self_config() -> SelfConfig {
    SelfConfig {
        datacenter: "dc1".into(),
        primary_datacenter: "dc1".into(),
        node_name: "node1".into(),
        node_id: String::new(),
        server: false,
        version: "0.1.0".into(),
        revision: String::new(),
    }
}

/// An API over a one-node cluster whose keyring (holding `keys`) is kept in
/// `dir/serf/local.keyring`.
fn state(dir: &std::path::Path, keys: &[&str]) -> ApiState<LocalCluster> {
    let keys: Vec<SecretKey> = keys.iter().map(|k| SecretKey::from_base64(k).unwrap()).collect();
    let file = dir.join("local.keyring");
    let store = KeyringStore::new(Keyring::from_keys(keys).unwrap(), Some(file));
    ApiState::new(LocalCluster::new(member(), "dc1", Arc::new(store)), self_config())
}

struct Answer {
    status: StatusCode,
    allow: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn call(state: &ApiState<LocalCluster>, method: &str, uri: &str, body: &str) -> Answer {
    let request =
        Request::builder().method(method).uri(uri).body(Bytes::from(body.to_owned())).unwrap();
    let response = respond(state, request).await;
    let status = response.status();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec())
        .unwrap();
    Answer { status, allow, body }
}

fn file_keys(dir: &std::path::Path) -> Vec<String> {
    load_keyring_file(dir.join("local.keyring"))
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.to_base64().to_string())
        .collect()
}

#[tokio::test]
async fn members_and_self_have_consuls_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &[K1]);
    let answer = call(&state, "GET", "/v1/agent/members", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!([{"Name": "node1", "Addr": "127.0.0.1", "Port": 8301,
            "Tags": {"dc": "dc1", "role": "node"}, "Status": 1,
            "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}])
    );
    let answer = call(&state, "GET", "/v1/agent/self", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let value = answer.json();
    assert_eq!(value["Config"]["NodeName"], "node1");
    assert_eq!(value["Config"]["Datacenter"], "dc1");
    assert_eq!(value["Config"]["Server"], false);
    assert_eq!(value["Member"]["Name"], "node1");
}

#[tokio::test]
async fn keyring_list_install_use_remove_round_trip_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &[K1]);
    let answer = call(&state, "GET", "/v1/operator/keyring", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!([{"WAN": false, "Datacenter": "dc1", "Segment": "", "Messages": {},
            "Keys": {K1: 1}, "PrimaryKeys": {K1: 1}, "NumNodes": 1}])
    );

    let body = format!(r#"{{"Key": "{K2}"}}"#);
    let answer = call(&state, "POST", "/v1/operator/keyring", &body).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(
        file_keys(dir.path()),
        [K1, K2],
        "installed key must be in the file when POST returns"
    );
    let answer =
        call(&state, "GET", "/v1/operator/keyring?relay-factor=2&local-only=true", "").await;
    assert_eq!(answer.json()[0]["Keys"], json!({K1: 1, K2: 1}));
    assert_eq!(answer.json()[0]["PrimaryKeys"], json!({K1: 1}));

    // Go's encoding/json matches field names in any case, as Consul does.
    let lower = format!(r#"{{"key": "{K2}"}}"#);
    let answer = call(&state, "PUT", "/v1/operator/keyring", &lower).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(file_keys(dir.path()), [K2, K1]);

    let answer =
        call(&state, "DELETE", "/v1/operator/keyring", &format!(r#"{{"Key": "{K1}"}}"#)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(file_keys(dir.path()), [K2]);
}

#[tokio::test]
async fn node_failures_are_500_with_one_line_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &[K1]);
    let answer =
        call(&state, "DELETE", "/v1/operator/keyring", &format!(r#"{{"Key": "{K1}"}}"#)).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.body,
        "2 errors occurred:\n\t* dc1 (LAN) error: 1/1 nodes reported failure\n\
         \t* node1: keyring: removing the primary key is not allowed\n"
    );
    let answer =
        call(&state, "PUT", "/v1/operator/keyring", &format!(r#"{{"Key": "{K2}"}}"#)).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        answer.body.contains("node1: keyring: requested key is not in the keyring"),
        "{}",
        answer.body
    );

    // A node without encryption answers a list with serf's message.
    let empty = ApiState::new(
        LocalCluster::new(member(), "dc1", Arc::new(KeyringStore::new(Keyring::empty(), None))),
        self_config(),
    );
    let answer = call(&empty, "GET", "/v1/operator/keyring", "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        answer.body.contains("node1: Keyring is empty (encryption not enabled)"),
        "{}",
        answer.body
    );
    let answer =
        call(&empty, "POST", "/v1/operator/keyring", &format!(r#"{{"Key": "{K2}"}}"#)).await;
    assert!(
        answer.body.contains("node1: No keyring to modify (encryption not enabled)"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn bad_requests_are_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &[K1]);
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "POST",
            "/v1/operator/keyring",
            "{not json",
            "Request decode failed: key must be a string",
        ),
        ("POST", "/v1/operator/keyring", "", "Request decode failed: EOF while parsing"),
        (
            "POST",
            "/v1/operator/keyring",
            "{}",
            "Request decode failed: key: decodes to 0 bytes; key size must be 16, 24 or 32 bytes",
        ),
        (
            "POST",
            "/v1/operator/keyring",
            &format!(r#""{K2}""#),
            "Request decode failed: invalid type: a string, expected",
        ),
        (
            "PUT",
            "/v1/operator/keyring",
            r#"{"Key": 5}"#,
            "Request decode failed: invalid type: integer `5`",
        ),
        (
            "POST",
            "/v1/operator/keyring",
            r#"{"Key": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#,
            "Request decode failed: key: decodes to 20 bytes; key size must be 16, 24 or 32 bytes",
        ),
        (
            "DELETE",
            "/v1/operator/keyring",
            r#"{"Key": "not a key!"}"#,
            "Request decode failed: key: invalid base64 character at byte 3",
        ),
        ("GET", "/v1/operator/keyring?relay-factor=x", "", "Error parsing relay factor: \"x\""),
        (
            "GET",
            "/v1/operator/keyring?relay-factor=6",
            "",
            "Invalid relay-factor: Relay factor must be in range: [0, 5]",
        ),
        (
            "GET",
            "/v1/operator/keyring?relay-factor=-1",
            "",
            "Invalid relay-factor: Relay factor must be in range: [0, 5]",
        ),
        ("GET", "/v1/operator/keyring?local-only=maybe", "", "Error parsing local-only: "),
        (
            "POST",
            "/v1/operator/keyring?local-only=true",
            &format!(r#"{{"Key": "{K2}"}}"#),
            "Invalid use of local-only: local-only can only be set for list requests",
        ),
    ];
    for (method, uri, body, expected) in cases {
        let answer = call(&state, method, uri, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {uri} {body}: {}",
            answer.body
        );
        assert!(answer.body.starts_with(expected), "{method} {uri} {body}: got {:?}", answer.body);
    }
    assert_eq!(file_keys_or_none(dir.path()), None, "no bad request may touch the keyring file");
}

fn file_keys_or_none(dir: &std::path::Path) -> Option<Vec<String>> {
    dir.join("local.keyring").exists().then(|| file_keys(dir))
}

#[tokio::test]
async fn other_methods_get_405_with_allow_and_unknown_paths_404() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &[K1]);
    let answer = call(&state, "PATCH", "/v1/operator/keyring", "").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.allow.as_deref(), Some("GET,POST,PUT,DELETE"));
    assert_eq!(answer.body, "method PATCH not allowed\n");
    for path in ["/v1/agent/members", "/v1/agent/self"] {
        let answer = call(&state, "PUT", path, "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(answer.allow.as_deref(), Some("GET"), "{path}");
    }
    let answer = call(&state, "GET", "/v1/kv/x", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// Starts the API on a free port; returns its address and the stop switch.
async fn start(
    state: ApiState<LocalCluster>,
    tls: Option<Arc<consul_sec_tls_policy::TlsConfigurator>>,
) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
    start_limited(state, tls, ConnLimiter::new(DEFAULT_HTTP_MAX_CONNS_PER_CLIENT)).await
}

/// [`start`] with connections per client IP counted by `limiter`.
async fn start_limited(
    state: ApiState<LocalCluster>,
    tls: Option<Arc<consul_sec_tls_policy::TlsConfigurator>>,
    limiter: Arc<ConnLimiter>,
) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(serve(listener, tls, Arc::new(state), limiter, stopped));
    (addr, stop)
}

/// Consul's go-connlimit answer to one connection too many.
const TOO_MANY: &str = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 81\r\nConnection: close\r\n\r\nYour IP is issuing too many concurrent connections, please rate limit your calls\n";

/// `limits.http_max_conns_per_client`: one connection over the limit gets
/// Consul's exact 429 and is closed; the CLI client reports it; a raised
/// limit applies to the next connection; closed connections free places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_ip_are_limited_with_a_429() {
    use tokio::io::AsyncReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let limiter = ConnLimiter::new(1);
    let (addr, stop) = start_limited(state(dir.path(), &[K1]), None, limiter.clone()).await;
    let held = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ip = addr.ip();
    wait_until(|| limiter.open(ip) == 1).await;

    let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut got))
        .await
        .expect("the refused connection is closed")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), TOO_MANY);

    let options = ClientOptions { http_addr: Some(format!("http://{addr}")), ..Default::default() };
    let members = |options: ClientOptions| async move {
        tokio::task::spawn_blocking(move || ApiClient::new(&options).unwrap().members())
            .await
            .unwrap()
    };
    let err = members(options.clone()).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "Unexpected response code: 429 (Your IP is issuing too many concurrent connections, please rate limit your calls)"
    );
    assert_eq!(limiter.open(ip), 1, "refused connections are not counted");

    limiter.set_max(2);
    assert_eq!(members(options.clone()).await.unwrap(), vec![member()]);
    limiter.set_max(1);
    drop(held);
    wait_until(|| limiter.open(ip) == 0).await;
    assert_eq!(members(options).await.unwrap(), vec![member()]);
    stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_over_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop) = start(state(dir.path(), &[K1]), None).await;
    let options = ClientOptions { http_addr: Some(format!("http://{addr}")), ..Default::default() };
    let result = tokio::task::spawn_blocking(move || {
        let client = ApiClient::new(&options).unwrap();
        let members = client.members().unwrap();
        client.keyring(&KeyringAction::Install(K2.to_owned()), 0).unwrap();
        let list = client.keyring(&KeyringAction::List { local_only: false }, 0).unwrap();
        let refused = client.keyring(&KeyringAction::Remove(K1.to_owned()), 0).unwrap_err();
        let oversized =
            client.keyring(&KeyringAction::Install("A".repeat(100_000)), 0).unwrap_err();
        (members, list, refused.to_string(), oversized.to_string())
    })
    .await
    .unwrap();
    assert_eq!(result.0, vec![member()]);
    assert_eq!(result.1.len(), 1);
    assert_eq!(result.1[0].keys.get(K2), Some(&1));
    assert!(
        result.2.starts_with("Unexpected response code: 500 (2 errors occurred:")
            && result.2.contains("node1: keyring: removing the primary key is not allowed"),
        "{}",
        result.2
    );
    assert!(result.3.starts_with("Unexpected response code: 413"), "{}", result.3);
    assert_eq!(file_keys(dir.path()), [K1, K2]);
    stop.send(true).unwrap();
}

/// CA, server and client certificates in `dir` (PEM files).
fn write_certs(dir: &std::path::Path) -> (std::path::PathBuf, [std::path::PathBuf; 4]) {
    use consul_sec_pki::{Ca, CaRequest, CertKind, CertRequest, create_ca, issue_cert};
    let ca_files = create_ca(&CaRequest::default()).unwrap();
    let ca = Ca::from_pem(&ca_files.cert_pem, ca_files.key_pem.as_str()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &ca_files.cert_pem).unwrap();
    let mut paths = Vec::new();
    for (kind, name) in [(CertKind::Server, "server"), (CertKind::Client, "client")] {
        let issued = issue_cert(&ca, &CertRequest::new(kind)).unwrap();
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem.as_str()).unwrap();
        paths.extend([cert, key]);
    }
    let [a, b, c, d]: [std::path::PathBuf; 4] = paths.try_into().unwrap();
    (ca_path, [a, b, c, d])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_verify_incoming_demands_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, [server_cert, server_key, client_cert, client_key]) = write_certs(dir.path());
    let policy = consul_sec_tls_policy::TlsPolicy {
        ca_file: Some(ca.clone()),
        cert_file: Some(server_cert),
        key_file: Some(server_key),
        verify_incoming: true,
        ..Default::default()
    };
    let tls = Arc::new(consul_sec_tls_policy::TlsConfigurator::new(&policy).unwrap());
    let (addr, stop) = start(state(dir.path(), &[K1]), Some(tls)).await;
    let with_cert = ClientOptions {
        http_addr: Some(format!("https://localhost:{}", addr.port())),
        ca_file: Some(ca.clone()),
        client_cert: Some(client_cert),
        client_key: Some(client_key),
        ..Default::default()
    };
    let without_cert = ClientOptions { client_cert: None, client_key: None, ..with_cert.clone() };
    let plain = ClientOptions { http_addr: Some(format!("http://{addr}")), ..Default::default() };
    let (ok, refused, plaintext) = tokio::task::spawn_blocking(move || {
        let ok = ApiClient::new(&with_cert).unwrap().members();
        let refused = ApiClient::new(&without_cert).unwrap().members();
        let plaintext = ApiClient::new(&plain).unwrap().members();
        (ok, refused, plaintext)
    })
    .await
    .unwrap();
    assert_eq!(ok.unwrap(), vec![member()]);
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains("localhost:"), "{refused}");
    // Plain HTTP to the HTTPS port gets Go's (Consul's) 400, not a reset.
    let plaintext = plaintext.unwrap_err().to_string();
    assert_eq!(
        plaintext,
        "Unexpected response code: 400 (Client sent an HTTP request to an HTTPS server.)"
    );
    stop.send(true).unwrap();
}

/// A CA in `dir/ca.pem` and a way to issue `<name>.pem`/`<name>-key.pem`
/// from it with a chosen profile, datacenter and validity.
struct TestPki {
    dir: std::path::PathBuf,
    ca: consul_sec_pki::Ca,
    ca_file: std::path::PathBuf,
}

impl TestPki {
    fn new(dir: &std::path::Path) -> TestPki {
        use consul_sec_pki::{Ca, CaRequest, create_ca};
        let issued = create_ca(&CaRequest::default()).unwrap();
        let ca = Ca::from_pem(&issued.cert_pem, issued.key_pem.as_str()).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &issued.cert_pem).unwrap();
        TestPki { dir: dir.to_owned(), ca, ca_file }
    }

    fn issue(
        &self,
        name: &str,
        kind: consul_sec_pki::CertKind,
        dc: &str,
        days: u32,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let request = consul_sec_pki::CertRequest {
            dc: dc.to_owned(),
            days,
            ..consul_sec_pki::CertRequest::new(kind)
        };
        let issued = consul_sec_pki::issue_cert(&self.ca, &request).unwrap();
        let cert = self.dir.join(format!("{name}.pem"));
        let key = self.dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem.as_str()).unwrap();
        (cert, key)
    }

    fn policy(
        &self,
        (cert, key): &(std::path::PathBuf, std::path::PathBuf),
    ) -> consul_sec_tls_policy::TlsPolicy {
        consul_sec_tls_policy::TlsPolicy {
            ca_file: Some(self.ca_file.clone()),
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            ..Default::default()
        }
    }
}

/// `NotAfter` of a certificate file as the tls-policy inspection reads it.
fn not_after(cert: &std::path::Path) -> String {
    let options = consul_sec_tls_policy::InspectOptions::new(consul_sec_tls_policy::Role::Client);
    consul_sec_tls_policy::inspect_certificate_file(cert, None, &options)
        .unwrap()
        .not_after_rfc3339()
}

#[tokio::test]
async fn self_reports_gossip_and_tls_live_and_never_key_material() {
    use consul_sec_pki::CertKind;
    use consul_sec_tls_policy::TlsConfigurator;
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let short = pki.issue("short", CertKind::Server, "dc1", 10);
    let long = pki.issue("long", CertKind::Server, "dc1", 365);
    let rpc_policy = consul_sec_tls_policy::TlsPolicy {
        verify_incoming: true,
        verify_server_hostname: true,
        ..pki.policy(&short)
    };
    let rpc = Arc::new(TlsConfigurator::new(&rpc_policy).unwrap());
    let https = Arc::new(TlsConfigurator::new(&pki.policy(&long)).unwrap());
    let mut state = state(dir.path(), &[K1, K2]);
    state.config.server = true;
    state.encryption.keyring = Some(Arc::clone(state.cluster.store()));
    state.encryption.encrypt_verify_incoming = false;
    state.encryption.encrypt_verify_outgoing = true;
    state.encryption.internal_rpc = Some(Arc::clone(&rpc));
    state.encryption.https = Some(Arc::clone(&https));

    let answer = call(&state, "GET", "/v1/agent/self", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let value = answer.json();
    assert_eq!(value["Stats"]["serf_lan"]["encrypted"], "true");
    assert_eq!(
        value["Encryption"]["Gossip"],
        json!({"Enabled": true, "VerifyIncoming": false, "VerifyOutgoing": true, "NumKeys": 2})
    );
    let internal = &value["Encryption"]["TLS"]["InternalRPC"];
    assert_eq!(internal["Configured"], true);
    assert_eq!(internal["VerifyIncoming"], true);
    assert_eq!(internal["VerifyOutgoing"], true, "implied by verify_server_hostname");
    assert_eq!(internal["VerifyServerHostname"], true);
    assert_eq!(internal["TLSMinVersion"], "TLSv1_2");
    assert_eq!(internal["CACertificates"], 1);
    let cert = &internal["Certificate"];
    assert_eq!(cert["Subject"], "CN=server.dc1.consul");
    assert_eq!(cert["DNSNames"], json!(["server.dc1.consul", "localhost"]));
    assert_eq!(cert["IPAddresses"], json!(["127.0.0.1"]));
    assert_eq!(cert["Role"], "server");
    assert_eq!(cert["NotAfter"], not_after(&short.0));
    // 10 days minus the time gone since issuing (none within the same second).
    let days = cert["DaysLeft"].as_i64().unwrap();
    assert!(matches!(days, 9 | 10), "{days}");
    assert_eq!(
        cert["Problems"],
        // DaysLeft counts whole days left; "within 10 days" holds either way.
        json!([{"Kind": "ExpiresSoon", "Message": "expires within 10 days"}])
    );
    let https_status = &value["Encryption"]["TLS"]["HTTPS"];
    assert_eq!(https_status["VerifyIncoming"], false);
    assert_eq!(https_status["VerifyServerHostname"], false);
    assert_eq!(https_status["Certificate"]["NotAfter"], not_after(&long.0));
    assert!(matches!(https_status["Certificate"]["DaysLeft"].as_i64(), Some(364 | 365)));
    assert_eq!(https_status["Certificate"]["Problems"], json!([]));

    // No key material: neither gossip key, nor the private keys or their files.
    let body = answer.body;
    for secret in [K1.to_owned(), K1[..20].to_owned(), K2.to_owned()] {
        assert!(!body.contains(&secret), "gossip key in /v1/agent/self: {body}");
    }
    for key_file in [&short.1, &long.1] {
        let pem = std::fs::read_to_string(key_file).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!body.contains(line), "private key in /v1/agent/self");
        }
        assert!(!body.contains(&key_file.display().to_string()), "key path shown");
    }
    assert!(!body.contains("PRIVATE KEY"), "{body}");

    // Live: a reload of the RPC policy and a key change show on the next request.
    rpc.reload(&pki.policy(&long)).unwrap();
    let answer =
        call(&state, "POST", "/v1/operator/keyring", &format!(r#"{{"Key": "{K3}"}}"#)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let value = call(&state, "GET", "/v1/agent/self", "").await.json();
    assert_eq!(value["Encryption"]["Gossip"]["NumKeys"], 3);
    let internal = &value["Encryption"]["TLS"]["InternalRPC"];
    assert_eq!(internal["VerifyIncoming"], false);
    assert_eq!(internal["VerifyOutgoing"], false);
    assert_eq!(internal["VerifyServerHostname"], false);
    assert_eq!(internal["Certificate"]["NotAfter"], not_after(&long.0));
    assert_eq!(internal["Certificate"]["Problems"], json!([]));
    assert_ne!(not_after(&long.0), not_after(&short.0));
}

#[tokio::test]
async fn self_without_encryption_says_so_in_consuls_and_its_own_shape() {
    let dir = tempfile::tempdir().unwrap();
    let mut empty = ApiState::new(
        LocalCluster::new(member(), "dc1", Arc::new(KeyringStore::new(Keyring::empty(), None))),
        self_config(),
    );
    empty.encryption.keyring = Some(Arc::clone(empty.cluster.store()));
    // A plain TLS policy: nothing configured, dials in plaintext.
    empty.encryption.internal_rpc =
        Some(Arc::new(consul_sec_tls_policy::TlsConfigurator::new(&Default::default()).unwrap()));
    let value = call(&empty, "GET", "/v1/agent/self", "").await.json();
    assert_eq!(value["Stats"]["serf_lan"]["encrypted"], "false");
    assert_eq!(
        value["Encryption"],
        json!({
            "Gossip": {"Enabled": false, "VerifyIncoming": false, "VerifyOutgoing": false, "NumKeys": 0},
            "TLS": {
                "InternalRPC": {"Configured": false, "VerifyIncoming": false, "VerifyOutgoing": false,
                    "VerifyServerHostname": false, "TLSMinVersion": "TLSv1_2", "CACertificates": 0,
                    "Certificate": null},
                "HTTPS": null
            }
        })
    );

    // With a keyring, Consul's string flag turns "true".
    let mut keyed = state(dir.path(), &[K1]);
    keyed.encryption.keyring = Some(Arc::clone(keyed.cluster.store()));
    let value = call(&keyed, "GET", "/v1/agent/self", "").await.json();
    assert_eq!(value["Stats"]["serf_lan"]["encrypted"], "true");
    assert_eq!(value["Encryption"]["Gossip"]["NumKeys"], 1);
}

#[tokio::test]
async fn self_judges_the_certificate_for_the_agents_role() {
    use consul_sec_pki::CertKind;
    use consul_sec_tls_policy::TlsConfigurator;
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let client = pki.issue("client", CertKind::Client, "dc1", 365);
    let other_dc = pki.issue("dc2-server", CertKind::Server, "dc2", 365);
    let problems = |server: bool, cert: &(std::path::PathBuf, std::path::PathBuf)| {
        let mut state = state(dir.path(), &[K1]);
        state.config.server = server;
        state.encryption.internal_rpc =
            Some(Arc::new(TlsConfigurator::new(&pki.policy(cert)).unwrap()));
        async move {
            let value = call(&state, "GET", "/v1/agent/self", "").await.json();
            let cert = &value["Encryption"]["TLS"]["InternalRPC"]["Certificate"];
            (cert["Role"].clone(), cert["Problems"].clone())
        }
    };
    // A client certificate fits a client agent...
    assert_eq!(problems(false, &client).await, (json!("client"), json!([])));
    // ...but a server needs server.<its dc>.<domain>.
    let missing = json!([{"Kind": "MissingServerName",
        "Message": "DNS SANs lack server.dc1.consul (needed for verify_server_hostname)"}]);
    assert_eq!(problems(true, &client).await, (json!("server"), missing.clone()));
    assert_eq!(problems(true, &other_dc).await, (json!("server"), missing));
}

#[tokio::test]
async fn rpc_ping_route_decodes_its_query_and_checks_addr() {
    use consul_sec_agent::rpc::{PoolConfig, RpcClient, RpcServer};
    use consul_sec_tls_policy::{TlsConfigurator, TlsPolicy};

    let dir = tempfile::tempdir().unwrap();
    let tls = Arc::new(TlsConfigurator::new(&TlsPolicy::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Arc::new(RpcServer::new(tls.clone(), state(dir.path(), &[]).cluster));
    let _serving = tokio::spawn(server.serve(listener));

    let without = state(dir.path(), &[]);
    let uri = format!("/v1/internal/rpc/ping?addr=127.0.0.1:{port}");
    assert_eq!(call(&without, "GET", &uri, "").await.status, StatusCode::NOT_FOUND);

    let mut with = state(dir.path(), &[]);
    with.rpc = Some(RpcClient::new(tls, PoolConfig::default()));
    // Percent-encoded as any HTTP client would, and an empty dc (the agent's own).
    for query in [format!("addr=127.0.0.1%3A{port}"), format!("addr=127.0.0.1:{port}&dc=")] {
        let answer = call(&with, "GET", &format!("/v1/internal/rpc/ping?{query}"), "").await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["Addr"], format!("127.0.0.1:{port}"));
        assert_eq!(json["TLS"], false);
    }
    let answer = call(&with, "GET", "/v1/internal/rpc/ping?addr=notanip", "").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains(r#"Bad addr "notanip": want <ip:port>"#), "{}", answer.body);
    let answer = call(&with, "GET", "/v1/internal/rpc/ping", "").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.starts_with("Missing addr"), "{}", answer.body);
    let answer = call(&with, "POST", &uri, "").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.allow.as_deref(), Some("GET"));
    // Nothing listens on port 1: the RPC error, as a 500.
    let answer = call(&with, "GET", "/v1/internal/rpc/ping?addr=127.0.0.1%3A1", "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(answer.body.contains("127.0.0.1:1: cannot connect"), "{}", answer.body);
    assert!(!answer.body.contains("ports.server"), "{}", answer.body);
    // Something that is not an RPC port (an HTTP server answering junk): a hint.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut conn, _) = http.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let uri = format!("/v1/internal/rpc/ping?addr=127.0.0.1:{http_port}");
    let answer = call(&with, "GET", &uri, "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        answer.body.contains("(is this a Consul server's RPC port, ports.server?)"),
        "{}",
        answer.body
    );
}
