//! The serf half of the node: Lamport clocks, intents, user events,
//! queries and the internal key-management queries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use consul_sec_gossip_crypto::{Error as CryptoError, SecretKey};
use consul_sec_gossip_wire::serf::{
    ConflictMember, JoinIntent, KeyResponse, Leave, PushPull, QUERY_FLAG_ACK,
    QUERY_FLAG_NO_BROADCAST, Query, QueryResponse, SerfMessage, UserEvent,
};
use consul_sec_gossip_wire::{Message, encode_message, ip_from_bytes, ip_to_bytes};
use rand::RngExt;

use crate::node::Node;
use crate::{Event, KeyOp, KeyQueryResult, MemberStatus, QueryId};

/// How many query/event clock ticks back serf still accepts.
const BUFFER_SIZE: u64 = 512;
/// Intents for unknown member names kept at most (see `prune_unknown_intents`).
const MAX_UNKNOWN_INTENTS: usize = 1024;
/// serf's agent default `QueryResponseSizeLimit`.
const QUERY_RESPONSE_LIMIT: usize = 1024;

struct PendingKeyQuery {
    op: KeyOp,
    deadline: Instant,
    responders: HashSet<String>,
    result: KeyQueryResult,
}

/// serf's state kept beside memberlist's.
pub(crate) struct SerfState {
    member_clock: u64,
    event_clock: u64,
    query_clock: u64,
    /// Last intent time per member name (serf `statusLTime`), also for
    /// members not yet known (serf buffers those intents).
    status_ltimes: HashMap<String, u64>,
    /// Leave intents for members not yet known.
    pending_leaves: HashSet<String>,
    seen_queries: HashMap<u64, Vec<u32>>,
    seen_events: HashSet<(u64, String, Vec<u8>)>,
    pending: BTreeMap<QueryId, PendingKeyQuery>,
}

