//! The gossip transport on real loopback sockets among consul-sec nodes
//! (issue 6, acceptance 5: the upshift from plaintext to full encryption).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use consul_sec_agent::transport::{GossipNode, GossipOptions};
use consul_sec_gossip::{Config, GossipSecurity, MemberStatus, Timing};
use consul_sec_gossip_crypto::{KeySize, Keyring, SecretKey};

mod common;

use common::{addr, free_port};

async fn start(i: usize, port: u16, security: GossipSecurity) -> GossipNode {
    let mut config = Config::new(format!("node-{i}"), addr(port));
    config.security = security;
    config.rng_seed = i as u64;
    config.timing = Timing::lan();
    GossipNode::start(GossipOptions { config, bind: addr(port), keyring_file: None }).await.unwrap()
}

fn views(nodes: &[Option<GossipNode>]) -> Vec<BTreeMap<String, MemberStatus>> {
    nodes
        .iter()
        .flatten()
        .map(|n| n.members().into_iter().map(|m| (m.name, m.status)).collect())
        .collect()
}

/// Waits until every node sees all `n` nodes alive, failing if any node is
/// ever seen as failed on the way.
async fn settle(nodes: &[Option<GossipNode>], n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = views(nodes);
        for view in &v {
            let failed: Vec<_> = view.iter().filter(|(_, s)| **s == MemberStatus::Failed).collect();
            assert!(failed.is_empty(), "{what}: a node was marked failed: {failed:?}");
        }
        if v.len() == n
            && v.iter()
                .all(|view| view.values().filter(|s| **s == MemberStatus::Alive).count() == n)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: membership incomplete: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Consul's documented upshift: every node gets the key with incoming and
/// outgoing verification off, then outgoing on, then incoming on, one node
/// restarted at a time; no node is ever marked failed and membership is
/// complete after every step. At the end a node without the key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upshift_from_plaintext_to_full_encryption() {
    let n = 4;
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<GossipNode>> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        nodes.push(Some(start(i, *port, GossipSecurity::default()).await));
    }
    for node in nodes.iter().skip(1).flatten() {
        node.join(&[addr(ports[0])]).await.unwrap();
    }
    settle(&nodes, n, "plaintext cluster").await;

    for (stage, (incoming, outgoing)) in
        [(false, false), (false, true), (true, true)].into_iter().enumerate()
    {
        for i in 0..n {
            let security = GossipSecurity {
                verify_incoming: incoming,
                verify_outgoing: outgoing,
                ..GossipSecurity::new(Keyring::from_keys([key.clone()]).unwrap())
            };
            nodes[i].take().unwrap().shutdown();
            let node = start(i, ports[i], security).await;
            node.join(&[addr(ports[(i + 1) % n])]).await.unwrap();
            nodes[i] = Some(node);
            let what = format!("stage in={incoming} out={outgoing}, node-{i} restarted");
            settle(&nodes, n, &what).await;
            // Packets flow both ways in the mixed cluster: a query gossiped
            // from the restarted node is answered by every member over UDP.
            let r = nodes[i].as_ref().unwrap().list_keys().await.unwrap();
            // In the first stage only the restarted nodes hold the key yet.
            let keyed = if stage == 0 { i + 1 } else { n };
            assert_eq!((r.num_nodes, r.num_resp, r.num_err), (n, n, n - keyed), "{what}: {r:?}");
            assert_eq!(r.keys.get(key.to_base64().as_str()), Some(&keyed), "{what}");
        }
    }
    let outsider = start(n, free_port(), GossipSecurity::default()).await;
    let err = outsider.join(&[addr(ports[0])]).await.unwrap_err();
    assert!(
        err.to_string().contains("remote state is encrypted and encryption is not configured"),
        "{err}"
    );
    settle(&nodes, n, "after the outsider tried").await;
}

/// Writes `bytes` to the node's TCP port (ignoring a refused write) and
/// returns how long the node took to close the connection (after its
/// error reply, if any).
async fn closed_after(port: u16, bytes: &[u8]) -> Duration {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr(port)).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the node kept the connection open");
    started.elapsed()
}

/// A plaintext stream that never completes is not buffered without end:
/// with encryption and verify_incoming it is dropped at its first byte,
/// and without encryption once it passes memberlist's 20 MiB.
#[tokio::test]
async fn plaintext_streams_are_bounded_and_refused_early_under_verify_incoming() {
    // A user message (type 8) whose header announces 4 GiB of payload.
    let mut header = vec![8u8, 0xce, 0xff, 0xff, 0xff, 0xff];
    header.extend_from_slice(&[0u8; 1024]);

    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let strict = GossipSecurity::new(Keyring::from_keys([key]).unwrap());
    let port = free_port();
    let _strict = start(0, port, strict).await;
    let took = closed_after(port, &header).await;
    assert!(took < Duration::from_secs(5), "refused after {took:?}");

    let port = free_port();
    let _open = start(1, port, GossipSecurity::default()).await;
    let mut flood = header.clone();
    flood.resize(21 * 1024 * 1024, 0);
    let took = closed_after(port, &flood).await;
    assert!(took < Duration::from_secs(9), "closed after {took:?} (the read timeout is 10 s)");
}
