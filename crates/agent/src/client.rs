//! The HTTP API client behind `consul-sec members` and `consul-sec keyring`,
//! and the formatting of their output as Consul's CLI prints it.
//!
//! The address and TLS options follow Consul's CLI: `-http-addr` /
//! `CONSUL_HTTP_ADDR` (default `127.0.0.1:8500`; an `https://` scheme or
//! `CONSUL_HTTP_SSL=true` selects TLS), `-ca-file` / `CONSUL_CACERT`,
//! `-client-cert` / `CONSUL_CLIENT_CERT`, `-client-key` /
//! `CONSUL_CLIENT_KEY`, `-tls-server-name` / `CONSUL_TLS_SERVER_NAME`.
//! Calls block: each one runs on a small current-thread runtime, which is
//! what a one-shot command needs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use consul_sec_tls_policy::TlsPolicy;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::model::{AgentMember, KeyringRequest, KeyringResponse, status_name};

/// Consul's default API address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8500";

/// How long one API call may take (key operations wait for every node).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response body the client reads. A members list of 10,000
/// nodes is a few megabytes; a bound keeps a wrong or hostile address from
/// filling the CLI's memory.
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Where and how to reach the agent's HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `-http-addr`: `host:port`, `http://host:port` or `https://host:port`
    /// (`None`: [`DEFAULT_HTTP_ADDR`]).
    pub http_addr: Option<String>,
    /// `CONSUL_HTTP_SSL`: use HTTPS even without an `https://` scheme.
    pub https: bool,
    /// `-ca-file`: PEM CA certificates the agent's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// `-client-cert`: PEM certificate presented to the agent.
    pub client_cert: Option<PathBuf>,
    /// `-client-key`: PEM key for `client_cert`.
    pub client_key: Option<PathBuf>,
    /// `-tls-server-name`: the name to verify the agent's certificate for
    /// (default: the host of the address).
    pub tls_server_name: Option<String>,
}

/// A keyring operation as the CLI asks for it; the key is the base64 text
/// the user gave, checked by the agent.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyringAction {
    /// `-list` (and `-list-primary`).
    List {
        /// `-local-only`.
        local_only: bool,
    },
    /// `-install KEY`.
    Install(String),
    /// `-use KEY`.
    Use(String),
    /// `-remove KEY`.
    Remove(String),
}

impl Drop for KeyringAction {
    fn drop(&mut self) {
        if let KeyringAction::Install(key) | KeyringAction::Use(key) | KeyringAction::Remove(key) =
            self
        {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl std::fmt::Debug for KeyringAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyringAction::List { .. } => "List",
            KeyringAction::Install(_) => "Install(<redacted>)",
            KeyringAction::Use(_) => "Use(<redacted>)",
            KeyringAction::Remove(_) => "Remove(<redacted>)",
        })
    }
}

