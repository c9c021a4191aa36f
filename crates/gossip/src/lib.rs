//! Gossip membership with no I/O: SWIM with Lifeguard-style suspicion as
//! HashiCorp memberlist 0.2.2 runs it, and the serf 0.9.4 layer on top
//! (tags in node meta, Lamport clocks, join/leave intents, user events,
//! queries and the internal key-management queries).
//!
//! A [`Node`] owns no socket and reads no clock. Its shape follows
//! quinn-proto: feed it datagrams with [`Node::handle_packet`], inbound TCP
//! stream messages with [`Node::handle_stream`], replies to the streams it
//! asked for with [`Node::handle_stream_response`] and the passage of time
//! with [`Node::handle_timeout`]; take out datagrams and stream requests with
//! [`Node::poll_transmit`], the next deadline with [`Node::poll_timeout`] and
//! membership/query events with [`Node::poll_event`]. Every packet and
//! stream passes through `consul-sec-gossip-crypto`'s [`GossipSecurity`]
//! (keyring plus the verify flags), and the key queries
//! (`_serf_install-key`, `_serf_use-key`, `_serf_remove-key`,
//! `_serf_list-keys`) change that keyring. When a probe's direct ping goes
//! unanswered, the node sends indirect pings and, as memberlist does, a TCP
//! fallback ping: a [`Transmit::Stream`] whose reply goes back in through
//! [`Node::handle_stream_response`].
//!
//! What it does not do: sockets, timers and keyring files (the agent crate
//! does those; keyring writes come back in through [`KeyringSaver`]),
//! Lifeguard's awareness score (probe intervals are fixed), serf snapshots,
//! network coordinates, application-level queries (only serf's internal
//! `_serf_*` queries are answered), and tag-filter regular expressions (a
//! query with a regex tag filter is only answered when the expression is a
//! literal).
//!
//! ```
//! use std::time::Instant;
//! use consul_sec_gossip::{Config, Node, Transmit};
//!
//! let now = Instant::now();
//! let mut a = Node::new(Config::new("a", "127.0.0.1:7946".parse().unwrap()), now);
//! // Joining sends a push/pull over TCP to the seed.
//! let ids = a.join(now, &["127.0.0.1:7947".parse().unwrap()]);
//! assert_eq!(ids.len(), 1);
//! assert!(matches!(a.poll_transmit(), Some(Transmit::Stream { .. })));
//! assert_eq!(a.members().len(), 1);
//! ```
#![warn(missing_docs)]

mod config;
mod node;
mod serf;

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use config::{Config, KeyringSaver, Timing};
pub use consul_sec_gossip_crypto::GossipSecurity;
pub use node::{Node, VSN};

/// Identifies an outbound stream exchange the node asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Something the node wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// One UDP datagram.
    Packet {
        /// Destination.
        to: SocketAddr,
        /// The datagram, already sealed if encryption is on.
        bytes: Vec<u8>,
    },
    /// Open a TCP connection, write `bytes`, and (when `expects_reply`) read
    /// one stream message back and hand it to [`Node::handle_stream_response`].
    Stream {
        /// Which exchange this is.
        id: StreamId,
        /// Destination.
        to: SocketAddr,
        /// The request, already framed and sealed.
        bytes: Vec<u8>,
        /// Whether a reply message is expected.
        expects_reply: bool,
    },
}

/// A serf member's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberStatus {
    /// Alive (or suspected, which serf still shows as alive).
    Alive,
    /// A leave intent was received; the member is going away.
    Leaving,
    /// Left gracefully.
    Left,
    /// Declared dead by failure detection.
    Failed,
}

impl MemberStatus {
    /// The word `serf members` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Leaving => "leaving",
            Self::Left => "left",
            Self::Failed => "failed",
        }
    }
}

/// A member as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// serf tags.
    pub tags: BTreeMap<String, String>,
    /// serf status.
    pub status: MemberStatus,
    /// memberlist incarnation.
    pub incarnation: u32,
    /// `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub vsn: Vec<u8>,
}

/// A keyring operation run on every member through serf's internal queries.
///
/// `Debug` and `Display` never show the key bytes, and they are zeroized
/// when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// `_serf_install-key`.
    Install(Vec<u8>),
    /// `_serf_use-key`.
    Use(Vec<u8>),
    /// `_serf_remove-key`.
    Remove(Vec<u8>),
    /// `_serf_list-keys`.
    List,
}

impl KeyOp {
    /// The serf query name.
    pub fn query_name(&self) -> &'static str {
        match self {
            Self::Install(_) => "_serf_install-key",
            Self::Use(_) => "_serf_use-key",
            Self::Remove(_) => "_serf_remove-key",
            Self::List => "_serf_list-keys",
        }
    }
}

// Key bytes must not reach logs.
impl std::fmt::Display for KeyOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.query_name())
    }
}

// Only the key's length, never its bytes.
impl std::fmt::Debug for KeyOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, key) = match self {
            Self::Install(k) => ("Install", k),
            Self::Use(k) => ("Use", k),
            Self::Remove(k) => ("Remove", k),
            Self::List => return f.write_str("List"),
        };
        write!(f, "{name}(<redacted {}-byte key>)", key.len())
    }
}

