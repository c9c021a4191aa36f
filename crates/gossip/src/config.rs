//! Node settings: identity, tags, timing and security.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use consul_sec_gossip_crypto::{GossipSecurity, Keyring};

/// memberlist's timing knobs (section 4.11 of the wire notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Time between probes of one node (`ProbeInterval`).
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others (`ProbeTimeout`).
    pub probe_timeout: Duration,
    /// Time between gossip rounds (`GossipInterval`).
    pub gossip_interval: Duration,
    /// Nodes gossiped to per round (`GossipNodes`).
    pub gossip_nodes: usize,
    /// Peers asked to probe indirectly (`IndirectChecks`).
    pub indirect_checks: usize,
    /// Broadcast retransmit multiplier (`RetransmitMult`).
    pub retransmit_mult: u32,
    /// Suspicion timeout multiplier (`SuspicionMult`).
    pub suspicion_mult: u32,
    /// Upper bound of the suspicion timeout as a multiple of the lower
    /// (`SuspicionMaxTimeoutMult`).
    pub suspicion_max_timeout_mult: u32,
    /// Anti-entropy push/pull interval (`PushPullInterval`); zero disables it.
    pub push_pull_interval: Duration,
    /// How long dead nodes are still gossiped to and remembered
    /// (`GossipToTheDeadTime`).
    pub gossip_to_the_dead_time: Duration,
    /// serf's `QueryTimeoutMult`.
    pub query_timeout_mult: u32,
    /// How often serf tries to rejoin one failed member (`ReconnectInterval`);
    /// zero disables it.
    pub reconnect_interval: Duration,
}

impl Timing {
    /// memberlist's `DefaultLANConfig` values, which the serf agent uses.
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            push_pull_interval: Duration::from_secs(30),
            gossip_to_the_dead_time: Duration::from_secs(30),
            query_timeout_mult: 16,
            reconnect_interval: Duration::from_secs(30),
        }
    }

    /// memberlist's `DefaultLocalConfig` values (fast loopback clusters).
    pub fn local() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            gossip_interval: Duration::from_millis(100),
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            push_pull_interval: Duration::from_secs(15),
            gossip_to_the_dead_time: Duration::from_secs(15),
            ..Self::lan()
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self::lan()
    }
}

/// Persists the keyring after a key query changed it. serf rewrites its
/// keyring file before it answers, and a failed write turns the answer into
/// a failure carrying the error text; the node does the same through this
/// hook (the only outside call the core makes, so it stays free of I/O
/// types).
#[derive(Clone)]
pub struct KeyringSaver(Arc<SaveFn>);

/// The saver's function: `Err` carries the text the key query reports.
type SaveFn = dyn Fn(&Keyring) -> Result<(), String> + Send + Sync;

impl KeyringSaver {
    /// Wraps a function that writes the keyring somewhere durable.
    pub fn new(save: impl Fn(&Keyring) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(save))
    }

    /// Runs the hook.
    pub fn save(&self, keyring: &Keyring) -> Result<(), String> {
        (self.0)(keyring)
    }
}

impl std::fmt::Debug for KeyringSaver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyringSaver(..)")
    }
}

/// Everything a [`Node`](crate::Node) needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's unique name.
    pub name: String,
    /// The address other nodes reach us at (UDP and TCP on the same port).
    pub advertise: SocketAddr,
    /// serf tags, announced in node meta.
    pub tags: BTreeMap<String, String>,
    /// Protocol timing.
    pub timing: Timing,
    /// Keyring and verify flags.
    pub security: GossipSecurity,
    /// LZW-compress outgoing streams, as memberlist does by default.
    pub compress_streams: bool,
    /// Seed for the node's random choices (probe order, gossip targets, ids).
    pub rng_seed: u64,
    /// Called after every keyring change made by a key query, before the
    /// answer is sent; `None` keeps the keyring in memory only.
    pub keyring_saver: Option<KeyringSaver>,
}

impl Config {
    /// A config with LAN timing, no tags, no encryption and stream
    /// compression on.
    pub fn new(name: impl Into<String>, advertise: SocketAddr) -> Self {
        Self {
            name: name.into(),
            advertise,
            tags: BTreeMap::new(),
            timing: Timing::lan(),
            security: GossipSecurity::default(),
            compress_streams: true,
            rng_seed: 0,
            keyring_saver: None,
        }
    }
}