impl SerfState {
    pub(crate) fn new() -> Self {
        Self {
            member_clock: 1,
            event_clock: 1,
            query_clock: 1,
            status_ltimes: HashMap::new(),
            pending_leaves: HashSet::new(),
            seen_queries: HashMap::new(),
            seen_events: HashSet::new(),
            pending: BTreeMap::new(),
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

// serf's Lamport clocks are Go `uint64`s: `Increment` is `atomic.AddUint64`
// and `Witness` stores `other + 1`, both wrapping at 2^64. A peer can send
// `LTime = u64::MAX`, so every step here wraps the same way instead of
// overflowing (a panic in debug builds).

/// serf `LamportClock.Witness`: moves the clock past `v` if it is behind.
fn witness(clock: &mut u64, v: u64) {
    if v >= *clock {
        *clock = v.wrapping_add(1);
    }
}

/// serf `LamportClock.Increment` as the callers use it: returns the current
/// time and advances the clock by one.
fn tick(clock: &mut u64) -> u64 {
    let t = *clock;
    *clock = t.wrapping_add(1);
    t
}

/// memberlist's keyring error texts, as the serf CLI prints them.
fn go_text(e: &CryptoError) -> String {
    match e {
        CryptoError::KeyNotInKeyring => "Requested key is not in the keyring".into(),
        CryptoError::RemovePrimaryKey => "Removing the primary key is not allowed".into(),
        CryptoError::KeySize { .. } => "key size must be 16, 24 or 32 bytes".into(),
        CryptoError::EmptyKeyring => "Keyring is empty (encryption not enabled)".into(),
        other => other.to_string(),
    }
}

impl Node {
    fn user_msg(serf: &SerfMessage) -> Vec<u8> {
        encode_message(&Message::User(serf.encode()))
    }

    pub(crate) fn serf_push_pull(&self) -> Vec<u8> {
        let s = &self.serf;
        let mut status: Vec<(String, u64)> = self
            .nodes
            .keys()
            .map(|n| (n.clone(), s.status_ltimes.get(n).copied().unwrap_or(0)))
            .collect();
        status.sort();
        let left = self
            .nodes
            .values()
            .filter(|n| n.status == MemberStatus::Left)
            .map(|n| n.name.clone())
            .collect();
        SerfMessage::PushPull(PushPull {
            ltime: s.member_clock,
            status_ltimes: status,
            left_members: left,
            event_ltime: s.event_clock,
            events: Vec::new(),
            query_ltime: s.query_clock,
        })
        .encode()
    }

    pub(crate) fn serf_merge(&mut self, now: Instant, bytes: &[u8]) {
        let pp = match SerfMessage::decode(bytes) {
            Ok(SerfMessage::PushPull(pp)) => pp,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "bad serf push/pull state");
                return;
            }
        };
        if pp.ltime > 0 {
            witness(&mut self.serf.member_clock, pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            witness(&mut self.serf.event_clock, pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            witness(&mut self.serf.query_clock, pp.query_ltime - 1);
        }
        let left: HashSet<&String> = pp.left_members.iter().collect();
        for (name, ltime) in &pp.status_ltimes {
            if left.contains(name) {
                self.leave_intent(now, &Leave { ltime: *ltime, node: name.clone(), prune: false });
            } else {
                self.join_intent(&JoinIntent { ltime: *ltime, node: name.clone() });
            }
        }
        for ev in pp.events.iter().flatten() {
            for item in &ev.events {
                self.user_event_received(&UserEvent {
                    ltime: ev.ltime,
                    name: item.name.clone(),
                    payload: item.payload.clone(),
                    cc: false,
                });
            }
        }
    }

    pub(crate) fn serf_after_join(&mut self) {
        let ltime = self.serf.member_clock;
        let j = JoinIntent { ltime, node: self.cfg.name.clone() };
        witness(&mut self.serf.member_clock, ltime);
        self.join_intent(&j);
        self.queue_broadcast(None, Self::user_msg(&SerfMessage::Join(j)));
    }

    /// Drops serf's intent state for a member that was forgotten.
    pub(crate) fn forget_serf_member(&mut self, name: &str) {
        self.serf.status_ltimes.remove(name);
        self.serf.pending_leaves.remove(name);
    }

    /// Intents buffered for names that are not members are kept only up to
    /// [`MAX_UNKNOWN_INTENTS`]: serf keeps them for a few minutes; here a
    /// peer sending intents for made-up names cannot grow them without end.
    pub(crate) fn prune_unknown_intents(&mut self) {
        let unknown = self.serf.status_ltimes.len().saturating_sub(self.nodes.len());
        if unknown > MAX_UNKNOWN_INTENTS {
            let nodes = &self.nodes;
            self.serf.status_ltimes.retain(|name, _| nodes.contains_key(name));
            self.serf.pending_leaves.retain(|name| nodes.contains_key(name));
        }
    }

    pub(crate) fn serf_leave_intent(&mut self) -> Vec<u8> {
        let ltime = tick(&mut self.serf.member_clock);
        let me = self.cfg.name.clone();
        self.serf.status_ltimes.insert(me.clone(), ltime);
        let msg = Self::user_msg(&SerfMessage::Leave(Leave { ltime, node: me, prune: false }));
        self.queue_broadcast(None, msg.clone());
        msg
    }

    pub(crate) fn serf_member_appeared(&mut self, name: &str) {
        if self.serf.pending_leaves.remove(name)
            && let Some(st) = self.nodes.get_mut(name)
        {
            st.status = MemberStatus::Leaving;
        }
    }

    fn join_intent(&mut self, j: &JoinIntent) -> bool {
        let known = self.serf.status_ltimes.get(&j.node).copied();
        if known.is_some_and(|t| j.ltime <= t) {
            return false;
        }
        self.serf.status_ltimes.insert(j.node.clone(), j.ltime);
        self.serf.pending_leaves.remove(&j.node);
        if let Some(st) = self.nodes.get_mut(&j.node)
            && st.status == MemberStatus::Leaving
        {
            st.status = MemberStatus::Alive;
        }
        true
    }

    fn leave_intent(&mut self, _now: Instant, l: &Leave) -> bool {
        if l.node == self.cfg.name && !self.leaving {
            // Someone thinks we are leaving; override with a fresh join intent.
            let ltime = tick(&mut self.serf.member_clock);
            let j = JoinIntent { ltime, node: self.cfg.name.clone() };
            self.serf.status_ltimes.insert(j.node.clone(), ltime);
            self.queue_broadcast(None, Self::user_msg(&SerfMessage::Join(j)));
            return false;
        }
        let known = self.serf.status_ltimes.get(&l.node).copied();
        if known.is_some_and(|t| l.ltime <= t) {
            return false;
        }
        self.serf.status_ltimes.insert(l.node.clone(), l.ltime);
        match self.nodes.get_mut(&l.node) {
            None => {
                self.serf.pending_leaves.insert(l.node.clone());
            }
            Some(st) => match st.status {
                MemberStatus::Alive => st.status = MemberStatus::Leaving,
                MemberStatus::Failed => {
                    st.status = MemberStatus::Left;
                    let m = st.member();
                    self.events.push_back(Event::MemberLeft(m));
                }
                _ => {}
            },
        }
        true
    }

    fn user_event_received(&mut self, e: &UserEvent) -> bool {
        witness(&mut self.serf.event_clock, e.ltime);
        if e.ltime.saturating_add(BUFFER_SIZE) < self.serf.event_clock {
            return false;
        }
        let key = (e.ltime, e.name.clone(), e.payload.clone());
        if !self.serf.seen_events.insert(key) {
            return false;
        }
        let floor = self.serf.event_clock.saturating_sub(BUFFER_SIZE);
        self.serf.seen_events.retain(|(t, _, _)| *t >= floor);
        self.events.push_back(Event::UserEvent {
            name: e.name.clone(),
            payload: e.payload.clone(),
            ltime: e.ltime,
        });
        true
    }

    /// Sends a serf user event to the cluster (and delivers it locally).
    pub fn user_event(&mut self, name: &str, payload: &[u8], coalesce: bool) {
        let ev = UserEvent {
            ltime: tick(&mut self.serf.event_clock),
            name: name.to_owned(),
            payload: payload.to_vec(),
            cc: coalesce,
        };
        self.user_event_received(&ev);
        self.queue_broadcast(None, Self::user_msg(&SerfMessage::UserEvent(ev)));
    }

    pub(crate) fn handle_user(&mut self, now: Instant, _from: SocketAddr, bytes: &[u8]) {
        let msg = match SerfMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "dropping serf message");
                return;
            }
        };
        match msg {
            SerfMessage::Leave(l) => {
                witness(&mut self.serf.member_clock, l.ltime);
                if self.leave_intent(now, &l) {
                    self.queue_broadcast(None, encode_message(&Message::User(bytes.to_vec())));
                }
            }
            SerfMessage::Join(j) => {
                witness(&mut self.serf.member_clock, j.ltime);
                if self.join_intent(&j) {
                    self.queue_broadcast(None, encode_message(&Message::User(bytes.to_vec())));
                }
            }
            SerfMessage::UserEvent(e) if self.user_event_received(&e) => {
                self.queue_broadcast(None, encode_message(&Message::User(bytes.to_vec())));
            }
            SerfMessage::Query(q) => self.handle_query(now, q, bytes),
            SerfMessage::QueryResponse(r) => self.handle_query_response(r),
            SerfMessage::Relay(r) => {
                if let Some(ip) = ip_from_bytes(&r.dest_ip) {
                    let to = SocketAddr::new(ip, r.dest_port);
                    self.send_msg(to, &encode_message(&Message::User(r.inner)));
                }
            }
            _ => {}
        }
    }

