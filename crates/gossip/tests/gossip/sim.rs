//! A simulated network with virtual time: packets are delayed, dropped
//! with a probability, cut by partitions; streams are delivered reliably
//! unless the peer is down or partitioned away.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use consul_sec_gossip::{Config, Event, Member, MemberStatus, Node, StreamId, Transmit};

pub(crate) enum Delivery {
    Packet { from: SocketAddr, to: SocketAddr, bytes: Vec<u8> },
    StreamReq { from: usize, id: StreamId, to: SocketAddr, bytes: Vec<u8> },
    StreamResp { to: usize, id: StreamId, result: Result<Vec<u8>, String> },
}

pub(crate) struct Sim {
    pub(crate) now: Instant,
    pub(crate) nodes: Vec<Option<Node>>,
    pub(crate) addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    pub(crate) loss: f64,
    /// Nodes in this set can only talk among themselves.
    pub(crate) partition: Option<HashSet<usize>>,
    rng: u64,
    pub(crate) latency: Duration,
    tick: Duration,
    pub(crate) events: Vec<(usize, Event)>,
    pub(crate) join_errors: Vec<(usize, String)>,
}

impl Sim {
    pub(crate) fn new() -> Self {
        Self {
            now: Instant::now(),
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            loss: 0.0,
            partition: None,
            rng: 0x9e37_79b9_7f4a_7c15,
            latency: Duration::from_millis(1),
            tick: Duration::from_millis(5),
            events: Vec::new(),
            join_errors: Vec::new(),
        }
    }

    pub(crate) fn addr(i: usize) -> SocketAddr {
        let port = 10_000 + i as u16;
        SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], port))
    }

    pub(crate) fn config(i: usize) -> Config {
        let mut c = Config::new(format!("node-{i}"), Self::addr(i));
        c.rng_seed = i as u64 + 1;
        c.tags.insert("role".into(), "sim".into());
        c
    }

    /// Adds (or replaces, for a restart) node `i` built from `cfg`.
    pub(crate) fn put(&mut self, i: usize, cfg: Config) {
        let node = Node::new(cfg, self.now);
        while self.nodes.len() <= i {
            let j = self.nodes.len();
            self.nodes.push(None);
            self.addrs.push(Self::addr(j));
            self.by_addr.insert(Self::addr(j), j);
        }
        self.nodes[i] = Some(node);
    }

    pub(crate) fn join(&mut self, i: usize, seed: usize) {
        let now = self.now;
        let seed_addr = self.addrs[seed];
        if let Some(n) = self.nodes[i].as_mut() {
            n.join(now, &[seed_addr]);
        }
        self.drain(i);
    }

    pub(crate) fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node is running")
    }

    fn rand(&mut self) -> f64 {
        // xorshift64*: deterministic, good enough for loss decisions.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        match &self.partition {
            None => true,
            Some(side) => side.contains(&a) == side.contains(&b),
        }
    }

    fn push(&mut self, at: Instant, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    fn drain(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else { return };
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        while let Some(e) = node.poll_event() {
            self.events.push((i, e));
        }
        let at = self.now + self.latency;
        let from = self.addrs[i];
        for t in out {
            match t {
                Transmit::Packet { to, bytes } => {
                    self.push(at, Delivery::Packet { from, to, bytes })
                }
                Transmit::Stream { id, to, bytes, .. } => {
                    self.push(at, Delivery::StreamReq { from: i, id, to, bytes })
                }
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Packet { from, to, bytes } => {
                let (Some(&f), Some(&t)) = (self.by_addr.get(&from), self.by_addr.get(&to)) else {
                    return;
                };
                if !self.connected(f, t) || self.rand() < self.loss {
                    return;
                }
                if let Some(n) = self.nodes[t].as_mut() {
                    n.handle_packet(now, from, &bytes);
                    self.drain(t);
                }
            }
            Delivery::StreamReq { from, id, to, bytes } => {
                let target = self.by_addr.get(&to).copied();
                let result = match target {
                    Some(t) if self.connected(from, t) && self.nodes[t].is_some() => {
                        let fa = self.addrs[from];
                        let reply =
                            self.nodes[t].as_mut().and_then(|n| n.handle_stream(now, fa, &bytes));
                        self.drain(t);
                        reply.ok_or_else(|| "connection closed without reply".to_owned())
                    }
                    _ => Err("connection refused".to_owned()),
                };
                let at = now + self.latency;
                self.push(at, Delivery::StreamResp { to: from, id, result });
            }
            Delivery::StreamResp { to, id, result } => {
                if let Some(n) = self.nodes[to].as_mut() {
                    if let Err(e) = n.handle_stream_response(now, id, result) {
                        self.join_errors.push((to, e.to_string()));
                    }
                    self.drain(to);
                }
            }
        }
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked every virtual 100 ms) or `end`.
    /// Returns whether `done` held.
    pub(crate) fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let mut last_check = self.now;
        while self.now < end {
            self.now += self.tick;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let d = entry.remove();
                self.deliver(d);
            }
            for i in 0..self.nodes.len() {
                let now = self.now;
                if let Some(n) = self.nodes[i].as_mut()
                    && n.poll_timeout().is_some_and(|t| t <= now)
                {
                    n.handle_timeout(now);
                    self.drain(i);
                }
            }
            if self.now.duration_since(last_check) >= Duration::from_millis(100) {
                last_check = self.now;
                if done(self) {
                    return true;
                }
            }
        }
        done(self)
    }

    pub(crate) fn alive_view(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .as_ref()
            .map(|n| {
                n.members()
                    .into_iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .map(|m| m.name)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether every running node sees exactly the running nodes alive.
    pub(crate) fn converged(&self) -> bool {
        // Cheap pre-check first: members() decodes every node's tags.
        let n = self.nodes.iter().flatten().count();
        if self.nodes.iter().flatten().any(|node| node.num_live() != n) {
            return false;
        }
        let running: Vec<String> = self
            .nodes
            .iter()
            .flatten()
            .map(|n| n.name().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .all(|i| self.alive_view(i) == running)
    }

    pub(crate) fn failures(&self) -> Vec<(usize, Member)> {
        self.events
            .iter()
            .filter_map(|(i, e)| match e {
                Event::MemberFailed(m) => Some((*i, m.clone())),
                _ => None,
            })
            .collect()
    }
}
