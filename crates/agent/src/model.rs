//! The JSON shapes of Consul's HTTP API that the agent serves and the CLI
//! reads: `/v1/agent/members`, `/v1/agent/self` and `/v1/operator/keyring`,
//! plus consul-sec's own `Encryption` section of `/v1/agent/self`
//! ([`EncryptionStatus`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// serf's numeric member status `StatusNone`, as Consul's API sends it.
pub const STATUS_NONE: u8 = 0;
/// serf's `StatusAlive`.
pub const STATUS_ALIVE: u8 = 1;
/// serf's `StatusLeaving`.
pub const STATUS_LEAVING: u8 = 2;
/// serf's `StatusLeft`.
pub const STATUS_LEFT: u8 = 3;
/// serf's `StatusFailed`.
pub const STATUS_FAILED: u8 = 4;

/// The word serf and `consul members` print for a numeric status.
pub fn status_name(status: u8) -> &'static str {
    match status {
        STATUS_ALIVE => "alive",
        STATUS_LEAVING => "leaving",
        STATUS_LEFT => "left",
        STATUS_FAILED => "failed",
        _ => "none",
    }
}

/// One entry of `GET /v1/agent/members` (Consul's `api.AgentMember`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentMember {
    /// Node name.
    pub name: String,
    /// Gossip IP address.
    pub addr: String,
    /// Gossip port.
    pub port: u16,
    /// serf tags (`role`, `dc`, `vsn`, `build`, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// serf status: 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: u8,
    /// memberlist protocol minimum.
    pub protocol_min: u8,
    /// memberlist protocol maximum.
    pub protocol_max: u8,
    /// memberlist protocol in use.
    pub protocol_cur: u8,
    /// serf (delegate) protocol minimum.
    pub delegate_min: u8,
    /// serf (delegate) protocol maximum.
    pub delegate_max: u8,
    /// serf (delegate) protocol in use.
    pub delegate_cur: u8,
}

impl AgentMember {
    /// An alive member at `addr` with `tags`, advertising the protocol
    /// versions consul-sec's gossip speaks ([`consul_sec_gossip::VSN`]).
    pub fn alive(
        name: impl Into<String>,
        addr: SocketAddr,
        tags: BTreeMap<String, String>,
    ) -> Self {
        let [protocol_min, protocol_max, protocol_cur, delegate_min, delegate_max, delegate_cur] =
            consul_sec_gossip::VSN;
        AgentMember {
            name: name.into(),
            addr: addr.ip().to_string(),
            port: addr.port(),
            tags,
            status: STATUS_ALIVE,
            protocol_min,
            protocol_max,
            protocol_cur,
            delegate_min,
            delegate_max,
            delegate_cur,
        }
    }
}

/// The `Config` object of `GET /v1/agent/self` (the subset consul-sec knows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SelfConfig {
    /// `datacenter`.
    pub datacenter: String,
    /// `primary_datacenter` (the datacenter itself: consul-sec has no WAN).
    pub primary_datacenter: String,
    /// `node_name`.
    pub node_name: String,
    /// Node ID (empty: consul-sec has no catalog).
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// `server`.
    pub server: bool,
    /// The consul-sec version.
    pub version: String,
    /// Build revision (empty).
    pub revision: String,
}

/// `GET /v1/agent/self`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentSelf {
    /// The agent's configuration summary.
    pub config: SelfConfig,
    /// The agent's own member entry.
    pub member: AgentMember,
    /// Consul's `Stats`: per subsystem, string values. consul-sec fills
    /// `serf_lan.encrypted` (`"true"`/`"false"`), as Consul does.
    #[serde(default)]
    pub stats: BTreeMap<String, BTreeMap<String, String>>,
    /// consul-sec's own: gossip encryption and TLS as in force now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionStatus>,
}

/// The `Encryption` section of `/v1/agent/self` (consul-sec's own, not
/// Consul's): what protects gossip and each TLS listener/dialler right now.
/// Never holds key material: only counts, flags and certificate metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionStatus {
    /// The LAN gossip pool.
    pub gossip: GossipStatus,
    /// TLS per protocol.
    #[serde(rename = "TLS")]
    pub tls: TlsStatus,
}