    fn query_passes_filters(&self, q: &Query) -> bool {
        for f in q.filters.iter().flatten() {
            let Some((&ty, mut body)) = f.split_first() else { return false };
            let Ok(v) = rmpv_read(&mut body) else { return false };
            match ty {
                0 => {
                    let names: Vec<&str> = match &v {
                        rmpv::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                        _ => return false,
                    };
                    if !names.contains(&self.cfg.name.as_str()) {
                        return false;
                    }
                }
                1 => {
                    let get = |k: &str| match &v {
                        rmpv::Value::Map(m) => m
                            .iter()
                            .find(|(key, _)| key.as_str() == Some(k))
                            .and_then(|(_, val)| val.as_str().map(str::to_owned)),
                        _ => None,
                    };
                    let (Some(tag), Some(expr)) = (get("Tag"), get("Expr")) else { return false };
                    // Only literal expressions are evaluated (no regex engine).
                    if expr.chars().any(|c| "\\.+*?()|[]{}^$".contains(c)) {
                        return false;
                    }
                    match self.cfg.tags.get(&tag) {
                        Some(val) if val.contains(&expr) => {}
                        _ => return false,
                    }
                }
                _ => return false,
            }
        }
        true
    }

    fn handle_query(&mut self, _now: Instant, q: Query, raw: &[u8]) {
        witness(&mut self.serf.query_clock, q.ltime);
        if q.ltime.saturating_add(BUFFER_SIZE) < self.serf.query_clock {
            return;
        }
        let seen = self.serf.seen_queries.entry(q.ltime).or_default();
        if seen.contains(&q.id) {
            return;
        }
        seen.push(q.id);
        let floor = self.serf.query_clock.saturating_sub(BUFFER_SIZE);
        self.serf.seen_queries.retain(|t, _| *t >= floor);
        if q.flags & QUERY_FLAG_NO_BROADCAST == 0 {
            self.queue_broadcast(None, encode_message(&Message::User(raw.to_vec())));
        }
        if !self.query_passes_filters(&q) {
            return;
        }
        if q.flags & QUERY_FLAG_ACK != 0 {
            self.respond(&q, QUERY_FLAG_ACK, Vec::new());
        }
        let payload = match q.name.as_str() {
            "_serf_install-key" | "_serf_use-key" | "_serf_remove-key" | "_serf_list-keys" => {
                Some(self.key_query_response(&q))
            }
            "_serf_conflict" => {
                let name = String::from_utf8_lossy(&q.payload).into_owned();
                if name == self.cfg.name {
                    None
                } else {
                    let m = self.nodes.get(&name).map(|st| ConflictMember {
                        name: st.name.clone(),
                        addr: ip_to_bytes(st.addr.ip()),
                        port: st.addr.port(),
                        tags: consul_sec_gossip_wire::serf::decode_tags(&st.meta)
                            .unwrap_or_default(),
                        status: match st.status {
                            MemberStatus::Alive => 1,
                            MemberStatus::Leaving => 2,
                            MemberStatus::Left => 3,
                            MemberStatus::Failed => 4,
                        },
                        protocol: [
                            st.vsn.first().copied().unwrap_or(0),
                            st.vsn.get(1).copied().unwrap_or(0),
                            st.vsn.get(2).copied().unwrap_or(0),
                        ],
                        delegate: [
                            st.vsn.get(3).copied().unwrap_or(0),
                            st.vsn.get(4).copied().unwrap_or(0),
                            st.vsn.get(5).copied().unwrap_or(0),
                        ],
                    });
                    Some(SerfMessage::ConflictResponse(m).encode())
                }
            }
            _ => None,
        };
        if let Some(p) = payload {
            self.respond(&q, 0, p);
        }
    }

