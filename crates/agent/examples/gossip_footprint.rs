//! Issue 6 footprint figures: resident memory and CPU per gossip node at
//! rest, for 50 consul-sec nodes in one process next to real `serf agent`
//! processes. Criterion cannot measure memory, so this prints the figures.
//!
//! Run: `cargo run --release -p consul-sec-agent --example gossip_footprint [nodes] [serf-agents]`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consul_sec_agent::transport::{GossipNode, GossipOptions};
use consul_sec_gossip::{Config, GossipSecurity, MemberStatus};
use consul_sec_gossip_crypto::{KeySize, Keyring, SecretKey};

/// Resident set size of a process in KiB (`VmRSS` in /proc).
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let serf_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let rest = Duration::from_secs(10);
    let key = SecretKey::generate(KeySize::Aes256).expect("random key");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let base_rss = rss_kib("self");
    let nodes = rt.block_on(async {
        let mut nodes = Vec::new();
        for i in 0..n {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            let mut config = Config::new(format!("fp-{i}"), any);
            config.security = GossipSecurity::new(Keyring::from_keys([key.clone()]).expect("ring"));
            config.rng_seed = i as u64;
            nodes.push(
                GossipNode::start(GossipOptions { config, bind: any, keyring_file: None })
                    .await
                    .expect("start"),
            );
        }
        let seed = [nodes[0].local_addr()];
        for node in &nodes[1..] {
            node.join(&seed).await.expect("join");
        }
        while !nodes
            .iter()
            .all(|x| x.members().iter().filter(|m| m.status == MemberStatus::Alive).count() == n)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nodes
    });
    let cpu0 = cpu_ticks("self");
    std::thread::sleep(rest);
    let cpu1 = cpu_ticks("self");
    let rss = rss_kib("self");
    let per_node_kib = rss.saturating_sub(base_rss) as f64 / n as f64;
    let cpu_pct = (cpu1 - cpu0) as f64 / rest.as_secs_f64() / n as f64;
    println!(
        "consul-sec: {n} nodes in one process: RSS {rss} KiB (baseline {base_rss} KiB), {per_node_kib:.0} KiB/node, CPU {cpu_pct:.3}% of a core per node at rest"
    );
    drop(nodes);

    if Command::new("serf").arg("version").output().is_err() {
        println!("serf: not on PATH, no comparison");
        return;
    }
    let mut children: Vec<Child> = Vec::new();
    let dir = std::env::temp_dir();
    let port = |i: usize| 27000 + (std::process::id() as usize % 1000) * 10 + i;
    for i in 0..serf_n {
        let mut cmd = Command::new("serf");
        cmd.arg("agent")
            .arg(format!("-node=fp-serf-{i}"))
            .arg(format!("-bind=127.0.0.1:{}", port(i)))
            .arg(format!("-rpc-addr=127.0.0.1:{}", port(i) + 5000))
            .arg(format!("-encrypt={}", key.to_base64().as_str()));
        if i > 0 {
            cmd.arg(format!("-join=127.0.0.1:{}", port(0)));
        }
        children.push(
            cmd.current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("serf"),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let pids: Vec<String> = children.iter().map(|c| c.id().to_string()).collect();
    let c0: u64 = pids.iter().map(|p| cpu_ticks(p)).sum();
    std::thread::sleep(rest);
    let c1: u64 = pids.iter().map(|p| cpu_ticks(p)).sum();
    let rss: u64 = pids.iter().map(|p| rss_kib(p)).sum();
    let alive = children.len();
    println!(
        "serf: {alive} agents: {:.0} KiB/agent, CPU {:.3}% of a core per agent at rest",
        rss as f64 / alive as f64,
        (c1 - c0) as f64 / rest.as_secs_f64() / alive as f64
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