impl Drop for KeyOp {
    fn drop(&mut self) {
        if let Self::Install(k) | Self::Use(k) | Self::Remove(k) = self {
            zeroize::Zeroize::zeroize(k);
        }
    }
}

/// The aggregated answers to a key query (serf's `KeyResponse`).
///
/// `Debug` shows how many keys were reported, never the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyQueryResult {
    /// Live members (alive + suspect, self included) when the query was sent.
    pub num_nodes: usize,
    /// Responses received.
    pub num_resp: usize,
    /// Responses reporting failure.
    pub num_err: usize,
    /// Per-node messages (failures, and warnings from successful nodes).
    pub messages: BTreeMap<String, String>,
    /// Base64 key → number of nodes holding it (list only).
    pub keys: BTreeMap<String, usize>,
    /// Base64 primary key → number of nodes using it (list only).
    pub primary_keys: BTreeMap<String, usize>,
}

// The base64 keys must not reach logs: only how many there are.
impl std::fmt::Debug for KeyQueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |n: usize| format!("<{n} redacted>");
        f.debug_struct("KeyQueryResult")
            .field("num_nodes", &self.num_nodes)
            .field("num_resp", &self.num_resp)
            .field("num_err", &self.num_err)
            .field("messages", &self.messages)
            .field("keys", &format_args!("{}", redacted(self.keys.len())))
            .field("primary_keys", &format_args!("{}", redacted(self.primary_keys.len())))
            .finish()
    }
}

impl KeyQueryResult {
    /// serf's verdict: failures first, then missing responses.
    pub fn outcome(&self) -> Result<(), String> {
        if self.num_err != 0 {
            return Err(format!("{}/{} nodes reported failure", self.num_err, self.num_nodes));
        }
        if self.num_resp != self.num_nodes {
            return Err(format!("{}/{} nodes reported success", self.num_resp, self.num_nodes));
        }
        Ok(())
    }
}

/// Identifies a query this node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId {
    /// Query clock value.
    pub ltime: u64,
    /// Random id.
    pub id: u32,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member joined (or came back).
    MemberJoin(Member),
    /// A member's tags or address changed.
    MemberUpdate(Member),
    /// A member left gracefully.
    MemberLeft(Member),
    /// A member was declared failed.
    MemberFailed(Member),
    /// A user event arrived.
    UserEvent {
        /// Event name.
        name: String,
        /// Event payload.
        payload: Vec<u8>,
        /// Event clock.
        ltime: u64,
    },
    /// A key query this node started has finished.
    KeyQueryFinished {
        /// Which query.
        id: QueryId,
        /// The operation.
        op: KeyOp,
        /// The aggregated answers.
        result: KeyQueryResult,
    },
    /// The local keyring changed through a key query (already handed to
    /// [`Config::keyring_saver`], if any).
    KeyringChanged,
}

/// Everything that can go wrong in the membership core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stream reply from `addr` could not be opened (wrong key, no key,
    /// plaintext where encryption is required, ...).
    #[error("{addr}: {source}")]
    Security {
        /// The peer.
        addr: SocketAddr,
        /// What the security layer reported.
        #[source]
        source: consul_sec_gossip_crypto::Error,
    },
    /// A message from `addr` could not be decoded.
    #[error("{addr}: {source}")]
    Decode {
        /// The peer.
        addr: SocketAddr,
        /// What the decoder reported.
        #[source]
        source: consul_sec_gossip_wire::Error,
    },
    /// The remote node answered with an error message.
    #[error("{addr}: remote node reported: {message}")]
    Remote {
        /// The peer.
        addr: SocketAddr,
        /// Its error text.
        message: String,
    },
    /// The transport could not complete the exchange.
    #[error("{addr}: {message}")]
    Transport {
        /// The peer.
        addr: SocketAddr,
        /// What the transport reported.
        message: String,
    },
    /// The reply was a valid message of the wrong kind.
    #[error("{addr}: unexpected {got} message in reply")]
    UnexpectedReply {
        /// The peer.
        addr: SocketAddr,
        /// The kind of message received.
        got: &'static str,
    },
    /// A stream reply named an exchange the node does not know.
    #[error("stream {0:?}: no such exchange")]
    UnknownStream(StreamId),
    /// The remote push/pull holds a node whose protocol version we cannot speak.
    #[error("{addr}: node {node} speaks an incompatible protocol version")]
    Incompatible {
        /// The peer.
        addr: SocketAddr,
        /// The offending node.
        node: String,
    },
    /// Encoding our own state failed (sealing with the keyring).
    #[error("sealing outgoing message: {0}")]
    Seal(#[source] consul_sec_gossip_crypto::Error),
    /// The tags do not fit memberlist's 512-byte meta limit.
    #[error("tags: encoded size {size} exceeds the 512-byte meta limit")]
    TagsTooLarge {
        /// Encoded size.
        size: usize,
    },
}