    fn respond(&mut self, q: &Query, flags: u32, payload: Vec<u8>) {
        let r =
            QueryResponse { ltime: q.ltime, id: q.id, from: self.cfg.name.clone(), flags, payload };
        let Some(ip) = ip_from_bytes(&q.addr) else { return };
        let to = SocketAddr::new(ip, q.port);
        if to == self.cfg.advertise {
            // Our own query: answer it without a round trip through the socket.
            self.handle_query_response(r);
        } else {
            self.send_msg(to, &Self::user_msg(&SerfMessage::QueryResponse(r)));
        }
    }

    fn key_query_response(&mut self, q: &Query) -> Vec<u8> {
        let mut resp = KeyResponse::default();
        let key = match SerfMessage::decode(&q.payload) {
            Ok(SerfMessage::KeyRequest(k)) => k,
            Ok(_) | Err(_) => {
                resp.message = "Failed to decode key request".into();
                return SerfMessage::KeyResponse(resp).encode();
            }
        };
        let ring = self.cfg.security.keyring.clone();
        let list = q.name == "_serf_list-keys";
        if ring.is_empty() {
            resp.message = if list {
                "Keyring is empty (encryption not enabled)".into()
            } else {
                "No keyring to modify (encryption not enabled)".into()
            };
            return SerfMessage::KeyResponse(resp).encode();
        }
        let outcome: Result<bool, String> = match q.name.as_str() {
            "_serf_install-key" => match SecretKey::from_bytes(&key) {
                Ok(k) => ring.install_key(k).map(|()| true).map_err(|e| go_text(&e)),
                Err(e) => Err(go_text(&e)),
            },
            "_serf_use-key" => match SecretKey::from_bytes(&key) {
                Ok(k) => ring.use_key(&k).map(|()| true).map_err(|e| go_text(&e)),
                Err(_) => Err("Requested key is not in the keyring".into()),
            },
            "_serf_remove-key" => match SecretKey::from_bytes(&key) {
                Ok(k) => ring.remove_key(&k).map(|()| true).map_err(|e| go_text(&e)),
                // A key of an impossible size cannot be installed: removing
                // it is memberlist's silent success.
                Err(_) => Ok(false),
            },
            _ => Ok(false),
        };
        match outcome {
            Ok(changed) => {
                resp.result = true;
                if changed {
                    if let Some(saver) = &self.cfg.keyring_saver
                        && let Err(m) = saver.save(&ring)
                    {
                        resp.result = false;
                        resp.message = m;
                    }
                    self.events.push_back(Event::KeyringChanged);
                }
            }
            Err(m) => resp.message = m,
        }
        if list {
            let keys: Vec<String> = ring.keys().iter().map(|k| k.to_base64().to_string()).collect();
            resp.primary_key =
                ring.primary_key().map(|k| k.to_base64().to_string()).unwrap_or_default();
            let total = keys.len();
            let mut n = total;
            loop {
                resp.keys = Some(keys.iter().take(n).cloned().collect());
                if n < total {
                    resp.message =
                        format!("truncated key list response, showing first {n} of {total} keys");
                }
                let enc = SerfMessage::KeyResponse(resp.clone()).encode();
                if enc.len() + 64 <= QUERY_RESPONSE_LIMIT || n == 0 {
                    return enc;
                }
                n -= 1;
            }
        }
        SerfMessage::KeyResponse(resp).encode()
    }

