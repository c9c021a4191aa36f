//! Protocol scenarios in a simulated network (virtual time, loss,
//! partitions) plus robustness of the node against hostile input.

#[path = "gossip/sim.rs"]
mod sim;

use std::time::{Duration, Instant};

use consul_sec_gossip::{
    Event, GossipSecurity, KeyOp, KeyQueryResult, MemberStatus, Node, QueryId, Transmit, VSN,
};
use consul_sec_gossip_crypto::{KeySize, Keyring, SecretKey};
use consul_sec_gossip_wire::serf::{JoinIntent, Leave, Query, SerfMessage, UserEvent};
use consul_sec_gossip_wire::{Alive, Message, decode_packet, encode_message};
use proptest::prelude::*;
use sim::Sim;

fn keyed(key: &SecretKey) -> GossipSecurity {
    GossipSecurity::new(Keyring::from_keys([key.clone()]).unwrap())
}

fn cluster(n: usize, security: Option<&GossipSecurity>) -> Sim {
    let mut sim = Sim::new();
    for i in 0..n {
        let mut c = Sim::config(i);
        if let Some(s) = security {
            // Every node gets its own keyring with the same keys.
            let ring = Keyring::from_keys(s.keyring.keys()).unwrap();
            c.security = GossipSecurity { keyring: ring, ..s.clone() };
        }
        sim.put(i, c);
    }
    for i in 1..n {
        sim.join(i, (i - 1) / 2);
    }
    sim
}

#[test]
fn three_nodes_converge_with_tags() {
    let mut sim = cluster(3, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(
        sim.run_until(end, Sim::converged),
        "views: {:?}",
        (0..3).map(|i| sim.alive_view(i)).collect::<Vec<_>>()
    );
    let members = sim.node(2).members();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m.tags.get("role").map(String::as_str) == Some("sim")));
    assert!(sim.join_errors.is_empty(), "{:?}", sim.join_errors);
}

#[test]
fn two_hundred_nodes_converge() {
    let mut sim = cluster(200, None);
    let start = sim.now;
    let end = start + Duration::from_secs(120);
    let ok = sim.run_until(end, Sim::converged);
    let worst = (0..200).map(|i| sim.alive_view(i).len()).min();
    assert!(ok, "not converged after 120 s virtual; smallest view {worst:?}");
    assert!(sim.failures().is_empty(), "{:?}", sim.failures());
}

