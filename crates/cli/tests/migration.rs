//! Issue 8's two migrations on a running cluster, end to end: three server
//! and two client `consul-sec agent` processes on 127.0.0.1, certificates
//! from `cargo xtask gen-certs` (called as a library, the same code and
//! file names), rolled one agent at a time while every agent keeps pinging
//! every server over RPC.
//!
//! The conditions checked through each whole run:
//! - no RPC call fails unless its source or its target is the one agent
//!   being restarted at that moment (a SIGHUP roll excuses nothing);
//! - no agent ever sees a member as failed (polled `/v1/agent/members`,
//!   and no `EventMemberFailed` in any agent's log);
//! - each stage does what the docs say: plaintext until `verify_outgoing`,
//!   TLS for every call after it, plaintext refused once the servers have
//!   `verify_incoming`; the gossip key in three stages, then a keyless node
//!   cannot join.
//!
//! The cluster tests take a lock so that only one cluster runs at a time:
//! they are timing-sensitive (gossip failure detection) on a 2-core box.

mod support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::*;

/// One cluster at a time in this binary.
fn cluster_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const SERVERS: usize = 3;
const CLIENTS: usize = 2;

/// Per-node settings written to the node's config file for one stage.
type StageConfig = fn(&Node, &Path) -> String;

/// One agent of the cluster: fixed ports and data dir across restarts.
struct Node {
    index: usize,
    name: String,
    server: bool,
    rpc: Option<u16>,
    config_file: PathBuf,
    /// Command-line flags beyond the ones `support::Agent` adds.
    flags: Vec<String>,
    agent: Option<Agent>,
    /// Logs of earlier incarnations of this agent (before restarts).
    old_logs: String,
}

impl Node {
    fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("agent running")
    }

    fn http(&self) -> u16 {
        self.agent().http
    }

    /// Every log line of every incarnation so far.
    fn logs(&self) -> String {
        let agent = self.agent();
        format!("{}{}{}", self.old_logs, agent.stdout(), agent.stderr())
    }
}

/// What every load and watch thread records.
#[derive(Default)]
struct Record {
    /// The node being restarted right now, if any.
    busy: Mutex<Option<usize>>,
    calls: Mutex<Vec<Call>>,
    /// `(observer, member, status)` for every failed member seen.
    failed_seen: Mutex<Vec<(String, String, u64)>>,
    stop: AtomicBool,
}

#[derive(Debug, Clone)]
struct Call {
    src: usize,
    dst: usize,
    /// Time since the run started.
    at: Duration,
    /// Stage in force when the call started.
    stage: &'static str,
    /// `Ok(tls)` or the error.
    outcome: Result<bool, String>,
    /// The source or target was being restarted during the call.
    excused: bool,
}

