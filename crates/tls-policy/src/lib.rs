//! Consul's TLS options turned into rustls configurations with Consul's
//! `verify_*` semantics.
//!
//! A [`TlsPolicy`] holds the options of Consul's `tls.internal_rpc` stanza
//! (after inheritance from `tls.defaults`). [`TlsPolicy::load`] reads the CA,
//! certificate and key files, applies Consul's rules and builds an
//! `Arc<rustls::ServerConfig>` and `Arc<rustls::ClientConfig>` once
//! ([`LoadedPolicy`]). [`TlsConfigurator`] swaps policies atomically on
//! reload, [`classify`]/[`accept`] implement the RPC port's first-byte
//! multiplexing, and [`inspect_certificate`] reports what a certificate
//! holds and whether it fits a role.
//!
//! Consul behaviour reproduced:
//! * `verify_incoming`: client certificates are required and must chain to
//!   the CA and carry the clientAuth EKU (or no EKU extension, as in Go);
//!   plaintext RPC is refused and logged as
//!   `Non-TLS connection attempted with VerifyIncoming set`.
//! * `verify_outgoing`: dials write `0x03` and verify the server's chain,
//!   but not its name ([`DangerousChainOnlyVerifier`]).
//! * `verify_server_hostname`: implies `verify_outgoing` (the
//!   CVE-2018-19653 fix) and requires `server.<dc being dialled>.<domain>`
//!   among the DNS SANs; the subject CN is never used.
//! * `ca_file` wins over `ca_path`; `ca_path` is walked recursively.
//!
//! # The verify_* matrix (internal RPC)
//!
//! | setting | incoming (server) | outgoing (dial) |
//! | --- | --- | --- |
//! | nothing, or only CA/cert/key files | plaintext and `0x03` TLS both accepted; no client certificate asked for | plaintext |
//! | `verify_outgoing` | unchanged | `0x03` + TLS; chain verified against the CA, name not checked; needs a CA |
//! | `verify_server_hostname` | unchanged | as `verify_outgoing` (implied) plus `server.<dc dialled>.<domain>` in the DNS SANs; SNI sent |
//! | `verify_incoming` | plaintext refused; TLS requires a client certificate from the CA with clientAuth (or no EKU extension); needs a CA and a certificate | unchanged |
//!
//! Moving a running cluster to TLS without downtime (Consul's procedure):
//! give servers `ca_file`/`cert_file`/`key_file` (they now accept both
//! plaintext and TLS), then turn on `verify_outgoing` and
//! `verify_server_hostname` everywhere (all RPC now uses TLS), then turn on
//! `verify_incoming` on servers one at a time (plaintext is now refused).
//! [`TlsConfigurator::reload`] applies each step without a restart.
//!
//! What it does not do: sockets, timeouts and async I/O (the agent owns
//! those; this crate has no tokio), TLS 1.0/1.1 and the CBC cipher suites
//! (rustls does not implement them), AutoTLS/auto-encrypt, native TLS with
//! ALPN on the RPC port, and the Raft server-to-server authorisation of
//! Consul's CVE-2021-37219 fix. Every configuration is built with one crypto
//! provider, ring ([`crypto_provider`]); the process default is never used.
//!
//! # Example
//!
//! ```
//! use consul_sec_tls_policy::{Accept, Outgoing, RpcType, TlsPolicy};
//!
//! // No TLS settings: plaintext and TLS upgrades are both accepted, dials are plaintext.
//! let loaded = TlsPolicy::default().load()?;
//! assert_eq!(loaded.accept(0x04, false, &"10.0.0.2:51234"), Accept::Serve(RpcType::MultiplexV2));
//! assert!(matches!(loaded.outgoing("dc2")?, Outgoing::Plaintext));
//!
//! // verify_server_hostname alone turns outgoing verification on, and needs a CA.
//! let policy = TlsPolicy { verify_server_hostname: true, ..TlsPolicy::default() };
//! assert!(policy.verify_outgoing_effective());
//! let err = policy.load().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "verify_outgoing: set (implied by verify_server_hostname) but no CA certificates were provided (set ca_file or ca_path)"
//! );
//! # Ok::<(), consul_sec_tls_policy::Error>(())
//! ```
#![warn(missing_docs)]

mod error;
mod files;
mod inspect;
mod loaded;
mod policy;
mod reload;
mod rpc;
mod verify;

pub use error::{Error, handshake_error};
pub use files::{load_ca_file, load_ca_path, load_certified_key, load_certs, load_private_key};
pub use inspect::{
    CertificateReport, EXPIRY_WARNING, InspectOptions, Problem, Role, inspect_certificate,
    inspect_certificate_file,
};
pub use loaded::{LoadedPolicy, Warning};
pub use policy::{
    ConsulCipherSuite, DEFAULT_DATACENTER, DEFAULT_DOMAIN, TlsPolicy, TlsVersion, server_name,
};
pub use reload::TlsConfigurator;
pub use rpc::{Accept, FirstByte, Outgoing, Refusal, RpcType, accept, classify};
pub use verify::{DangerousChainOnlyVerifier, DangerousNoServerVerification};

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The one crypto provider (ring) every configuration and verifier in
/// consul-sec is built with. The process-default provider is never consulted.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
