//! The HTTP API, shaped like Consul's for what consul-sec implements:
//! `GET /v1/agent/self`, `GET /v1/agent/members` and
//! `GET|POST|PUT|DELETE /v1/operator/keyring`, plus one diagnostic of
//! consul-sec's own, `GET /v1/internal/rpc/ping?addr=<ip:port>`, which
//! pings a server over RPC from this agent under its TLS policy.
//!
//! `GET /v1/agent/self` answers `Config` (datacenter, node name, server,
//! version), `Member` (the agent's own member entry), Consul's
//! `Stats.serf_lan.encrypted` (`"true"`/`"false"`), and consul-sec's own
//! `Encryption` section ([`EncryptionStatus`]), all read anew on every
//! request so a SIGHUP reload shows at once:
//!
//! * `Gossip`: `Enabled` (the keyring is not empty), `VerifyIncoming` and
//!   `VerifyOutgoing` (`encrypt_verify_*`), `NumKeys`;
//! * `TLS.InternalRPC` and `TLS.HTTPS` (`null` without that listener):
//!   `Configured`, `VerifyIncoming`, `VerifyOutgoing` (effective, so true
//!   under `verify_server_hostname` alone), `VerifyServerHostname`,
//!   `TLSMinVersion`, `CACertificates` (a count) and `Certificate`:
//!   `Subject`, `Issuer`, `DNSNames`, `IPAddresses`, `NotBefore` and
//!   `NotAfter` (RFC 3339), `DaysLeft`, `Role` and `Problems` (each
//!   `{Kind, Message}`) found by
//!   [`inspect_certificate`](consul_sec_tls_policy::inspect_certificate)
//!   for the agent's role (server: `server.<dc>.<domain>` and both key
//!   usages; client: clientAuth), including expiry within 30 days.
//!
//! Key material never appears: no gossip key, no private key, no file
//! contents, only counts, flags and certificate metadata.
//!
//! [`respond`] maps one fully read request to a response with no I/O, so
//! it is tested directly; [`serve`] runs it on a TCP listener, plain or
//! TLS (the `ports.https` listener, with the `tls.https` policy: client
//! certificates are demanded when `verify_incoming` is set).
//!
//! Errors follow Consul's handlers: bad requests get 400 with a plain-text
//! reason, a method that is not served gets 405 with an `Allow` header, and
//! a keyring operation that failed on some node gets 500 with the pool
//! error and one `<node>: <message>` line per node (Consul's
//! `keyringErrorsOrNil` joined as a multi-error).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use consul_sec_gossip_crypto::SecretKey;
use consul_sec_tls_policy::{EXPIRY_WARNING, InspectOptions, Role, TlsConfigurator};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::cluster::{Cluster, KeyOperation, KeyRequest};
use crate::connlimit::ConnLimiter;
use crate::keyring::{KeyChange, KeyringStore};
use crate::model::{
    AgentSelf, CertificateProblem, CertificateStatus, EncryptionStatus, GossipStatus,
    KeyringRequest, KeyringResponse, SelfConfig, TlsProtocolStatus, TlsStatus,
};
use crate::rpc::RpcClient;

