//! Shared scaffolding of the CLI test binaries: real `consul-sec agent`
//! processes on free 127.0.0.1 ports, the skip-or-fail rule for real
//! peers, and small readers of agent output.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part of this module")]

use std::io::{BufRead as _, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_consul-sec");

pub fn require_tool(name: &str) -> bool {
    require_tool_with(name, "version")
}

/// [`require_tool`] for a tool that reports its version with another
/// argument (`curl --version`): true when `<name> <version_arg>` succeeds;
/// otherwise prints why the test skips, or fails under `CONSUL_SEC_INTEROP=1`.
pub fn require_tool_with(name: &str, version_arg: &str) -> bool {
    let found = Command::new(name)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CONSUL_SEC_INTEROP").as_deref() != Ok("1"),
            "`{name}` is required (CONSUL_SEC_INTEROP=1) but was not found on PATH"
        );
        eprintln!(
            "skipping: `{name}` not found on PATH (set CONSUL_SEC_INTEROP=1 to make this fail)"
        );
    }
    found
}

/// A port free for both UDP and TCP on 127.0.0.1, never handed out twice
/// by this process (tests run in parallel).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// The binary, without this project's own `CONSUL_SEC_*` test variables
/// (`CONSUL_SEC_INTEROP`, ...): the agent reads `CONSUL_SEC_<key>` as
/// configuration and rejects names that are not config keys.
pub fn consul_sec() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONSUL_SEC_") {
            command.env_remove(name);
        }
    }
    command
}

pub fn keygen() -> String {
    let out = consul_sec().arg("keygen").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// A `consul-sec agent` child process, killed when dropped.
pub struct Agent {
    pub name: String,
    pub child: Child,
    pub http: u16,
    pub lan: u16,
    pub data_dir: PathBuf,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts `consul-sec agent -node=<name>` with free HTTP and LAN ports
    /// and waits for the banner's last line.
    pub fn start(name: &str, data_dir: &Path, extra: &[String]) -> Agent {
        let agent = Agent::spawn(name, data_dir, extra);
        wait_for(&format!("agent {name} to start"), Duration::from_secs(20), || {
            agent.stdout().contains("==> Log data will now stream in as it occurs:")
                || agent.exited()
        });
        assert!(!agent.exited(), "agent {name} exited:\n{}\n{}", agent.stdout(), agent.stderr());
        agent
    }

    pub fn spawn(name: &str, data_dir: &Path, extra: &[String]) -> Agent {
        Agent::spawn_on(name, data_dir, extra, (free_port(), free_port()))
    }

    pub fn spawn_on(
        name: &str,
        data_dir: &Path,
        extra: &[String],
        (http, lan): (u16, u16),
    ) -> Agent {
        let mut child = consul_sec()
            .arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-data-dir={}", data_dir.display()))
            .arg("-bind=127.0.0.1")
            .arg(format!("-http-port={http}"))
            .arg(format!("-serf-lan-port={lan}"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Agent {
            name: name.to_owned(),
            child,
            http,
            lan,
            data_dir: data_dir.to_owned(),
            stdout,
            stderr,
        }
    }

    /// Stops the agent gracefully and starts it again on the same ports
    /// and data dir with new extra arguments.
    pub fn restart(self, extra: &[String]) -> Agent {
        let (name, data_dir, ports) =
            (self.name.clone(), self.data_dir.clone(), (self.http, self.lan));
        let (code, _) = self.stop("TERM");
        assert_eq!(code, Some(0));
        let agent = Agent::spawn_on(&name, &data_dir, extra, ports);
        wait_for(&format!("agent {name} to restart"), Duration::from_secs(20), || {
            agent.stdout().contains("==> Log data will now stream in as it occurs:")
                || agent.exited()
        });
        assert!(!agent.exited(), "agent {name} exited:\n{}\n{}", agent.stdout(), agent.stderr());
        agent
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn exited(&self) -> bool {
        // `try_wait` needs `&mut`; probing the pid's /proc entry does not.
        let status =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        status.is_empty() || status.split(' ').nth(2) == Some("Z")
    }

    pub fn http_addr(&self) -> String {
        format!("-http-addr=127.0.0.1:{}", self.http)
    }

    pub fn lan_addr(&self) -> String {
        format!("127.0.0.1:{}", self.lan)
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends `signal` and waits for the process to exit; returns its exit code.
    pub fn stop(mut self, signal: &str) -> (Option<i32>, String) {
        self.signal(signal);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.stdout());
            }
            assert!(Instant::now() < deadline, "agent {} did not stop on SIG{signal}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn keyring_file(&self) -> PathBuf {
        self.data_dir.join("serf/local.keyring")
    }

    /// Runs a CLI command against this agent's HTTP API.
    pub fn cli(&self, args: &[&str]) -> Output {
        consul_sec()
            .args(args)
            .arg(self.http_addr())
            .env_remove("CONSUL_HTTP_ADDR")
            .output()
            .unwrap()
    }

    /// `members -format=json` as (name, status word) pairs.
    pub fn members(&self) -> Vec<(String, String)> {
        let out = self.cli(&["members", "-format=json"]);
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return Vec::new();
        };
        let status = |n: u64| {
            ["none", "alive", "leaving", "left", "failed"].get(n as usize).copied().unwrap_or("?")
        };
        value
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m["Name"].as_str().unwrap_or("").to_owned(),
                            status(m["Status"].as_u64().unwrap_or(9)).to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn ring(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

pub fn encrypt_file(dir: &Path, key: &str) -> String {
    let path = dir.join("encrypt.json");
    std::fs::write(&path, format!(r#"{{"encrypt": "{key}"}}"#)).unwrap();
    format!("-config-file={}", path.display())
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `GET path` on `127.0.0.1:port` over plain HTTP/1.0 (no client crate
/// needed): the status code and body, or why the request failed.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::Write as _;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(40))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read from {addr}: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Runs `consul-sec tls <args>` in `dir` (files land there), asserting success.
pub fn tls_in(dir: &Path, args: &[&str]) {
    let out = consul_sec().current_dir(dir).arg("tls").args(args).output().unwrap();
    assert!(out.status.success(), "tls {args:?}: {}", text(&out.stderr));
}

/// Seconds since the UNIX epoch of an RFC 3339 UTC timestamp of the form
/// `YYYY-MM-DDTHH:MM:SSZ`; `None` for anything else.
pub fn unix_from_rfc3339(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| stamp[from..to].parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
    // (shift the year to start in March so the leap day comes last).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Seconds since the UNIX epoch, now.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

impl Agent {
    /// `GET /v1/agent/self` on the plain HTTP port, as JSON, with the raw body.
    pub fn agent_self(&self) -> (serde_json::Value, String) {
        let (status, body) = http_get(self.http, "/v1/agent/self").unwrap();
        assert_eq!(status, 200, "{body}");
        let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (value, body)
    }

    /// The banner's `Gossip encrypt: ..., RPC-TLS: ..., TLS-Incoming: ...` line, trimmed.
    pub fn encrypt_banner_line(&self) -> String {
        let stdout = self.stdout();
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with("Gossip encrypt: "))
            .unwrap_or_else(|| panic!("no Gossip encrypt line in:\n{stdout}"))
            .trim()
            .to_owned()
    }
}
