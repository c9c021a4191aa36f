//! The memberlist half of the node: probing, suspicion, gossip, push/pull.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use consul_sec_gossip_wire::serf::{decode_tags, encode_tags};
use consul_sec_gossip_wire::{
    Ack, Alive, Dead, ErrResp, IndirectPing, Message, Nack, NodeStateKind, Ping, PushNodeState,
    PushPull, StreamMessage, Suspect, decode_packet, decode_stream_message, encode_compound,
    encode_message, encode_stream_message, ip_from_bytes, ip_to_bytes,
};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};

use crate::serf::SerfState;
use crate::{Config, Error, Event, Member, MemberStatus, StreamId, Transmit};

/// The versions a node advertises, in memberlist's `vsn` order: memberlist
/// protocol 1..5 speaking 2, serf delegate protocol 2..5 speaking 5 (what a
/// serf 0.9.4 agent sends).
pub const VSN: [u8; 6] = [1, 5, 2, 2, 5, 5];

/// How long a failed or left member is kept before it is forgotten (serf's
/// `ReconnectTimeout` and `TombstoneTimeout` defaults).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// memberlist's UDP packet budget.
const UDP_BUDGET: usize = 1400;
/// Largest encryption overhead (version 0) subtracted from the budget.
const ENCRYPT_OVERHEAD: usize = 45;
/// memberlist's node meta limit.
const META_MAX: usize = 512;

/// memberlist's view of a node's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl State {
    fn kind(self) -> NodeStateKind {
        match self {
            Self::Alive => NodeStateKind::Alive,
            Self::Suspect => NodeStateKind::Suspect,
            Self::Dead => NodeStateKind::Dead,
            Self::Left => NodeStateKind::Left,
        }
    }
}

/// Everything known about one node (memberlist state plus serf status).
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) meta: Vec<u8>,
    pub(crate) incarnation: u32,
    pub(crate) state: State,
    pub(crate) state_change: Instant,
    pub(crate) vsn: Vec<u8>,
    /// memberlist forgot this node (dead for longer than
    /// GossipToTheDeadTime); serf still lists it.
    pub(crate) reaped: bool,
    pub(crate) status: MemberStatus,
}

impl NodeState {
    pub(crate) fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr,
            tags: decode_tags(&self.meta).unwrap_or_default(),
            status: self.status,
            incarnation: self.incarnation,
            vsn: self.vsn.clone(),
        }
    }

    fn live(&self) -> bool {
        !self.reaped && matches!(self.state, State::Alive | State::Suspect)
    }

    fn pmax(&self) -> u8 {
        self.vsn.get(1).copied().unwrap_or(0)
    }
}

struct Suspicion {
    start: Instant,
    min: Duration,
    max: Duration,
    k: u32,
    confirmations: HashSet<String>,
    deadline: Instant,
}

impl Suspicion {
    /// Whether `k` confirmations besides the first accuser have arrived
    /// (memberlist stops counting there).
    fn confirmed(&self) -> bool {
        self.confirmations.len().saturating_sub(1) >= self.k as usize
    }

    /// Lifeguard's shrinking timeout: each independent confirmation moves
    /// the deadline from `max` towards `min` on a log scale.
    fn recompute(&mut self) {
        let c = self.confirmations.len().saturating_sub(1) as f64;
        let timeout = if self.k < 1 {
            self.min
        } else {
            let frac = (c + 1.0).ln() / (f64::from(self.k) + 1.0).ln();
            let span = self.max.saturating_sub(self.min).as_secs_f64();
            let t = self.max.as_secs_f64() - frac * span;
            Duration::from_secs_f64(t.max(self.min.as_secs_f64()))
        };
        self.deadline = self.start + timeout;
    }
}

struct Probe {
    target: String,
    seq: u32,
    indirect_at: Instant,
    end_at: Instant,
    indirect_sent: bool,
}

enum AckWait {
    Probe,
    Relay { requester: SocketAddr, seq: u32, nack_at: Option<Instant>, expires: Instant },
}

struct Broadcast {
    /// memberlist broadcasts about a node replace older ones about it;
    /// serf's messages (intents, events, queries) name no node.
    about: Option<String>,
    msg: Vec<u8>,
    transmits: u32,
    /// Queue order: newer broadcasts go first within a transmit tier.
    id: u64,
}

impl Broadcast {
    /// memberlist's queue order: fewest transmits first, then the largest
    /// message, then the newest.
    fn order(&self) -> (u32, std::cmp::Reverse<usize>, std::cmp::Reverse<u64>) {
        (self.transmits, std::cmp::Reverse(self.msg.len()), std::cmp::Reverse(self.id))
    }
}

#[derive(Debug, Clone, Copy)]
enum StreamOp {
    Join(SocketAddr),
    PushPull(SocketAddr),
    /// memberlist's TCP fallback ping for the probe with this sequence number.
    Ping(SocketAddr, u32),
}

impl StreamOp {
    fn addr(self) -> SocketAddr {
        match self {
            Self::Join(a) | Self::PushPull(a) | Self::Ping(a, _) => a,
        }
    }
}