/// How long an HTTPS client may take to complete the TLS handshake
/// (Consul's `limits.https_handshake_timeout` default).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a client may take to send a request's headers before the
/// connection is dropped.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a refused connection gets to take its 429 (go-connlimit's 10 ms).
const TOO_MANY_CONNECTIONS_DEADLINE: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a refused connection may take to send its request head (or TLS
/// handshake), and to close after the 429.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest request body read (a keyring request is under 100 bytes).
const MAX_BODY: usize = 64 * 1024;

/// What the API serves from: the cluster and the agent's identity.
#[derive(Debug)]
pub struct ApiState<C> {
    /// The cluster (gossip runner or [`LocalCluster`](crate::cluster::LocalCluster)).
    pub cluster: C,
    /// The `Config` part of `/v1/agent/self`.
    pub config: SelfConfig,
    /// The agent's RPC client, for `/v1/internal/rpc/ping`; `None` answers
    /// that route with 404.
    pub rpc: Option<RpcClient>,
    /// Where `/v1/agent/self` reads the encryption state from.
    pub encryption: EncryptionSources,
}

impl<C> ApiState<C> {
    /// An API for `cluster` with no RPC client and no encryption sources
    /// (`/v1/agent/self` then reports gossip and TLS as off).
    pub fn new(cluster: C, config: SelfConfig) -> Self {
        Self { cluster, config, rpc: None, encryption: EncryptionSources::default() }
    }
}

/// What `/v1/agent/self` reads, on every request, to report the
/// encryption in force: the live keyring and TLS configurators (swapped by
/// a SIGHUP reload) plus the gossip verify flags (fixed until restart, as
/// in Consul). The default reports everything as off.
#[derive(Debug, Clone, Default)]
pub struct EncryptionSources {
    /// The LAN keyring; `None` reports gossip encryption as off.
    pub keyring: Option<Arc<KeyringStore>>,
    /// `encrypt_verify_incoming`.
    pub encrypt_verify_incoming: bool,
    /// `encrypt_verify_outgoing`.
    pub encrypt_verify_outgoing: bool,
    /// The `tls.internal_rpc` configurator (RPC port and outgoing RPC).
    pub internal_rpc: Option<Arc<TlsConfigurator>>,
    /// The `tls.https` configurator, when `ports.https` is on.
    pub https: Option<Arc<TlsConfigurator>>,
}

impl EncryptionSources {
    /// The encryption state now, with certificates judged for a server of
    /// `datacenter` (`server`) or a client agent.
    pub fn status(&self, server: bool, datacenter: &str) -> EncryptionStatus {
        let keys = self.keyring.as_ref().map_or(0, |store| store.keyring().len());
        let role =
            if server { Role::Server { datacenter: datacenter.to_owned() } } else { Role::Client };
        let tls = |configurator: &Option<Arc<TlsConfigurator>>| {
            configurator.as_ref().map(|c| tls_status(c, &role))
        };
        EncryptionStatus {
            gossip: GossipStatus {
                enabled: keys > 0,
                verify_incoming: self.encrypt_verify_incoming,
                verify_outgoing: self.encrypt_verify_outgoing,
                num_keys: keys,
            },
            tls: TlsStatus { internal_rpc: tls(&self.internal_rpc), https: tls(&self.https) },
        }
    }
}

/// One protocol's policy in force and its certificate, inspected now.
fn tls_status(configurator: &TlsConfigurator, role: &Role) -> TlsProtocolStatus {
    let loaded = configurator.current();
    let policy = loaded.policy();
    let now = SystemTime::now();
    let options = InspectOptions {
        role: role.clone(),
        domain: policy.domain_trimmed().to_owned(),
        now,
        expiry_warning: EXPIRY_WARNING,
    };
    let (certificate, inspect_error) = match loaded.inspect_certificate(&options) {
        None => (None, None),
        Some(Err(err)) => (None, Some(err.to_string())),
        Some(Ok(report)) => (
            Some(CertificateStatus {
                subject: report.subject.clone(),
                issuer: report.issuer.clone(),
                dns_names: report.dns_names.clone(),
                ip_addresses: report.ip_addresses.iter().map(ToString::to_string).collect(),
                not_before: report.not_before_rfc3339(),
                not_after: report.not_after_rfc3339(),
                days_left: report.days_left(now),
                role: match role {
                    Role::Server { .. } => "server",
                    Role::Client => "client",
                }
                .to_owned(),
                problems: report
                    .problems
                    .iter()
                    .map(|p| CertificateProblem {
                        kind: p.kind().to_owned(),
                        message: p.to_string(),
                    })
                    .collect(),
            }),
            None,
        ),
    };
    TlsProtocolStatus {
        configured: !loaded.ca_certificates().is_empty() || loaded.certificate_chain().is_some(),
        verify_incoming: policy.verify_incoming,
        verify_outgoing: loaded.verify_outgoing_effective(),
        verify_server_hostname: policy.verify_server_hostname,
        tls_min_version: policy.tls_min_version.as_str().to_owned(),
        ca_certificates: loaded.ca_certificates().len(),
        certificate,
        inspect_error,
    }
}

/// What is wrong with the certificate `configurator` serves, judged for a
/// server agent of `datacenter` (`server`) or a client agent, in the words
/// `/v1/agent/self` uses; empty when there is no certificate or nothing is
/// wrong. The agent logs these at start and on every reload.
pub fn certificate_problems(
    configurator: &TlsConfigurator,
    server: bool,
    datacenter: &str,
) -> Vec<String> {
    let role =
        if server { Role::Server { datacenter: datacenter.to_owned() } } else { Role::Client };
    let status = tls_status(configurator, &role);
    let mut problems: Vec<String> = status.inspect_error.into_iter().collect();
    if let Some(certificate) = status.certificate {
        problems.extend(certificate.problems.into_iter().map(|p| p.message));
    }
    problems
}

/// Answers one request whose body has been read.
pub async fn respond<C: Cluster>(
    state: &ApiState<C>,
    request: Request<Bytes>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    tracing::debug!(method = %parts.method, path = parts.uri.path(), "http: request");
    let query = parts.uri.query().unwrap_or("");
    match parts.uri.path() {
        "/v1/agent/self" => match parts.method {
            Method::GET => {
                let encryption =
                    state.encryption.status(state.config.server, &state.config.datacenter);
                let encrypted = encryption.gossip.enabled.to_string();
                let me = AgentSelf {
                    config: state.config.clone(),
                    member: state.cluster.local_member(),
                    stats: [("serf_lan".to_owned(), [("encrypted".to_owned(), encrypted)].into())]
                        .into(),
                    encryption: Some(encryption),
                };
                json(StatusCode::OK, &me)
            }
            method => not_allowed(&method, "GET"),
        },
        "/v1/agent/members" => match parts.method {
            Method::GET => {
                let mut members = state.cluster.members();
                members.sort_by(|a, b| a.name.cmp(&b.name));
                json(StatusCode::OK, &members)
            }
            method => not_allowed(&method, "GET"),
        },
        "/v1/operator/keyring" => keyring(state, &parts.method, query, &body).await,
        "/v1/internal/rpc/ping" if state.rpc.is_some() => match parts.method {
            Method::GET => rpc_ping(state, query).await,
            method => not_allowed(&method, "GET"),
        },
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `/v1/operator/keyring`, in the order Consul's handler checks things:
/// body, `relay-factor`, `local-only`, then the method.
async fn keyring<C: Cluster>(
    state: &ApiState<C>,
    method: &Method,
    query: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let mut key = None;
    if matches!(*method, Method::POST | Method::PUT | Method::DELETE) {
        let request: KeyringRequest = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(err) => {
                let reason = without_string_values(&err.to_string());
                return text(StatusCode::BAD_REQUEST, &format!("Request decode failed: {reason}"));
            }
        };
        match SecretKey::from_base64(&request.key) {
            Ok(parsed) => key = Some(parsed),
            Err(err) => {
                return text(StatusCode::BAD_REQUEST, &format!("Request decode failed: {err}"));
            }
        }
    }
    let mut relay_factor = 0;
    if let Some(value) = query_param(query, "relay-factor").filter(|v| !v.is_empty()) {
        let parsed: i64 = match value.parse() {
            Ok(n) => n,
            Err(err) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("Error parsing relay factor: {value:?}: {err}"),
                );
            }
        };
        relay_factor = match u8::try_from(parsed) {
            Ok(n) if n <= 5 => n,
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Invalid relay-factor: Relay factor must be in range: [0, 5]",
                );
            }
        };
    }
    let mut local_only = false;
    if let Some(value) = query_param(query, "local-only").filter(|v| !v.is_empty()) {
        local_only = match consul_sec_config::parse_go_bool(&value) {
            Some(b) => b,
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "Error parsing local-only: strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ),
                );
            }
        };
        if local_only && *method != Method::GET {
            return text(
                StatusCode::BAD_REQUEST,
                "Invalid use of local-only: local-only can only be set for list requests",
            );
        }
    }
    let op = match (method, key) {
        (&Method::GET, _) => KeyOperation::List,
        (&Method::POST, Some(key)) => KeyOperation::Change(KeyChange::Install(key)),
        (&Method::PUT, Some(key)) => KeyOperation::Change(KeyChange::Use(key)),
        (&Method::DELETE, Some(key)) => KeyOperation::Change(KeyChange::Remove(key)),
        (method, _) => return not_allowed(method, "GET,POST,PUT,DELETE"),
    };
    let is_list = op == KeyOperation::List;
    let response = state.cluster.key_operation(KeyRequest { op, relay_factor, local_only }).await;
    if let Some(errors) = keyring_errors(std::slice::from_ref(&response)) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, &errors);
    }
    if is_list { json(StatusCode::OK, &[response]) } else { empty(StatusCode::OK) }
}