#[test]
fn ten_percent_loss_declares_no_healthy_node_dead() {
    let mut sim = cluster(20, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    sim.loss = 0.10;
    sim.run_for(Duration::from_secs(180));
    assert!(sim.failures().is_empty(), "false failures: {:?}", sim.failures());
    sim.loss = 0.0;
    sim.run_for(Duration::from_secs(5));
    assert!(sim.converged());
}

#[test]
fn crashed_node_is_marked_failed_within_lan_timing() {
    let mut sim = cluster(5, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    sim.nodes[4] = None;
    let killed = sim.now;
    let end = sim.now + Duration::from_secs(30);
    let all_failed = |s: &Sim| {
        (0..4).all(|i| {
            s.nodes[i]
                .as_ref()
                .unwrap()
                .members()
                .iter()
                .any(|m| m.name == "node-4" && m.status == MemberStatus::Failed)
        })
    };
    assert!(sim.run_until(end, all_failed));
    // memberlist LAN: probe interval 1 s + suspicion timeout 4..24 s for 5 nodes.
    assert!(sim.now.duration_since(killed) < Duration::from_secs(26));
}

#[test]
fn graceful_leave_shows_left() {
    let mut sim = cluster(4, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    let now = sim.now;
    sim.node(3).leave(now);
    sim.run_for(Duration::from_millis(50));
    sim.nodes[3] = None;
    sim.run_for(Duration::from_secs(5));
    for i in 0..3 {
        let m = sim.node(i).members().into_iter().find(|m| m.name == "node-3").unwrap();
        assert_eq!(m.status, MemberStatus::Left, "seen by node-{i}");
    }
    assert!(sim.failures().is_empty());
}

#[test]
fn restarted_node_refutes_its_death() {
    let mut sim = cluster(4, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    sim.nodes[3] = None;
    let end = sim.now + Duration::from_secs(30);
    assert!(sim.run_until(end, |s| {
        s.nodes[0]
            .as_ref()
            .unwrap()
            .members()
            .iter()
            .any(|m| m.name == "node-3" && m.status == MemberStatus::Failed)
    }));
    // Restart under the same name within GossipToTheDeadTime: incarnation 1 again.
    sim.put(3, Sim::config(3));
    sim.join(3, 0);
    let end = sim.now + Duration::from_secs(10);
    assert!(sim.run_until(end, Sim::converged));
    assert!(sim.node(3).incarnation() > 1, "refuted with a higher incarnation");
}

#[test]
fn partition_heals() {
    let mut sim = cluster(10, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    sim.partition = Some((0..5).collect());
    sim.run_for(Duration::from_secs(60));
    let view0 = sim.alive_view(0);
    assert_eq!(view0.len(), 5, "each side sees only itself: {view0:?}");
    sim.partition = None;
    let end = sim.now + Duration::from_secs(120);
    assert!(
        sim.run_until(end, Sim::converged),
        "views: {:?}",
        (0..10).map(|i| sim.alive_view(i).len()).collect::<Vec<_>>()
    );
}

fn run_key_op(sim: &mut Sim, from: usize, op: KeyOp) -> KeyQueryResult {
    let now = sim.now;
    let id = sim.node(from).key_query(now, op);
    let end = sim.now + Duration::from_secs(10);
    let found = |s: &Sim| {
        s.events.iter().any(|(i, e)| *i == from && matches!(e, Event::KeyQueryFinished { id: qid, .. } if qid.ltime == id.ltime && qid.id == id.id))
    };
    assert!(sim.run_until(end, found));
    sim.events
        .iter()
        .find_map(|(i, e)| match e {
            Event::KeyQueryFinished { id: qid, result, .. }
                if *i == from && qid.ltime == id.ltime && qid.id == id.id =>
            {
                Some(result.clone())
            }
            _ => None,
        })
        .unwrap()
}

#[test]
fn key_rotation_reaches_every_node() {
    let k1 = SecretKey::generate(KeySize::Aes256).unwrap();
    let k2 = SecretKey::generate(KeySize::Aes128).unwrap();
    let mut sim = cluster(5, Some(&keyed(&k1)));
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    let b1 = k1.to_base64().to_string();
    let b2 = k2.to_base64().to_string();

    let r = run_key_op(&mut sim, 0, KeyOp::Install(k2.as_bytes().to_vec()));
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (5, 5, 0), "{r:?}");
    let r = run_key_op(&mut sim, 1, KeyOp::Use(k2.as_bytes().to_vec()));
    assert_eq!(r.outcome(), Ok(()));
    for i in 0..5 {
        assert_eq!(sim.node(i).security().keyring.primary_key().as_ref(), Some(&k2));
    }
    let r = run_key_op(&mut sim, 2, KeyOp::List);
    assert_eq!(r.keys.get(&b1), Some(&5));
    assert_eq!(r.keys.get(&b2), Some(&5));
    assert_eq!(r.primary_keys.get(&b2), Some(&5));
    // Removing the primary key is refused everywhere.
    let r = run_key_op(&mut sim, 3, KeyOp::Remove(k2.as_bytes().to_vec()));
    assert_eq!(r.num_err, 5);
    assert_eq!(r.outcome(), Err("5/5 nodes reported failure".to_owned()));
    assert!(r.messages.values().all(|m| m == "Removing the primary key is not allowed"));
    let r = run_key_op(&mut sim, 4, KeyOp::Remove(k1.as_bytes().to_vec()));
    assert_eq!(r.outcome(), Ok(()));
    for i in 0..5 {
        assert_eq!(sim.node(i).security().keyring.keys(), vec![k2.clone()]);
    }
    // Everything still works under the new key only.
    sim.run_for(Duration::from_secs(10));
    assert!(sim.converged());
    assert!(sim.failures().is_empty());
    // A bad key size is reported with memberlist's text.
    let r = run_key_op(&mut sim, 0, KeyOp::Install(vec![1, 2, 3]));
    assert_eq!(r.num_err, 5);
    assert!(r.messages.values().all(|m| m == "key size must be 16, 24 or 32 bytes"));
}

#[test]
fn node_without_key_or_with_wrong_key_cannot_join() {
    let k1 = SecretKey::generate(KeySize::Aes256).unwrap();
    let k2 = SecretKey::generate(KeySize::Aes256).unwrap();
    let mut sim = cluster(2, Some(&keyed(&k1)));
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    // No key.
    sim.put(2, Sim::config(2));
    // Wrong key.
    let mut c = Sim::config(3);
    c.security = keyed(&k2);
    sim.put(3, c);
    sim.join(2, 0);
    sim.join(3, 0);
    sim.run_for(Duration::from_secs(5));
    let errs: Vec<_> = sim.join_errors.iter().map(|(i, e)| (*i, e.clone())).collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    let no_key = &errs.iter().find(|(i, _)| *i == 2).unwrap().1;
    assert!(no_key.contains("encrypted") && no_key.contains("not configured"), "{no_key}");
    let wrong = &errs.iter().find(|(i, _)| *i == 3).unwrap().1;
    assert!(wrong.contains("no installed keys could decrypt"), "{wrong}");
    assert_eq!(sim.alive_view(0), vec!["node-0", "node-1"]);
    assert_eq!(sim.alive_view(2), vec!["node-2"]);
    assert_eq!(sim.alive_view(3), vec!["node-3"]);
}

/// Consul's upshift: no encryption → key everywhere with both verify flags
/// off → verify_outgoing on → verify_incoming on, restarting one node at a
/// time, without any node ever being marked failed.
#[test]
fn upshift_to_full_encryption_without_failures() {
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let n = 5;
    let mut sim = cluster(n, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    for (incoming, outgoing) in [(false, false), (false, true), (true, true)] {
        for i in 0..n {
            let mut c = Sim::config(i);
            c.security = GossipSecurity {
                verify_incoming: incoming,
                verify_outgoing: outgoing,
                ..keyed(&key)
            };
            sim.put(i, c);
            sim.join(i, (i + 1) % n);
            let end = sim.now + Duration::from_secs(10);
            assert!(sim.run_until(end, Sim::converged), "stage ({incoming}, {outgoing}) node {i}");
            assert!(sim.join_errors.is_empty(), "{:?}", sim.join_errors);
        }
        sim.run_for(Duration::from_secs(10));
        assert!(sim.converged(), "after stage ({incoming}, {outgoing})");
    }
    assert!(sim.failures().is_empty(), "{:?}", sim.failures());
    // Fully encrypted now: a node without the key cannot get in.
    sim.put(n, Sim::config(n));
    sim.join(n, 0);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.alive_view(0).len(), n);
}

#[test]
fn user_events_reach_everyone_once() {
    let mut sim = cluster(6, None);
    let end = sim.now + Duration::from_secs(60);
    assert!(sim.run_until(end, Sim::converged));
    sim.node(2).user_event("deploy", b"v1", false);
    sim.run_for(Duration::from_secs(5));
    for i in 0..6 {
        let got = sim
            .events
            .iter()
            .filter(|(j, e)| *j == i && matches!(e, Event::UserEvent { name, payload, .. } if name == "deploy" && payload == b"v1"))
            .count();
        assert_eq!(got, 1, "node-{i}");
    }
}

fn lone_node(security: GossipSecurity) -> Node {
    let mut c = Sim::config(0);
    c.security = security;
    Node::new(c, Instant::now())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random bytes, truncated frames and frames sealed with an unknown key
    /// are dropped without panics or membership changes.
    #[test]
    fn hostile_input_is_dropped(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let other = SecretKey::from_bytes(&[9; 16]).unwrap();
        let now = Instant::now();
        let from = Sim::addr(9);
        for mut node in [lone_node(GossipSecurity::default()), lone_node(keyed(&key))] {
            node.handle_packet(now, from, &bytes);
            let _ = node.handle_stream(now, from, &bytes);
            // A well-formed alive sealed with a key the node does not have.
            let foreign = keyed(&other);
            let alive = foreign.encode_packet(&bytes).unwrap();
            node.handle_packet(now, from, &alive);
            let frame = foreign.encode_stream(&bytes).unwrap();
            let _ = node.handle_stream(now, from, &frame[..cut.min(frame.len())]);
            node.handle_timeout(now + Duration::from_secs(1));
            prop_assert_eq!(node.members().len(), 1);
        }
    }
}

/// serf answers a key change whose keyring file cannot be written with a
/// failure carrying the error text; so does the node through its saver.
#[test]
fn keyring_save_failure_is_reported_as_failure() {
    let k1 = SecretKey::generate(KeySize::Aes256).unwrap();
    let k2 = SecretKey::generate(KeySize::Aes256).unwrap();
    let mut sim = Sim::new();
    let mut c = Sim::config(0);
    c.security = keyed(&k1);
    let saved = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = saved.clone();
    c.keyring_saver = Some(consul_sec_gossip::KeyringSaver::new(move |ring: &Keyring| {
        log.lock().unwrap().push(ring.len());
        if ring.len() > 1 { Err("open /ro/keyring: read-only file system".into()) } else { Ok(()) }
    }));
    sim.put(0, c);
    let r = run_key_op(&mut sim, 0, KeyOp::Install(k2.as_bytes().to_vec()));
    assert_eq!(r.num_err, 1);
    assert_eq!(r.messages["node-0"], "open /ro/keyring: read-only file system");
    assert_eq!(*saved.lock().unwrap(), vec![2]);
    // Listing does not write.
    let r = run_key_op(&mut sim, 0, KeyOp::List);
    assert_eq!(r.outcome(), Ok(()));
    assert_eq!(saved.lock().unwrap().len(), 1);
}

/// The serf messages in everything `node` sends over `span` of virtual time.
fn gossiped_serf(node: &mut Node, start: Instant, span: Duration) -> Vec<SerfMessage> {
    let mut out = Vec::new();
    let mut now = start;
    while now < start + span {
        node.handle_timeout(now);
        while let Some(t) = node.poll_transmit() {
            let Transmit::Packet { bytes, .. } = t else { continue };
            for m in decode_packet(&bytes) {
                if let Ok(Message::User(raw)) = m
                    && let Ok(serf) = SerfMessage::decode(&raw)
                {
                    out.push(serf);
                }
            }
        }
        now += Duration::from_millis(50);
    }
    out
}

/// serf's Lamport clocks are Go `uint64`s that wrap. A peer sending
/// `LTime = u64::MAX` (a leave intent about us, a user event, a query) must
/// neither panic the node nor wedge its clocks: they wrap to 0 as Go's do.
#[test]
fn serf_clocks_wrap_at_u64_max_like_go() {
    let now = Instant::now();
    let from = Sim::addr(9);
    let mut node = lone_node(GossipSecurity::default());
    let peer = Alive {
        incarnation: 1,
        node: "peer".into(),
        addr: vec![10, 0, 0, 10],
        port: from.port(),
        meta: Vec::new(),
        vsn: VSN.to_vec(),
    };
    node.handle_packet(now, from, &encode_message(&Message::Alive(peer)));
    let user = |m: SerfMessage| encode_message(&Message::User(m.encode()));

    // A leave intent about us at the last clock value is refuted with a
    // join intent at the wrapped member clock.
    let leave = Leave { ltime: u64::MAX, node: "node-0".into(), prune: false };
    node.handle_packet(now, from, &user(SerfMessage::Leave(leave)));
    let me = node.members().into_iter().find(|m| m.name == "node-0").unwrap();
    assert_eq!(me.status, MemberStatus::Alive);

    // A user event at the last clock value is delivered; our next event
    // goes out at the wrapped event clock.
    let ev = UserEvent { ltime: u64::MAX, name: "far".into(), payload: b"p".to_vec(), cc: false };
    node.handle_packet(now, from, &user(SerfMessage::UserEvent(ev)));
    node.user_event("near", b"q", false);
    let mut got = Vec::new();
    while let Some(e) = node.poll_event() {
        if let Event::UserEvent { name, ltime, .. } = e {
            got.push((name, ltime));
        }
    }
    assert_eq!(got, vec![("far".to_owned(), u64::MAX), ("near".to_owned(), 0)]);

    // Same for the query clock: our next query carries ltime 0.
    let q = Query { ltime: u64::MAX, id: 7, name: "app".into(), ..Query::default() };
    node.handle_packet(now, from, &user(SerfMessage::Query(q)));
    let id = node.key_query(now, KeyOp::List);
    assert_eq!(id.ltime, 0);

    let sent = gossiped_serf(&mut node, now, Duration::from_secs(2));
    let refute = SerfMessage::Join(JoinIntent { ltime: 0, node: "node-0".into() });
    assert!(sent.contains(&refute), "no refuting join intent in {sent:?}");
    assert!(
        sent.iter()
            .any(|m| matches!(m, SerfMessage::UserEvent(e) if e.name == "near" && e.ltime == 0)),
        "{sent:?}"
    );
}

/// Key bytes and base64 keys never show in `Debug` output, neither on their
/// own nor inside the event that carries them.
#[test]
fn key_material_stays_out_of_debug_output() {
    let key = SecretKey::from_bytes(&[0x5a; 32]).unwrap();
    let b64 = key.to_base64().to_string();
    let bytes_listed = "90, 90";
    let op = KeyOp::Install(key.as_bytes().to_vec());
    let dbg = format!("{op:?}");
    assert_eq!(dbg, "Install(<redacted 32-byte key>)");
    assert_eq!(format!("{:?}", KeyOp::Remove(vec![1; 16])), "Remove(<redacted 16-byte key>)");
    assert_eq!(format!("{:?}", KeyOp::List), "List");

    let mut result = KeyQueryResult { num_nodes: 3, num_resp: 3, ..KeyQueryResult::default() };
    result.keys.insert(b64.clone(), 3);
    result.primary_keys.insert(b64.clone(), 3);
    let dbg = format!("{result:?}");
    assert!(!dbg.contains(&b64), "{dbg}");
    assert!(dbg.contains("num_nodes: 3") && dbg.contains("keys: <1 redacted>"), "{dbg}");

    let ev = Event::KeyQueryFinished { id: QueryId { ltime: 1, id: 2 }, op, result };
    let dbg = format!("{ev:?}");
    assert!(!dbg.contains(&b64) && !dbg.contains(bytes_listed), "{dbg}");
    assert!(dbg.contains("Install(<redacted 32-byte key>)"), "{dbg}");
}

/// With the same seeds and the same inputs a node makes the same choices:
/// two runs of a 20-node cluster see the same events at the same virtual
/// times (iteration order over members never depends on a hash seed).
#[test]
fn same_seeds_give_the_same_run() {
    let run = || {
        let mut sim = cluster(20, None);
        let start = sim.now;
        let end = start + Duration::from_secs(60);
        assert!(sim.run_until(end, Sim::converged));
        sim.run_for(Duration::from_secs(5));
        let trace: Vec<String> = sim.events.iter().map(|(i, e)| format!("{i} {e:?}")).collect();
        (sim.now - start, trace)
    };
    let (first_time, first) = run();
    let (second_time, second) = run();
    assert_eq!(first_time, second_time);
    assert_eq!(first, second);
}
