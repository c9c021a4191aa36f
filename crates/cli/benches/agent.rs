//! Issue 7's performance figures for the built `consul-sec` binary:
//! agent start to the `running` banner, and a full key rotation
//! (install, use, remove) over the HTTP API on a 10-node cluster.
//!
//! Run with `cargo bench -p consul-sec --bench agent -- --warm-up-time 1 --measurement-time 5`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consul_sec_agent::client::{ApiClient, ClientOptions, KeyringAction};
use consul_sec_gossip_crypto::{KeySize, SecretKey};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{consul_sec, free_port};

fn new_key() -> String {
    SecretKey::generate(KeySize::Aes256).expect("random key").to_base64().to_string()
}

/// Starts an agent and returns it once its banner's last line is out.
fn start(dir: &std::path::Path, name: &str, key: &str, join: Option<u16>) -> (Child, u16, u16) {
    let (http, lan) = (free_port(), free_port());
    let mut cmd = consul_sec();
    cmd.arg("agent")
        .arg(format!("-node={name}"))
        .arg(format!("-data-dir={}", dir.join(name).display()))
        .arg("-bind=127.0.0.1")
        .arg(format!("-http-port={http}"))
        .arg(format!("-serf-lan-port={lan}"))
        .arg(format!("-encrypt={key}"))
        .arg("-log-level=err")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(port) = join {
        cmd.arg(format!("-join=127.0.0.1:{port}"));
    }
    let mut child = cmd.spawn().expect("spawn agent");
    let stdout = child.stdout.take().expect("piped stdout");
    let started = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("==> Log data will now stream in"));
    if !started {
        let _ = child.wait();
        panic!("agent {name} exited before its banner");
    }
    (child, http, lan)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn start_to_banner(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = new_key();
    let mut run = 0;
    // Each sample also waits for the agent's graceful stop; 20 keep the run short.
    let mut group = c.benchmark_group("agent");
    group.sample_size(20);
    group.bench_function("start_to_running_banner", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run += 1;
                let started = Instant::now();
                let (child, _, _) = start(dir.path(), &format!("start-{run}"), &key, None);
                total += started.elapsed();
                stop(child);
            }
            total
        })
    });
    group.finish();
}

fn rotation_10_nodes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut key = new_key();
    let (first, http, lan) = start(dir.path(), "node-0", &key, None);
    let mut agents = vec![first];
    for i in 1..10 {
        agents.push(start(dir.path(), &format!("node-{i}"), &key, Some(lan)).0);
    }
    let client = ApiClient::new(&ClientOptions {
        http_addr: Some(format!("127.0.0.1:{http}")),
        ..Default::default()
    })
    .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.members().map(|m| m.iter().filter(|m| m.status == 1).count()).unwrap_or(0) < 10 {
        assert!(Instant::now() < deadline, "the 10-node cluster did not form");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut group = c.benchmark_group("keyring");
    group.sample_size(10);
    group.bench_function("rotation_install_use_remove_10_nodes_http", |b| {
        b.iter(|| {
            let new = new_key();
            client.keyring(&KeyringAction::Install(new.clone()), 0).expect("install");
            client.keyring(&KeyringAction::Use(new.clone()), 0).expect("use");
            client.keyring(&KeyringAction::Remove(key.clone()), 0).expect("remove");
            key = new;
        })
    });
    group.finish();
    for agent in agents {
        stop(agent);
    }
}

criterion_group!(benches, start_to_banner, rotation_10_nodes);
criterion_main!(benches);