/// `GET /v1/internal/rpc/ping?addr=<ip:port>[&dc=<dc>]` (a consul-sec
/// diagnostic, not a Consul route): one `Status.Ping` from this agent's RPC
/// client to the server at `addr`, under the agent's outgoing TLS policy.
/// 200 with `{"Addr", "TLS", "Reused"}` when the server answered; 500 with
/// the RPC error otherwise.
async fn rpc_ping<C: Cluster>(state: &ApiState<C>, query: &str) -> Response<Full<Bytes>> {
    let Some(client) = &state.rpc else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let Some(addr) = query_param(query, "addr") else {
        return text(StatusCode::BAD_REQUEST, "Missing addr: want ?addr=<ip:port> of a server");
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(_) => {
            let shown: String = addr.chars().take(64).collect();
            return text(StatusCode::BAD_REQUEST, &format!("Bad addr {shown:?}: want <ip:port>"));
        }
    };
    // As in Consul, an empty dc is the agent's own.
    let dc = query_param(query, "dc").filter(|dc| !dc.is_empty());
    let dc = dc.as_deref().unwrap_or(&state.config.datacenter);
    match client.ping_report(dc, addr).await {
        Ok(report) => json(
            StatusCode::OK,
            &serde_json::json!({ "Addr": addr.to_string(), "TLS": report.tls, "Reused": report.reused }),
        ),
        Err(err) => {
            // An answer that is not msgpack-RPC usually means a wrong port.
            let hint = if matches!(err, crate::rpc::RpcError::Protocol { .. }) {
                " (is this a Consul server's RPC port, ports.server?)"
            } else {
                ""
            };
            text(StatusCode::INTERNAL_SERVER_ERROR, &format!("rpc ping failed: {err}{hint}"))
        }
    }
}

