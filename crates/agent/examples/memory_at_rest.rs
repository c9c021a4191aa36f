//! Issue 7 memory figure: resident memory at rest of `consul-sec agent`
//! processes in a 10-node encrypted cluster, next to a 10-node `serf agent`
//! cluster with the same key, measured side by side in one run. Criterion
//! cannot measure memory, so this prints the figures.
//!
//! Both clusters run at the same time on 127.0.0.1 (free ports, one temp
//! data dir per consul-sec agent). Once every node of each cluster sees all
//! of its cluster alive, the tool waits `rest` seconds and reads `VmRSS`
//! (plus the anonymous / file-backed split from `smaps_rollup` and the
//! thread count) of every process, then prints the medians and the ratio.
//! It exits 1 when the ratio misses the target (at most half of serf's).
//!
//! Run (the agent must be the release build):
//!
//! ```text
//! cargo build --release -p consul-sec
//! cargo run --release -p consul-sec-agent --example memory_at_rest [nodes] [rest-seconds]
//! ```
//!
//! The `consul-sec` binary is `CONSUL_SEC_BIN` if set, else the one next to
//! this example's directory (`target/release/consul-sec`); `serf` is
//! `SERF_BIN` if set, else `serf` on PATH.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use consul_sec_agent::client::{ApiClient, ClientOptions};
use consul_sec_gossip_crypto::{KeySize, SecretKey};

/// How long each cluster may take to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A free port on 127.0.0.1 for both TCP and UDP (gossip binds both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Memory figures of one process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// `VmRSS` from /proc/<pid>/status.
    rss: u64,
    /// `Anonymous` from /proc/<pid>/smaps_rollup (heap, stacks, arenas).
    anon: u64,
    /// `Rss - Anonymous`: mapped binary/library pages and other files.
    file: u64,
    /// Threads of the process.
    threads: u64,
}

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let rss = field(&status, "VmRSS:");
    let anon = field(&rollup, "Anonymous:");
    Memory {
        rss,
        anon,
        file: field(&rollup, "Rss:").saturating_sub(anon),
        threads: field(&status, "Threads:"),
    }
}

fn median(mut values: Vec<u64>) -> f64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2] as f64,
        _ => (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0,
    }
}

/// Child processes, killed when dropped (also on a panic).
#[derive(Default)]
struct Procs(Vec<Child>);

impl Procs {
    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }

    /// SIGINT first (graceful leave), then kill whatever is left.
    fn stop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.0 {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn consul_sec_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CONSUL_SEC_BIN") {
        return bin.into();
    }
    // target/<profile>/examples/memory_at_rest -> target/<profile>/consul-sec
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(|d| d.parent()).map(|d| d.join("consul-sec")).expect("target dir")
}

/// Starts one consul-sec agent and returns it with its HTTP port once its
/// banner is out.
fn start_agent(
    bin: &PathBuf,
    dir: &std::path::Path,
    i: usize,
    key: &str,
    join: Option<u16>,
) -> (Child, u16, u16) {
    let (http, lan) = (free_port(), free_port());
    let mut cmd = Command::new(bin);
    // The agent reads `CONSUL_SEC_<key>` as configuration.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONSUL_SEC_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("agent")
        .arg(format!("-node=mem-{i}"))
        .arg(format!("-data-dir={}", dir.join(format!("mem-{i}")).display()))
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
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut started = false;
    let mut line = String::new();
    while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line.starts_with("==> Log data will now stream in") {
            started = true;
            break;
        }
        line.clear();
    }
    assert!(started, "consul-sec agent mem-{i} exited before its banner");
    // Keep draining stdout so later lines never block or fail the agent.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    (child, http, lan)
}

/// Alive members of a serf agent as its own CLI shows them (`None`: RPC not up).
fn serf_alive(serf: &str, rpc: u16) -> Option<usize> {
    let out = Command::new(serf)
        .args(["members", &format!("-rpc-addr=127.0.0.1:{rpc}"), "-status=alive"])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().count())
}