/// A gossip node: memberlist membership plus the serf layer, with no I/O.
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) rng: StdRng,
    pub(crate) incarnation: u32,
    pub(crate) meta: Vec<u8>,
    // Ordered maps: iteration order feeds gossip target and probe choices,
    // so with `rng_seed` a node behaves the same in every run.
    pub(crate) nodes: BTreeMap<String, NodeState>,
    probe_order: Vec<String>,
    probe_idx: usize,
    probe: Option<Probe>,
    seq: u32,
    acks: BTreeMap<u32, AckWait>,
    suspicions: BTreeMap<String, Suspicion>,
    /// memberlist's own queue (alive, suspect, dead).
    broadcasts: Vec<Broadcast>,
    /// serf's queue (intents, user events, queries), sent in the room the
    /// memberlist messages leave, as serf's delegate does.
    user_broadcasts: Vec<Broadcast>,
    next_broadcast_id: u64,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    next_reconnect: Instant,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    next_stream: u64,
    streams: BTreeMap<StreamId, StreamOp>,
    pub(crate) leaving: bool,
    pub(crate) serf: SerfState,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.cfg.name)
            .field("incarnation", &self.incarnation)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Creates a node that knows only itself. Tags whose encoding exceeds
    /// memberlist's 512-byte meta limit are dropped (see [`Node::try_new`]).
    pub fn new(cfg: Config, now: Instant) -> Self {
        let mut meta = encode_tags(&cfg.tags);
        if meta.len() > META_MAX {
            meta = encode_tags(&BTreeMap::new());
        }
        Self::build(cfg, meta, now)
    }

    /// Creates a node, refusing tags that do not fit in node meta.
    pub fn try_new(cfg: Config, now: Instant) -> Result<Self, Error> {
        let meta = encode_tags(&cfg.tags);
        if meta.len() > META_MAX {
            return Err(Error::TagsTooLarge { size: meta.len() });
        }
        Ok(Self::build(cfg, meta, now))
    }

    fn build(cfg: Config, meta: Vec<u8>, now: Instant) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.rng_seed);
        let me = NodeState {
            name: cfg.name.clone(),
            addr: cfg.advertise,
            meta: meta.clone(),
            incarnation: 1,
            state: State::Alive,
            state_change: now,
            vsn: VSN.to_vec(),
            reaped: false,
            status: MemberStatus::Alive,
        };
        let stagger = |rng: &mut StdRng, d: Duration| d.mul_f64(rng.random_range(0.0..1.0));
        let t = &cfg.timing;
        let next_probe = now + stagger(&mut rng, t.probe_interval);
        let next_gossip = now + stagger(&mut rng, t.gossip_interval);
        let next_push_pull = now + stagger(&mut rng, t.push_pull_interval);
        let next_reconnect = now + t.reconnect_interval;
        let mut node = Self {
            nodes: BTreeMap::from([(cfg.name.clone(), me)]),
            cfg,
            rng,
            incarnation: 1,
            meta,
            probe_order: Vec::new(),
            probe_idx: 0,
            probe: None,
            seq: 0,
            acks: BTreeMap::new(),
            suspicions: BTreeMap::new(),
            broadcasts: Vec::new(),
            user_broadcasts: Vec::new(),
            next_broadcast_id: 0,
            next_probe,
            next_gossip,
            next_push_pull,
            next_reconnect,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_stream: 0,
            streams: BTreeMap::new(),
            leaving: false,
            serf: SerfState::new(),
        };
        // memberlist queues the node's own alive at start-up, so a joiner
        // announces itself directly to the members it just learned about.
        let me = node.cfg.name.clone();
        let alive = node.self_alive();
        node.queue_broadcast(Some(me), alive);
        node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The node's current incarnation number.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The security settings (keyring handle and verify flags).
    pub fn security(&self) -> &consul_sec_gossip_crypto::GossipSecurity {
        &self.cfg.security
    }

    /// Every member serf knows, self included, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        let mut v: Vec<Member> = self.nodes.values().map(NodeState::member).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Number of live (alive or suspect) members, self included.
    pub fn num_live(&self) -> usize {
        self.nodes.values().filter(|n| n.live()).count()
    }

    /// The next datagram or stream to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.leaving {
            return self.serf.next_deadline();
        }
        let mut t = self.next_probe.min(self.next_gossip);
        if !self.cfg.timing.push_pull_interval.is_zero() {
            t = t.min(self.next_push_pull);
        }
        if !self.cfg.timing.reconnect_interval.is_zero() {
            t = t.min(self.next_reconnect);
        }
        if let Some(p) = &self.probe {
            t = t.min(if p.indirect_sent { p.end_at } else { p.indirect_at });
        }
        for a in self.acks.values() {
            if let AckWait::Relay { nack_at, expires, .. } = a {
                t = t.min(nack_at.unwrap_or(*expires));
            }
        }
        for s in self.suspicions.values() {
            t = t.min(s.deadline);
        }
        if let Some(q) = self.serf.next_deadline() {
            t = t.min(q);
        }
        Some(t)
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.serf_timeouts(now);
        if self.leaving {
            return;
        }
        self.probe_timeouts(now);
        if now >= self.next_probe {
            self.next_probe = now + self.cfg.timing.probe_interval;
            self.start_probe(now);
        }
        let mut expired = Vec::new();
        self.acks.retain(|_, a| match a {
            AckWait::Probe => true,
            AckWait::Relay { requester, seq, nack_at, expires } => {
                if let Some(at) = *nack_at
                    && now >= at
                {
                    expired.push((*requester, *seq));
                    *nack_at = None;
                }
                now < *expires
            }
        });
        for (to, seq) in expired {
            self.send_msg(to, &encode_message(&Message::Nack(Nack { seq_no: seq })));
        }
        let due: Vec<String> = self
            .suspicions
            .iter()
            .filter(|(_, s)| now >= s.deadline)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.suspicions.remove(&name);
            if let Some(st) = self.nodes.get(&name)
                && st.state == State::Suspect
            {
                let d =
                    Dead { incarnation: st.incarnation, node: name, from: self.cfg.name.clone() };
                self.dead_node(now, d);
            }
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.timing.gossip_interval;
            self.gossip(now);
        }
        if !self.cfg.timing.push_pull_interval.is_zero() && now >= self.next_push_pull {
            self.next_push_pull = now + self.push_pull_interval();
            self.periodic_push_pull();
        }
        if !self.cfg.timing.reconnect_interval.is_zero() && now >= self.next_reconnect {
            self.next_reconnect = now + self.cfg.timing.reconnect_interval;
            self.reconnect();
        }
        self.reap(now);
    }

    /// serf's reconnect: try a push/pull join with one random failed member
    /// so that partitions heal.
    fn reconnect(&mut self) {
        let failed: Vec<SocketAddr> = self
            .nodes
            .values()
            .filter(|n| n.status == MemberStatus::Failed)
            .map(|n| n.addr)
            .collect();
        if let Some(&to) = failed.choose(&mut self.rng) {
            self.open_stream(StreamOp::PushPull(to), true);
        }
    }

    fn push_pull_interval(&self) -> Duration {
        // memberlist scales the interval up above 32 nodes.
        let n = self.nodes.len().max(1) as f64;
        let base = self.cfg.timing.push_pull_interval;
        if n <= 32.0 {
            return base;
        }
        let mult = (n.log2() - 32f64.log2()).ceil() + 1.0;
        base.mul_f64(mult)
    }

    fn reap(&mut self, now: Instant) {
        let dead_time = self.cfg.timing.gossip_to_the_dead_time;
        for st in self.nodes.values_mut() {
            if matches!(st.state, State::Dead | State::Left)
                && !st.reaped
                && now.saturating_duration_since(st.state_change) >= dead_time
            {
                st.reaped = true;
            }
        }
        // serf forgets failed members after `reconnect_timeout` and left
        // ones after `tombstone_timeout` (both 24 h by default), so member
        // names from the network do not pile up for ever.
        let me = self.cfg.name.clone();
        let forget: Vec<String> = self
            .nodes
            .values()
            .filter(|st| st.reaped && st.name != me)
            .filter(|st| now.saturating_duration_since(st.state_change) >= FORGET_AFTER)
            .map(|st| st.name.clone())
            .collect();
        for name in forget {
            self.nodes.remove(&name);
            self.suspicions.remove(&name);
            self.forget_serf_member(&name);
        }
        self.prune_unknown_intents();
    }

    // ---- sending -------------------------------------------------------

    pub(crate) fn send_msg(&mut self, to: SocketAddr, msg: &[u8]) {
        match self.cfg.security.encode_packet(msg) {
            Ok(bytes) => self.transmits.push_back(Transmit::Packet { to, bytes }),
            Err(e) => tracing::warn!(%to, error = %e, "cannot seal packet"),
        }
    }

    /// Sends a direct message with as many queued broadcasts piggy-backed
    /// as fit in the UDP budget, like memberlist does for pings and acks.
    fn send_with_piggyback(&mut self, to: SocketAddr, msg: Vec<u8>) {
        let budget = self.packet_budget().saturating_sub(msg.len() + 2);
        let mut extra = self.take_broadcasts(budget);
        if extra.is_empty() {
            self.send_msg(to, &msg);
        } else {
            extra.insert(0, msg);
            let c = encode_compound(&extra);
            self.send_msg(to, &c);
        }
    }

    fn packet_budget(&self) -> usize {
        let overhead = if self.cfg.security.encryption_enabled() { ENCRYPT_OVERHEAD } else { 0 };
        UDP_BUDGET - 3 - overhead
    }

    /// Queues a broadcast: one about a node (memberlist's queue, where it
    /// replaces older news about that node) or, with `about` unset, a serf
    /// message (serf's own queue).
    pub(crate) fn queue_broadcast(&mut self, about: Option<String>, msg: Vec<u8>) {
        let id = self.next_broadcast_id;
        self.next_broadcast_id += 1;
        let queue = if let Some(name) = &about {
            self.broadcasts.retain(|b| b.about.as_ref() != Some(name));
            &mut self.broadcasts
        } else {
            &mut self.user_broadcasts
        };
        queue.push(Broadcast { about, msg, transmits: 0, id });
    }

    fn retransmit_limit(&self) -> u32 {
        let n = self.nodes.values().filter(|n| !n.reaped).count() as f64;
        self.cfg.timing.retransmit_mult * ((n + 1.0).log10().ceil().max(1.0) as u32)
    }

    /// Takes what fits in `budget` bytes: memberlist's messages first, then
    /// serf's in the room left (memberlist asks its delegate last), each
    /// queue in memberlist's order, each taken message counted as one more
    /// transmit and dropped once it reaches the retransmit limit.
    fn take_broadcasts(&mut self, budget: usize) -> Vec<Vec<u8>> {
        let limit = self.retransmit_limit();
        let mut used = 0;
        let mut out = Vec::new();
        for queue in [&mut self.broadcasts, &mut self.user_broadcasts] {
            if queue.is_empty() {
                continue;
            }
            queue.sort_by_key(Broadcast::order);
            for b in queue.iter_mut() {
                if used + b.msg.len() + 2 > budget || out.len() >= 255 {
                    continue;
                }
                used += b.msg.len() + 2;
                b.transmits += 1;
                out.push(b.msg.clone());
            }
            queue.retain(|b| b.transmits < limit);
        }
        out
    }

    fn gossip(&mut self, now: Instant) {
        if self.broadcasts.is_empty() && self.user_broadcasts.is_empty() {
            return;
        }
        let dead_time = self.cfg.timing.gossip_to_the_dead_time;
        let me = self.cfg.name.clone();
        let candidates: Vec<SocketAddr> = self
            .nodes
            .values()
            .filter(|n| n.name != me && !n.reaped)
            .filter(|n| n.live() || now.saturating_duration_since(n.state_change) < dead_time)
            .map(|n| n.addr)
            .collect();
        let targets: Vec<SocketAddr> =
            candidates.sample(&mut self.rng, self.cfg.timing.gossip_nodes).copied().collect();
        let budget = self.packet_budget();
        for to in targets {
            let msgs = self.take_broadcasts(budget);
            match msgs.len() {
                0 => break,
                1 => {
                    let m = msgs.into_iter().next().unwrap_or_default();
                    self.send_msg(to, &m);
                }
                _ => {
                    let c = encode_compound(&msgs);
                    self.send_msg(to, &c);
                }
            }
        }
    }

    fn local_push_pull(&self, join: bool) -> Vec<u8> {
        let states = self
            .nodes
            .values()
            .filter(|n| !n.reaped)
            .map(|n| PushNodeState {
                name: n.name.clone(),
                addr: ip_to_bytes(n.addr.ip()),
                port: n.addr.port(),
                meta: n.meta.clone(),
                incarnation: n.incarnation,
                state: n.state.kind(),
                vsn: n.vsn.clone(),
            })
            .collect();
        let pp = PushPull { join, states, user_state: self.serf_push_pull() };
        encode_stream_message(&StreamMessage::PushPull(pp), self.cfg.compress_streams)
    }

    fn seal_stream(&self, plain: &[u8]) -> Option<Vec<u8>> {
        match self.cfg.security.encode_stream(plain) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "cannot seal stream message");
                None
            }
        }
    }

    fn open_stream(&mut self, op: StreamOp, join: bool) -> Option<StreamId> {
        let bytes = self.seal_stream(&self.local_push_pull(join))?;
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        self.streams.insert(id, op);
        self.transmits.push_back(Transmit::Stream {
            id,
            to: op.addr(),
            bytes,
            expects_reply: true,
        });
        Some(id)
    }

    fn open_ping_stream(&mut self, to: SocketAddr, seq: u32, target: &str) {
        let ping = StreamMessage::Ping(Ping {
            seq_no: seq,
            node: target.to_owned(),
            source_addr: ip_to_bytes(self.cfg.advertise.ip()),
            source_port: self.cfg.advertise.port(),
            source_node: self.cfg.name.clone(),
        });
        let Some(bytes) = self.seal_stream(&encode_stream_message(&ping, false)) else { return };
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        self.streams.insert(id, StreamOp::Ping(to, seq));
        self.transmits.push_back(Transmit::Stream { id, to, bytes, expects_reply: true });
    }

    /// A TCP fallback ping's answer: an ack for the running probe ends it
    /// as a UDP ack would. Anything else only means no ack; it is not an
    /// error of the caller's.
    fn fallback_ping_reply(&mut self, addr: SocketAddr, seq: u32, reply: Result<Vec<u8>, String>) {
        let acked = reply.ok().and_then(|bytes| {
            let plain = self.cfg.security.decode_stream(&bytes).ok()?.into_bytes();
            match decode_stream_message(&plain).ok()? {
                StreamMessage::Ack(a) => Some(a.seq_no == seq),
                _ => Some(false),
            }
        });
        if acked == Some(true) {
            self.acks.remove(&seq);
            if self.probe.as_ref().is_some_and(|p| p.seq == seq) {
                self.probe = None;
            }
        } else {
            tracing::debug!(%addr, seq, "tcp fallback ping got no ack");
        }
    }

    /// Starts joining through each seed address: a push/pull with `Join`
    /// set. Results arrive through [`Node::handle_stream_response`].
    pub fn join(&mut self, _now: Instant, seeds: &[SocketAddr]) -> Vec<StreamId> {
        self.leaving = false;
        seeds.iter().filter_map(|a| self.open_stream(StreamOp::Join(*a), true)).collect()
    }

    fn periodic_push_pull(&mut self) {
        let me = self.cfg.name.clone();
        let peers: Vec<SocketAddr> = self
            .nodes
            .values()
            .filter(|n| n.name != me && n.state == State::Alive && !n.reaped)
            .map(|n| n.addr)
            .collect();
        if let Some(&to) = peers.choose(&mut self.rng) {
            self.open_stream(StreamOp::PushPull(to), false);
        }
    }

    /// Leaves gracefully: a serf leave intent and a memberlist `dead` about
    /// ourselves (`From == Node`), sent directly to every live member and
    /// queued for gossip. After this the node stops probing; keep driving it
    /// for a moment so the messages go out, then drop it.
    pub fn leave(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        let intent = self.serf_leave_intent();
        self.leaving = true;
        let dead = encode_message(&Message::Dead(Dead {
            incarnation: self.incarnation,
            node: self.cfg.name.clone(),
            from: self.cfg.name.clone(),
        }));
        let me = self.cfg.name.clone();
        let peers: Vec<SocketAddr> =
            self.nodes.values().filter(|n| n.name != me && n.live()).map(|n| n.addr).collect();
        for to in peers {
            self.send_msg(to, &intent);
            self.send_msg(to, &dead);
        }
        if let Some(st) = self.nodes.get_mut(&me) {
            st.state = State::Left;
            st.status = MemberStatus::Left;
            st.state_change = now;
        }
    }

    // ---- receiving -----------------------------------------------------

    /// Handles one received UDP datagram. Anything that fails to open or
    /// decode is dropped (and logged at debug level).
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let plain = match self.cfg.security.decode_packet(bytes) {
            Ok(d) => d.into_bytes(),
            Err(e) => {
                tracing::debug!(%from, error = %e, "dropping packet");
                return;
            }
        };
        for msg in decode_packet(&plain) {
            match msg {
                Ok(m) => self.handle_message(now, from, m),
                Err(e) => tracing::debug!(%from, error = %e, "dropping message"),
            }
        }
    }

    fn handle_message(&mut self, now: Instant, from: SocketAddr, msg: Message) {
        match msg {
            Message::Ping(p) => {
                if !p.node.is_empty() && p.node != self.cfg.name {
                    return;
                }
                let to = reply_addr(&p.source_addr, p.source_port).unwrap_or(from);
                let ack = encode_message(&Message::Ack(Ack { seq_no: p.seq_no, payload: None }));
                self.send_with_piggyback(to, ack);
            }
            Message::IndirectPing(ip) => {
                let Some(target) = reply_addr(&ip.target, ip.port) else { return };
                let requester = reply_addr(&ip.source_addr, ip.source_port).unwrap_or(from);
                let seq = self.next_seq();
                let ping = self.ping(seq, &ip.node);
                self.send_msg(target, &ping);
                let timeout = self.cfg.timing.probe_timeout;
                self.acks.insert(
                    seq,
                    AckWait::Relay {
                        requester,
                        seq: ip.seq_no,
                        nack_at: ip.nack.then_some(now + timeout),
                        expires: now + self.cfg.timing.probe_interval,
                    },
                );
            }
            Message::Ack(a) => match self.acks.remove(&a.seq_no) {
                Some(AckWait::Probe) if self.probe.as_ref().is_some_and(|p| p.seq == a.seq_no) => {
                    self.probe = None;
                }
                Some(AckWait::Probe) => {}
                Some(AckWait::Relay { requester, seq, .. }) => {
                    let ack = encode_message(&Message::Ack(Ack { seq_no: seq, payload: None }));
                    self.send_msg(requester, &ack);
                }
                None => {}
            },
            Message::Suspect(s) => self.suspect_node(now, s),
            Message::Alive(a) => self.alive_node(now, a),
            Message::Dead(d) => self.dead_node(now, d),
            Message::User(bytes) => self.handle_user(now, from, &bytes),
            _ => {}
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn ping(&self, seq: u32, target: &str) -> Vec<u8> {
        encode_message(&Message::Ping(Ping {
            seq_no: seq,
            node: target.to_owned(),
            source_addr: ip_to_bytes(self.cfg.advertise.ip()),
            source_port: self.cfg.advertise.port(),
            source_node: self.cfg.name.clone(),
        }))
    }

    /// Handles one inbound TCP stream message (everything the peer sent
    /// before waiting for our answer) and returns the reply to write back,
    /// if any. Failures are answered with memberlist's error message.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<Vec<u8>> {
        let plain = match self.cfg.security.decode_stream(bytes) {
            Ok(d) => d.into_bytes(),
            Err(e) => {
                tracing::debug!(%from, error = %e, "refusing stream");
                return self.err_reply(&e.to_string());
            }
        };
        match decode_stream_message(&plain) {
            Err(e) => self.err_reply(&e.to_string()),
            Ok(StreamMessage::PushPull(pp)) => {
                let reply = self.local_push_pull(pp.join);
                if let Err(e) = self.merge_remote(now, from, &pp) {
                    tracing::debug!(%from, error = %e, "push/pull merge failed");
                }
                self.seal_stream(&reply)
            }
            Ok(StreamMessage::Ping(p)) => {
                if !p.node.is_empty() && p.node != self.cfg.name {
                    return None;
                }
                let ack = StreamMessage::Ack(Ack { seq_no: p.seq_no, payload: None });
                self.seal_stream(&encode_stream_message(&ack, self.cfg.compress_streams))
            }
            Ok(StreamMessage::User(bytes)) => {
                self.handle_user(now, from, &bytes);
                None
            }
            Ok(_) => None,
        }
    }

    fn err_reply(&self, text: &str) -> Option<Vec<u8>> {
        let msg = StreamMessage::Err(ErrResp { error: text.to_owned() });
        self.seal_stream(&encode_stream_message(&msg, self.cfg.compress_streams))
    }

    /// Completes an exchange started by a [`Transmit::Stream`]: `reply` is
    /// the peer's answer, or the transport's error text. A join that fails
    /// leaves the membership untouched and says why.
    pub fn handle_stream_response(
        &mut self,
        now: Instant,
        id: StreamId,
        reply: Result<Vec<u8>, String>,
    ) -> Result<(), Error> {
        let op = self.streams.remove(&id).ok_or(Error::UnknownStream(id))?;
        let addr = op.addr();
        if let StreamOp::Ping(addr, seq) = op {
            self.fallback_ping_reply(addr, seq, reply);
            return Ok(());
        }
        let bytes = reply.map_err(|message| Error::Transport { addr, message })?;
        let plain = self
            .cfg
            .security
            .decode_stream(&bytes)
            .map_err(|source| Error::Security { addr, source })?
            .into_bytes();
        let msg = decode_stream_message(&plain).map_err(|source| Error::Decode { addr, source })?;
        match msg {
            StreamMessage::Err(e) => Err(Error::Remote { addr, message: e.error }),
            StreamMessage::PushPull(pp) => {
                self.merge_remote(now, addr, &pp)?;
                if matches!(op, StreamOp::Join(_)) {
                    self.serf_after_join();
                }
                Ok(())
            }
            StreamMessage::Ping(_) => Err(Error::UnexpectedReply { addr, got: "ping" }),
            StreamMessage::Ack(_) => Err(Error::UnexpectedReply { addr, got: "ack" }),
            StreamMessage::User(_) => Err(Error::UnexpectedReply { addr, got: "user" }),
            _ => Err(Error::UnexpectedReply { addr, got: "unknown" }),
        }
    }

    fn merge_remote(&mut self, now: Instant, addr: SocketAddr, pp: &PushPull) -> Result<(), Error> {
        // memberlist refuses the whole merge when any alive node speaks a
        // protocol outside what everyone understands.
        for s in &pp.states {
            if s.state == NodeStateKind::Alive && s.vsn.len() >= 6 {
                let (pcur, dcur) = (s.vsn[2], s.vsn[5]);
                if !(VSN[0]..=VSN[1]).contains(&pcur) || !(VSN[3]..=VSN[4]).contains(&dcur) {
                    return Err(Error::Incompatible { addr, node: s.name.clone() });
                }
            }
        }
        for s in &pp.states {
            match s.state {
                NodeStateKind::Alive => self.alive_node(
                    now,
                    Alive {
                        incarnation: s.incarnation,
                        node: s.name.clone(),
                        addr: s.addr.clone(),
                        port: s.port,
                        meta: s.meta.clone(),
                        vsn: s.vsn.clone(),
                    },
                ),
                NodeStateKind::Left => self.dead_node(
                    now,
                    Dead { incarnation: s.incarnation, node: s.name.clone(), from: s.name.clone() },
                ),
                // memberlist prefers suspecting over believing a remote
                // "dead" outright.
                NodeStateKind::Dead | NodeStateKind::Suspect => self.suspect_node(
                    now,
                    Suspect {
                        incarnation: s.incarnation,
                        node: s.name.clone(),
                        from: self.cfg.name.clone(),
                    },
                ),
                NodeStateKind::Other(_) => {}
            }
        }
        if !pp.user_state.is_empty() {
            self.serf_merge(now, &pp.user_state);
        }
        Ok(())
    }

    // ---- probing -------------------------------------------------------

    fn start_probe(&mut self, now: Instant) {
        if self.probe.is_some() {
            return;
        }
        let me = self.cfg.name.clone();
        let mut target = None;
        for _ in 0..2 {
            while self.probe_idx < self.probe_order.len() {
                let name = &self.probe_order[self.probe_idx];
                self.probe_idx += 1;
                if self.nodes.get(name).is_some_and(|n| n.live() && n.name != me) {
                    target = Some(name.clone());
                    break;
                }
            }
            if target.is_some() {
                break;
            }
            let mut order: Vec<String> = self
                .nodes
                .values()
                .filter(|n| n.live() && n.name != me)
                .map(|n| n.name.clone())
                .collect();
            order.shuffle(&mut self.rng);
            self.probe_order = order;
            self.probe_idx = 0;
        }
        let Some(target) = target else { return };
        let Some(st) = self.nodes.get(&target) else { return };
        let (addr, inc, suspect) = (st.addr, st.incarnation, st.state == State::Suspect);
        let seq = self.next_seq();
        let ping = self.ping(seq, &target);
        if suspect {
            // Let a suspected node refute right away.
            let s = encode_message(&Message::Suspect(Suspect {
                incarnation: inc,
                node: target.clone(),
                from: me,
            }));
            self.send_msg(addr, &encode_compound(&[ping, s]));
        } else {
            self.send_with_piggyback(addr, ping);
        }
        self.acks.insert(seq, AckWait::Probe);
        let t = &self.cfg.timing;
        self.probe = Some(Probe {
            target,
            seq,
            indirect_at: now + t.probe_timeout,
            end_at: now + t.probe_interval,
            indirect_sent: false,
        });
    }

    fn probe_timeouts(&mut self, now: Instant) {
        let Some(p) = &self.probe else { return };
        if !p.indirect_sent && now >= p.indirect_at {
            let (target, seq) = (p.target.clone(), p.seq);
            if let Some(p) = self.probe.as_mut() {
                p.indirect_sent = true;
            }
            let Some(t) = self.nodes.get(&target) else { return };
            let (taddr, tport) = (ip_to_bytes(t.addr.ip()), t.addr.port());
            // memberlist also pings the target over TCP while the indirect
            // probes run (protocol 3 and up), so lost UDP alone does not
            // make a healthy node suspect.
            let tcp_ping = (t.pmax() >= 3).then_some(t.addr);
            let me = self.cfg.name.clone();
            let peers: Vec<(SocketAddr, bool)> = self
                .nodes
                .values()
                .filter(|n| {
                    n.name != me && n.name != target && n.state == State::Alive && !n.reaped
                })
                .map(|n| (n.addr, n.pmax() >= 4))
                .collect();
            let chosen: Vec<(SocketAddr, bool)> =
                peers.sample(&mut self.rng, self.cfg.timing.indirect_checks).copied().collect();
            for (peer, nack) in chosen {
                let msg = encode_message(&Message::IndirectPing(IndirectPing {
                    seq_no: seq,
                    target: taddr.clone(),
                    port: tport,
                    node: target.clone(),
                    nack,
                    source_addr: ip_to_bytes(self.cfg.advertise.ip()),
                    source_port: self.cfg.advertise.port(),
                    source_node: me.clone(),
                }));
                self.send_msg(peer, &msg);
            }
            if let Some(addr) = tcp_ping {
                self.open_ping_stream(addr, seq, &target);
            }
        }
        let Some(p) = &self.probe else { return };
        if now >= p.end_at {
            let (target, seq) = (p.target.clone(), p.seq);
            self.probe = None;
            self.acks.remove(&seq);
            if let Some(st) = self.nodes.get(&target) {
                let s = Suspect {
                    incarnation: st.incarnation,
                    node: target,
                    from: self.cfg.name.clone(),
                };
                self.suspect_node(now, s);
            }
        }
    }

    // ---- state changes -------------------------------------------------

    fn refute(&mut self, accused: u32) {
        let mut inc = self.incarnation.wrapping_add(1);
        if accused >= inc {
            inc = accused.wrapping_add(1);
        }
        self.incarnation = inc;
        let me = self.cfg.name.clone();
        if let Some(st) = self.nodes.get_mut(&me) {
            st.incarnation = inc;
            st.state = State::Alive;
        }
        let alive = self.self_alive();
        self.queue_broadcast(Some(me), alive);
    }

    fn self_alive(&self) -> Vec<u8> {
        encode_message(&Message::Alive(Alive {
            incarnation: self.incarnation,
            node: self.cfg.name.clone(),
            addr: ip_to_bytes(self.cfg.advertise.ip()),
            port: self.cfg.advertise.port(),
            meta: self.meta.clone(),
            vsn: VSN.to_vec(),
        }))
    }

    pub(crate) fn alive_node(&mut self, now: Instant, a: Alive) {
        if a.vsn.len() >= 3 {
            let (pmin, pmax) = (a.vsn[0], a.vsn[1]);
            if pmin == 0 || pmax == 0 || pmin > pmax {
                return;
            }
        }
        let Some(ip) = ip_from_bytes(&a.addr) else { return };
        let addr = SocketAddr::new(ip, a.port);
        if a.node == self.cfg.name {
            if a.incarnation < self.incarnation || self.leaving {
                return;
            }
            if a.incarnation == self.incarnation && a.meta == self.meta && a.vsn == VSN {
                return;
            }
            self.refute(a.incarnation);
            return;
        }
        let limit_meta = a.meta.len() > META_MAX;
        if limit_meta {
            return;
        }
        let msg = encode_message(&Message::Alive(a.clone()));
        let prev = self
            .nodes
            .get(&a.node)
            .map(|s| (s.addr, s.incarnation, s.state, s.reaped, s.meta.clone(), s.status));
        match prev {
            Some((paddr, pinc, pstate, reaped, pmeta, _)) if !reaped => {
                let addr_change = paddr != addr;
                if addr_change && pstate != State::Left {
                    tracing::warn!(node = %a.node, old = %paddr, new = %addr, "conflicting address for node");
                    return;
                }
                if a.incarnation <= pinc && !addr_change {
                    return;
                }
                self.suspicions.remove(&a.node);
                let Some(st) = self.nodes.get_mut(&a.node) else { return };
                st.incarnation = a.incarnation;
                st.addr = addr;
                st.meta = a.meta.clone();
                st.vsn = a.vsn.clone();
                if st.state != State::Alive {
                    st.state_change = now;
                }
                let was_down = matches!(pstate, State::Dead | State::Left);
                st.state = State::Alive;
                if was_down {
                    st.status = MemberStatus::Alive;
                    let m = st.member();
                    self.events.push_back(Event::MemberJoin(m));
                } else if pmeta != a.meta || addr_change {
                    let m = st.member();
                    self.events.push_back(Event::MemberUpdate(m));
                }
            }
            _ => {
                let st = NodeState {
                    name: a.node.clone(),
                    addr,
                    meta: a.meta.clone(),
                    incarnation: a.incarnation,
                    state: State::Alive,
                    state_change: now,
                    vsn: a.vsn.clone(),
                    reaped: false,
                    status: MemberStatus::Alive,
                };
                let m = st.member();
                self.nodes.insert(a.node.clone(), st);
                self.events.push_back(Event::MemberJoin(m));
                self.serf_member_appeared(&a.node);
            }
        }
        self.queue_broadcast(Some(a.node), msg);
    }

    pub(crate) fn suspect_node(&mut self, now: Instant, s: Suspect) {
        let Some(st) = self.nodes.get(&s.node) else { return };
        if st.reaped || s.incarnation < st.incarnation {
            return;
        }
        if st.state == State::Suspect {
            // memberlist's `Confirm`: once `k` independent confirmations
            // arrived the timeout is at its minimum, so further (possibly
            // spoofed) `from` names are neither counted nor re-gossiped.
            if let Some(sus) = self.suspicions.get_mut(&s.node)
                && !sus.confirmed()
                && sus.confirmations.insert(s.from.clone())
            {
                sus.recompute();
                let msg = encode_message(&Message::Suspect(s.clone()));
                self.queue_broadcast(Some(s.node), msg);
            }
            return;
        }
        if st.state != State::Alive {
            return;
        }
        if s.node == self.cfg.name {
            if !self.leaving {
                self.refute(s.incarnation);
            }
            return;
        }
        let n = self.num_live();
        let t = &self.cfg.timing;
        let mut k = t.suspicion_mult.saturating_sub(2);
        if n.saturating_sub(2) < k as usize {
            k = 0;
        }
        let scale = (n.max(1) as f64).log10().max(1.0);
        let min = t.probe_interval.mul_f64(f64::from(t.suspicion_mult) * scale);
        let max = min * t.suspicion_max_timeout_mult;
        let mut sus = Suspicion {
            start: now,
            min,
            max,
            k,
            confirmations: HashSet::from([s.from.clone()]),
            deadline: now,
        };
        sus.recompute();
        self.suspicions.insert(s.node.clone(), sus);
        if let Some(st) = self.nodes.get_mut(&s.node) {
            st.incarnation = s.incarnation;
            st.state = State::Suspect;
            st.state_change = now;
        }
        let msg = encode_message(&Message::Suspect(s.clone()));
        self.queue_broadcast(Some(s.node), msg);
    }

    pub(crate) fn dead_node(&mut self, now: Instant, d: Dead) {
        let Some(st) = self.nodes.get(&d.node) else { return };
        if st.reaped
            || d.incarnation < st.incarnation
            || matches!(st.state, State::Dead | State::Left)
        {
            return;
        }
        if d.node == self.cfg.name {
            if !self.leaving {
                self.refute(d.incarnation);
            }
            return;
        }
        self.suspicions.remove(&d.node);
        let graceful = d.from == d.node;
        let Some(st) = self.nodes.get_mut(&d.node) else { return };
        st.incarnation = d.incarnation;
        st.state = if graceful { State::Left } else { State::Dead };
        st.state_change = now;
        let left = graceful || st.status == MemberStatus::Leaving;
        st.status = if left { MemberStatus::Left } else { MemberStatus::Failed };
        let m = st.member();
        self.events.push_back(if left { Event::MemberLeft(m) } else { Event::MemberFailed(m) });
        let msg = encode_message(&Message::Dead(d.clone()));
        self.queue_broadcast(Some(d.node), msg);
    }
}