/// Consul's `keyringErrorsOrNil`: for every pool that failed, the pool
/// error and one line per node message (sorted), formatted as a Go
/// multi-error. `None` when every pool succeeded.
pub fn keyring_errors(responses: &[KeyringResponse]) -> Option<String> {
    let mut errors = Vec::new();
    for response in responses {
        if let Some(error) = &response.error {
            errors.push(format!("{} error: {error}", response.pool_name()));
            for (node, message) in &response.messages {
                errors.push(format!("{node}: {message}"));
            }
        }
    }
    if errors.is_empty() {
        return None;
    }
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    let mut out = format!("{} {noun} occurred:\n", errors.len());
    for error in errors {
        out.push_str(&format!("\t* {error}\n"));
    }
    Some(out)
}

/// The first value of `name` in a query string, percent- and
/// `+`-decoded as Go's `url.ParseQuery` does.
fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding response: {err}")),
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut body = message.to_owned();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn not_allowed(method: &Method, allow: &'static str) -> Response<Full<Bytes>> {
    let mut response =
        text(StatusCode::METHOD_NOT_ALLOWED, &format!("method {method} not allowed"));
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Reads a request's body (at most 64 KiB) and answers it.
async fn handle<C: Cluster>(
    state: Arc<ApiState<C>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let status = if err.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(text(status, &format!("Request body could not be read: {err}")));
        }
    };
    Ok(respond(&state, Request::from_parts(parts, body)).await)
}

