//! Consul's RPC port multiplexing by first byte, and the TLS rules applied to it.
//!
//! Consul's RPC port (8300) carries several protocols; the first byte of a
//! connection says which. `0x03` means "a TLS handshake follows", after
//! which a second type byte is read inside TLS. With `verify_incoming` a
//! connection that does not start TLS is refused; without it plaintext and
//! TLS are accepted side by side, which is what lets a running cluster move
//! to TLS without downtime.

use std::fmt;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::ServerName;

use crate::{Error, LoadedPolicy, handshake_error};

/// Consul's RPC type bytes (`agent/pool` `RPCType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RpcType {
    /// `0x00` RPCConsul: one msgpack-RPC stream.
    Consul = 0x00,
    /// `0x01` RPCRaft: hand-off to the Raft transport.
    Raft = 0x01,
    /// `0x02` RPCMultiplex: the old muxado multiplexer, no longer served.
    Multiplex = 0x02,
    /// `0x03` RPCTLS: a TLS handshake follows, then another type byte inside TLS.
    Tls = 0x03,
    /// `0x04` RPCMultiplexV2: a yamux session of msgpack-RPC streams.
    MultiplexV2 = 0x04,
    /// `0x05` RPCSnapshot: snapshot save/restore streaming.
    Snapshot = 0x05,
    /// `0x06` RPCGossip: Enterprise network-area gossip.
    Gossip = 0x06,
    /// `0x07` RPCTLSInsecure: TLS without client certificate verification and
    /// no inner byte; serves only auto-encrypt/auto-config bootstrap calls.
    TlsInsecure = 0x07,
    /// `0x08` RPCGRPC: internal gRPC.
    Grpc = 0x08,
    /// `0x09` RPCRaftForwarding.
    RaftForwarding = 0x09,
}

impl RpcType {
    /// The wire byte.
    pub fn byte(self) -> u8 {
        self as u8
    }
}

/// What a first byte is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstByte {
    /// One of Consul's RPC type bytes (0x00..=0x09).
    Rpc(RpcType),
    /// A TLS record content type (20..=23, e.g. 0x16 for a ClientHello): native
    /// TLS with ALPN, which Consul uses for mesh-gateway federation and
    /// consul-sec does not serve. Values 0–19 are never TLS (RFC 7983).
    TlsRecord(u8),
    /// Anything else.
    Unknown(u8),
}

/// Classifies the first byte of an RPC connection.
pub fn classify(byte: u8) -> FirstByte {
    use RpcType::*;
    let rpc = match byte {
        0x00 => Consul,
        0x01 => Raft,
        0x02 => Multiplex,
        0x03 => Tls,
        0x04 => MultiplexV2,
        0x05 => Snapshot,
        0x06 => Gossip,
        0x07 => TlsInsecure,
        0x08 => Grpc,
        0x09 => RaftForwarding,
        20..=23 => return FirstByte::TlsRecord(byte),
        other => return FirstByte::Unknown(other),
    };
    FirstByte::Rpc(rpc)
}

/// What the server does with a connection after reading one type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Serve this protocol on the stream as it is (plaintext, or inside TLS).
    Serve(RpcType),
    /// `0x03`: run a TLS handshake with [`LoadedPolicy::server_config`], then
    /// read the next type byte inside TLS (with `inside_tls = true`).
    StartTls,
    /// `0x07`: run a TLS handshake **without** client certificate
    /// verification ([`LoadedPolicy::insecure_server_config`]); no inner
    /// byte follows; serve only the auto-encrypt bootstrap endpoints.
    StartInsecureTls,
    /// Close the connection without writing anything.
    Refuse(Refusal),
}

/// Why a connection was refused; `Display` is Consul's log message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `verify_incoming` is set and the connection did not start TLS.
    NonTlsWithVerifyIncoming,
    /// `0x03` arrived inside a TLS connection.
    NestedTls,
    /// `0x03`/`0x07` arrived but no server certificate is configured.
    TlsNotConfigured,
    /// A byte that is no RPC type consul-sec serves.
    Unrecognized(u8),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonTlsWithVerifyIncoming => {
                f.write_str("Non-TLS connection attempted with VerifyIncoming set")
            }
            Self::NestedTls => {
                f.write_str("TLS connection attempting to establish inner TLS connection")
            }
            Self::TlsNotConfigured => {
                f.write_str("TLS connection attempted, server not configured for TLS")
            }
            Self::Unrecognized(b) => write!(f, "unrecognized RPC byte {b}"),
        }
    }
}

/// Consul's accept rule for one type byte, logging refusals as Consul does.
///
/// * With `verify_incoming`, outside TLS, any byte other than `0x03`/`0x07`
///   is refused and logged at WARN as exactly
///   `Non-TLS connection attempted with VerifyIncoming set` (field `conn` =
///   `from=<peer>`), before the byte is even interpreted.
/// * `0x03` inside TLS is refused (ERROR
///   `TLS connection attempting to establish inner TLS connection`).
/// * Unknown bytes, `0x02` and native TLS records are refused (ERROR
///   `unrecognized RPC byte`).
/// * Without `verify_incoming`, plaintext protocols and `0x03` are both accepted.
pub fn accept(
    byte: u8,
    verify_incoming: bool,
    inside_tls: bool,
    peer: &dyn fmt::Display,
) -> Accept {
    let decision = decide(byte, verify_incoming, inside_tls);
    if let Accept::Refuse(refusal) = decision {
        match refusal {
            Refusal::NonTlsWithVerifyIncoming | Refusal::TlsNotConfigured => {
                tracing::warn!(conn = %format_args!("from={peer}"), "{refusal}");
            }
            Refusal::Unrecognized(b) => {
                tracing::error!(conn = %format_args!("from={peer}"), byte = b, "unrecognized RPC byte");
            }
            Refusal::NestedTls => tracing::error!(conn = %format_args!("from={peer}"), "{refusal}"),
        }
    }
    decision
}