fn reply_addr(ip: &[u8], port: u16) -> Option<SocketAddr> {
    if ip.is_empty() || port == 0 {
        return None;
    }
    ip_from_bytes(ip).map(|ip| SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspicion(k: u32, confirmations: usize) -> Duration {
        let start = Instant::now();
        let mut s = Suspicion {
            start,
            min: Duration::from_secs(4),
            max: Duration::from_secs(24),
            k,
            confirmations: (0..=confirmations).map(|i| format!("n{i}")).collect(),
            deadline: start,
        };
        s.recompute();
        s.deadline - start
    }

    #[test]
    fn suspicion_timeout_shrinks_with_confirmations() {
        // No confirmations: the maximum; k confirmations: the minimum.
        assert_eq!(suspicion(2, 0), Duration::from_secs(24));
        assert_eq!(suspicion(2, 2), Duration::from_secs(4));
        // One of two expected: max - log(2)/log(3) * (max - min).
        let one = suspicion(2, 1).as_secs_f64();
        let want = 24.0 - (2f64.ln() / 3f64.ln()) * 20.0;
        assert!((one - want).abs() < 1e-6, "{one} vs {want}");
        // With k = 0 (small clusters) the minimum applies right away.
        assert_eq!(suspicion(0, 0), Duration::from_secs(4));
        // More confirmations than expected never go below the minimum.
        assert_eq!(suspicion(2, 5), Duration::from_secs(4));
    }

    /// A failed member is reaped after gossip-to-the-dead time and forgotten
    /// after serf's 24 hours; a left one likewise.
    #[test]
    fn failed_and_left_members_are_forgotten_after_a_day() {
        let now = Instant::now();
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let mut n = Node::new(Config::new("me", "127.0.0.1:7946".parse().unwrap()), now);
        for i in 1..=3u16 {
            let alive = Alive {
                incarnation: 1,
                node: format!("n{i}"),
                addr: vec![127, 0, 0, 1],
                port: 8000 + i,
                meta: Vec::new(),
                vsn: VSN.to_vec(),
            };
            n.handle_packet(now, from, &encode_message(&Message::Alive(alive)));
        }
        let dead = Dead { incarnation: 1, node: "n1".into(), from: "n2".into() };
        n.handle_packet(now, from, &encode_message(&Message::Dead(dead)));
        let names = |n: &Node| n.members().into_iter().map(|m| m.name).collect::<Vec<_>>();
        n.handle_timeout(now + Duration::from_secs(3600));
        assert!(names(&n).contains(&"n1".to_owned()), "kept within the day");
        n.handle_timeout(now + FORGET_AFTER + Duration::from_secs(1));
        assert_eq!(names(&n), ["me", "n2", "n3"]);
    }

    /// memberlist's `Confirm` stops after `k` confirmations: a flood of
    /// suspects about one node, each under a new (spoofable) `from` name,
    /// neither grows the confirmation set nor keeps re-queueing the
    /// suspect broadcast.
    #[test]
    fn suspicion_confirmations_are_capped_at_k() {
        let now = Instant::now();
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let mut n = Node::new(Config::new("me", "127.0.0.1:7946".parse().unwrap()), now);
        for i in 1..=5u16 {
            let alive = Alive {
                incarnation: 1,
                node: format!("n{i}"),
                addr: vec![127, 0, 0, 1],
                port: 8000 + i,
                meta: Vec::new(),
                vsn: VSN.to_vec(),
            };
            n.handle_packet(now, from, &encode_message(&Message::Alive(alive)));
        }
        assert_eq!(n.num_live(), 6);
        let suspect = |by: String| {
            encode_message(&Message::Suspect(Suspect {
                incarnation: 1,
                node: "n1".into(),
                from: by,
            }))
        };
        n.handle_packet(now, from, &suspect("accuser".into()));
        let k = n.suspicions["n1"].k as usize;
        // 6 live nodes, suspicion_mult 4: memberlist expects 2 confirmations.
        assert_eq!(k, 2);
        let before = n.next_broadcast_id;
        for i in 0..100 {
            n.handle_packet(now, from, &suspect(format!("spoof-{i}")));
        }
        let sus = &n.suspicions["n1"];
        assert_eq!(sus.confirmations.len(), k + 1);
        // With k confirmations the timeout is at its minimum.
        assert_eq!(sus.deadline, sus.start + sus.min);
        // Only the k counted confirmations were re-gossiped.
        assert_eq!(n.next_broadcast_id - before, k as u64);
        assert_eq!(n.broadcasts.iter().filter(|b| b.about.as_deref() == Some("n1")).count(), 1);
    }

    #[test]
    fn refutation_bumps_past_the_accusation() {
        let now = Instant::now();
        let mut n = Node::new(Config::new("me", "127.0.0.1:7946".parse().unwrap()), now);
        n.suspect_node(now, Suspect { incarnation: 7, node: "me".into(), from: "x".into() });
        assert_eq!(n.incarnation(), 8);
        // A stale accusation is ignored; a current one is refuted again.
        n.dead_node(now, Dead { incarnation: 3, node: "me".into(), from: "x".into() });
        assert_eq!(n.incarnation(), 8);
        n.dead_node(now, Dead { incarnation: 8, node: "me".into(), from: "x".into() });
        assert_eq!(n.incarnation(), 9);
        // The refutation replaced the start-up alive in the queue.
        let ours: Vec<_> =
            n.broadcasts.iter().filter(|b| b.about.as_deref() == Some("me")).collect();
        assert_eq!(ours.len(), 1);
        let msgs = decode_packet(&ours[0].msg);
        assert!(matches!(msgs.as_slice(), [Ok(Message::Alive(a))] if a.incarnation == 9));
    }

    #[test]
    fn memberlist_news_goes_before_serf_messages_newest_first() {
        let now = Instant::now();
        let mut n = Node::new(Config::new("me", "127.0.0.1:7946".parse().unwrap()), now);
        let serf = encode_message(&Message::User(vec![0xaa; 40]));
        for _ in 0..3 {
            n.queue_broadcast(None, serf.clone());
        }
        let dead = |i: u32| {
            encode_message(&Message::Dead(Dead {
                incarnation: i,
                node: format!("n{i}"),
                from: "x".into(),
            }))
        };
        for i in 1..=3 {
            n.queue_broadcast(Some(format!("n{i}")), dead(i));
        }
        // Room for exactly the three memberlist messages (plus our own alive):
        // serf's queue only gets what they leave.
        let alive = n.self_alive();
        let room = alive.len() + 2 + 3 * (dead(1).len() + 2);
        let got = n.take_broadcasts(room);
        assert_eq!(got, vec![alive.clone(), dead(3), dead(2), dead(1)]);
        assert_eq!(n.user_broadcasts.iter().map(|b| b.transmits).sum::<u32>(), 0);
        // With room to spare, the serf messages follow.
        let got = n.take_broadcasts(1000);
        assert_eq!(got.len(), 7);
        assert_eq!(got[4..], [serf.clone(), serf.clone(), serf]);
    }
}
