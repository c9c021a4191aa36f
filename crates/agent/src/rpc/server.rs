//! [`RpcServer`]: the accept loop of Consul's RPC port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use consul_sec_tls_policy::{Accept, Refusal, RpcType, TlsConfigurator};
use rmpv::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::cluster::Cluster;
use crate::connlimit::{ConnLimiter, DEFAULT_RPC_MAX_CONNS_PER_CLIENT};
use crate::rpc::codec::{FrameReader, ReadError, RequestHeader, ResponseHeader, message};
use crate::rpc::{RpcError, io_error, keyring};

/// Consul's `limits.rpc_handshake_timeout` default: the time allowed for the
/// first byte, and here also for the TLS handshake and the inner byte.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves Consul's RPC port over an agent's [`Cluster`].
///
/// The TLS policy is read from the [`TlsConfigurator`] for every new
/// connection, so a reload applies to the next connection while established
/// ones keep going (Consul's behaviour).
#[derive(Debug)]
pub struct RpcServer<C> {
    tls: Arc<TlsConfigurator>,
    cluster: C,
    handshake_timeout: Duration,
    limiter: Arc<ConnLimiter>,
}

impl<C: Cluster> RpcServer<C> {
    /// A server answering keyring operations from `cluster`, under the TLS
    /// policy in force in `tls`.
    pub fn new(tls: Arc<TlsConfigurator>, cluster: C) -> Self {
        Self {
            tls,
            cluster,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            limiter: ConnLimiter::new(DEFAULT_RPC_MAX_CONNS_PER_CLIENT),
        }
    }