struct Cluster {
    dir: PathBuf,
    pki: PathBuf,
    nodes: Vec<Node>,
    record: Arc<Record>,
    stage: Arc<Mutex<&'static str>>,
    started: Instant,
    threads: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts 3 servers and 2 clients with `config` and waits until each
    /// sees all five alive.
    fn start(name: &str, config: StageConfig) -> Cluster {
        let dir = tempfile::Builder::new().prefix(name).tempdir().unwrap().keep();
        let pki = dir.join("pki");
        let mut report = Vec::new();
        xtask::run_from(["xtask", "gen-certs", "--out", pki.to_str().unwrap()], &mut report)
            .unwrap();
        let lan: Vec<u16> = (0..SERVERS + CLIENTS).map(|_| free_port()).collect();
        let http: Vec<u16> = (0..SERVERS + CLIENTS).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for index in 0..SERVERS + CLIENTS {
            let server = index < SERVERS;
            let name = if server {
                format!("server-{index}")
            } else {
                format!("client-{}", index - SERVERS)
            };
            let node = Node {
                index,
                name,
                server,
                rpc: server.then(free_port),
                config_file: dir.join(format!("node-{index}.hcl")),
                flags: Vec::new(),
                agent: None,
                old_logs: String::new(),
            };
            std::fs::write(&node.config_file, config(&node, &pki)).unwrap();
            nodes.push(node);
        }
        let mut cluster = Cluster {
            dir,
            pki,
            nodes,
            record: Arc::new(Record::default()),
            stage: Arc::new(Mutex::new("start")),
            started: Instant::now(),
            threads: Vec::new(),
        };
        for index in 0..SERVERS + CLIENTS {
            let flags = cluster.flags(index, &lan);
            let node = &mut cluster.nodes[index];
            let data_dir = cluster.dir.join(&node.name);
            let agent = Agent::spawn_on(&node.name, &data_dir, &flags, (http[index], lan[index]));
            node.flags = flags;
            node.agent = Some(agent);
        }
        for node in &cluster.nodes {
            let agent = node.agent();
            wait_for(&format!("{} to start", node.name), Duration::from_secs(30), || {
                agent.stdout().contains("==> Log data will now stream in as it occurs:")
                    || agent.exited()
            });
            assert!(!agent.exited(), "{} exited:\n{}", node.name, node.logs());
        }
        cluster.wait_all_alive("the cluster to form");
        cluster
    }

    /// Command-line flags of node `index`: ports, server role, its config
    /// file and a retry-join to every other server.
    fn flags(&self, index: usize, lan: &[u16]) -> Vec<String> {
        let node = &self.nodes[index];
        let mut flags = vec![format!("-config-file={}", node.config_file.display())];
        if let Some(rpc) = node.rpc {
            flags.push("-server".to_owned());
            flags.push(format!("-server-port={rpc}"));
        }
        for (other, port) in lan.iter().enumerate().take(SERVERS) {
            if other != index {
                flags.push(format!("-retry-join=127.0.0.1:{port}"));
            }
        }
        flags
    }

    /// The members each node reports, as name -> status.
    fn members_of(&self, index: usize) -> Option<BTreeMap<String, u64>> {
        members_at(self.nodes[index].http())
    }

    fn wait_all_alive(&self, what: &str) {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        wait_for(what, Duration::from_secs(40), || {
            (0..self.nodes.len()).all(|i| {
                self.members_of(i).is_some_and(|m| {
                    m.len() == names.len() && names.iter().all(|n| m.get(*n) == Some(&1))
                })
            })
        });
    }

