//! [`RpcClient`]: dialling servers as Consul's clients do, with a small pool
//! of idle connections per server.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consul_sec_tls_policy::{LoadedPolicy, Outgoing, RpcType, TlsConfigurator};
use rmpv::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::cluster::KeyRequest;
use crate::model::KeyringResponse;
use crate::rpc::codec::{FrameReader, ReadError, RequestHeader, ResponseHeader, message};
use crate::rpc::{RpcError, io_error, keyring};

/// Settings of an [`RpcClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The datacenter dialled by [`RpcClient::call`]; TLS expects
    /// `server.<datacenter>.<domain>` (Consul default `dc1`).
    pub datacenter: String,
    /// Idle connections kept per server (default 4); more are closed after use.
    pub max_idle_per_server: usize,
    /// TCP connect timeout (Consul: 10 s).
    pub connect_timeout: Duration,
    /// Time allowed for one call, dial and TLS handshake included (default 30 s).
    pub call_timeout: Duration,
    /// Time allowed for the TLS handshake of a new connection (default
    /// 5 s, the server's `rpc_handshake_timeout`): a peer that accepts but
    /// never answers fails fast and names the handshake.
    pub handshake_timeout: Duration,
    /// An idle connection older than this is closed rather than reused
    /// (Consul's client pool: 127 s), so a server's later policy (say
    /// `verify_incoming` by reload) reaches long-lived clients too.
    pub max_idle_time: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            datacenter: consul_sec_tls_policy::DEFAULT_DATACENTER.to_owned(),
            max_idle_per_server: 4,
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            max_idle_time: Duration::from_secs(127),
        }
    }
}

/// How one call was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallReport {
    /// The connection was upgraded to TLS (`0x03`).
    pub tls: bool,
    /// The connection came from the pool rather than a new dial.
    pub reused: bool,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One established RPCConsul stream.
struct Conn {
    reader: FrameReader<Box<dyn Io>>,
    tls: bool,
    /// The policy it was dialled under.
    policy: Arc<LoadedPolicy>,
    /// When it was last put back in the pool.
    idle_since: Instant,
}

