//! `consul-sec agent`, `members` and `keyring` end to end: real agent
//! processes from the built binary on free 127.0.0.1 ports, driven with
//! the CLI as an operator would, plus real `serf agent`s for interop.
//!
//! Tests that need `serf` print why they skip when it is absent, and fail
//! instead when `CONSUL_SEC_INTEROP=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use support::*;

#[test]
fn starts_as_in_the_docs_with_banner_and_seeded_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let data = dir.path().join("data");
    let agent = Agent::start("alpha", &data, &[encrypt_file(dir.path(), &key)]);
    let stdout = agent.stdout();
    let expected = format!(
        "==> Starting Consul agent...\n\
         ==> Consul agent running!\n\
         \x20          Version: 'consul-sec v{}'\n\
         \x20        Node name: 'alpha'\n\
         \x20       Datacenter: 'dc1'\n\
         \x20           Server: false (bootstrap: false)\n\
         \x20      Client Addr: 127.0.0.1 (HTTP: {}, HTTPS: -1, DNS: -1)\n\
         \x20     Cluster Addr: 127.0.0.1 (LAN: {}, WAN: -1)\n\
         \x20   Gossip encrypt: true, RPC-TLS: false, TLS-Incoming: false\n\
         \n\
         ==> Log data will now stream in as it occurs:\n",
        env!("CARGO_PKG_VERSION"),
        agent.http,
        agent.lan
    );
    assert_eq!(stdout, expected);

    // The keyring file is seeded from `encrypt`, private, and what -list shows.
    assert_eq!(ring(&agent.keyring_file()), vec![key.clone()]);
    assert_eq!(mode(&agent.keyring_file()), 0o600);
    assert_eq!(mode(&data.join("serf")), 0o700);
    let out = agent.cli(&["keyring", "-list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("==> Gathering installed encryption keys...\n\ndc1 (LAN):\n  {key} [1/1]\n")
    );
    let out = agent.cli(&["keyring", "-list-primary"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "==> Gathering installed primary encryption keys...\n\ndc1 (LAN):\n  {key} [1/1]\n"
        )
    );

    // The HTTP API speaks Consul's JSON; CONSUL_HTTP_ADDR is honoured.
    let out = consul_sec()
        .args(["members", "-format=json"])
        .env("CONSUL_HTTP_ADDR", format!("127.0.0.1:{}", agent.http))
        .output()
        .unwrap();
    let members: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(members[0]["Name"], "alpha");
    assert_eq!(members[0]["Port"], agent.lan);
    assert_eq!(members[0]["Status"], 1);
    assert_eq!(members[0]["Tags"]["role"], "node");
    assert_eq!(members[0]["Tags"]["dc"], "dc1");

    let (code, stdout) = agent.stop("INT");
    assert_eq!(code, Some(0));
    assert!(
        stdout.ends_with("==> Caught signal: interrupt\n==> Gracefully shutting down agent...\n"),
        "{stdout}"
    );
}

#[test]
fn two_agents_join_rotate_keys_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let encrypt = encrypt_file(dir.path(), &key);
    let a = Agent::start("node-a", &dir.path().join("a"), std::slice::from_ref(&encrypt));
    // The second agent joins through `retry_join` in its config file.
    let join_file = dir.path().join("join.hcl");
    std::fs::write(&join_file, format!("retry_join = [\"{}\"]\n", a.lan_addr())).unwrap();
    let b = Agent::start(
        "node-b",
        &dir.path().join("b"),
        &[encrypt, format!("-config-file={}", join_file.display())],
    );
    let alive = || {
        vec![("node-a".to_owned(), "alive".to_owned()), ("node-b".to_owned(), "alive".to_owned())]
    };
    wait_for("both agents alive on both sides", Duration::from_secs(20), || {
        a.members() == alive() && b.members() == alive()
    });

    let table = text(&b.cli(&["members"]).stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("Node    Address"), "{table}");
    assert!(
        lines[1].starts_with(&format!("node-a  127.0.0.1:{}  alive   client  ", a.lan)),
        "{table}"
    );
    assert_eq!(text(&a.cli(&["members", "-status=left"]).stdout), "");
    let detailed = text(&a.cli(&["members", "-detailed"]).stdout);
    assert!(detailed.starts_with("Node    Address  "), "{detailed}");
    assert!(
        detailed
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("node-a ") && l.contains("dc=dc1,role=node,")),
        "{detailed}"
    );

    // Rotate: install, use, remove; every file changes before each command returns.
    let new = keygen();
    let out = a.cli(&["keyring", "-install", &new]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "==> Installing new gossip encryption key...\n");
    for agent in [&a, &b] {
        assert_eq!(ring(&agent.keyring_file()), [key.clone(), new.clone()], "{}", agent.name);
    }
    let listed = text(&b.cli(&["keyring", "-list"]).stdout);
    let mut expected = [format!("  {key} [2/2]"), format!("  {new} [2/2]")];
    expected.sort();
    assert_eq!(
        listed,
        format!(
            "==> Gathering installed encryption keys...\n\ndc1 (LAN):\n{}\n",
            expected.join("\n")
        )
    );

    let out = b.cli(&["keyring", "-use", &new]);
    assert_eq!(text(&out.stdout), "==> Changing primary gossip encryption key...\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for agent in [&a, &b] {
        assert_eq!(ring(&agent.keyring_file()), [new.clone(), key.clone()], "{}", agent.name);
    }
    let out = a.cli(&["keyring", "-remove", &key]);
    assert_eq!(text(&out.stdout), "==> Removing gossip encryption key...\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for agent in [&a, &b] {
        assert_eq!(ring(&agent.keyring_file()), vec![new.clone()], "{}", agent.name);
    }

    // Removing the primary fails on every node: exit 1, each failure shown.
    let out = a.cli(&["keyring", "-remove", &new]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("dc1 (LAN) error: 2/2 nodes reported failure"), "{stderr}");
    for node in ["node-a", "node-b"] {
        assert!(
            stderr.contains(&format!("{node}: "))
                && stderr.to_lowercase().contains("primary key is not allowed"),
            "{stderr}"
        );
    }
    let listed = text(&a.cli(&["keyring", "-list"]).stdout);
    assert_eq!(
        listed,
        format!("==> Gathering installed encryption keys...\n\ndc1 (LAN):\n  {new} [2/2]\n")
    );

    // The cluster still gossips on the new key: SIGTERM leaves gracefully.
    let (code, _) = b.stop("TERM");
    assert_eq!(code, Some(0));
    wait_for("node-b to be seen as left", Duration::from_secs(10), || {
        a.members().contains(&("node-b".to_owned(), "left".to_owned()))
    });
    let left = text(&a.cli(&["members", "-status=left"]).stdout);
    assert!(
        left.lines().nth(1).is_some_and(|l| l.starts_with("node-b ") && l.contains(" left ")),
        "{left}"
    );
}