/// Serves the API on `listener` until `shutdown` turns true. With `tls`
/// every connection is a TLS handshake with the configurator's current
/// server configuration (so a reload applies to new connections). A client
/// IP with `limiter`'s maximum of connections open gets Consul's `429 Too
/// Many Requests` on a new one (`limits.http_max_conns_per_client`).
pub async fn serve<C: Cluster>(
    listener: TcpListener,
    tls: Option<Arc<TlsConfigurator>>,
    state: Arc<ApiState<C>>,
    limiter: Arc<ConnLimiter>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "http: accept failed");
                // Out of file descriptors, say: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(permit) = limiter.accept(peer.ip()) else {
            tracing::debug!(%peer, limit = limiter.max(), "http: http_max_conns_per_client exceeded");
            tokio::spawn(too_many_connections(stream, tls.clone()));
            continue;
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, state, peer).await,
                Some(tls) => {
                    let config = match tls.server_config() {
                        Ok(config) => config,
                        Err(err) => {
                            tracing::error!(error = %err, "https: no server configuration");
                            return;
                        }
                    };
                    if sends_plain_http(&stream).await {
                        // Go's net/http answer, which Consul's HTTPS port gives.
                        let answer = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
                        answer_and_close(stream, answer).await;
                        return;
                    }
                    let handshake = TlsAcceptor::from(config).accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => serve_connection(stream, state, peer).await,
                        Ok(Err(err)) => {
                            tracing::warn!(%peer, error = %err, "https: TLS handshake failed")
                        }
                        Err(_) => tracing::warn!(%peer, "https: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Whether a connection to the HTTPS port starts with a plain HTTP request
/// instead of a TLS record: Go's check (`looksLikeHttp`, on the first five
/// bytes), made on what has arrived within the handshake timeout.
async fn sends_plain_http(stream: &TcpStream) -> bool {
    const STARTS: [&[u8]; 5] = [b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO"];
    let mut head = [0u8; 5];
    let Ok(Ok(n)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut head)).await else {
        return false;
    };
    n > 0 && STARTS.iter().any(|start| start.starts_with(&head[..n]))
}

/// Consul's answer to a connection over `http_max_conns_per_client`
/// (go-connlimit's): a fixed 429 response, then close. Unlike go-connlimit,
/// which writes at once and closes, the request head is waited for first
/// (up to a second) and whatever follows is read and dropped (up to a
/// second): a response that arrives before the request is "unsolicited" to
/// HTTP clients (Go's and hyper's drop it), and closing with input unread
/// makes the kernel reset the connection, which can destroy the 429.
async fn too_many_connections(stream: TcpStream, tls: Option<Arc<TlsConfigurator>>) {
    const BODY: &str =
        "Your IP is issuing too many concurrent connections, please rate limit your calls\n";
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    match tls.map(|tls| tls.server_config()) {
        None => answer_and_close(stream, response.as_bytes()).await,
        Some(Ok(config)) => {
            let handshake = TlsAcceptor::from(config).accept(stream);
            if let Ok(Ok(stream)) = tokio::time::timeout(REFUSAL_LINGER, handshake).await {
                answer_and_close(stream, response.as_bytes()).await;
            }
        }
        Some(Err(_)) => {}
    }
}

/// Waits for the request head, writes `response` (within go-connlimit's
/// 10 ms), ends the write side, then drops what the client still sends.
async fn answer_and_close<S>(mut stream: S, response: &[u8])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    let head = async {
        // The last bytes seen, so that a head split across reads is found.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            match stream.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                    let keep = tail.len().saturating_sub(3);
                    tail.drain(..keep);
                }
                _ => return false,
            }
        }
    };
    // A client that sends nothing still gets the answer when the wait ends.
    if let Ok(false) = tokio::time::timeout(REFUSAL_LINGER, head).await {
        return;
    }
    let write = async {
        stream.write_all(response).await?;
        stream.shutdown().await
    };
    if !matches!(tokio::time::timeout(TOO_MANY_CONNECTIONS_DEADLINE, write).await, Ok(Ok(()))) {
        return;
    }
    let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
}

async fn serve_connection<C, S>(stream: S, state: Arc<ApiState<C>>, peer: SocketAddr)
where
    C: Cluster,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| handle(Arc::clone(&state), request));
    if let Err(err) = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %err, "http: connection ended with an error");
    }
}
/// serde_json quotes a string of the wrong shape in its message
/// (`invalid type: string "<value>", expected ...`); a body that is just the
/// quoted key would echo the key, so the value is left out.
fn without_string_values(message: &str) -> String {
    let mut out = message.to_owned();
    if let Some(start) = out.find("string \"")
        && let Some(len) = out.get(start..).and_then(|rest| rest.find("\", expected"))
    {
        out.replace_range(start..start + len + 1, "a string");
    }
    out
}