/// A client for one agent's HTTP API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `host:port` as dialled.
    authority: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl ApiClient {
    /// Checks the address and loads the TLS files (for HTTPS).
    pub fn new(options: &ClientOptions) -> Result<ApiClient, Error> {
        let addr =
            options.http_addr.as_deref().filter(|a| !a.is_empty()).unwrap_or(DEFAULT_HTTP_ADDR);
        let (https, authority) = if let Some(rest) = addr.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = addr.strip_prefix("http://") {
            (options.https, rest)
        } else if addr.contains("://") {
            return Err(Error::ClientTls(format!(
                "http-addr {addr:?}: unsupported scheme (use host:port, http:// or https://)"
            )));
        } else {
            (options.https, addr)
        };
        let authority = authority.trim_end_matches('/').to_owned();
        let host = host_of(&authority)
            .ok_or_else(|| Error::ClientTls(format!("http-addr {addr:?}: expected host:port")))?;
        let tls = if https { Some(tls_config(options, &host)?) } else { None };
        Ok(ApiClient { authority, tls })
    }

    /// The `host:port` dialled.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `GET /v1/agent/members`.
    pub fn members(&self) -> Result<Vec<AgentMember>, Error> {
        let body = self.call(Method::GET, "/v1/agent/members", None)?;
        self.decode(&body)
    }

    /// `/v1/operator/keyring`: the pool responses of a list, or an empty
    /// list for a successful change. Any node failure is an
    /// [`Error::HttpStatus`] whose body names each failed node.
    pub fn keyring(
        &self,
        action: &KeyringAction,
        relay_factor: u8,
    ) -> Result<Vec<KeyringResponse>, Error> {
        let mut path = "/v1/operator/keyring".to_owned();
        let mut params = Vec::new();
        if relay_factor != 0 {
            params.push(format!("relay-factor={relay_factor}"));
        }
        let (method, key) = match action {
            KeyringAction::List { local_only } => {
                if *local_only {
                    params.push("local-only=true".to_owned());
                }
                (Method::GET, None)
            }
            KeyringAction::Install(key) => (Method::POST, Some(key)),
            KeyringAction::Use(key) => (Method::PUT, Some(key)),
            KeyringAction::Remove(key) => (Method::DELETE, Some(key)),
        };
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        let body = match key {
            Some(key) => Some(
                serde_json::to_vec(&KeyringRequest { key: key.clone() })
                    .map_err(|err| self.http_error(format!("encoding request: {err}")))?,
            ),
            None => None,
        };
        let is_list = method == Method::GET;
        let response = self.call(method, &path, body)?;
        if is_list { self.decode(&response) } else { Ok(Vec::new()) }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body)
            .map_err(|err| self.http_error(format!("decoding response: {err}")))
    }

    fn http_error(&self, message: String) -> Error {
        Error::Http { addr: self.authority.clone(), message }
    }

    fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { what: "starting the HTTP client", source })?;
        runtime.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, body)).await {
                Ok(result) => result,
                Err(_) => {
                    Err(self.http_error(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))
                }
            }
        })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, Error> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|err| self.http_error(format!("cannot connect: {err}")))?;
        match &self.tls {
            None => self.send(stream, method, path, body).await,
            Some((config, name)) => {
                let stream = TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|err| {
                        self.http_error(format!("TLS handshake failed: {}", with_causes(&err)))
                    })?;
                self.send(stream, method, path, body).await
            }
        }
    }

    async fn send<S>(
        &self,
        stream: S,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let fail = |what: &str, err: &dyn std::error::Error| {
            self.http_error(format!("{what}: {}", with_causes(err)))
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| fail("HTTP handshake failed", &err))?;
        let driver = tokio::spawn(connection);
        let mut request = Request::builder().method(method).uri(path).header(HOST, &self.authority);
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|err| fail("building request", &err))?;
        let response =
            sender.send_request(request).await.map_err(|err| fail("request failed", &err))?;
        let status = response.status();
        let bytes = match Limited::new(response.into_body(), MAX_RESPONSE).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<LengthLimitError>() => {
                return Err(self.http_error(format!(
                    "reading response: the body is larger than {MAX_RESPONSE} bytes"
                )));
            }
            Err(err) => return Err(fail("reading response", &*err)),
        };
        driver.abort();
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes).trim().to_owned();
            return Err(Error::HttpStatus { status: status.as_u16(), body });
        }
        Ok(bytes)
    }
}

/// `err` and its causes, each once: hyper's own text ("connection error")
/// does not say why; the TLS alert behind it does. A TLS 1.3 server refuses
/// a client certificate only after the handshake, so this is where a
/// missing or rejected one shows; the hint says what to set.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    if text.contains("CertificateRequired") {
        text.push_str(
            " (the agent requires a client certificate: set -client-cert and -client-key, or CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY)",
        );
    } else if ["BadCertificate", "UnknownCA", "CertificateExpired", "CertificateUnknown"]
        .iter()
        .any(|alert| text.contains(alert))
    {
        text.push_str(" (the agent refused the client certificate; its log says why)");
    }
    text
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(authority: &str) -> Option<String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return (!port.is_empty()).then(|| host.to_owned());
    }
    let (host, port) = authority.rsplit_once(':')?;
    (!host.is_empty() && !port.is_empty() && !host.contains(':')).then(|| host.to_owned())
}

fn tls_config(
    options: &ClientOptions,
    host: &str,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), Error> {
    let ca_file = options.ca_file.as_deref().ok_or_else(|| {
        Error::ClientTls(
            "HTTPS needs -ca-file (or CONSUL_CACERT): consul-sec trusts only a configured CA"
                .to_owned(),
        )
    })?;
    match (&options.client_cert, &options.client_key) {
        (Some(_), None) => {
            return Err(Error::ClientTls("-client-cert given without -client-key".to_owned()));
        }
        (None, Some(_)) => {
            return Err(Error::ClientTls("-client-key given without -client-cert".to_owned()));
        }
        _ => {}
    }
    // The agent's own TLS loader: full server verification (chain and
    // host name, as Go's HTTPS client), the key checked against the
    // certificate, and no unwiped copy of the key.
    let policy = TlsPolicy {
        ca_file: Some(ca_file.to_owned()),
        cert_file: options.client_cert.clone(),
        key_file: options.client_key.clone(),
        verify_outgoing: true,
        verify_server_hostname: true,
        ..TlsPolicy::default()
    };
    let config = policy.load().map_err(|err| Error::ClientTls(err.to_string()))?.client_config();
    let name = options.tls_server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_owned())
        .map_err(|err| Error::ClientTls(format!("tls-server-name {name:?}: {err}")))?;
    Ok((config, name))
}