/// A pooled msgpack-RPC client for Consul's RPC port. Cheap to clone; clones
/// share the pool.
///
/// Each call takes an idle connection to the server (or dials one), sends one
/// request and reads its response, then puts the connection back. A reused
/// connection the server has meanwhile closed is replaced by one fresh dial.
/// The TLS policy is read per dial, and idle connections dialled under an
/// earlier policy are dropped, so a reload applies to every later call.
/// Idle connections are kept per datacenter and server: one verified as
/// `server.dc1.<domain>` never serves a call meant for dc2.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    tls: Arc<TlsConfigurator>,
    config: PoolConfig,
    /// Idle connections per (datacenter dialled, server): a connection
    /// verified as `server.<dc>.<domain>` only serves calls for that dc.
    idle: Mutex<HashMap<(String, SocketAddr), Vec<Conn>>>,
    dials: AtomicU64,
    seq: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("config", &self.inner.config)
            .field("dials", &self.dials())
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client dialling under the outgoing policy in force in `tls`.
    pub fn new(tls: Arc<TlsConfigurator>, config: PoolConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                tls,
                config,
                idle: Mutex::new(HashMap::new()),
                dials: AtomicU64::new(0),
                seq: AtomicU64::new(0),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// How many TCP connections this client has opened so far.
    pub fn dials(&self) -> u64 {
        self.inner.dials.load(Ordering::Relaxed)
    }

    /// Idle connections kept for `addr` right now.
    pub fn idle_connections(&self, addr: SocketAddr) -> usize {
        self.lock_idle().iter().filter(|((_, a), _)| *a == addr).map(|(_, c)| c.len()).sum()
    }

    /// `Status.Ping` on the server at `addr`.
    pub async fn ping(&self, addr: SocketAddr) -> Result<(), RpcError> {
        self.call(addr, "Status.Ping", &Value::Map(Vec::new())).await.map(drop)
    }

    /// `Status.Ping` on the server at `addr` in datacenter `dc`, telling
    /// how the call went: over TLS or plaintext, on a pooled connection or
    /// a new one.
    pub async fn ping_report(&self, dc: &str, addr: SocketAddr) -> Result<CallReport, RpcError> {
        self.call_reporting(dc, addr, "Status.Ping", &Value::Map(Vec::new())).await.map(|(_, r)| r)
    }

    /// Runs `Internal.KeyringOperation` on the server at `addr` (local
    /// datacenter) and returns its per-pool responses.
    pub async fn keyring_operation(
        &self,
        addr: SocketAddr,
        request: &KeyRequest,
    ) -> Result<Vec<KeyringResponse>, RpcError> {
        let dc = self.inner.config.datacenter.clone();
        let args = keyring::request_to_value(request, &dc);
        let reply = self.call(addr, "Internal.KeyringOperation", &args).await?;
        keyring::responses_from_value(&reply).map_err(|source| RpcError::Protocol { addr, source })
    }

    /// Calls `method` with `args` on a server of the local datacenter.
    pub async fn call(
        &self,
        addr: SocketAddr,
        method: &str,
        args: &Value,
    ) -> Result<Value, RpcError> {
        let dc = self.inner.config.datacenter.clone();
        self.call_in(&dc, addr, method, args).await
    }

    /// Calls `method` with `args` on the server at `addr` in datacenter
    /// `dc` (TLS then expects `server.<dc>.<domain>`).
    pub async fn call_in(
        &self,
        dc: &str,
        addr: SocketAddr,
        method: &str,
        args: &Value,
    ) -> Result<Value, RpcError> {
        self.call_reporting(dc, addr, method, args).await.map(|(value, _)| value)
    }

    async fn call_reporting(
        &self,
        dc: &str,
        addr: SocketAddr,
        method: &str,
        args: &Value,
    ) -> Result<(Value, CallReport), RpcError> {
        let call = async {
            let (mut conn, mut reused) = match self.take_idle(dc, addr) {
                Some(conn) => (conn, true),
                None => (self.dial(dc, addr).await?, false),
            };
            let answer = match self.round_trip(&mut conn, addr, method, args).await {
                Ok(answer) => answer,
                Err(err) if reused && stale(&err) => {
                    tracing::debug!(server = %addr, error = %err, "pooled RPC connection was closed; redialling");
                    conn = self.dial(dc, addr).await?;
                    reused = false;
                    self.round_trip(&mut conn, addr, method, args)
                        .await
                        .map_err(|err| refused_plaintext(err, &conn))?
                }
                Err(err) if !reused => return Err(refused_plaintext(err, &conn)),
                Err(err) => return Err(err),
            };
            let report = CallReport { tls: conn.tls, reused };
            self.put_idle(dc, addr, conn);
            answer
                .map(|value| (value, report))
                .map_err(|message| RpcError::Remote { method: method.to_owned(), message })
        };
        match tokio::time::timeout(self.inner.config.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Timeout { addr, what: format!("call {method}") }),
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, HashMap<(String, SocketAddr), Vec<Conn>>> {
        // The map stays consistent even if a holder panicked: entries are whole connections.
        self.inner.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_idle(&self, dc: &str, addr: SocketAddr) -> Option<Conn> {
        let now = self.inner.tls.current();
        let mut idle = self.lock_idle();
        let conns = idle.get_mut(&(dc.to_owned(), addr))?;
        // Connections dialled under an earlier policy (before a reload) are
        // dropped, so a reload applies to every later call.
        while let Some(conn) = conns.pop() {
            let fresh = conn.idle_since.elapsed() < self.inner.config.max_idle_time;
            if fresh && Arc::ptr_eq(&conn.policy, &now) {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, dc: &str, addr: SocketAddr, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let max = self.inner.config.max_idle_per_server;
        let mut idle = self.lock_idle();
        let conns = idle.entry((dc.to_owned(), addr)).or_default();
        if conns.len() < max {
            conns.push(conn);
        }
    }

    /// Consul's dial sequence: TCP; `0x03` + TLS when outgoing verification
    /// is on; then the type byte `0x00` (plain or inside TLS).
    async fn dial(&self, dc: &str, addr: SocketAddr) -> Result<Conn, RpcError> {
        let connect = TcpStream::connect(addr);
        let mut tcp = match tokio::time::timeout(self.inner.config.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(RpcError::Dial { addr, source }),
            Err(_) => return Err(RpcError::Timeout { addr, what: "connect".into() }),
        };
        self.inner.dials.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let policy = self.inner.tls.current();
        let outgoing = policy.outgoing(dc).map_err(|source| RpcError::Tls { addr, source })?;
        let (mut stream, tls): (Box<dyn Io>, bool) = match outgoing {
            Outgoing::Plaintext => (Box::new(tcp), false),
            Outgoing::Tls { server_name, config } => {
                tcp.write_all(&[RpcType::Tls.byte()]).await.map_err(|e| io_error(addr, e))?;
                let handshake = TlsConnector::from(config).connect(server_name, tcp);
                let tls = match tokio::time::timeout(self.inner.config.handshake_timeout, handshake)
                    .await
                {
                    Ok(result) => result.map_err(|e| io_error(addr, e))?,
                    Err(_) => {
                        return Err(RpcError::Timeout { addr, what: "TLS handshake".into() });
                    }
                };
                (Box::new(tls), true)
            }
        };
        // Sent together with the first request (one flush per call).
        stream.write_all(&[RpcType::Consul.byte()]).await.map_err(|e| io_error(addr, e))?;
        Ok(Conn { reader: FrameReader::new(stream), tls, policy, idle_since: Instant::now() })
    }

    /// Sends one request and reads its response. The outer error means the
    /// connection is unusable; the inner one is the server's error text.
    async fn round_trip(
        &self,
        conn: &mut Conn,
        addr: SocketAddr,
        method: &str,
        args: &Value,
    ) -> Result<Result<Value, String>, RpcError> {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader { service_method: method.to_owned(), seq };
        let bytes = message(&header.to_value(), args);
        let out = conn.reader.get_mut();
        out.write_all(&bytes).await.map_err(|e| io_error(addr, e))?;
        out.flush().await.map_err(|e| io_error(addr, e))?;
        let header = read(&mut conn.reader, addr).await?;
        let header = ResponseHeader::from_value(&header)
            .map_err(|source| RpcError::Protocol { addr, source })?;
        let body = read(&mut conn.reader, addr).await?;
        if header.seq != seq {
            return Err(RpcError::Sequence { addr, sent: seq, got: header.seq });
        }
        if header.error.is_empty() { Ok(Ok(body)) } else { Ok(Err(header.error)) }
    }
}

async fn read(reader: &mut FrameReader<Box<dyn Io>>, addr: SocketAddr) -> Result<Value, RpcError> {
    match reader.read_value().await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(RpcError::Closed { addr }),
        Err(ReadError::Io(e)) => Err(io_error(addr, e)),
        Err(ReadError::Codec(source)) => Err(RpcError::Protocol { addr, source }),
    }
}

/// A new plaintext connection closed before any answer is what a server
/// under `verify_incoming` does to plaintext: say so instead of "reset".
fn refused_plaintext(err: RpcError, conn: &Conn) -> RpcError {
    match err {
        RpcError::Closed { addr } | RpcError::Io { addr, .. } if !conn.tls && stale(&err) => {
            RpcError::PlaintextRefused { addr }
        }
        other => other,
    }
}

/// Whether an error on a reused connection means the server had closed it.
fn stale(err: &RpcError) -> bool {
    match err {
        RpcError::Closed { .. } => true,
        RpcError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}
