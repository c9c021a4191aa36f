//! Interop with real `serf agent` processes on 127.0.0.1 (issue 6).
//!
//! Each test starts its own agents on free ports and kills them on drop.
//! Without `serf` installed the tests print why they skip; with
//! `CONSUL_SEC_INTEROP=1` a missing `serf` is a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consul_sec_agent::transport::{GossipError, GossipNode, GossipOptions};
use consul_sec_gossip::{Config, GossipSecurity, MemberStatus};
use consul_sec_gossip_crypto::{KeySize, Keyring, SecretKey};

mod common;

use common::{addr, free_port};

fn require_tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CONSUL_SEC_INTEROP").as_deref() == Ok("1") {
            panic!("`{name}` is required (CONSUL_SEC_INTEROP=1) but was not found on PATH");
        }
        eprintln!(
            "skipping: `{name}` not found on PATH (set CONSUL_SEC_INTEROP=1 to make this fail)"
        );
    }
    found
}

enum Keys<'a> {
    Encrypt(&'a SecretKey),
    File(&'a [SecretKey]),
}

/// `serf members` as name → (status, tags).
type SerfMembers = BTreeMap<String, (String, BTreeMap<String, String>)>;

/// A `serf agent` child process, killed when dropped.
struct SerfAgent {
    name: String,
    child: Child,
    bind: SocketAddr,
    rpc: SocketAddr,
    dir: tempfile::TempDir,
}

impl SerfAgent {
    fn start(name: &str, keys: Keys<'_>, join: Option<SocketAddr>) -> SerfAgent {
        let dir = tempfile::tempdir().unwrap();
        let bind = addr(free_port());
        let rpc = addr(free_port());
        let log = std::fs::File::create(dir.path().join("serf.log")).unwrap();
        let mut cmd = Command::new("serf");
        cmd.arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={bind}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg("-tag")
            .arg("kind=serf")
            .arg("-log-level=debug");
        match keys {
            Keys::Encrypt(k) => {
                cmd.arg(format!("-encrypt={}", k.to_base64().as_str()));
            }
            Keys::File(ks) => {
                let path = dir.path().join("keyring.json");
                write_ring(&path, ks);
                cmd.arg(format!("-keyring-file={}", path.display()));
            }
        }
        if let Some(j) = join {
            cmd.arg(format!("-join={j}"));
        }
        let child =
            cmd.stdout(log.try_clone().unwrap()).stderr(log).stdin(Stdio::null()).spawn().unwrap();
        let agent = SerfAgent { name: name.to_owned(), child, bind, rpc, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while agent.try_members().is_none() {
            assert!(Instant::now() < deadline, "serf agent {name} did not start:\n{}", agent.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serf.log")).unwrap_or_default()
    }

    fn keyring_path(&self) -> PathBuf {
        self.dir.path().join("keyring.json")
    }

    fn try_members(&self) -> Option<SerfMembers> {
        let out = Command::new("serf")
            .args(["members", "-format=json"])
            .arg(format!("-rpc-addr={}", self.rpc))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let mut m = BTreeMap::new();
        for mem in v["members"].as_array()? {
            let tags = mem["tags"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            m.insert(mem["name"].as_str()?.to_owned(), (mem["status"].as_str()?.to_owned(), tags));
        }
        Some(m)
    }

    fn status_of(&self, node: &str) -> Option<String> {
        self.try_members()?.get(node).map(|(s, _)| s.clone())
    }

    /// Runs `serf keys <args>` against this agent: (exit ok, stdout+stderr).
    fn keys(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("serf")
            .arg("keys")
            .args(args)
            .arg(format!("-rpc-addr={}", self.rpc))
            .output()
            .unwrap();
        let text = format!(
            "[{}] {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SerfAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_ring(path: &Path, keys: &[SecretKey]) {
    let ring = Keyring::from_keys(keys.iter().cloned()).unwrap();
    consul_sec_gossip_crypto::save_keyring_file(path, &ring).unwrap();
}

fn read_ring(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn b64(k: &SecretKey) -> String {
    k.to_base64().to_string()
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn our_node(
    name: &str,
    keys: &[SecretKey],
    port: u16,
    keyring_file: Option<PathBuf>,
) -> GossipNode {
    let mut config = Config::new(name, addr(port));
    config.tags.insert("kind".into(), "consul-sec".into());
    config.rng_seed = u64::from(port);
    if !keys.is_empty() {
        config.security = GossipSecurity::new(Keyring::from_keys(keys.iter().cloned()).unwrap());
    }
    GossipNode::start(GossipOptions { config, bind: addr(port), keyring_file }).await.unwrap()
}

fn our_view(n: &GossipNode) -> BTreeMap<String, MemberStatus> {
    n.members().into_iter().map(|m| (m.name, m.status)).collect()
}

fn serf_sees_alive(a: &SerfAgent, node: &str, tag: &str) -> bool {
    a.try_members()
        .and_then(|m| m.get(node).cloned())
        .is_some_and(|(s, tags)| s == "alive" && tags.get("kind").map(String::as_str) == Some(tag))
}

async fn join_both_ways(size: KeySize) {
    let key = SecretKey::generate(size).unwrap();
    // Our node joins a cluster of two serf agents.
    let a = SerfAgent::start("serf-a", Keys::Encrypt(&key), None);
    let b = SerfAgent::start("serf-b", Keys::Encrypt(&key), Some(a.bind));
    let ours = our_node("rust-1", std::slice::from_ref(&key), free_port(), None).await;
    assert_eq!(ours.join(&[a.bind]).await.unwrap(), 1);
    wait_for(
        "both serf agents to list rust-1 alive with its tags",
        Duration::from_secs(10),
        || {
            serf_sees_alive(&a, "rust-1", "consul-sec")
                && serf_sees_alive(&b, "rust-1", "consul-sec")
        },
    )
    .await;
    wait_for("rust-1 to list both agents alive", Duration::from_secs(10), || {
        let v = our_view(&ours);
        v.get("serf-a") == Some(&MemberStatus::Alive)
            && v.get("serf-b") == Some(&MemberStatus::Alive)
    })
    .await;
    let tags = ours.members().into_iter().find(|m| m.name == "serf-b").unwrap().tags;
    assert_eq!(tags.get("kind").map(String::as_str), Some("serf"));

    // A serf agent joins a cluster started by consul-sec nodes.
    let n1 = our_node("rust-x", std::slice::from_ref(&key), free_port(), None).await;
    let n2 = our_node("rust-y", std::slice::from_ref(&key), free_port(), None).await;
    n2.join(&[n1.local_addr()]).await.unwrap();
    let c = SerfAgent::start("serf-c", Keys::Encrypt(&key), Some(n1.local_addr()));
    wait_for("serf-c to list both consul-sec nodes", Duration::from_secs(10), || {
        serf_sees_alive(&c, "rust-x", "consul-sec") && serf_sees_alive(&c, "rust-y", "consul-sec")
    })
    .await;
    wait_for("our nodes to list serf-c alive", Duration::from_secs(10), || {
        our_view(&n1).get("serf-c") == Some(&MemberStatus::Alive)
            && our_view(&n2).get("serf-c") == Some(&MemberStatus::Alive)
    })
    .await;
}

/// Acceptance 1 with a 32-byte key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_both_ways_with_32_byte_key() {
    if !require_tool("serf") {
        return;
    }
    join_both_ways(KeySize::Aes256).await;
}

/// Acceptance 1 with a 16-byte key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_both_ways_with_16_byte_key() {
    if !require_tool("serf") {
        return;
    }
    join_both_ways(KeySize::Aes128).await;
}

/// Acceptance 2: another key, or no key, cannot join; the error names the
/// cause and nobody's membership changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_key_cannot_join() {
    if !require_tool("serf") {
        return;
    }
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let other = SecretKey::generate(KeySize::Aes256).unwrap();
    let a = SerfAgent::start("serf-a", Keys::Encrypt(&key), None);

    let wrong = our_node("rust-wrong", std::slice::from_ref(&other), free_port(), None).await;
    let err = wrong.join(&[a.bind]).await.unwrap_err();
    let GossipError::Join { errors } = &err else { panic!("unexpected error {err}") };
    assert_eq!(errors.len(), 1);
    assert!(err.to_string().contains("no installed keys could decrypt the message"), "{err}");

    let none = our_node("rust-nokey", &[], free_port(), None).await;
    let err = none.join(&[a.bind]).await.unwrap_err();
    assert!(
        err.to_string().contains("remote state is encrypted and encryption is not configured"),
        "{err}"
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let members = a.try_members().expect("serf agent still answers");
    assert_eq!(members.keys().collect::<Vec<_>>(), vec!["serf-a"]);
    assert_eq!(our_view(&wrong).len(), 1);
    assert_eq!(our_view(&none).len(), 1);
    assert!(a.log().contains("No installed keys could decrypt"), "serf log names the cause");
}

/// Acceptance 4: rotation driven from serf counts our node, and rotation
/// driven from our node reaches the serf agents (their keyring files change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_across_the_mix() {
    if !require_tool("serf") {
        return;
    }
    let k1 = SecretKey::generate(KeySize::Aes256).unwrap();
    let k2 = SecretKey::generate(KeySize::Aes256).unwrap();
    let k3 = SecretKey::generate(KeySize::Aes128).unwrap();
    let a = SerfAgent::start("serf-a", Keys::File(std::slice::from_ref(&k1)), None);
    let b = SerfAgent::start("serf-b", Keys::File(std::slice::from_ref(&k1)), Some(a.bind));
    let dir = tempfile::tempdir().unwrap();
    let our_ring = dir.path().join("local.keyring");
    let ours =
        our_node("rust-1", std::slice::from_ref(&k1), free_port(), Some(our_ring.clone())).await;
    ours.join(&[a.bind]).await.unwrap();
    wait_for("3 alive members everywhere", Duration::from_secs(10), || {
        serf_sees_alive(&a, "rust-1", "consul-sec")
            && serf_sees_alive(&b, "rust-1", "consul-sec")
            && our_view(&ours).values().filter(|s| **s == MemberStatus::Alive).count() == 3
    })
    .await;

    // From the serf side.
    let (ok, out) = a.keys(&["-install", &b64(&k2)]);
    assert!(ok && out.contains("Successfully installed key"), "{out}");
    assert!(ours.security().keyring.keys().contains(&k2));
    let (ok, out) = b.keys(&["-list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{}  [3/3]", b64(&k1))), "{out}");
    assert!(out.contains(&format!("{}  [3/3]", b64(&k2))), "{out}");
    let (ok, out) = a.keys(&["-use", &b64(&k2)]);
    assert!(ok && out.contains("Successfully changed primary key"), "{out}");
    assert_eq!(ours.security().keyring.primary_key().as_ref(), Some(&k2));
    let (ok, out) = a.keys(&["-remove", &b64(&k1)]);
    assert!(ok && out.contains("Successfully removed key"), "{out}");
    assert_eq!(ours.security().keyring.keys(), vec![k2.clone()]);
    assert_eq!(read_ring(&our_ring), vec![b64(&k2)], "our keyring file follows");

    // From our side.
    let r = ours.install_key(k3.as_bytes()).await.unwrap();
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (3, 3, 0), "{r:?}");
    assert_eq!(read_ring(&a.keyring_path()), vec![b64(&k2), b64(&k3)]);
    let r = ours.use_key(k3.as_bytes()).await.unwrap();
    assert_eq!(r.outcome(), Ok(()));
    assert_eq!(read_ring(&b.keyring_path()), vec![b64(&k3), b64(&k2)]);
    let r = ours.list_keys().await.unwrap();
    assert_eq!(r.outcome(), Ok(()));
    assert_eq!(r.keys, BTreeMap::from([(b64(&k2), 3), (b64(&k3), 3)]));
    assert_eq!(r.primary_keys, BTreeMap::from([(b64(&k3), 3)]));
    let r = ours.remove_key(k3.as_bytes()).await.unwrap();
    assert_eq!(r.outcome(), Err("3/3 nodes reported failure".to_owned()));
    for node in ["serf-a", "serf-b", "rust-1"] {
        assert_eq!(
            r.messages.get(node).map(String::as_str),
            Some("Removing the primary key is not allowed"),
            "{r:?}"
        );
    }
    let r = ours.remove_key(k2.as_bytes()).await.unwrap();
    assert_eq!(r.outcome(), Ok(()));
    assert_eq!(read_ring(&a.keyring_path()), vec![b64(&k3)]);
    assert_eq!(read_ring(&b.keyring_path()), vec![b64(&k3)]);
    assert_eq!(read_ring(&our_ring), vec![b64(&k3)]);
    let (ok, out) = a.keys(&["-list"]);
    assert!(ok && out.contains(&format!("{}  [3/3]", b64(&k3))), "{out}");
}

/// Acceptance 3: failure detection both ways, graceful leave, and a restart
/// under the same name that refutes the old death.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_detection_leave_and_restart() {
    if !require_tool("serf") {
        return;
    }
    let key = SecretKey::generate(KeySize::Aes256).unwrap();
    let a = SerfAgent::start("serf-a", Keys::Encrypt(&key), None);
    let mut b = SerfAgent::start("serf-b", Keys::Encrypt(&key), Some(a.bind));
    let port = free_port();
    let ours = our_node("rust-1", std::slice::from_ref(&key), port, None).await;
    ours.join(&[a.bind]).await.unwrap();
    wait_for("3 alive", Duration::from_secs(10), || {
        our_view(&ours).values().filter(|s| **s == MemberStatus::Alive).count() == 3
            && serf_sees_alive(&a, "rust-1", "consul-sec")
    })
    .await;

    // Kill a serf agent: LAN defaults give about 1 s probe + 4 s suspicion
    // for three nodes; allow 15 s.
    b.kill();
    let killed = Instant::now();
    wait_for("rust-1 to mark serf-b failed", Duration::from_secs(15), || {
        our_view(&ours).get("serf-b") == Some(&MemberStatus::Failed)
    })
    .await;
    eprintln!("serf-b marked failed after {:?}", killed.elapsed());

    // Stop our node abruptly: serf marks it failed.
    ours.shutdown();
    wait_for("serf-a to mark rust-1 failed", Duration::from_secs(15), || {
        a.status_of("rust-1").as_deref() == Some("failed")
    })
    .await;

    // Restart under the same name: it is told it is dead and refutes.
    let again = our_node("rust-1", std::slice::from_ref(&key), port, None).await;
    again.join(&[a.bind]).await.unwrap();
    wait_for("serf-a to show rust-1 alive again", Duration::from_secs(10), || {
        a.status_of("rust-1").as_deref() == Some("alive")
    })
    .await;
    assert!(again.incarnation() > 1, "refuted with incarnation {}", again.incarnation());

    // Graceful stop: serf shows it left.
    again.leave().await;
    wait_for("serf-a to show rust-1 left", Duration::from_secs(10), || {
        a.status_of("rust-1").as_deref() == Some("left")
    })
    .await;
}