/// The `consul members` table: `Node Address Status Type Build Protocol DC
/// Partition Segment`, sorted by name, columns padded to their widest cell
/// and joined by two spaces (Go's columnize). Members without Consul's
/// `role` tag (e.g. plain serf agents) show type `unknown` and empty
/// Consul columns.
pub fn render_members(members: &[AgentMember]) -> String {
    let mut sorted: Vec<&AgentMember> = members.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows: Vec<Vec<String>> = vec![
        ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for member in sorted {
        let address = match member.addr.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, member.port).to_string(),
            Err(_) => format!("{}:{}", member.addr, member.port),
        };
        let tag = |name: &str| member.tags.get(name).cloned().unwrap_or_default();
        let build = match member.tags.get("build") {
            None => "< 0.3".to_owned(),
            Some(build) => build.split(':').next().unwrap_or_default().to_owned(),
        };
        let partition = member.tags.get("ap").cloned().unwrap_or_else(|| "default".to_owned());
        let status = status_name(member.status).to_owned();
        let row = match member.tags.get("role").map(String::as_str) {
            Some(role @ ("consul" | "node")) => {
                let (kind, default_segment) =
                    if role == "consul" { ("server", "<all>") } else { ("client", "<default>") };
                let segment = Some(tag("segment"))
                    .filter(|s| !s.is_empty())
                    .unwrap_or(default_segment.to_owned());
                vec![
                    member.name.clone(),
                    address,
                    status,
                    kind.to_owned(),
                    build,
                    tag("vsn"),
                    tag("dc"),
                    partition,
                    segment,
                ]
            }
            _ => vec![
                member.name.clone(),
                address,
                status,
                "unknown".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        rows.push(row);
    }
    columnize(&rows)
}

/// The `consul members -detailed` table: `Node Address Status Tags`, the
/// tags as `key=value` pairs in key order joined by commas.
pub fn render_members_detailed(members: &[AgentMember]) -> String {
    let mut sorted: Vec<&AgentMember> = members.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows: Vec<Vec<String>> =
        vec![["Node", "Address", "Status", "Tags"].map(str::to_owned).to_vec()];
    for member in sorted {
        let address = match member.addr.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, member.port).to_string(),
            Err(_) => format!("{}:{}", member.addr, member.port),
        };
        let tags: Vec<String> = member.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            member.name.clone(),
            address,
            status_name(member.status).to_owned(),
            tags.join(","),
        ]);
    }
    columnize(&rows)
}