    /// Runs a key operation on every member (serf's internal key queries)
    /// and returns the query's id; the aggregated answer arrives as
    /// [`Event::KeyQueryFinished`] once every live member answered or the
    /// query timed out.
    pub fn key_query(&mut self, now: Instant, op: KeyOp) -> QueryId {
        let ltime = tick(&mut self.serf.query_clock);
        let id = self.rng.random_range(0..=0x7fff_ffffu32);
        let n = self.num_live();
        let t = &self.cfg.timing;
        let mult = ((n as f64 + 1.0).log10().ceil().max(1.0)) as u32;
        let timeout: Duration = t.gossip_interval * t.query_timeout_mult * mult;
        let key = match &op {
            KeyOp::Install(k) | KeyOp::Use(k) | KeyOp::Remove(k) => k.clone(),
            KeyOp::List => Vec::new(),
        };
        let q = Query {
            ltime,
            id,
            addr: ip_to_bytes(self.cfg.advertise.ip()),
            port: self.cfg.advertise.port(),
            source_node: self.cfg.name.clone(),
            filters: None,
            flags: 0,
            relay_factor: 0,
            timeout_ns: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            name: op.query_name().to_owned(),
            payload: SerfMessage::KeyRequest(key).encode(),
        };
        let qid = QueryId { ltime, id };
        self.serf.pending.insert(
            qid,
            PendingKeyQuery {
                op,
                deadline: now + timeout,
                responders: HashSet::new(),
                result: KeyQueryResult { num_nodes: n, ..KeyQueryResult::default() },
            },
        );
        let raw = SerfMessage::Query(q.clone()).encode();
        self.handle_query(now, q, &raw);
        qid
    }

    fn handle_query_response(&mut self, r: QueryResponse) {
        let qid = QueryId { ltime: r.ltime, id: r.id };
        let Some(p) = self.serf.pending.get_mut(&qid) else { return };
        if r.flags & QUERY_FLAG_ACK != 0 || !p.responders.insert(r.from.clone()) {
            return;
        }
        let res = &mut p.result;
        res.num_resp += 1;
        match SerfMessage::decode(&r.payload) {
            Ok(SerfMessage::KeyResponse(k)) => {
                if !k.result {
                    res.num_err += 1;
                    res.messages.insert(r.from.clone(), k.message);
                } else if !k.message.is_empty() {
                    res.messages.insert(r.from.clone(), k.message);
                }
                for key in k.keys.unwrap_or_default() {
                    *res.keys.entry(key).or_default() += 1;
                }
                if !k.primary_key.is_empty() {
                    *res.primary_keys.entry(k.primary_key).or_default() += 1;
                }
            }
            _ => {
                res.num_err += 1;
                res.messages.insert(r.from.clone(), "Failed to decode key response".into());
            }
        }
        if res.num_resp >= res.num_nodes {
            self.finish_query(qid);
        }
    }

    fn finish_query(&mut self, qid: QueryId) {
        if let Some(p) = self.serf.pending.remove(&qid) {
            self.events.push_back(Event::KeyQueryFinished { id: qid, op: p.op, result: p.result });
        }
    }

    pub(crate) fn serf_timeouts(&mut self, now: Instant) {
        let due: Vec<QueryId> = self
            .serf
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.finish_query(id);
        }
    }
}

fn rmpv_read(input: &mut &[u8]) -> Result<rmpv::Value, ()> {
    rmpv::decode::read_value(input).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use consul_sec_gossip_wire::serf::JoinIntent;

    /// Join intents for thousands of made-up names do not all stay buffered.
    #[test]
    fn intents_for_unknown_names_are_bounded() {
        let now = Instant::now();
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let mut n = Node::new(Config::new("me", "127.0.0.1:7946".parse().unwrap()), now);
        for i in 0..3 * MAX_UNKNOWN_INTENTS {
            let intent = SerfMessage::Join(JoinIntent { ltime: 1, node: format!("ghost-{i}") });
            let packet = encode_message(&Message::User(intent.encode()));
            n.handle_packet(now, from, &packet);
            n.handle_timeout(now);
        }
        let kept = n.serf.status_ltimes.len();
        assert!(kept <= MAX_UNKNOWN_INTENTS + 2, "{kept} intents kept");
        assert!(kept > 0);
    }
}