/// Gossip encryption of the LAN pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GossipStatus {
    /// The keyring holds at least one key, so gossip can be encrypted.
    pub enabled: bool,
    /// `encrypt_verify_incoming`: unencrypted gossip is dropped.
    pub verify_incoming: bool,
    /// `encrypt_verify_outgoing`: gossip is sent encrypted.
    pub verify_outgoing: bool,
    /// How many keys the keyring holds (the keys themselves are never shown).
    pub num_keys: usize,
}

/// TLS of each protocol; `None` (JSON `null`) where the agent has no such
/// listener or dialler (HTTPS without `ports.https`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsStatus {
    /// `tls.internal_rpc`: the RPC port (servers) and outgoing RPC.
    #[serde(rename = "InternalRPC")]
    pub internal_rpc: Option<TlsProtocolStatus>,
    /// `tls.https`: the `ports.https` listener.
    #[serde(rename = "HTTPS")]
    pub https: Option<TlsProtocolStatus>,
}

/// The TLS policy in force for one protocol, with its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TlsProtocolStatus {
    /// A CA or a certificate is configured (TLS can be spoken at all).
    pub configured: bool,
    /// Client certificates are required; plaintext RPC is refused.
    pub verify_incoming: bool,
    /// Outgoing connections use TLS and verify the server's chain
    /// (effective: true when `verify_server_hostname` implies it).
    pub verify_outgoing: bool,
    /// Outgoing RPC also checks `server.<dc>.<domain>`.
    pub verify_server_hostname: bool,
    /// Lowest TLS version accepted (`TLSv1_2`, `TLSv1_3`).
    #[serde(rename = "TLSMinVersion")]
    pub tls_min_version: String,
    /// How many CA certificates peers are verified against.
    #[serde(rename = "CACertificates")]
    pub ca_certificates: usize,
    /// The certificate this agent presents; `None` without `cert_file`.
    pub certificate: Option<CertificateStatus>,
    /// Why the certificate could not be inspected, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect_error: Option<String>,
}

/// The loaded certificate: who it names, how long it is valid, and what
/// the tls-policy inspection found wrong with it for this agent's role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateStatus {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS subject alternative names.
    #[serde(rename = "DNSNames")]
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    #[serde(rename = "IPAddresses")]
    pub ip_addresses: Vec<String>,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days until `NotAfter` (negative once expired).
    pub days_left: i64,
    /// The role it was judged for: `server` or `client`.
    pub role: String,
    /// Everything wrong with it for the role (empty: it fits), including
    /// expiry within 30 days.
    pub problems: Vec<CertificateProblem>,
}

/// One problem found by the inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateProblem {
    /// `Expired`, `NotYetValid`, `ExpiresSoon`, `MissingEku`,
    /// `MissingServerName` or `KeyMismatch`.
    pub kind: String,
    /// The problem in words (`expires within 9 days`).
    pub message: String,
}

/// One pool's answer to a keyring operation (Consul's
/// `structs.KeyringResponse`), as `/v1/operator/keyring` lists it.
///
/// `Debug` shows only how many keys there are: the keys are secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct KeyringResponse {
    /// Whether this is the WAN pool (always false: consul-sec runs LAN gossip only).
    #[serde(rename = "WAN")]
    pub wan: bool,
    /// The datacenter of the pool.
    pub datacenter: String,
    /// Network segment (empty).
    #[serde(default)]
    pub segment: String,
    /// Per-node messages: failures, and warnings from nodes that succeeded.
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
    /// Base64 key to the number of nodes holding it (list only).
    #[serde(default)]
    pub keys: BTreeMap<String, usize>,
    /// Base64 primary key to the number of nodes using it (list only).
    #[serde(default)]
    pub primary_keys: BTreeMap<String, usize>,
    /// Live nodes asked.
    pub num_nodes: usize,
    /// The aggregate failure (`<k>/<n> nodes reported failure`); not part of
    /// the JSON, the API turns it into an error response.
    #[serde(skip)]
    pub error: Option<String>,
}