/// Go columnize's simple format: every column but the last padded to its
/// widest cell, joined by two spaces, trailing spaces trimmed.
fn columnize(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(c).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Keeps the members whose status word matches `status` (an unanchored
/// regular expression, as `consul members -status` uses it).
pub fn filter_members(members: Vec<AgentMember>, status: &regex::Regex) -> Vec<AgentMember> {
    members.into_iter().filter(|m| status.is_match(status_name(m.status))).collect()
}

/// The blocks `consul keyring -list` prints after its info line: for each
/// pool an empty line, `<pool>:`, one `  ===> <node>: <message>` line per
/// node message and one `  <key> [<count>/<nodes>]` line per key (primary
/// keys only with `primary_only`), each group sorted for determinism.
pub fn render_keyring(responses: &[KeyringResponse], primary_only: bool) -> String {
    let mut sorted: Vec<&KeyringResponse> = responses.iter().collect();
    // Consul lists WAN before LAN pools.
    sorted.sort_by(|a, b| b.wan.cmp(&a.wan).then_with(|| a.datacenter.cmp(&b.datacenter)));
    let mut out = String::new();
    for response in sorted {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}:", response.pool_name());
        for (node, message) in &response.messages {
            let _ = writeln!(out, "  ===> {node}: {message}");
        }
        let keys = if primary_only { &response.primary_keys } else { &response.keys };
        for (key, count) in keys {
            let _ = writeln!(out, "  {key} [{count}/{}]", response.num_nodes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: Option<&str>, status: u8) -> AgentMember {
        let mut tags = std::collections::BTreeMap::new();
        if let Some(role) = role {
            tags.insert("role".to_owned(), role.to_owned());
            tags.insert("dc".to_owned(), "dc1".to_owned());
            tags.insert("vsn".to_owned(), "2".to_owned());
            tags.insert("build".to_owned(), "0.1.0:consul-sec".to_owned());
        }
        AgentMember { status, ..AgentMember::alive(name, "127.0.0.1:8301".parse().unwrap(), tags) }
    }

    #[test]
    fn members_table_matches_consuls_columns() {
        let table = render_members(&[
            member("serf-b", None, 1),
            member("agent-a", Some("node"), 1),
            member("server-1", Some("consul"), 3),
        ]);
        let expected = "\
Node      Address         Status  Type     Build  Protocol  DC   Partition  Segment
agent-a   127.0.0.1:8301  alive   client   0.1.0  2         dc1  default    <default>
serf-b    127.0.0.1:8301  alive   unknown
server-1  127.0.0.1:8301  left    server   0.1.0  2         dc1  default    <all>
";
        assert_eq!(table, expected);
    }

    #[test]
    fn detailed_table_lists_tags_in_key_order() {
        let table = render_members_detailed(&[member("b", None, 4), member("a", Some("node"), 1)]);
        let expected = "\
Node  Address         Status  Tags
a     127.0.0.1:8301  alive   build=0.1.0:consul-sec,dc=dc1,role=node,vsn=2
b     127.0.0.1:8301  failed
";
        assert_eq!(table, expected);
    }

    #[test]
    fn status_filter_is_an_unanchored_regex() {
        let members =
            vec![member("a", Some("node"), 1), member("b", Some("node"), 3), member("c", None, 4)];
        let names = |re: &str| {
            filter_members(members.clone(), &regex::Regex::new(re).unwrap())
                .into_iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("alive"), ["a"]);
        assert_eq!(names("left|failed"), ["b", "c"]);
        assert_eq!(names("e"), ["a", "b", "c"]);
    }

    #[test]
    fn keyring_blocks_are_sorted_and_counted() {
        let response = KeyringResponse {
            datacenter: "dc1".into(),
            messages: [("n2".to_owned(), "warn".to_owned())].into(),
            keys: [("BBBB".to_owned(), 2), ("AAAA".to_owned(), 4)].into(),
            primary_keys: [("AAAA".to_owned(), 4)].into(),
            num_nodes: 4,
            ..Default::default()
        };
        assert_eq!(
            render_keyring(std::slice::from_ref(&response), false),
            "\ndc1 (LAN):\n  ===> n2: warn\n  AAAA [4/4]\n  BBBB [2/4]\n"
        );
        assert_eq!(
            render_keyring(&[response], true),
            "\ndc1 (LAN):\n  ===> n2: warn\n  AAAA [4/4]\n"
        );
    }

    /// A server that answers `status` with a chunked body of `len` bytes.
    fn serve_once(status: &'static str, len: usize) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let head = format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n");
            conn.write_all(head.as_bytes()).unwrap();
            let chunk = vec![b' '; 1 << 20];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                // The client hangs up once it has seen too much.
                if conn.write_all(format!("{n:x}\r\n").as_bytes()).is_err()
                    || conn.write_all(&chunk[..n]).is_err()
                    || conn.write_all(b"\r\n").is_err()
                {
                    return;
                }
                left -= n;
            }
            let _ = conn.write_all(b"0\r\n\r\n");
        });
        addr
    }

    #[test]
    fn response_bodies_are_bounded() {
        let client = |addr: String| {
            ApiClient::new(&ClientOptions { http_addr: Some(addr), ..Default::default() }).unwrap()
        };
        let addr = serve_once("200 OK", MAX_RESPONSE + 1);
        let err = client(addr.clone()).call(Method::GET, "/v1/agent/members", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{addr}: reading response: the body is larger than 67108864 bytes")
        );
        // An error status with a huge body is bounded the same way.
        let addr = serve_once("500 Internal Server Error", MAX_RESPONSE + 1);
        let err = client(addr).call(Method::GET, "/v1/agent/members", None).unwrap_err();
        assert!(err.to_string().contains("larger than 67108864 bytes"), "{err}");
        // At the limit the body is read whole.
        let addr = serve_once("200 OK", MAX_RESPONSE);
        let body = client(addr).call(Method::GET, "/v1/agent/members", None).unwrap();
        assert_eq!(body.len(), MAX_RESPONSE);
    }

    #[test]
    fn addresses_and_schemes() {
        let client = ApiClient::new(&ClientOptions::default()).unwrap();
        assert_eq!(client.authority(), "127.0.0.1:8500");
        let client = ApiClient::new(&ClientOptions {
            http_addr: Some("http://10.0.0.1:18500/".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(client.authority(), "10.0.0.1:18500");
        let err = ApiClient::new(&ClientOptions {
            http_addr: Some("https://h:1".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("-ca-file"), "{err}");
        let err = ApiClient::new(&ClientOptions {
            http_addr: Some("unix:///x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
        let err = ApiClient::new(&ClientOptions {
            http_addr: Some("nohost".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("expected host:port"), "{err}");
        assert_eq!(host_of("[::1]:8500").as_deref(), Some("::1"));
    }
}
