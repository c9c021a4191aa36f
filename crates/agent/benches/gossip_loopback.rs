//! Issue 6 performance: membership convergence on loopback for consul-sec
//! nodes (tasks with real sockets) next to real `serf agent` processes
//! started the same way, and a key install + use + remove round over 50
//! consul-sec nodes.
//!
//! Run: `cargo bench -p consul-sec-agent --bench gossip_loopback -- --warm-up-time 1 --measurement-time 3`.
//! The serf cases are skipped (with a note) when `serf` is not on PATH.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consul_sec_agent::transport::{GossipNode, GossipOptions};
use consul_sec_gossip::{Config, Event, GossipSecurity};
use consul_sec_gossip_crypto::{KeySize, Keyring, SecretKey};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::sync::broadcast;

#[path = "../tests/common/mod.rs"]
mod common;

use common::free_port;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start_nodes(n: usize, key: &SecretKey) -> Vec<Arc<GossipNode>> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mut config = Config::new(format!("bench-{i}"), any_port());
        config.rng_seed = i as u64;
        config.security = GossipSecurity::new(Keyring::from_keys([key.clone()]).unwrap());
        let opts = GossipOptions { config, bind: any_port(), keyring_file: None };
        nodes.push(Arc::new(GossipNode::start(opts).await.unwrap()));
    }
    nodes
}

/// Joins every node to the first one at once (as the serf agents below all
/// run `-join=<first>` as soon as they start) and waits until every node has
/// seen a member-join for all `n` members (itself included): the criterion
/// the serf side reads from the agents' `EventMemberJoin` log lines.
async fn converge(nodes: &[Arc<GossipNode>]) {
    let n = nodes.len();
    let mut seen: Vec<(broadcast::Receiver<Event>, HashSet<String>)> =
        nodes.iter().map(|x| (x.subscribe(), HashSet::from([x.name()]))).collect();
    let seeds = [nodes[0].local_addr()];
    let mut joins = tokio::task::JoinSet::new();
    for node in &nodes[1..] {
        let node = Arc::clone(node);
        joins.spawn(async move { node.join(&seeds).await.map(|_| ()) });
    }
    loop {
        for (rx, names) in &mut seen {
            loop {
                match rx.try_recv() {
                    Ok(Event::MemberJoin(m)) => {
                        names.insert(m.name);
                    }
                    Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        }
        if seen.iter().all(|(_, names)| names.len() == n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while let Some(r) = joins.join_next().await {
        r.unwrap().unwrap();
    }
}

struct Serf(Vec<(Child, tempfile::TempDir)>);

impl Drop for Serf {
    fn drop(&mut self) {
        for (c, _) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `n` serf agents (each joining the first) and returns the time
/// until every agent has logged a member-join for all `n` members, or
/// `None` (with a note) when that did not happen within 30 s.
fn serf_converge(n: usize, key: &SecretKey) -> Option<Duration> {
    let start = Instant::now();
    let mut agents = Serf(Vec::new());
    let first = free_port();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let port = if i == 0 { first } else { free_port() };
        let mut cmd = Command::new("serf");
        cmd.arg("agent")
            .arg(format!("-node=serf-{i}"))
            .arg(format!("-bind=127.0.0.1:{port}"))
            .arg(format!("-rpc-addr=127.0.0.1:{}", free_port()))
            .arg(format!("-encrypt={}", key.to_base64().as_str()));
        if i > 0 {
            cmd.arg(format!("-join=127.0.0.1:{first}"));
        }
        let child =
            cmd.stdout(log.try_clone().unwrap()).stderr(log).stdin(Stdio::null()).spawn().unwrap();
        agents.0.push((child, dir));
        if i == 0 {
            // `-join` is fatal when the seed is not listening yet.
            let log = agents.0[0].1.path().join("log");
            while !std::fs::read_to_string(&log).unwrap_or_default().contains("EventMemberJoin") {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "first serf agent did not start"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    loop {
        let done = agents.0.iter().all(|(_, dir)| {
            let text = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
            let names: HashSet<&str> = text
                .lines()
                .filter_map(|l| l.split("EventMemberJoin: ").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .collect();
            names.len() == n
        });
        if done {
            return Some(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(30) {
            let exited =
                agents.0.iter_mut().filter_map(|(c, _)| c.try_wait().ok().flatten()).count();
            eprintln!("note: {n} serf agents did not converge in 30 s ({exited} exited); retrying");
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn bench_converge(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let serf = Command::new("serf").arg("version").output().is_ok();
    if !serf {
        eprintln!("serf not on PATH: skipping the serf comparison");
    }
    let mut g = c.benchmark_group("converge");
    g.sample_size(10);
    for n in [10usize, 50] {
        g.bench_with_input(BenchmarkId::new("consul-sec", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(async {
                        let t = Instant::now();
                        let nodes = start_nodes(n, &key).await;
                        converge(&nodes).await;
                        t.elapsed()
                    });
                }
                total
            })
        });
        if serf {
            g.bench_with_input(BenchmarkId::new("serf", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            (0..3)
                                .find_map(|_| serf_converge(n, &key))
                                .expect("serf agents converge in one of three attempts")
                        })
                        .sum()
                })
            });
        }
    }
    g.finish();
}

fn bench_rotation(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let nodes = rt.block_on(async {
        let nodes = start_nodes(50, &key).await;
        converge(&nodes).await;
        nodes
    });
    let mut g = c.benchmark_group("rotation");
    g.sample_size(10);
    g.bench_function("install+use+remove/consul-sec/50", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let new = SecretKey::generate(KeySize::Aes256).unwrap();
                let old = nodes[0].security().keyring.primary_key().unwrap();
                total += rt.block_on(async {
                    let t = Instant::now();
                    for r in [
                        nodes[0].install_key(new.as_bytes()).await.unwrap(),
                        nodes[1].use_key(new.as_bytes()).await.unwrap(),
                        nodes[2].remove_key(old.as_bytes()).await.unwrap(),
                    ] {
                        assert_eq!(r.outcome(), Ok(()), "{r:?}");
                    }
                    t.elapsed()
                });
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_converge, bench_rotation);
criterion_main!(benches);