fn decide(byte: u8, verify_incoming: bool, inside_tls: bool) -> Accept {
    let is_tls_start = byte == RpcType::Tls.byte() || byte == RpcType::TlsInsecure.byte();
    if verify_incoming && !inside_tls && !is_tls_start {
        return Accept::Refuse(Refusal::NonTlsWithVerifyIncoming);
    }
    match classify(byte) {
        FirstByte::Rpc(RpcType::Tls) if inside_tls => Accept::Refuse(Refusal::NestedTls),
        FirstByte::Rpc(RpcType::Tls) => Accept::StartTls,
        FirstByte::Rpc(RpcType::TlsInsecure) if inside_tls => Accept::Refuse(Refusal::NestedTls),
        FirstByte::Rpc(RpcType::TlsInsecure) => Accept::StartInsecureTls,
        FirstByte::Rpc(RpcType::Multiplex) => Accept::Refuse(Refusal::Unrecognized(byte)),
        FirstByte::Rpc(t) => Accept::Serve(t),
        FirstByte::TlsRecord(b) | FirstByte::Unknown(b) => Accept::Refuse(Refusal::Unrecognized(b)),
    }
}

impl LoadedPolicy {
    /// [`accept`] under this policy's `verify_incoming`; a TLS upgrade with
    /// no server certificate is refused (`TLS connection attempted, server
    /// not configured for TLS`).
    pub fn accept(&self, byte: u8, inside_tls: bool, peer: &dyn fmt::Display) -> Accept {
        let decision = accept(byte, self.policy().verify_incoming, inside_tls, peer);
        match decision {
            Accept::StartTls | Accept::StartInsecureTls if self.server_config().is_err() => {
                let refusal = Refusal::TlsNotConfigured;
                tracing::warn!(conn = %format_args!("from={peer}"), "{refusal}");
                Accept::Refuse(refusal)
            }
            other => other,
        }
    }

    /// How to dial a server of `target_dc`: TLS (write `0x03`, then a TLS
    /// client handshake for `server.<target_dc>.<domain>`) exactly when
    /// outgoing verification is effective, plaintext otherwise.
    pub fn outgoing(&self, target_dc: &str) -> Result<Outgoing, Error> {
        if !self.verify_outgoing_effective() {
            return Ok(Outgoing::Plaintext);
        }
        Ok(Outgoing::Tls {
            server_name: self.server_name_for(target_dc)?,
            config: self.client_config(),
        })
    }
}

/// The dialling side's decision for one connection.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// Write the type byte directly; no TLS.
    Plaintext,
    /// Write `0x03`, then run TLS with `config` for `server_name`, then write
    /// the type byte inside TLS.
    Tls {
        /// `server.<target dc>.<domain>`; checked against the certificate
        /// only with `verify_server_hostname`.
        server_name: ServerName<'static>,
        /// The outgoing configuration.
        config: Arc<ClientConfig>,
    },
}

impl Outgoing {
    /// The byte to write before anything else (`Some(0x03)` for TLS).
    pub fn prefix_byte(&self) -> Option<u8> {
        match self {
            Self::Plaintext => None,
            Self::Tls { .. } => Some(RpcType::Tls.byte()),
        }
    }

    /// A rustls client connection for the TLS case (`None` for plaintext).
    pub fn client_connection(&self) -> Result<Option<ClientConnection>, Error> {
        match self {
            Self::Plaintext => Ok(None),
            Self::Tls { server_name, config } => {
                ClientConnection::new(config.clone(), server_name.clone())
                    .map(Some)
                    .map_err(handshake_error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_every_byte() {
        for b in 0u8..=9 {
            match classify(b) {
                FirstByte::Rpc(t) => assert_eq!(t.byte(), b),
                other => panic!("{b}: {other:?}"),
            }
        }
        assert_eq!(classify(0x16), FirstByte::TlsRecord(0x16));
        assert_eq!(classify(0x0a), FirstByte::Unknown(0x0a));
        assert_eq!(classify(0xff), FirstByte::Unknown(0xff));
    }

    #[test]
    fn nested_and_unknown_refused() {
        assert_eq!(decide(0x03, true, true), Accept::Refuse(Refusal::NestedTls));
        assert_eq!(decide(0x02, false, false), Accept::Refuse(Refusal::Unrecognized(2)));
        // With verify_incoming, 0x02 outside TLS is a non-TLS attempt first (Consul's order).
        assert_eq!(decide(0x02, true, false), Accept::Refuse(Refusal::NonTlsWithVerifyIncoming));
        assert_eq!(decide(0x04, true, true), Accept::Serve(RpcType::MultiplexV2));
        assert_eq!(decide(0x07, true, false), Accept::StartInsecureTls);
    }
}