    /// Starts the RPC load (each agent pings every server but itself, about
    /// every 50 ms) and the gossip watch (every agent's members, every
    /// 250 ms).
    fn start_load(&mut self) {
        let servers: Vec<(usize, u16)> =
            self.nodes.iter().filter_map(|n| Some((n.index, n.rpc?))).collect();
        let http_ports: Vec<u16> = self.nodes.iter().map(Node::http).collect();
        for (src, &port) in http_ports.iter().enumerate() {
            let record = Arc::clone(&self.record);
            let stage = Arc::clone(&self.stage);
            let servers = servers.clone();
            let started = self.started;
            self.threads.push(std::thread::spawn(move || {
                while !record.stop.load(Ordering::Relaxed) {
                    for &(dst, rpc) in servers.iter().filter(|(dst, _)| *dst != src) {
                        let busy_before = *record.busy.lock().unwrap();
                        let in_stage = *stage.lock().unwrap();
                        let at = started.elapsed();
                        let path = format!("/v1/internal/rpc/ping?addr=127.0.0.1:{rpc}");
                        let outcome = match http_get(port, &path) {
                            Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body)
                                .map_err(|e| format!("bad JSON {body:?}: {e}"))
                                .and_then(|v| v["TLS"].as_bool().ok_or(body)),
                            Ok((status, body)) => Err(format!("{status}: {}", body.trim())),
                            Err(err) => Err(err),
                        };
                        let busy_after = *record.busy.lock().unwrap();
                        let involved = |b: Option<usize>| b == Some(src) || b == Some(dst);
                        let excused = involved(busy_before) || involved(busy_after);
                        let call = Call { src, dst, at, stage: in_stage, outcome, excused };
                        record.calls.lock().unwrap().push(call);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        let record = Arc::clone(&self.record);
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.threads.push(std::thread::spawn(move || {
            while !record.stop.load(Ordering::Relaxed) {
                for (observer, &port) in http_ports.iter().enumerate() {
                    if *record.busy.lock().unwrap() == Some(observer) {
                        continue;
                    }
                    for (member, status) in members_at(port).unwrap_or_default() {
                        // 4: failed (serf's StatusFailed).
                        if status == 4 {
                            let seen = (names[observer].clone(), member, status);
                            record.failed_seen.lock().unwrap().push(seen);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }));
    }

    fn set_stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap() = stage;
    }

    /// Rewrites every node's config file for the stage and rolls the agents
    /// one at a time, servers first: by restart, or by SIGHUP reload.
    fn roll(&mut self, stage: &'static str, config: StageConfig, by_reload: bool) {
        self.set_stage(stage);
        for index in 0..self.nodes.len() {
            let text = config(&self.nodes[index], &self.pki);
            std::fs::write(&self.nodes[index].config_file, text).unwrap();
            if by_reload {
                self.reload(index);
            } else {
                self.restart(index);
            }
            // Let the load run with nobody excused before the next agent.
            std::thread::sleep(Duration::from_millis(700));
        }
    }

    fn restart(&mut self, index: usize) {
        *self.record.busy.lock().unwrap() = Some(index);
        let node = &mut self.nodes[index];
        let agent = node.agent.take().expect("agent running");
        node.old_logs.push_str(&agent.stdout());
        node.old_logs.push_str(&agent.stderr());
        // Same ports, data dir and flags; the config file has the new stage.
        let agent = agent.restart(&node.flags);
        self.nodes[index].agent = Some(agent);
        let node = &self.nodes[index];
        if let Some(rpc) = node.rpc {
            wait_for(&format!("{} RPC port", node.name), Duration::from_secs(20), || {
                TcpStream::connect(("127.0.0.1", rpc)).is_ok()
            });
        }
        self.wait_all_alive(&format!("{} to rejoin", node.name));
        *self.record.busy.lock().unwrap() = None;
    }

    fn reload(&mut self, index: usize) {
        let node = &self.nodes[index];
        let agent = node.agent();
        let before = agent.stderr().matches("reloaded configuration").count();
        agent.signal("HUP");
        wait_for(&format!("{} to reload", node.name), Duration::from_secs(20), || {
            agent.stderr().matches("reloaded configuration").count() > before
        });
        let tail: String = agent.stderr().lines().rev().take(20).collect::<Vec<_>>().join("\n");
        assert!(!tail.contains("Failed to reload"), "{}: {tail}", node.name);
        assert!(!tail.contains("Failed reloading"), "{}: {tail}", node.name);
    }

    /// Calls so far.
    fn calls(&self) -> Vec<Call> {
        self.record.calls.lock().unwrap().clone()
    }

    /// Stops the load and checks the conditions that hold for the whole
    /// run: no unexcused failure, no member ever failed, every pair of
    /// (agent, server) exercised in every stage.
    fn finish(mut self, stages: &[&str]) -> Vec<Call> {
        self.record.stop.store(true, Ordering::Relaxed);
        for thread in std::mem::take(&mut self.threads) {
            thread.join().unwrap();
        }
        let calls = self.calls();
        let bad: Vec<&Call> = calls.iter().filter(|c| c.outcome.is_err() && !c.excused).collect();
        let name = |i: usize| self.nodes[i].name.clone();
        assert!(
            bad.is_empty(),
            "{} of {} RPC calls failed with neither end restarting, e.g.:\n{}",
            bad.len(),
            calls.len(),
            bad.iter()
                .take(10)
                .map(|c| format!(
                    "{:?} {} -> {} [{}]: {:?}",
                    c.at,
                    name(c.src),
                    name(c.dst),
                    c.stage,
                    c.outcome
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let failed = self.record.failed_seen.lock().unwrap().clone();
        assert!(failed.is_empty(), "members seen failed: {failed:?}");
        for node in &self.nodes {
            let logs = node.logs();
            assert!(
                !logs.contains("EventMemberFailed"),
                "{} logged a failed member:\n{logs}",
                node.name
            );
            assert!(logs.contains("EventMemberJoin"), "{} logged no joins", node.name);
        }
        for stage in stages {
            for src in 0..self.nodes.len() {
                for dst in (0..SERVERS).filter(|&d| d != src) {
                    let ok = calls
                        .iter()
                        .filter(|c| c.stage == *stage && c.src == src && c.dst == dst)
                        .filter(|c| c.outcome.is_ok())
                        .count();
                    assert!(
                        ok >= 3,
                        "stage {stage}: only {ok} calls {} -> {}",
                        name(src),
                        name(dst)
                    );
                }
            }
        }
        calls
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.record.stop.store(true, Ordering::Relaxed);
        for node in &mut self.nodes {
            drop(node.agent.take());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/v1/agent/members` of the agent on `port`, as name -> status.
fn members_at(port: u16) -> Option<BTreeMap<String, u64>> {
    let (status, body) = http_get(port, "/v1/agent/members").ok()?;
    if status != 200 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    value
        .as_array()?
        .iter()
        .map(|m| Some((m["Name"].as_str()?.to_owned(), m["Status"].as_u64()?)))
        .collect()
}

/// The names of the members that advertise the `use_tls=1` serf tag, as
/// the agent on `port` sees them.
fn use_tls_members(port: u16) -> Vec<String> {
    let (_, body) = http_get(port, "/v1/agent/members").unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Tags"]["use_tls"] == "1")
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A plaintext `Status.Ping` written straight to a server's RPC port, as a
/// client without TLS would: `Ok(true)` if the server answered, `Ok(false)`
/// if it closed the connection without a byte.
fn plaintext_ping(port: u16) -> std::io::Result<bool> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // 0x00 (RPCConsul), then net/rpc's msgpack request header and an empty body:
    // {"ServiceMethod": "Status.Ping", "Seq": 0} {}.
    let mut bytes = vec![0x00, 0x82, 0xad];
    bytes.extend_from_slice(b"ServiceMethod");
    bytes.push(0xab);
    bytes.extend_from_slice(b"Status.Ping");
    bytes.push(0xa3);
    bytes.extend_from_slice(b"Seq");
    bytes.extend_from_slice(&[0x00, 0x80]);
    stream.write_all(&bytes)?;
    let mut reply = [0u8; 64];
    match stream.read(&mut reply) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(false),
        Err(e) => Err(e),
    }
}

// ---- TLS stages ----------------------------------------------------------

fn tls_files(node: &Node, pki: &Path) -> String {
    let (kind, n) =
        if node.server { ("server", node.index) } else { ("client", node.index - SERVERS) };
    format!(
        "    ca_file   = \"{ca}\"\n    cert_file = \"{dir}/dc1-{kind}-consul-{n}.pem\"\n    key_file  = \"{dir}/dc1-{kind}-consul-{n}-key.pem\"\n",
        ca = pki.join("consul-agent-ca.pem").display(),
        dir = pki.display(),
    )
}

fn tls_stage0(_: &Node, _: &Path) -> String {
    "datacenter = \"dc1\"\n".to_owned()
}

fn tls_stage1(node: &Node, pki: &Path) -> String {
    format!(
        "tls {{\n  defaults {{\n{}    verify_incoming = false\n    verify_outgoing = false\n  }}\n  internal_rpc {{\n    verify_server_hostname = false\n  }}\n}}\n",
        tls_files(node, pki)
    )
}

fn tls_stage2(node: &Node, pki: &Path) -> String {
    format!(
        "tls {{\n  defaults {{\n{}    verify_incoming = false\n    verify_outgoing = true\n  }}\n  internal_rpc {{\n    verify_server_hostname = true\n  }}\n}}\n",
        tls_files(node, pki)
    )
}

fn tls_stage3(node: &Node, pki: &Path) -> String {
    format!(
        "tls {{\n  defaults {{\n{}    verify_incoming = {}\n    verify_outgoing = true\n  }}\n  internal_rpc {{\n    verify_server_hostname = true\n  }}\n}}\n",
        tls_files(node, pki),
        node.server
    )
}

/// Every successful call of `stage` that started after `after` used TLS
/// (`tls = true`) or plaintext (`false`).
fn assert_calls_used(calls: &[Call], stage: &str, after: Duration, tls: bool) {
    let wrong: Vec<&Call> = calls
        .iter()
        .filter(|c| c.stage == stage && c.at >= after)
        .filter(|c| c.outcome.as_ref().is_ok_and(|used| *used != tls))
        .collect();
    let total = calls.iter().filter(|c| c.stage == stage && c.at >= after).count();
    assert!(total > 0, "no calls in stage {stage}");
    assert!(
        wrong.is_empty(),
        "{} of {total} calls in {stage} had TLS != {tls}: {:?}",
        wrong.len(),
        wrong.first()
    );
}

fn tls_migration(by_reload: bool) {
    let _one = cluster_lock();
    let name = if by_reload { "tls-reload" } else { "tls-restart" };
    let mut cluster = Cluster::start(name, tls_stage0);
    cluster.start_load();
    let servers: Vec<u16> = cluster.nodes.iter().filter_map(|n| n.rpc).collect();
    // Plaintext is served before the migration (the control for the end).
    for &port in &servers {
        assert!(plaintext_ping(port).unwrap(), "plaintext ping to {port} before TLS");
    }
    cluster.set_stage("plaintext");
    assert!(use_tls_members(cluster.nodes[3].http()).is_empty());
    std::thread::sleep(Duration::from_secs(2));

    cluster.roll("1-certificates", tls_stage1, by_reload);
    if !by_reload {
        // Servers with a CA advertise use_tls=1 (a tag is set at start only).
        let servers = vec!["server-0".to_owned(), "server-1".to_owned(), "server-2".to_owned()];
        wait_for("use_tls tags", Duration::from_secs(10), || {
            use_tls_members(cluster.nodes[4].http()) == servers
        });
    }
    let stage2_at = cluster.started.elapsed();
    cluster.roll("2-verify-outgoing", tls_stage2, by_reload);
    let stage2_done = cluster.started.elapsed();
    for node in &cluster.nodes {
        let out = node.agent().stdout();
        if !by_reload {
            assert!(out.contains("RPC-TLS: true, TLS-Incoming: false"), "{}: {out}", node.name);
        }
    }
    // Plaintext still accepted after step 2.
    for &port in &servers {
        assert!(plaintext_ping(port).unwrap(), "plaintext ping to {port} after step 2");
    }
    cluster.set_stage("2-done");
    std::thread::sleep(Duration::from_secs(2));
    cluster.roll("3-verify-incoming", tls_stage3, by_reload);
    cluster.set_stage("3-done");
    std::thread::sleep(Duration::from_secs(2));

    // Plaintext is refused now, with Consul's log line on the server.
    for &port in &servers {
        assert!(
            !plaintext_ping(port).unwrap(),
            "plaintext ping to {port} was answered after step 3"
        );
    }
    wait_for("the VerifyIncoming warning", Duration::from_secs(5), || {
        cluster.nodes[..SERVERS].iter().all(|n| {
            n.agent().stderr().contains("Non-TLS connection attempted with VerifyIncoming set")
        })
    });
    if !by_reload {
        for node in &cluster.nodes {
            let expected = format!("RPC-TLS: true, TLS-Incoming: {}", node.server);
            assert!(node.agent().stdout().contains(&expected), "{}: {expected}", node.name);
        }
    }

    let calls = cluster.finish(&[
        "plaintext",
        "1-certificates",
        "2-verify-outgoing",
        "2-done",
        "3-verify-incoming",
        "3-done",
    ]);
    // Certificates alone do not turn TLS on (Consul >= 1.7.3).
    assert_calls_used(&calls, "plaintext", Duration::ZERO, false);
    assert_calls_used(&calls, "1-certificates", Duration::ZERO, false);
    // Once every agent dials with verify_outgoing, every call is TLS.
    assert_calls_used(&calls, "2-done", stage2_done, true);
    assert_calls_used(&calls, "3-verify-incoming", stage2_at, true);
    assert_calls_used(&calls, "3-done", stage2_at, true);
    let failed = calls.iter().filter(|c| c.outcome.is_err()).count();
    if by_reload {
        assert_eq!(failed, 0, "a reload roll excuses no failure");
    }
    eprintln!(
        "{name}: {} calls, {failed} failed while their source or target restarted",
        calls.len()
    );
}

#[test]
fn tls_migration_by_rolling_restarts_under_rpc_load() {
    tls_migration(false);
}

#[test]
fn tls_migration_by_sighup_reloads_under_rpc_load() {
    tls_migration(true);
}

// ---- gossip upshift ------------------------------------------------------

fn gossip_stage(key: &str, incoming: bool, outgoing: bool) -> String {
    format!(
        "encrypt = \"{key}\"\nencrypt_verify_incoming = {incoming}\nencrypt_verify_outgoing = {outgoing}\n"
    )
}

/// The key every gossip stage uses (one per test run).
fn upshift_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(keygen)
}

#[test]
fn gossip_upshift_in_three_rolling_restarts_under_rpc_load() {
    let _one = cluster_lock();
    let key = upshift_key();
    let mut cluster = Cluster::start("gossip-upshift", tls_stage0);
    cluster.start_load();
    cluster.set_stage("plaintext");
    std::thread::sleep(Duration::from_secs(2));
    cluster.roll("1-key", |_, _| gossip_stage(upshift_key(), false, false), false);
    cluster.roll("2-outgoing", |_, _| gossip_stage(upshift_key(), false, true), false);
    cluster.roll("3-incoming", |_, _| gossip_stage(upshift_key(), true, true), false);
    cluster.set_stage("encrypted");
    std::thread::sleep(Duration::from_secs(2));
    for node in &cluster.nodes {
        assert!(node.agent().stdout().contains("Gossip encrypt: true"), "{}", node.name);
        let ring = ring(&node.agent().keyring_file());
        assert_eq!(ring, vec![key.to_owned()], "{}'s keyring", node.name);
    }

    // A node without the key cannot join any more.
    let server_lan = cluster.nodes[0].agent().lan_addr();
    let out = consul_sec()
        .arg("agent")
        .arg("-node=keyless")
        .arg(format!("-data-dir={}", cluster.dir.join("keyless").display()))
        .arg("-bind=127.0.0.1")
        .arg(format!("-http-port={}", free_port()))
        .arg(format!("-serf-lan-port={}", free_port()))
        .arg(format!("-join={server_lan}"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Failed to join"), "{stderr}");
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..cluster.nodes.len() {
        let members = cluster.members_of(i).unwrap();
        assert!(
            !members.contains_key("keyless"),
            "{} lists the keyless node",
            cluster.nodes[i].name
        );
    }
    cluster.finish(&["plaintext", "1-key", "2-outgoing", "3-incoming", "encrypted"]);
}