#[test]
fn existing_keyring_file_wins_over_encrypt_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (file_key, flag_key) = (keygen(), keygen());
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("serf")).unwrap();
    let path = data.join("serf/local.keyring");
    std::fs::write(&path, format!(r#"["{file_key}"]"#)).unwrap();
    let agent = Agent::start("gamma", &data, &[format!("-encrypt={flag_key}")]);
    let stdout = agent.stdout();
    assert!(
        stdout.contains("==> WARNING: LAN keyring exists but -encrypt given, using keyring\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "==> keyring doesn't include key provided with -encrypt, using keyring (keyring=LAN)\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Gossip encrypt: true"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!(r#"["{file_key}"]"#),
        "file untouched"
    );
    let listed = text(&agent.cli(&["keyring", "-list"]).stdout);
    assert!(
        listed.contains(&format!("  {file_key} [1/1]")) && !listed.contains(&flag_key),
        "{listed}"
    );

    // Without `encrypt` the file alone turns encryption on, with no warning.
    let agent = agent.restart(&[]);
    let stdout = agent.stdout();
    assert!(stdout.contains("    Gossip encrypt: true, "), "{stdout}");
    assert!(!stdout.contains("WARNING"), "{stdout}");
    let listed = text(&agent.cli(&["keyring", "-list"]).stdout);
    assert!(listed.contains(&format!("  {file_key} [1/1]")), "{listed}");
}

#[test]
fn members_rejects_a_bad_status_regexp() {
    let out =
        consul_sec().args(["members", "-status=[", "-http-addr=127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Error: Failed to compile status regexp: "), "{stderr}");
}

#[test]
fn disable_keyring_file_encrypts_from_memory_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let data = dir.path().join("data");
    let agent = Agent::start(
        "delta",
        &data,
        &[format!("-encrypt={key}"), "-disable-keyring-file".to_owned()],
    );
    assert!(agent.stdout().contains("Gossip encrypt: true"));
    let new = keygen();
    assert!(agent.cli(&["keyring", "-install", &new]).status.success());
    let listed = text(&agent.cli(&["keyring", "-list"]).stdout);
    assert!(
        listed.contains(&format!("  {key} [1/1]")) && listed.contains(&format!("  {new} [1/1]")),
        "{listed}"
    );
    assert!(!data.join("serf").exists(), "no keyring file may be written");
}

#[test]
fn bad_encrypt_stops_before_anything_is_written_or_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for bad in ["this is not a valid key", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
        let http = free_port();
        let out = consul_sec()
            .arg("agent")
            .arg(format!("-data-dir={}", data.display()))
            .arg(format!("-encrypt={bad}"))
            .arg(format!("-http-port={http}"))
            .arg(format!("-serf-lan-port={}", free_port()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("encrypt: invalid gossip encryption key"), "{stderr}");
        assert!(!stderr.contains(bad), "the key must not be echoed: {stderr}");
        assert!(!text(&out.stdout).contains("Starting Consul agent"));
        assert!(!data.exists(), "nothing may be written");
    }
}

#[test]
fn a_second_agent_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = keygen();
    let _first = Agent::start("one", &data, &[format!("-encrypt={key}")]);
    let second = Agent::spawn("two", &data, &[format!("-encrypt={key}")]);
    let (code, _) = {
        let mut second = second;
        let status = second.child.wait().unwrap();
        (status.code(), ())
    };
    assert_eq!(code, Some(1));
    // The refusal message is checked through a fresh run to read stderr in full.
    let out = consul_sec()
        .arg("agent")
        .arg(format!("-data-dir={}", data.display()))
        .arg(format!("-serf-lan-port={}", free_port()))
        .arg(format!("-http-port={}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("data_dir is in use by another consul-sec agent (pid "), "{stderr}");
    assert_eq!(ring(&data.join("serf/local.keyring")), [key]);
}

#[test]
fn dev_mode_runs_a_single_encrypted_node_in_a_temp_dir() {
    let (http, lan) = (free_port(), free_port());
    let mut child = consul_sec()
        .args(["agent", "-dev", "-node=devnode"])
        .arg(format!("-http-port={http}"))
        .arg(format!("-serf-lan-port={lan}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let _stderr = collect(child.stderr.take().unwrap());
    wait_for("dev agent to start", Duration::from_secs(20), || {
        stdout.lock().unwrap().contains("==> Log data")
    });
    let banner = stdout.lock().unwrap().clone();
    assert!(banner.contains("           Server: true (bootstrap: true)\n"), "{banner}");
    assert!(
        banner.contains("   Gossip encrypt: true, RPC-TLS: false, TLS-Incoming: false\n"),
        "{banner}"
    );
    let temp = std::env::temp_dir().join(format!("consul-sec-dev-{}", child.id()));
    assert!(temp.is_dir(), "{}", temp.display());
    let out = consul_sec()
        .args(["keyring", "-list"])
        .arg(format!("-http-addr=127.0.0.1:{http}"))
        .output()
        .unwrap();
    let listed = text(&out.stdout);
    let keys: Vec<&str> = listed.lines().filter(|l| l.ends_with(" [1/1]")).collect();
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!(keys[0].trim().len(), 44 + " [1/1]".len(), "a fresh 32-byte key: {listed}");
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!temp.exists(), "the temporary data dir is removed on exit");
}

#[test]
fn sighup_reloads_the_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.json");
    let key = keygen();
    std::fs::write(&config, format!(r#"{{"encrypt": "{key}", "log_level": "info"}}"#)).unwrap();
    let agent = Agent::start(
        "eps",
        &dir.path().join("data"),
        &[format!("-config-file={}", config.display())],
    );
    assert!(agent.cli(&["members"]).status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !agent.stderr().contains("http: request"),
        "no debug logs at info:\n{}",
        agent.stderr()
    );

    std::fs::write(&config, format!(r#"{{"encrypt": "{key}", "log_level": "debug"}}"#)).unwrap();
    agent.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        agent.stderr().contains("reloaded configuration")
    });
    assert!(agent.stdout().contains("==> Caught signal: hangup\n==> Reloading configuration...\n"));
    assert!(agent.cli(&["members"]).status.success());
    wait_for("a debug log line", Duration::from_secs(5), || {
        agent.stderr().contains("http: request")
    });
    let (code, _) = agent.stop("TERM");
    assert_eq!(code, Some(0));
}

#[test]
fn keyring_validation_order_and_messages() {
    let run = |args: &[&str]| {
        let out =
            consul_sec().arg("keyring").args(args).arg("-http-addr=127.0.0.1:1").output().unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("Usage: consul-sec keyring [options]"), "{stderr}");
    let k = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    assert_eq!(
        run(&["-install", k, "-use", k]),
        (Some(1), "Error: Only a single action is allowed\n".to_owned())
    );
    assert_eq!(
        run(&["-list", "-relay-factor", "6", "-install", k]),
        (Some(1), "Error: Only a single action is allowed\n".to_owned())
    );
    assert_eq!(
        run(&["-list", "-relay-factor", "6"]),
        (
            Some(1),
            "Error: Error parsing relay factor: Relay factor must be in range: [0, 5]\n".to_owned()
        )
    );
    assert_eq!(
        run(&["-install", k, "-local-only"]),
        (
            Some(1),
            "Error: Error validating local-only: local-only can only be set for list requests\n"
                .to_owned()
        )
    );
    assert_eq!(
        run(&["-list-primary", "-local-only"]),
        (
            Some(1),
            "Error: Error validating local-only: local-only can only be set for list requests\n"
                .to_owned()
        )
    );
    // Past validation, a dead address is a connection error.
    let (code, stderr) = run(&["-list"]);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("Error: 127.0.0.1:1: cannot connect"), "{stderr}");
}

#[test]
fn members_and_keyring_over_https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let tls = |args: &[&str]| {
        let out = consul_sec().current_dir(dir.path()).arg("tls").args(args).output().unwrap();
        assert!(out.status.success(), "tls {args:?}: {}", text(&out.stderr));
    };
    tls(&["ca", "create"]);
    tls(&["cert", "create", "-server"]);
    tls(&["cert", "create", "-client"]);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let https = free_port();
    let config = dir.path().join("tls.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "encrypt": keygen(),
            "ports": {"https": https},
            "tls": {
                "https": {
                    "ca_file": p("consul-agent-ca.pem"),
                    "cert_file": p("dc1-server-consul-0.pem"),
                    "key_file": p("dc1-server-consul-0-key.pem"),
                    "verify_incoming": true
                }
            }
        })
        .to_string(),
    )
    .unwrap();
    let agent = Agent::start(
        "tls-node",
        &dir.path().join("data"),
        &[format!("-config-file={}", config.display())],
    );
    assert!(
        agent.stdout().contains(&format!("(HTTP: {}, HTTPS: {https}, DNS: -1)", agent.http)),
        "{}",
        agent.stdout()
    );

    let with_flags = consul_sec()
        .args(["members", "-format=json"])
        .arg(format!("-http-addr=https://127.0.0.1:{https}"))
        .arg(format!("-ca-file={}", p("consul-agent-ca.pem")))
        .arg(format!("-client-cert={}", p("dc1-client-consul-0.pem")))
        .arg(format!("-client-key={}", p("dc1-client-consul-0-key.pem")))
        .output()
        .unwrap();
    assert!(with_flags.status.success(), "{}", text(&with_flags.stderr));
    assert!(text(&with_flags.stdout).contains("\"Name\": \"tls-node\""));

    let with_env = consul_sec()
        .args(["keyring", "-list"])
        .env("CONSUL_HTTP_ADDR", format!("https://127.0.0.1:{https}"))
        .env("CONSUL_CACERT", p("consul-agent-ca.pem"))
        .env("CONSUL_CLIENT_CERT", p("dc1-client-consul-0.pem"))
        .env("CONSUL_CLIENT_KEY", p("dc1-client-consul-0-key.pem"))
        .env("CONSUL_TLS_SERVER_NAME", "localhost")
        .output()
        .unwrap();
    assert!(with_env.status.success(), "{}", text(&with_env.stderr));
    assert!(text(&with_env.stdout).contains(" [1/1]"));

    // `members` from the environment alone too (the name checked is the
    // address's IP, 127.0.0.1, which the server certificate holds).
    let members_env = consul_sec()
        .args(["members", "-format=json"])
        .env("CONSUL_HTTP_ADDR", format!("https://127.0.0.1:{https}"))
        .env("CONSUL_CACERT", p("consul-agent-ca.pem"))
        .env("CONSUL_CLIENT_CERT", p("dc1-client-consul-0.pem"))
        .env("CONSUL_CLIENT_KEY", p("dc1-client-consul-0-key.pem"))
        .env_remove("CONSUL_TLS_SERVER_NAME")
        .output()
        .unwrap();
    assert!(members_env.status.success(), "{}", text(&members_env.stderr));
    let members: serde_json::Value = serde_json::from_slice(&members_env.stdout).unwrap();
    assert_eq!(members[0]["Name"], "tls-node");
    // The same environment without the client key pair is refused by the agent.
    let env_without_cert = consul_sec()
        .args(["keyring", "-list"])
        .env("CONSUL_HTTP_ADDR", format!("https://127.0.0.1:{https}"))
        .env("CONSUL_CACERT", p("consul-agent-ca.pem"))
        .env_remove("CONSUL_CLIENT_CERT")
        .env_remove("CONSUL_CLIENT_KEY")
        .output()
        .unwrap();
    assert_eq!(env_without_cert.status.code(), Some(1), "{}", text(&env_without_cert.stdout));
    assert!(!text(&env_without_cert.stdout).contains(" [1/1]"));

    let without_cert = consul_sec()
        .args(["members"])
        .arg(format!("-http-addr=https://127.0.0.1:{https}"))
        .arg(format!("-ca-file={}", p("consul-agent-ca.pem")))
        .env_remove("CONSUL_CLIENT_CERT")
        .env_remove("CONSUL_CLIENT_KEY")
        .output()
        .unwrap();
    assert_eq!(without_cert.status.code(), Some(1));
    let stderr = text(&without_cert.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    // The TLS alert and what to do, not just hyper's "connection error".
    assert!(stderr.contains("CertificateRequired"), "{stderr}");
    assert!(stderr.contains("set -client-cert and -client-key"), "{stderr}");

    let wrong_name = consul_sec()
        .args(["members"])
        .arg(format!("-http-addr=https://127.0.0.1:{https}"))
        .arg(format!("-ca-file={}", p("consul-agent-ca.pem")))
        .arg(format!("-client-cert={}", p("dc1-client-consul-0.pem")))
        .arg(format!("-client-key={}", p("dc1-client-consul-0-key.pem")))
        .arg("-tls-server-name=wrong.example")
        .output()
        .unwrap();
    assert_eq!(wrong_name.status.code(), Some(1));
    assert!(
        text(&wrong_name.stderr).contains("TLS handshake failed"),
        "{}",
        text(&wrong_name.stderr)
    );
}

#[test]
fn upshift_a_running_cluster_to_encryption_in_three_rolling_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let stage = |name: &str, verify_incoming: bool, verify_outgoing: bool| {
        let path = dir.path().join(format!("{name}.json"));
        let config = serde_json::json!({
            "encrypt": key,
            "encrypt_verify_incoming": verify_incoming,
            "encrypt_verify_outgoing": verify_outgoing,
        });
        std::fs::write(&path, config.to_string()).unwrap();
        format!("-config-file={}", path.display())
    };
    let both_alive =
        vec![("up-a".to_owned(), "alive".to_owned()), ("up-b".to_owned(), "alive".to_owned())];
    // A running cluster without encryption.
    let mut a = Agent::start("up-a", &dir.path().join("a"), &[]);
    let join_a = format!("-retry-join={}", a.lan_addr());
    let mut b = Agent::start("up-b", &dir.path().join("b"), std::slice::from_ref(&join_a));
    assert!(b.stdout().contains("Gossip encrypt: false"));
    wait_for("the plaintext cluster", Duration::from_secs(20), || a.members() == both_alive);

    // 1: the key with both verify flags off; 2: encrypt outgoing; 3: verify incoming.
    for (step, incoming, outgoing) in [(1, false, false), (2, false, true), (3, true, true)] {
        let config = stage(&format!("step{step}"), incoming, outgoing);
        b = b.restart(&[config.clone(), join_a.clone()]);
        assert!(b.stdout().contains("Gossip encrypt: true"), "step {step}");
        wait_for(&format!("step {step}: b back"), Duration::from_secs(20), || {
            a.members() == both_alive && b.members() == both_alive
        });
        let join_b = format!("-retry-join={}", b.lan_addr());
        a = a.restart(&[config, join_b]);
        wait_for(&format!("step {step}: a back"), Duration::from_secs(20), || {
            a.members() == both_alive && b.members() == both_alive
        });
    }
    assert_eq!(ring(&a.keyring_file()), vec![key.clone()]);

    // Fully encrypted now: a node without the key cannot join.
    let out = consul_sec()
        .arg("agent")
        .arg("-node=plain")
        .arg(format!("-data-dir={}", dir.path().join("plain").display()))
        .arg("-bind=127.0.0.1")
        .arg(format!("-http-port={}", free_port()))
        .arg(format!("-serf-lan-port={}", free_port()))
        .arg(format!("-join={}", a.lan_addr()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Failed to join"), "{}", text(&out.stderr));
}

/// A failed `-join` names every address and why: one that does not resolve
/// and one where nothing listens.
#[test]
fn failed_join_names_every_address_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("127.0.0.1:{}", free_port());
    // An agent that must join through `joins`: its exit code and stderr.
    let join = |joins: &[&str]| {
        let out = consul_sec()
            .arg("agent")
            .arg(format!("-data-dir={}", dir.path().display()))
            .arg("-bind=127.0.0.1")
            .arg(format!("-http-port={}", free_port()))
            .arg(format!("-serf-lan-port={}", free_port()))
            .arg(format!("-server-port={}", free_port()))
            .args(joins.iter().map(|address| format!("-join={address}")))
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (code, stderr) = join(&["no-such-host.invalid", &closed]);
    assert_eq!(code, Some(1), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("Failed to join")).unwrap_or_default();
    assert!(
        line.starts_with(&format!("Error: Failed to join no-such-host.invalid, {closed}: ")),
        "{stderr}"
    );
    assert!(line.contains(&format!("join failed: {closed}: Connection refused")), "{line}");
    assert!(!line.contains(&format!("{closed}: {closed}")), "address said twice: {line}");
    assert!(line.contains("no-such-host.invalid: cannot resolve: "), "{line}");
    // Only the unresolvable name: still a reason, never an empty message.
    let (code, stderr) = join(&["no-such-host.invalid"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Error: Failed to join no-such-host.invalid: no-such-host.invalid: cannot resolve: "
        ),
        "{stderr}"
    );

    // One good address is enough; the bad ones are still named, as warnings.
    let first = Agent::start("first", &dir.path().join("first"), &[]);
    let second = Agent::start(
        "second",
        &dir.path().join("second"),
        &[
            format!("-join={}", first.lan_addr()),
            "-join=no-such-host.invalid".to_owned(),
            format!("-join={closed}"),
        ],
    );
    let stderr = second.stderr();
    assert!(stderr.contains("agent: join: no-such-host.invalid: cannot resolve: "), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("join: could not join through this address"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("seed={closed}")) && line.contains("Connection refused"),
        "{stderr}"
    );
}

#[test]
fn sighup_reloads_the_https_certificates() {
    let dir = tempfile::tempdir().unwrap();
    // Two independent CAs, each with a server and a client certificate.
    for set in ["one", "two"] {
        let d = dir.path().join(set);
        std::fs::create_dir_all(&d).unwrap();
        for args in
            [&["ca", "create"][..], &["cert", "create", "-server"], &["cert", "create", "-client"]]
        {
            let out = consul_sec().current_dir(&d).arg("tls").args(args).output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let install = |set: &str| {
        let d = dir.path().join(set);
        for (from, to) in [
            ("consul-agent-ca.pem", "ca.pem"),
            ("dc1-server-consul-0.pem", "server.pem"),
            ("dc1-server-consul-0-key.pem", "server-key.pem"),
        ] {
            std::fs::copy(d.join(from), live.join(to)).unwrap();
        }
    };
    install("one");
    let https = free_port();
    let config = dir.path().join("tls.json");
    let l = |name: &str| live.join(name).display().to_string();
    std::fs::write(
        &config,
        serde_json::json!({
            "ports": {"https": https},
            "tls": {"https": {"ca_file": l("ca.pem"), "cert_file": l("server.pem"),
                              "key_file": l("server-key.pem"), "verify_incoming": true}}
        })
        .to_string(),
    )
    .unwrap();
    let agent = Agent::start(
        "reload",
        &dir.path().join("data"),
        &[format!("-config-file={}", config.display())],
    );
    let members_with = |set: &str| {
        let d = dir.path().join(set);
        consul_sec()
            .arg("members")
            .arg(format!("-http-addr=https://127.0.0.1:{https}"))
            .arg(format!("-ca-file={}", d.join("consul-agent-ca.pem").display()))
            .arg(format!("-client-cert={}", d.join("dc1-client-consul-0.pem").display()))
            .arg(format!("-client-key={}", d.join("dc1-client-consul-0-key.pem").display()))
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(members_with("one"));
    assert!(!members_with("two"));

    install("two");
    agent.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        agent.stderr().contains("reloaded configuration")
    });
    assert!(members_with("two"), "new connections use the reloaded certificates");
    assert!(!members_with("one"));

    // A broken certificate on reload is logged and the running one is
    // kept; nothing else of that reload is applied either.
    let reloads = agent.stderr().matches("reloaded configuration").count();
    std::fs::write(live.join("server.pem"), "not a certificate").unwrap();
    agent.signal("HUP");
    wait_for("the failed reload", Duration::from_secs(10), || {
        agent.stderr().contains("Failed reloading tls configuration")
    });
    wait_for("the abort line", Duration::from_secs(5), || {
        agent.stderr().contains("Failed to reload configs: nothing was changed")
    });
    assert_eq!(agent.stderr().matches("reloaded configuration").count(), reloads);
    assert!(members_with("two"));

    // A reload that takes the certificate away from the HTTPS listener is
    // refused the same way.
    std::fs::write(
        &config,
        serde_json::json!({"ports": {"https": https}, "tls": {"https": {"ca_file": l("ca.pem")}}})
            .to_string(),
    )
    .unwrap();
    agent.signal("HUP");
    let refused = format!(
        "Failed reloading tls configuration: ports.https is {https} but tls.https has no cert_file and key_file"
    );
    wait_for("the refused reload", Duration::from_secs(10), || agent.stderr().contains(&refused));
    assert_eq!(agent.stderr().matches("reloaded configuration").count(), reloads);
    assert!(members_with("two"));
}

/// A `serf agent` child process with a keyring file, killed when dropped.
struct Serf {
    child: Child,
    bind: String,
    rpc: String,
    keyring: PathBuf,
}

impl Serf {
    fn start(dir: &Path, name: &str, key: &str, join: Option<&str>) -> Serf {
        let bind = format!("127.0.0.1:{}", free_port());
        let rpc = format!("127.0.0.1:{}", free_port());
        let keyring = dir.join(format!("{name}.keyring"));
        std::fs::write(&keyring, format!("[\n  \"{key}\"\n]")).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("serf");
        cmd.arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={bind}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg(format!("-keyring-file={}", keyring.display()));
        if let Some(join) = join {
            cmd.arg(format!("-join={join}"));
        }
        let child =
            cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let serf = Serf { child, bind, rpc, keyring };
        wait_for(&format!("serf agent {name}"), Duration::from_secs(10), || {
            !serf.members().is_empty()
        });
        serf
    }

    /// `serf members` as (name, status) pairs.
    fn members(&self) -> Vec<(String, String)> {
        let Ok(out) = Command::new("serf")
            .args(["members", "-format=json"])
            .arg(format!("-rpc-addr={}", self.rpc))
            .output()
        else {
            return Vec::new();
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return Vec::new();
        };
        let mut members: Vec<(String, String)> = value["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap_or("").to_owned(),
                            m["status"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        members.sort();
        members
    }
}

impl Drop for Serf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mixed_cluster_with_real_serf_agents_rotates_keys_on_all_four() {
    if !require_tool("serf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let serf1 = Serf::start(dir.path(), "serf-1", &key, None);
    let serf2 = Serf::start(dir.path(), "serf-2", &key, Some(&serf1.bind));
    let encrypt = encrypt_file(dir.path(), &key);
    let ours1 = Agent::start(
        "ours-1",
        &dir.path().join("o1"),
        &[encrypt.clone(), format!("-join={}", serf1.bind)],
    );
    let ours2 = Agent::start(
        "ours-2",
        &dir.path().join("o2"),
        &[encrypt, format!("-retry-join={}", ours1.lan_addr())],
    );

    let names = ["ours-1", "ours-2", "serf-1", "serf-2"];
    let all_alive: Vec<(String, String)> =
        names.iter().map(|n| (n.to_string(), "alive".to_owned())).collect();
    wait_for("all four alive everywhere", Duration::from_secs(30), || {
        ours1.members() == all_alive
            && ours2.members() == all_alive
            && serf1.members() == all_alive
            && serf2.members() == all_alive
    });
    let table = text(&ours2.cli(&["members"]).stdout);
    assert_eq!(table.lines().filter(|l| l.contains(" alive ")).count(), 4, "{table}");

    let new = keygen();
    let files =
        [ours1.keyring_file(), ours2.keyring_file(), serf1.keyring.clone(), serf2.keyring.clone()];
    for (args, expect) in [
        (["keyring", "-install", new.as_str()], vec![key.clone(), new.clone()]),
        (["keyring", "-use", new.as_str()], vec![new.clone(), key.clone()]),
        (["keyring", "-remove", key.as_str()], vec![new.clone()]),
    ] {
        let out = ours1.cli(&args);
        assert!(out.status.success(), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        for file in &files {
            // serf writes its file after answering the query; ours before.
            wait_for(&format!("{} after {args:?}", file.display()), Duration::from_secs(5), || {
                let mut got = ring(file);
                let mut want = expect.clone();
                if args[1] == "-install" {
                    got.sort();
                    want.sort();
                }
                got == want
            });
        }
    }
    let listed = text(&ours2.cli(&["keyring", "-list"]).stdout);
    assert_eq!(
        listed,
        format!("==> Gathering installed encryption keys...\n\ndc1 (LAN):\n  {new} [4/4]\n")
    );
    wait_for("all four still alive on the new key", Duration::from_secs(10), || {
        ours1.members() == all_alive && serf2.members() == all_alive
    });
}

/// Writes `config` (JSON) to `dir/<name>.json` and returns `-config-file=<path>`.
fn config_file(dir: &Path, name: &str, config: &serde_json::Value) -> String {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    format!("-config-file={}", path.display())
}

#[test]
fn banner_and_self_show_the_resolved_internal_rpc_policy() {
    let dir = tempfile::tempdir().unwrap();
    tls_in(dir.path(), &["ca", "create"]);
    tls_in(dir.path(), &["cert", "create", "-client"]);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let (ca, cert, key) =
        (p("consul-agent-ca.pem"), p("dc1-client-consul-0.pem"), p("dc1-client-consul-0-key.pem"));
    let files = serde_json::json!({"ca_file": ca, "cert_file": cert, "key_file": key});
    let with = |extra: serde_json::Value| {
        let mut value = files.clone();
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        value
    };
    let cases: [(&str, serde_json::Value, bool, bool); 8] = [
        ("files-only", serde_json::json!({"tls": {"defaults": files.clone()}}), false, false),
        // verify_server_hostname alone implies verify_outgoing (CVE-2018-19653 fix).
        (
            "vsh-stanza",
            serde_json::json!({"tls": {"defaults": {"ca_file": ca},
                "internal_rpc": {"verify_server_hostname": true}}}),
            true,
            false,
        ),
        (
            "vsh-flat",
            serde_json::json!({"ca_file": ca, "verify_server_hostname": true}),
            true,
            false,
        ),
        (
            "outgoing-defaults",
            serde_json::json!({"tls": {"defaults": with(serde_json::json!({"verify_outgoing": true}))}}),
            true,
            false,
        ),
        (
            "incoming-defaults",
            serde_json::json!({"tls": {"defaults": with(serde_json::json!({"verify_incoming": true}))}}),
            false,
            true,
        ),
        ("incoming-flat", with(serde_json::json!({"verify_incoming": true})), false, true),
        ("incoming-rpc-flat", with(serde_json::json!({"verify_incoming_rpc": true})), false, true),
        // The protocol stanza overrides the inherited default.
        (
            "incoming-overridden",
            serde_json::json!({"tls": {
                "defaults": with(serde_json::json!({"verify_incoming": true})),
                "internal_rpc": {"verify_incoming": false}}}),
            false,
            false,
        ),
    ];
    for (name, config, rpc_tls, incoming) in cases {
        let agent = Agent::start(
            name,
            &dir.path().join(format!("data-{name}")),
            &[config_file(dir.path(), name, &config)],
        );
        assert_eq!(
            agent.encrypt_banner_line(),
            format!("Gossip encrypt: false, RPC-TLS: {rpc_tls}, TLS-Incoming: {incoming}"),
            "{name}: {config}"
        );
        let (value, _) = agent.agent_self();
        let rpc = &value["Encryption"]["TLS"]["InternalRPC"];
        assert_eq!(rpc["VerifyOutgoing"], rpc_tls, "{name}: {value}");
        assert_eq!(rpc["VerifyIncoming"], incoming, "{name}: {value}");
        assert_eq!(rpc["VerifyServerHostname"], name.starts_with("vsh"), "{name}: {value}");
        assert_eq!(rpc["Configured"], true, "{name}: {value}");
        assert_eq!(value["Encryption"]["TLS"]["HTTPS"], serde_json::Value::Null, "{name}");
        assert_eq!(value["Stats"]["serf_lan"]["encrypted"], "false", "{name}");
    }
}

#[test]
fn agent_self_reports_certificate_expiry_and_follows_a_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    tls_in(dir.path(), &["ca", "create"]);
    let before = unix_now();
    tls_in(dir.path(), &["cert", "create", "-client", "-days=10"]);
    let after_short = unix_now();
    tls_in(dir.path(), &["cert", "create", "-client", "-days=365"]);
    let after_long = unix_now();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let key = keygen();
    let config_for = |n: u32| {
        serde_json::json!({
            "encrypt": key,
            "encrypt_verify_incoming": false,
            "tls": {"internal_rpc": {
                "ca_file": p("consul-agent-ca.pem"),
                "cert_file": p(&format!("dc1-client-consul-{n}.pem")),
                "key_file": p(&format!("dc1-client-consul-{n}-key.pem")),
                "verify_outgoing": true
            }}
        })
    };
    let config = config_file(dir.path(), "agent", &config_for(0));
    let agent = Agent::start("expiring", &dir.path().join("data"), &[config]);

    let (value, body) = agent.agent_self();
    assert_eq!(value["Stats"]["serf_lan"]["encrypted"], "true");
    assert_eq!(
        value["Encryption"]["Gossip"],
        serde_json::json!({"Enabled": true, "VerifyIncoming": false, "VerifyOutgoing": true,
            "NumKeys": 1})
    );
    let rpc = &value["Encryption"]["TLS"]["InternalRPC"];
    assert_eq!(rpc["VerifyOutgoing"], true);
    let cert = &rpc["Certificate"];
    assert_eq!(cert["Role"], "client");
    assert_eq!(cert["Subject"], "CN=client.dc1.consul");
    assert_eq!(cert["DNSNames"], serde_json::json!(["client.dc1.consul", "localhost"]));
    let not_after = unix_from_rfc3339(cert["NotAfter"].as_str().unwrap()).unwrap();
    assert!(
        (before + 10 * 86_400..=after_short + 10 * 86_400).contains(&not_after),
        "NotAfter {} is not 10 days after issuing",
        cert["NotAfter"]
    );
    let not_before = unix_from_rfc3339(cert["NotBefore"].as_str().unwrap()).unwrap();
    assert!((before..=after_short).contains(&not_before), "{}", cert["NotBefore"]);
    // 10 days minus the time gone since issuing (none within the same second).
    let days = cert["DaysLeft"].as_i64().unwrap();
    assert!(matches!(days, 9 | 10), "{days}");
    assert_eq!(
        cert["Problems"],
        // DaysLeft counts whole days left; "within 10 days" holds either way.
        serde_json::json!([{"Kind": "ExpiresSoon", "Message": "expires within 10 days"}])
    );
    // No key material in the report.
    assert!(!body.contains(&key), "the gossip key leaked: {body}");
    let pem = std::fs::read_to_string(p("dc1-client-consul-0-key.pem")).unwrap();
    assert!(pem.lines().filter(|l| !l.starts_with("-----")).all(|l| !body.contains(l)));
    assert!(!body.contains("PRIVATE KEY") && !body.contains("-key.pem"), "{body}");
    // The agent also said so in its log when it started.
    let warning = "WARN agent: tls.internal_rpc certificate: expires within";
    assert_eq!(agent.stderr().matches(warning).count(), 1, "{}", agent.stderr());

    // Point the agent at the 365-day certificate and reload.
    config_file(dir.path(), "agent", &config_for(1));
    agent.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        agent.stderr().contains("reloaded configuration")
    });
    let (value, _) = agent.agent_self();
    let cert = &value["Encryption"]["TLS"]["InternalRPC"]["Certificate"];
    let not_after = unix_from_rfc3339(cert["NotAfter"].as_str().unwrap()).unwrap();
    assert!(
        (after_short + 365 * 86_400..=after_long + 365 * 86_400).contains(&not_after),
        "NotAfter {} is not 365 days after issuing",
        cert["NotAfter"]
    );
    assert!(matches!(cert["DaysLeft"].as_i64(), Some(364 | 365)), "{cert}");
    assert_eq!(cert["Problems"], serde_json::json!([]));
    // Nothing more to warn about after the reload.
    assert_eq!(agent.stderr().matches(warning).count(), 1, "{}", agent.stderr());
    // Back to the 10-day certificate: the reload warns again.
    config_file(dir.path(), "agent", &config_for(0));
    agent.signal("HUP");
    wait_for("the second warning", Duration::from_secs(10), || {
        agent.stderr().matches(warning).count() == 2
    });
    let (code, _) = agent.stop("TERM");
    assert_eq!(code, Some(0));
}

#[test]
fn a_server_whose_certificate_lacks_its_server_name_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    tls_in(dir.path(), &["ca", "create"]);
    // A server certificate for dc2, on a dc1 server.
    tls_in(dir.path(), &["cert", "create", "-server", "-dc=dc2"]);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let config = config_file(
        dir.path(),
        "server",
        &serde_json::json!({"tls": {"internal_rpc": {
            "ca_file": p("consul-agent-ca.pem"),
            "cert_file": p("dc2-server-consul-0.pem"),
            "key_file": p("dc2-server-consul-0-key.pem")
        }}}),
    );
    let agent = Agent::start(
        "wrong-dc",
        &dir.path().join("data"),
        &[config, "-server".to_owned(), format!("-server-port={}", free_port())],
    );
    assert!(agent.stdout().contains("Server: true (bootstrap: false)"), "{}", agent.stdout());
    let (value, _) = agent.agent_self();
    let cert = &value["Encryption"]["TLS"]["InternalRPC"]["Certificate"];
    assert_eq!(cert["Role"], "server");
    assert_eq!(cert["DNSNames"], serde_json::json!(["server.dc2.consul", "localhost"]));
    assert_eq!(
        cert["Problems"],
        serde_json::json!([{"Kind": "MissingServerName",
            "Message": "DNS SANs lack server.dc1.consul (needed for verify_server_hostname)"}])
    );
    assert!(matches!(cert["DaysLeft"].as_i64(), Some(364 | 365)), "{cert}");
}

#[test]
fn curl_with_client_certificates_over_https() {
    if !require_tool_with("curl", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tls_in(dir.path(), &["ca", "create"]);
    tls_in(dir.path(), &["cert", "create", "-server"]);
    tls_in(dir.path(), &["cert", "create", "-client"]);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    tls_in(&other, &["ca", "create"]);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let https = free_port();
    let key = keygen();
    let config = config_file(
        dir.path(),
        "https",
        &serde_json::json!({
            "encrypt": key,
            "ports": {"https": https},
            "ca_file": p("consul-agent-ca.pem"),
            "cert_file": p("dc1-server-consul-0.pem"),
            "key_file": p("dc1-server-consul-0-key.pem"),
            "verify_incoming_https": true
        }),
    );
    let agent = Agent::start("curl-node", &dir.path().join("data"), &[config]);
    // A second key, installed over HTTPS with the CONSUL_* environment.
    let second = keygen();
    let install = consul_sec()
        .args(["keyring", "-install", &second])
        .env("CONSUL_HTTP_ADDR", format!("https://127.0.0.1:{https}"))
        .env("CONSUL_CACERT", p("consul-agent-ca.pem"))
        .env("CONSUL_CLIENT_CERT", p("dc1-client-consul-0.pem"))
        .env("CONSUL_CLIENT_KEY", p("dc1-client-consul-0-key.pem"))
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", text(&install.stderr));

    let curl = |ca: &str, client: bool, path: &str| {
        let mut command = Command::new("curl");
        command.args(["--silent", "--show-error", "--max-time", "20", "--cacert", ca]);
        if client {
            command.args(["--cert", &p("dc1-client-consul-0.pem")]);
            command.args(["--key", &p("dc1-client-consul-0-key.pem")]);
        }
        command.arg(format!("https://127.0.0.1:{https}{path}")).output().unwrap()
    };
    let ca = p("consul-agent-ca.pem");
    let out = curl(&ca, true, "/v1/agent/members");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let members: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    assert_eq!(members[0]["Name"], "curl-node");
    assert_eq!(members[0]["Port"], agent.lan);

    let out = curl(&ca, true, "/v1/operator/keyring");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pools: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pools.as_array().map(Vec::len), Some(1), "{pools}");
    assert_eq!(pools[0]["Datacenter"], "dc1");
    let keys = pools[0]["Keys"].as_object().unwrap();
    assert_eq!(keys.len(), 2, "{pools}");
    assert_eq!(keys[&key], 1);
    assert_eq!(keys[&second], 1);
    assert_eq!(pools[0]["PrimaryKeys"], serde_json::json!({ key.clone(): 1 }));

    // No client certificate: the handshake is refused, nothing is served.
    for path in ["/v1/agent/members", "/v1/operator/keyring"] {
        let out = curl(&ca, false, path);
        assert_ne!(out.status.code(), Some(0), "{path}: {}", text(&out.stdout));
        assert!(out.stdout.is_empty(), "{path}: {}", text(&out.stdout));
    }
    // A CA that did not sign the server's certificate: curl's verify error.
    let wrong_ca = other.join("consul-agent-ca.pem").display().to_string();
    let out = curl(&wrong_ca, true, "/v1/agent/members");
    assert_eq!(out.status.code(), Some(60), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).to_lowercase().contains("certificate"), "{}", text(&out.stderr));
}

#[test]
fn rfc3339_test_helper_agrees_with_the_calendar() {
    assert_eq!(unix_from_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(unix_from_rfc3339("2024-02-29T23:59:59Z"), Some(1_709_251_199));
    assert_eq!(unix_from_rfc3339("2030-01-01T00:00:00Z"), Some(1_893_456_000));
    assert_eq!(unix_from_rfc3339("2030-01-01 00:00:00Z"), None);
    assert_eq!(unix_from_rfc3339("2030-01-01T00:00:00+01:00"), None);
}

#[test]
fn config_files_and_dirs_are_read_in_command_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("conf.d");
    std::fs::create_dir(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("a.json"), r#"{"datacenter": "from-dir"}"#).unwrap();
    let file = dir.path().join("f.hcl");
    std::fs::write(&file, "datacenter = \"from-file\"\n").unwrap();
    let dir_flag = format!("-config-dir={}", conf_dir.display());
    let file_flag = format!("-config-file={}", file.display());
    for (name, flags, expected) in [
        ("dir-then-file", [dir_flag.clone(), file_flag.clone()], "from-file"),
        ("file-then-dir", [file_flag.clone(), dir_flag.clone()], "from-dir"),
    ] {
        let agent = Agent::start(name, &dir.path().join(name), &flags);
        let banner = agent.stdout();
        assert!(banner.contains(&format!("Datacenter: '{expected}'")), "{name}: {banner}");
        let (code, _) = agent.stop("TERM");
        assert_eq!(code, Some(0));
    }
}

#[test]
fn consul_http_ssl_takes_go_booleans() {
    let addr = format!("-http-addr=127.0.0.1:{}", free_port());
    for yes in ["1", "t", "TRUE"] {
        let out =
            consul_sec().args(["members", &addr]).env("CONSUL_HTTP_SSL", yes).output().unwrap();
        // Parsed: the command runs and fails only because nothing listens.
        assert_eq!(out.status.code(), Some(1), "{yes}: {}", text(&out.stderr));
    }
    let out =
        consul_sec().args(["members", &addr]).env("CONSUL_HTTP_SSL", "maybe").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"maybe\" is not a boolean"), "{}", text(&out.stderr));
}

/// `limits.rpc_max_conns_per_client` and `limits.http_max_conns_per_client`
/// from a config file, in force on a running agent, and raised by SIGHUP.
#[test]
fn connection_limits_from_config_apply_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = free_port();
    let config = dir.path().join("limits.hcl");
    let limits = |http: u32, rpc: u32| {
        let body = format!(
            "limits {{\n  http_max_conns_per_client = {http}\n  rpc_max_conns_per_client = {rpc}\n}}\n"
        );
        std::fs::write(&config, body).unwrap();
    };
    limits(1, 1);
    let agent = Agent::start(
        "limited",
        &dir.path().join("data"),
        &[
            "-server".to_owned(),
            format!("-server-port={rpc}"),
            format!("-config-file={}", config.display()),
        ],
    );
    let ping = || http_get(agent.http, &format!("/v1/internal/rpc/ping?addr=127.0.0.1:{rpc}"));
    assert_eq!(ping().unwrap().0, 200, "one RPC connection is allowed");

    // The agent's own pooled RPC connection is the one allowed: a second
    // (a new client) is closed unanswered and the server logs why.
    let held_rpc = std::net::TcpStream::connect(("127.0.0.1", rpc)).unwrap();
    wait_for("the rejection log line", Duration::from_secs(10), || {
        agent.stderr().contains("rejecting RPC conn from because rpc_max_conns_per_client exceeded")
    });

    // One HTTP connection held open: the CLI's connection is the second.
    let held_http = std::net::TcpStream::connect(("127.0.0.1", agent.http)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = agent.cli(&["members"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "Unexpected response code: 429 (Your IP is issuing too many concurrent connections, please rate limit your calls)"
        ),
        "{}",
        text(&out.stderr)
    );

    limits(5, 5);
    agent.signal("HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        agent.stderr().contains("agent: reloaded configuration")
    });
    let out = agent.cli(&["members"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("limited"), "{}", text(&out.stdout));
    assert!(!agent.stderr().contains("a reload does not apply it"), "{}", agent.stderr());

    // A setting that needs a restart is named, not silently dropped.
    let mut body = std::fs::read_to_string(&config).unwrap();
    body.push_str("datacenter = \"dc9\"\n");
    std::fs::write(&config, body).unwrap();
    agent.signal("HUP");
    wait_for("the restart warning", Duration::from_secs(10), || {
        agent.stderr().contains(
            "WARN agent: datacenter changed in the configuration; a reload does not apply it, restart the agent",
        )
    });
    drop((held_rpc, held_http));
}

/// `ports.https` without a certificate: `validate` warns and the agent
/// refuses to start, naming what is missing (it used to start and drop
/// every HTTPS connection).
#[test]
fn https_port_without_a_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("https.hcl");
    let https = free_port();
    std::fs::write(&config, format!("ports = {{ https = {https} }}\n")).unwrap();
    let data = dir.path().join("data");
    let out = consul_sec()
        .args(["validate", "-quiet"])
        .arg(&config)
        .env("CONSUL_SEC_DATA_DIR", &data)
        .output()
        .unwrap();
    let expected = format!(
        "ports.https is {https} but tls.https has no cert_file and key_file; the agent will refuse to start"
    );
    assert!(
        text(&out.stderr).contains(&expected) || text(&out.stdout).contains(&expected),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let out = consul_sec()
        .arg("agent")
        .arg(format!("-data-dir={}", data.display()))
        .arg("-bind=127.0.0.1")
        .arg(format!("-http-port={}", free_port()))
        .arg(format!("-serf-lan-port={}", free_port()))
        .arg(format!("-config-file={}", config.display()))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Error: ports.https is {https} but tls.https has no cert_file and key_file: an HTTPS listener needs a certificate"
        )),
        "{stderr}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", https)).is_err(), "nothing listens");
}