fn start_serf(serf: &str, i: usize, key: &str, join: Option<u16>) -> (Child, u16, u16) {
    let (bind, rpc) = (free_port(), free_port());
    let mut cmd = Command::new(serf);
    cmd.arg("agent")
        .arg(format!("-node=mem-serf-{i}"))
        .arg(format!("-bind=127.0.0.1:{bind}"))
        .arg(format!("-rpc-addr=127.0.0.1:{rpc}"))
        .arg(format!("-encrypt={key}"))
        .arg("-log-level=err")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(port) = join {
        cmd.arg(format!("-join=127.0.0.1:{port}"));
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {serf}: {e}"));
    // Wait for its RPC (so a later -join to it finds it listening).
    let deadline = Instant::now() + Duration::from_secs(10);
    while serf_alive(serf, rpc).is_none() {
        assert!(Instant::now() < deadline, "serf agent mem-serf-{i} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, bind, rpc)
}

fn wait_until(what: &str, mut converged: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    while !converged() {
        assert!(Instant::now() < deadline, "{what} did not converge in {CONVERGE_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(kind: &str, figures: &[Memory]) -> f64 {
    let rss = median(figures.iter().map(|m| m.rss).collect());
    println!(
        "{kind:>10}: median VmRSS {rss:.0} KiB (anon {:.0} KiB, file-backed {:.0} KiB, threads {:.0}); min {} max {} KiB",
        median(figures.iter().map(|m| m.anon).collect()),
        median(figures.iter().map(|m| m.file).collect()),
        median(figures.iter().map(|m| m.threads).collect()),
        figures.iter().map(|m| m.rss).min().unwrap_or(0),
        figures.iter().map(|m| m.rss).max().unwrap_or(0),
    );
    rss
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10).max(1);
    let rest = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(10));
    let bin = consul_sec_bin();
    let serf = std::env::var("SERF_BIN").unwrap_or_else(|_| "serf".to_owned());
    if Command::new(&serf).arg("version").output().is_err() {
        eprintln!("{serf}: not found; set SERF_BIN or put serf on PATH");
        return ExitCode::FAILURE;
    }
    let key = SecretKey::generate(KeySize::Aes256).expect("random key").to_base64().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    println!("consul-sec: {}", bin.display());

    let mut ours = Procs::default();
    let mut http_ports = Vec::new();
    let mut seed = None;
    for i in 0..n {
        let (child, http, lan) = start_agent(&bin, dir.path(), i, &key, seed);
        seed.get_or_insert(lan);
        ours.0.push(child);
        http_ports.push(http);
    }
    let mut serfs = Procs::default();
    let mut rpc_ports = Vec::new();
    let mut serf_seed = None;
    for i in 0..n {
        let (child, bind, rpc) = start_serf(&serf, i, &key, serf_seed);
        serf_seed.get_or_insert(bind);
        serfs.0.push(child);
        rpc_ports.push(rpc);
    }

    let clients: Vec<ApiClient> = http_ports
        .iter()
        .map(|port| {
            let options = ClientOptions {
                http_addr: Some(format!("127.0.0.1:{port}")),
                ..Default::default()
            };
            ApiClient::new(&options).expect("api client")
        })
        .collect();
    wait_until("consul-sec cluster", || {
        clients
            .iter()
            .all(|c| c.members().is_ok_and(|m| m.iter().filter(|m| m.status == 1).count() == n))
    });
    wait_until("serf cluster", || rpc_ports.iter().all(|&rpc| serf_alive(&serf, rpc) == Some(n)));
    drop(clients);
    println!("both clusters converged ({n} nodes each); {}s at rest", rest.as_secs());
    std::thread::sleep(rest);

    let ours_mem: Vec<Memory> = ours.pids().into_iter().map(memory).collect();
    let serf_mem: Vec<Memory> = serfs.pids().into_iter().map(memory).collect();
    let ours_rss = report("consul-sec", &ours_mem);
    let serf_rss = report("serf", &serf_mem);
    let ratio = ours_rss / serf_rss;
    let met = ratio <= 0.5;
    println!(
        "ratio: {:.1}% of serf's resident memory (target: at most 50%): {}",
        ratio * 100.0,
        if met { "met" } else { "MISSED" }
    );
    ours.stop();
    serfs.stop();
    if met { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
