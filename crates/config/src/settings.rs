//! The resolved settings handed to the agent: plain types, no serde, no
//! knowledge of Consul's file shape.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use consul_sec_gossip_crypto::{GossipSecurity, Keyring, SecretKey};
use consul_sec_tls_policy::TlsPolicy;

/// Everything the configuration resolves to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Agent identity, addresses, ports and joining.
    pub agent: AgentSettings,
    /// Gossip encryption (`encrypt`, `encrypt_verify_*`, `disable_keyring_file`).
    pub gossip: GossipSettings,
    /// The TLS policy of each listener, after `tls.defaults` inheritance.
    pub tls: TlsSettings,
}

/// Agent settings other than TLS and gossip encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentSettings {
    /// `datacenter`, lower-cased (default `dc1`).
    pub datacenter: String,
    /// `domain` (default `consul`).
    pub domain: String,
    /// `node_name` (default: the host name).
    pub node_name: String,
    /// `node_meta`: the last source with a non-empty map wins (Consul's map rule).
    pub node_meta: BTreeMap<String, String>,
    /// `data_dir`; required unless `-dev`.
    pub data_dir: Option<PathBuf>,
    /// `-dev` mode.
    pub dev: bool,
    /// `server`.
    pub server: bool,
    /// `bootstrap_expect` (0: not set).
    pub bootstrap_expect: u32,
    /// `bind_addr` (default `0.0.0.0`).
    pub bind_addr: IpAddr,
    /// `advertise_addr`; `None` means "derived from `bind_addr`".
    pub advertise_addr: Option<IpAddr>,
    /// `client_addr`: one or more addresses separated by spaces (default `127.0.0.1`).
    pub client_addr: Vec<IpAddr>,
    /// `ports`.
    pub ports: Ports,
    /// `limits`.
    pub limits: Limits,
    /// `retry_join`, concatenated over all sources.
    pub retry_join: Vec<String>,
    /// `start_join`, concatenated over all sources.
    pub start_join: Vec<String>,
    /// `log_level` (default `info`).
    pub log_level: LogLevel,
}

/// The `ports` block. `None` means the listener is disabled (Consul writes -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ports {
    /// `ports.http` (default 8500).
    pub http: Option<u16>,
    /// `ports.https` (default off).
    pub https: Option<u16>,
    /// `ports.dns` (default 8600).
    pub dns: Option<u16>,
    /// `ports.grpc` (default off).
    pub grpc: Option<u16>,
    /// `ports.grpc_tls` (default off).
    pub grpc_tls: Option<u16>,
    /// `ports.serf_lan` (default 8301; cannot be disabled).
    pub serf_lan: u16,
    /// `ports.serf_wan` (default 8302).
    pub serf_wan: Option<u16>,
    /// `ports.server`, the RPC port (default 8300; cannot be disabled).
    pub server: u16,
}

/// The `limits` block: connections allowed per client IP address at once
/// (0: no limit). Both apply again on a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `limits.http_max_conns_per_client` (default 200), HTTP and HTTPS API.
    pub http_max_conns_per_client: u32,
    /// `limits.rpc_max_conns_per_client` (default 100), the RPC port.
    pub rpc_max_conns_per_client: u32,
}

/// `log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `err` / `error`
    Error,
}

impl LogLevel {
    /// The lower-case name (`info`, ...), usable as a tracing filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "err" | "error" => Ok(LogLevel::Error),
            _ => Err(format!(
                "invalid log level {s:?}, expected one of trace, debug, info, warn, err"
            )),
        }
    }
}

/// Gossip encryption settings (Consul's `encrypt`, `encrypt_verify_incoming`,
/// `encrypt_verify_outgoing`, `disable_keyring_file`).
///
/// The key only seeds the keyring files (or the in-memory ring with
/// `disable_keyring_file`); the agent builds the keyring. `Debug` never
/// shows the key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GossipSettings {
    /// The `encrypt` key, already checked (standard base64, 16/24/32 bytes).
    pub encrypt: Option<SecretKey>,
    /// `encrypt_verify_incoming` (default true): drop gossip that is not encrypted.
    pub encrypt_verify_incoming: bool,
    /// `encrypt_verify_outgoing` (default true): encrypt what is sent when a key is known.
    pub encrypt_verify_outgoing: bool,
    /// `disable_keyring_file` (default false, true with `-dev`).
    pub disable_keyring_file: bool,
}

impl GossipSettings {
    /// The memberlist security settings for `keyring` (which the agent
    /// builds from the keyring files or from [`encrypt`](Self::encrypt)),
    /// with this configuration's verify flags.
    pub fn security(&self, keyring: Keyring) -> GossipSecurity {
        let mut security = GossipSecurity::new(keyring);
        security.verify_incoming = self.encrypt_verify_incoming;
        security.verify_outgoing = self.encrypt_verify_outgoing;
        security
    }
}

/// The TLS policy of each listener, computed as Consul 1.12+ does from
/// `tls.defaults` and the protocol stanza (the flat keys already mapped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// `tls.internal_rpc`: the RPC port (server) and outgoing RPC. Its
    /// `verify_outgoing` is already true when `verify_server_hostname` is.
    pub internal_rpc: TlsPolicy,
    /// `tls.https`: the HTTPS API listener (`ports.https`).
    pub https: TlsPolicy,
    /// `tls.grpc`: the gRPC-TLS listener. `verify_outgoing` is always false.
    pub grpc: TlsPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_carries_the_verify_flags() {
        let key = SecretKey::from_base64("DnAjdcjDHvDvwdSNKWmEvg==").unwrap();
        let settings = GossipSettings {
            encrypt: Some(key.clone()),
            encrypt_verify_incoming: false,
            encrypt_verify_outgoing: true,
            disable_keyring_file: false,
        };
        let security = settings.security(Keyring::new([], Some(key)).unwrap());
        assert!(!security.verify_incoming && security.verify_outgoing);
        assert!(security.encryption_enabled());
    }

    #[test]
    fn log_levels() {
        assert_eq!("ERR".parse::<LogLevel>(), Ok(LogLevel::Error));
        assert_eq!("info".parse::<LogLevel>(), Ok(LogLevel::Info));
        assert!("loud".parse::<LogLevel>().unwrap_err().contains("\"loud\""));
    }
}
