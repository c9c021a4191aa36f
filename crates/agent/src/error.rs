//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the agent library.
///
/// No variant carries key material: gossip keys are only ever named by
/// their role ("the `encrypt` key"), never echoed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Keyring setup at start failed (Consul: `Failed to configure keyring`):
    /// the keyring file is unreadable or invalid, or cannot be created.
    #[error("Failed to configure keyring: {0}")]
    KeyringSetup(consul_sec_gossip_crypto::Error),
    /// The keyring file is to be kept but there is no `data_dir` to keep it in.
    #[error("data_dir: required to keep the keyring file (set data_dir, or disable_keyring_file)")]
    NoDataDir,
    /// The `serf` directory under `data_dir` cannot be created.
    #[error("{}: cannot create keyring directory", path.display())]
    KeyringDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A key operation changed the keyring in memory but the file could not
    /// be written (serf: `Failed to write keyring file`).
    #[error("Failed to write keyring file: {0}")]
    KeyringWrite(consul_sec_gossip_crypto::Error),
    /// A key operation was refused by the keyring (memberlist's rules, e.g.
    /// `removing the primary key is not allowed`).
    #[error("{0}")]
    KeyOperation(consul_sec_gossip_crypto::Error),
    /// A key operation reached a node whose encryption is off
    /// (serf: `No keyring to modify (encryption not enabled)`).
    #[error("No keyring to modify (encryption not enabled)")]
    NoKeyring,
    /// The data directory is locked by another running agent.
    #[error(
        "{}: data_dir is in use by another consul-sec agent{}; stop it or pick another -data-dir",
        path.display(),
        holder.as_deref().map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    DataDirLocked {
        /// The lock file.
        path: PathBuf,
        /// The process id written in the lock file, when readable.
        holder: Option<String>,
    },
    /// The data directory or its lock file cannot be created or locked.
    #[error("{}: cannot lock data_dir", path.display())]
    DataDirLock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A listener could not be bound.
    #[error("{what} {addr}: cannot listen")]
    Bind {
        /// Which listener (`HTTP`, `HTTPS`, ...).
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The HTTPS listener's TLS configuration could not be built.
    #[error("tls.https: {0}")]
    Tls(consul_sec_tls_policy::Error),
    /// `ports.https` is on but `tls.https` has no certificate to serve.
    #[error(
        "ports.https is {port} but tls.https has no cert_file and key_file: an HTTPS listener needs a certificate (set tls.https or tls.defaults cert_file and key_file, or turn ports.https off)"
    )]
    HttpsWithoutCertificate {
        /// The configured HTTPS port.
        port: u16,
    },
    /// The internal RPC TLS configuration (RPC port and outgoing RPC) could not be built.
    #[error("tls.internal_rpc: {0}")]
    RpcTls(consul_sec_tls_policy::Error),
    /// Creating the async runtime, installing signal handlers or logging failed.
    #[error("{what}")]
    Runtime {
        /// What was being set up.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An HTTP API request could not be sent or its answer not read.
    #[error("{addr}: {message}")]
    Http {
        /// The agent address dialled.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The HTTP API answered with an error status
    /// (Consul's client: `Unexpected response code: <code> (<body>)`).
    #[error("Unexpected response code: {status} ({body})")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The response body, trimmed.
        body: String,
    },
    /// The configuration did not load (every error, Consul's multi-error form).
    #[error("{0}")]
    Config(consul_sec_config::LoadFailure),
    /// The gossip node could not start.
    #[error("Failed to start gossip: {0}")]
    Gossip(crate::transport::GossipError),
    /// `-join` / `start_join`: no address answered (Consul: `Failed to join`).
    #[error("Failed to join {addresses}: {message}")]
    Join {
        /// The addresses tried.
        addresses: String,
        /// Why each failed.
        message: String,
    },
    /// Client-side TLS settings for the HTTP API are unusable.
    #[error("{0}")]
    ClientTls(String),
}