    /// Replaces the per-client-IP connection limit (default: Consul's
    /// `limits.rpc_max_conns_per_client`, 100); share the limiter to change
    /// the limit on reload.
    pub fn with_conn_limiter(mut self, limiter: Arc<ConnLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Replaces the time allowed for the first byte, the TLS handshake and
    /// the inner byte (default [`HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accepts connections until the returned future is dropped (which also
    /// closes every connection it accepted). Accept errors (for example too
    /// many open files) are logged and retried after a short pause.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(permit) = self.limiter.accept(peer.ip()) else {
                        // Consul's words; the stream is closed on drop.
                        tracing::error!(
                            conn = %format_args!("from={peer}"),
                            limit = self.limiter.max(),
                            "rejecting RPC conn from because rpc_max_conns_per_client exceeded"
                        );
                        continue;
                    };
                    let server = self.clone();
                    connections.spawn(async move {
                        // Refusals and failures are logged where they happen.
                        let _ = server.handle_connection(stream, peer).await;
                        drop(permit);
                    });
                }
                Err(err) => {
                    tracing::error!(error = %err, "failed to accept RPC conn");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Runs one connection to its end: first byte, policy, optional TLS,
    /// then the msgpack-RPC stream. Returns why it ended early (a refusal
    /// is [`RpcError::Refused`] with Consul's reason); a client closing the
    /// stream between requests is `Ok`.
    pub async fn handle_connection(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<(), RpcError> {
        let _ = stream.set_nodelay(true);
        let Some(byte) = self.first_byte(&mut stream, peer, "first byte").await? else {
            return Ok(());
        };
        let policy = self.tls.current();
        match policy.accept(byte, false, &peer) {
            Accept::Serve(RpcType::Consul) => self.serve_rpc(stream, peer).await,
            Accept::Serve(other) => Err(unsupported(peer, other.byte())),
            Accept::StartInsecureTls => Err(unsupported(peer, RpcType::TlsInsecure.byte())),
            Accept::Refuse(refusal) => Err(RpcError::Refused { addr: peer, refusal }),
            Accept::StartTls => {
                let config = policy
                    .server_config()
                    .map_err(|source| RpcError::Tls { addr: peer, source })?;
                let handshake = TlsAcceptor::from(config).accept(stream).into_fallible();
                let mut tls = match tokio::time::timeout(self.handshake_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err((err, stream))) => {
                        let err = io_error(peer, err);
                        // Consul reads the inner byte through crypto/tls, so a failed
                        // handshake surfaces as this read's error.
                        tracing::error!(conn = %format_args!("from={peer}"), error = %err, "failed to read byte");
                        linger(stream).await;
                        return Err(err);
                    }
                    Err(_) => {
                        let err = RpcError::Timeout { addr: peer, what: "TLS handshake".into() };
                        tracing::error!(conn = %format_args!("from={peer}"), error = %err, "failed to read byte");
                        return Err(err);
                    }
                };
                let Some(inner) = self.first_byte(&mut tls, peer, "inner byte").await? else {
                    return Ok(());
                };
                match policy.accept(inner, true, &peer) {
                    Accept::Serve(RpcType::Consul) => self.serve_rpc(tls, peer).await,
                    Accept::Serve(other) => Err(unsupported(peer, other.byte())),
                    Accept::Refuse(refusal) => Err(RpcError::Refused { addr: peer, refusal }),
                    Accept::StartTls | Accept::StartInsecureTls => {
                        Err(RpcError::Refused { addr: peer, refusal: Refusal::NestedTls })
                    }
                }
            }
        }
    }

    /// Reads one type byte within the handshake timeout; `None` on a clean
    /// close (not logged, as in Consul).
    async fn first_byte<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        what: &str,
    ) -> Result<Option<u8>, RpcError> {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(self.handshake_timeout, stream.read(&mut byte)).await {
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(_)) => Ok(Some(byte[0])),
            Ok(Err(err)) => {
                let err = io_error(peer, err);
                tracing::error!(conn = %format_args!("from={peer}"), error = %err, "failed to read byte");
                Err(err)
            }
            Err(_) => {
                let err = RpcError::Timeout { addr: peer, what: what.to_owned() };
                tracing::error!(conn = %format_args!("from={peer}"), error = %err, "failed to read byte");
                Err(err)
            }
        }
    }

    /// Serves requests one after the other until the client closes.
    async fn serve_rpc<S>(&self, stream: S, peer: SocketAddr) -> Result<(), RpcError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut reader = FrameReader::with_limit(stream, MAX_REQUEST);
        loop {
            let header = match read(&mut reader, peer).await? {
                Some(v) => v,
                None => return Ok(()),
            };
            let header = RequestHeader::from_value(&header).map_err(|source| {
                tracing::error!(conn = %format_args!("from={peer}"), error = %source, "rpc: bad request header");
                RpcError::Protocol { addr: peer, source }
            })?;
            let Some(body) = read(&mut reader, peer).await? else {
                return Err(RpcError::Closed { addr: peer });
            };
            let (error, reply) = match self.dispatch(&header.service_method, body).await {
                Ok(reply) => (String::new(), reply),
                // net/rpc sends `struct{}{}` as the body of an error response.
                Err(message) => (message, Value::Map(Vec::new())),
            };
            let response =
                ResponseHeader { service_method: header.service_method, seq: header.seq, error };
            let bytes = message(&response.to_value(), &reply);
            let out = reader.get_mut();
            out.write_all(&bytes).await.map_err(|e| io_error(peer, e))?;
            out.flush().await.map_err(|e| io_error(peer, e))?;
        }
    }

    /// Runs one method; `Err` is the text sent back in the response header.
    async fn dispatch(&self, method: &str, body: Value) -> Result<Value, String> {
        let Some((service, name)) = method.rsplit_once('.') else {
            return Err(format!("rpc: service/method request ill-formed: {method}"));
        };
        match (service, name) {
            // Consul: `func (s *Status) Ping(args struct{}, reply *struct{}) error`.
            ("Status", "Ping") => Ok(Value::Map(Vec::new())),
            ("Internal", "KeyringOperation") => {
                let request = keyring::request_from_value(&body)?;
                let response = self.cluster.key_operation(request).await;
                Ok(keyring::responses_to_value(std::slice::from_ref(&response)))
            }
            ("Status" | "Internal", _) => Err(format!("rpc: can't find method {method}")),
            _ => Err(format!("rpc: can't find service {method}")),
        }
    }
}

/// The largest request header or argument a server reads (a keyring
/// request is under 1 KiB): a client cannot make a server buffer and decode
/// megabytes (decoded msgpack takes up to 40 times its wire size).
pub const MAX_REQUEST: usize = 64 * 1024;

/// How long a refused TLS connection is drained after the alert.
const LINGER: Duration = Duration::from_secs(1);

/// Closes a connection whose TLS handshake failed without losing the alert
/// already sent: in TLS 1.3 the client finishes first and may have written
/// its request by now, and closing a socket with unread input resets it,
/// which can discard the alert before the client reads it (the client then
/// sees "broken pipe" instead of, say, `CertificateRequired`). So: send
/// FIN, read and drop what the client sent until it closes or [`LINGER`]
/// passes, then close.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

fn unsupported(peer: SocketAddr, byte: u8) -> RpcError {
    let err = RpcError::Unsupported { addr: peer, byte };
    tracing::error!(conn = %format_args!("from={peer}"), byte, "{err}");
    err
}

async fn read<S: AsyncRead + Unpin>(
    reader: &mut FrameReader<S>,
    peer: SocketAddr,
) -> Result<Option<Value>, RpcError> {
    match reader.read_value().await {
        Ok(v) => Ok(v),
        Err(ReadError::Io(e)) => Err(io_error(peer, e)),
        Err(ReadError::Codec(source)) => {
            tracing::error!(conn = %format_args!("from={peer}"), error = %source, "rpc: bad request");
            Err(RpcError::Protocol { addr: peer, source })
        }
    }
}
