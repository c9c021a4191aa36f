//! Consul's server RPC port: first-byte multiplexing, msgpack-RPC and the
//! internal TLS policy in force, plus the client side with a small
//! connection pool.
//!
//! The server ([`RpcServer`]) reads one type byte per connection and applies
//! `consul-sec-tls-policy`'s accept rule: `0x00` (RPCConsul) is served as one
//! stream of msgpack-RPC requests in the framing of Go's `net/rpc` with
//! hashicorp's msgpack codec; `0x03` runs a TLS handshake with the incoming
//! configuration in force and reads the inner type byte; under
//! `verify_incoming` anything that does not start TLS is closed without a
//! reply and logged at WARN as `Non-TLS connection attempted with
//! VerifyIncoming set` (field `conn` = `from=<peer>`). Methods served:
//! `Status.Ping` and `Internal.KeyringOperation` (over the agent's
//! [`Cluster`](crate::cluster::Cluster)); anything else gets `net/rpc`'s
//! `rpc: can't find service <name>` / `rpc: can't find method <name>`.
//!
//! The client ([`RpcClient`]) dials as Consul does: `0x03` then a TLS
//! handshake for `server.<dc>.<domain>` exactly when outgoing verification
//! is on, plaintext otherwise, then the inner byte `0x00`; idle connections
//! are kept per server and reused. [`ForwardToServers`] makes a client
//! agent's keyring operations run on a server over RPC.
//!
//! Not done: yamux (`0x04`), Raft (`0x01`), snapshots, gRPC and the insecure
//! auto-encrypt TLS (`0x07`) are recognised but closed; there is no Raft and
//! no catalog, so only the two methods above exist.
//!
//! ```no_run
//! use std::sync::Arc;
//! use consul_sec_agent::cluster::LocalCluster;
//! use consul_sec_agent::rpc::{PoolConfig, RpcClient, RpcServer};
//! use consul_sec_tls_policy::{TlsConfigurator, TlsPolicy};
//! # async fn demo(cluster: LocalCluster) -> Result<(), Box<dyn std::error::Error>> {
//! let tls = Arc::new(TlsConfigurator::new(&TlsPolicy::default())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Arc::new(RpcServer::new(tls.clone(), cluster));
//! tokio::spawn(server.serve(listener));
//! let client = RpcClient::new(tls, PoolConfig::default());
//! client.ping(addr).await?;
//! # Ok(()) }
//! ```

mod client;
pub mod codec;
mod forward;
mod keyring;
mod server;

use std::io;
use std::net::SocketAddr;

pub use client::{CallReport, PoolConfig, RpcClient};
pub use codec::CodecError;
pub use forward::{ForwardToServers, NO_SERVERS, server_addresses};
pub use server::{HANDSHAKE_TIMEOUT, MAX_REQUEST, RpcServer};

pub use consul_sec_tls_policy::Refusal;

/// Everything that can go wrong on either end of an RPC connection.
///
/// Messages name the peer address first. TLS failures carry
/// `consul-sec-tls-policy`'s explanation (unknown issuer, name mismatch,
/// missing client certificate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The TCP connection to a server could not be made.
    #[error("{addr}: cannot connect: {source}")]
    Dial {
        /// The server address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Something took longer than allowed.
    #[error("{addr}: timed out during {what}")]
    Timeout {
        /// The peer address.
        addr: SocketAddr,
        /// What was running (`connect`, `call Status.Ping`, `first byte`, ...).
        what: String,
    },
    /// The TLS handshake (or a TLS alert right after it) failed.
    #[error("{addr}: {source}")]
    Tls {
        /// The peer address.
        addr: SocketAddr,
        /// The policy's explanation of the failure.
        #[source]
        source: consul_sec_tls_policy::Error,
    },
    /// Reading or writing the connection failed.
    #[error("{addr}: connection error: {source}")]
    Io {
        /// The peer address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A new plaintext connection was closed before any answer: what a
    /// server under `verify_incoming` does to plaintext RPC.
    #[error(
        "{addr}: the server closed the plaintext RPC connection without answering; \
         it may require TLS (verify_incoming): dial it with verify_outgoing and a client certificate"
    )]
    PlaintextRefused {
        /// The server address.
        addr: SocketAddr,
    },
    /// The peer closed the connection before answering.
    #[error("{addr}: connection closed by the peer")]
    Closed {
        /// The peer address.
        addr: SocketAddr,
    },
    /// The peer sent bytes that are not msgpack-RPC.
    #[error("{addr}: bad msgpack-RPC message: {source}")]
    Protocol {
        /// The peer address.
        addr: SocketAddr,
        /// What was wrong.
        #[source]
        source: CodecError,
    },
    /// A response answered another request than the one sent.
    #[error("{addr}: response sequence {got} does not match request {sent}")]
    Sequence {
        /// The peer address.
        addr: SocketAddr,
        /// The request's sequence number.
        sent: u64,
        /// The response's sequence number.
        got: u64,
    },
    /// The server answered the call with an error (`net/rpc`'s `Error` header).
    #[error("{method}: rpc error: {message}")]
    Remote {
        /// The method called.
        method: String,
        /// The server's error text.
        message: String,
    },
    /// The server refused the connection by its first byte (server side only).
    #[error("{addr}: {refusal}")]
    Refused {
        /// The peer address.
        addr: SocketAddr,
        /// Why; the text is Consul's log message.
        refusal: Refusal,
    },
    /// A connection asked for a protocol consul-sec recognises but does not serve.
    #[error("{addr}: RPC type byte 0x{byte:02x} is not served by consul-sec")]
    Unsupported {
        /// The peer address.
        addr: SocketAddr,
        /// The type byte.
        byte: u8,
    },
}

/// Maps an I/O error of a TLS stream: rustls errors become [`RpcError::Tls`].
pub(crate) fn io_error(addr: SocketAddr, err: io::Error) -> RpcError {
    let tls = err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned();
    match tls {
        Some(e) => RpcError::Tls { addr, source: consul_sec_tls_policy::handshake_error(e) },
        None if err.kind() == io::ErrorKind::UnexpectedEof => RpcError::Closed { addr },
        None => RpcError::Io { addr, source: err },
    }
}