impl fmt::Debug for KeyringResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringResponse")
            .field("wan", &self.wan)
            .field("datacenter", &self.datacenter)
            .field("segment", &self.segment)
            .field("messages", &self.messages)
            .field("keys", &format_args!("<{} keys>", self.keys.len()))
            .field("primary_keys", &format_args!("<{} keys>", self.primary_keys.len()))
            .field("num_nodes", &self.num_nodes)
            .field("error", &self.error)
            .finish()
    }
}

impl KeyringResponse {
    /// The pool's name as Consul prints it: `<dc> (LAN)` or `WAN`, with a
    /// ` [<segment>]` suffix when there is a segment.
    pub fn pool_name(&self) -> String {
        let mut name =
            if self.wan { "WAN".to_owned() } else { format!("{} (LAN)", self.datacenter) };
        if !self.segment.is_empty() {
            name.push_str(&format!(" [{}]", self.segment));
        }
        name
    }
}

/// The body of `POST|PUT|DELETE /v1/operator/keyring`: `{"Key": "<base64>"}`.
///
/// Decoding follows Go's encoding/json, which Consul's handler uses: the
/// field name matches in any letter case (`key`, `KEY`), other fields are
/// ignored, a missing `Key` is the empty string, and a repeated one counts
/// last.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct KeyringRequest {
    /// The key, standard base64.
    #[serde(rename = "Key")]
    pub key: String,
}

impl<'de> Deserialize<'de> for KeyringRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = KeyringRequest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an object like {"Key": "<base64>"}"#)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut request = KeyringRequest { key: String::new() };
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if name.eq_ignore_ascii_case("key") {
                        // Assigning drops (and so wipes) an earlier value.
                        request = KeyringRequest { key: map.next_value()? };
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(request)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl Drop for KeyringRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl fmt::Debug for KeyringRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyringRequest { key: <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_response_json_is_consuls_and_debug_hides_keys() {
        let response = KeyringResponse {
            datacenter: "dc1".into(),
            keys: [("c2VjcmV0c2VjcmV0c2VjcmV0Cg==".to_owned(), 2)].into(),
            primary_keys: [("c2VjcmV0c2VjcmV0c2VjcmV0Cg==".to_owned(), 2)].into(),
            num_nodes: 2,
            error: Some("x".into()),
            ..Default::default()
        };
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"WAN": false, "Datacenter": "dc1", "Segment": "", "Messages": {},
                "Keys": {"c2VjcmV0c2VjcmV0c2VjcmV0Cg==": 2},
                "PrimaryKeys": {"c2VjcmV0c2VjcmV0c2VjcmV0Cg==": 2}, "NumNodes": 2})
        );
        let debug = format!("{response:?}");
        assert!(!debug.contains("c2Vj"), "{debug}");
        assert_eq!(response.pool_name(), "dc1 (LAN)");
        assert!(!format!("{:?}", KeyringRequest { key: "c2Vj".into() }).contains("c2Vj"));
    }

    /// Go's encoding/json rules, as Consul decodes the keyring body.
    #[test]
    fn keyring_request_decodes_as_go() {
        let key = |json: &str| serde_json::from_str::<KeyringRequest>(json).map(|r| r.key.clone());
        assert_eq!(key(r#"{"Key": "a"}"#).unwrap(), "a");
        assert_eq!(key(r#"{"key": "a"}"#).unwrap(), "a");
        assert_eq!(key(r#"{"KEY": "a", "Other": [1, {"x": 2}]}"#).unwrap(), "a");
        assert_eq!(key(r#"{"Key": "a", "key": "b"}"#).unwrap(), "b");
        assert_eq!(key(r#"{"Keys": "a"}"#).unwrap(), "");
        assert_eq!(key("{}").unwrap(), "");
        // A JSON-escaped field name is still matched.
        assert_eq!(key(r#"{"K\u0065y": "a"}"#).unwrap(), "a");
        let err = key(r#"{"Key": 5}"#).unwrap_err().to_string();
        assert!(err.starts_with("invalid type: integer `5`, expected a string"), "{err}");
        let err = key(r#""a""#).unwrap_err().to_string();
        assert!(err.starts_with(r#"invalid type: string "a", expected an object like"#), "{err}");
        assert_eq!(
            serde_json::to_string(&KeyringRequest { key: "a".into() }).unwrap(),
            r#"{"Key":"a"}"#
        );
    }
}
